"""What `--precision auto` picks on each kind of machine (ferkit.machine), with the CPU's
flags and the GPU list faked."""
import pytest

import ferkit.machine
from ferkit.backend import tf
from ferkit.machine import resolve_precision


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """Fake a machine: set(cpu_flags=..., gpus=[compute capability, ...])."""
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(ferkit.machine, "CPUINFO", cpuinfo)

    def fake(cpu_flags=None, gpus=()):
        if cpu_flags is None:
            cpuinfo.unlink(missing_ok=True)  # unreadable, as on a machine without /proc
        else:
            cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {cpu_flags}\n")
        devices = [f"/physical_device:GPU:{i}" for i in range(len(gpus))]
        details = dict(zip(devices, gpus))
        monkeypatch.setattr(tf.config, "list_physical_devices",
                            lambda kind=None: devices if kind == "GPU" else [])
        monkeypatch.setattr(tf.config.experimental, "get_device_details",
                            lambda device: {"compute_capability": details[device]})
    return fake


@pytest.mark.parametrize("cpu_flags,gpus,policy", [
    ("avx2 avx512f avx512_bf16", (), "mixed_bfloat16"),   # AMD Zen 4, Intel Cooper Lake
    ("avx2 avx512f amx_bf16 amx_tile", (), "mixed_bfloat16"),  # Intel Sapphire Rapids
    ("avx2 avx512f", (), "float32"),                    # AVX-512 without bfloat16
    ("avx2", (), "float32"),
    (None, (), "float32"),                              # flags unreadable
    ("avx2", ((8, 0),), "mixed_bfloat16"),              # A100 (Ampere)
    ("avx2", ((9, 0), (9, 0)), "mixed_bfloat16"),       # H100s: the first one decides
    ("avx512_bf16", ((7, 5),), "mixed_float16"),        # T4 (Turing): the GPU, not the CPU
])
def test_auto_precision_follows_the_cpu_flags_and_the_gpu(machine, cpu_flags, gpus, policy):
    machine(cpu_flags, gpus)
    assert resolve_precision("auto") == policy


def test_a_named_precision_is_taken_as_given(machine):
    machine("avx512_bf16", ((8, 0),))
    assert [resolve_precision(p) for p in ("float32", "bfloat16", "float16")] == [
        "float32", "mixed_bfloat16", "mixed_float16"]


def test_the_machine_description_names_the_cpu_s_bfloat16(machine):
    machine("avx512_bf16")
    assert "(AVX512-BF16)" in ferkit.machine.machine_description()
    machine("avx2")
    assert "(no AVX512-BF16/AMX), 0 GPUs" in ferkit.machine.machine_description()
