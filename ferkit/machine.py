"""The machine a run trains on: thread pools, the precision `auto` picks, the distribution
strategy, and how the sidecar describes the machine and the libraries."""
from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import matplotlib
import numpy as np
import pandas
import sklearn

from ferkit.backend import keras, tf
from ferkit.words import counted

CPUINFO = Path("/proc/cpuinfo")  # where the CPU's flags are read (tests point it elsewhere)
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16",
                      "float16": "mixed_float16"}


def configure_threads() -> None:
    """On small CPUs one op at a time using every core beats several ops fighting for them.

    TensorFlow fixes its pools when it first runs an op; after that (a caller that already
    used TensorFlow, such as a test) the existing pools are kept.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


def cpu_has_fast_bfloat16() -> bool:
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str) -> str:
    """A recipe's ``precision`` -> Keras dtype policy name. ``auto``: on a GPU, mixed
    bfloat16 from compute capability 8.0 (Ampere) on, else mixed float16; on a CPU, mixed
    bfloat16 where it has AVX512-BF16 or AMX, else float32."""
    if name != "auto":
        return PRECISION_POLICIES[name]
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get(
            "compute_capability", (0, 0))
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_fast_bfloat16() else "float32"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under this Keras dtype policy, then restore the caller's: a layer keeps
    the policy it was built with, and the rest of the process (tests, predict) stays float32."""
    caller = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(caller)


def default_strategy() -> tf.distribute.Strategy:
    """All visible GPUs when there are several, else the default (one device) strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def machine_description() -> str:
    flags = "AVX512-BF16" if cpu_has_fast_bfloat16() else "no AVX512-BF16/AMX"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores ({flags}), "
            f"{counted(len(tf.config.list_physical_devices('GPU')), 'GPU')}")


def library_versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}
