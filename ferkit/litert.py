"""LiteRT copies of trained models: made from the .h5 by TensorFlow's own converter, checked
fresh by hash, and run by LiteRT (XNNPACK) without importing TensorFlow.

``MODEL.tflite`` (float32) lies beside ``MODEL.h5``; the model's JSON sidecar records,
under ``"tflite"``, the SHA-256 of the .h5 it was made from and of the .tflite itself, so a
.tflite left over from an earlier .h5 (retrained, averaged, copied over) or put there by
hand is detected and never used in its place. ``MODEL.int8.tflite`` (full-integer
quantization, made on request by export_tflite.py --int8, recorded under
``"tflite_int8"``) is the same model with int8 weights and activations: several times
faster on CPUs with int8 dot-product instructions, with slightly different
probabilities, so it runs only when asked for (--runtime litert-int8).

Only the export functions import TensorFlow (to convert); everything else here reads files
and runs the LiteRT interpreter, so a script that predicts through LiteRT starts in well
under a second.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ferkit.errors import ParameterError
from ferkit.files import write_atomically
from ferkit.record import read_record, write_record

# variant: (file suffix, sidecar key, the runtime that runs it: ferkit.inference.RUNTIMES)
VARIANTS = {"float32": (".tflite", "tflite", "litert"),
            "int8": (".int8.tflite", "tflite_int8", "litert-int8")}
# Training faces that calibrate the int8 copy's activation ranges: some 70 of each class;
# with them the shipped stage 1 loses 0.14 points on its validation split
# (bench/litert_quantization.py).
CALIBRATION_FACES = 500
# Faces per interpreter call: the stage-1 CNN ran at 340, 384, 380 and 391 images/s with
# 32, 64, 128 and 256 on the 2-core AVX512 host, so 64, with a quarter of 256's
# activation memory; it divides ferkit.inference.PREDICT_BATCH, so only a last chunk is short.
LITERT_BATCH = 64


def tflite_path(model_path, variant: str = "float32") -> Path:
    return Path(model_path).with_suffix(VARIANTS[variant][0])


def file_sha256(path) -> str:
    """The file's SHA-256, hex; remembered for the file's path, size and modification time
    (choosing the runtime and loading the model both check a model's files)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- making the .tflite (imports TensorFlow) ------------------------------------------------

def convert_to_tflite(model, optimize=None) -> bytes:
    """A Keras model as a LiteRT flatbuffer, by tf.lite.TFLiteConverter.from_keras_model
    (float32 unless ``optimize(converter)`` sets quantization options on the converter)."""
    from ferkit.backend import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize is not None:
        optimize(converter)
    # The converter saves the model to a temporary folder first and prints that folder's
    # endpoints (some 70 lines) on stdout; quantizing, it warns that the (float) input has
    # no range and logs its settings on fd 2: noise in a training log.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
            _quiet_stderr():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        return converter.convert()


def export_tflite(model_path, variant: str = "float32", calibration=None) -> Path:
    """Write ``MODEL.tflite`` (or, for variant "int8", ``MODEL.int8.tflite``) beside
    ``model_path`` (a .h5 with its sidecar) and record in the sidecar the SHA-256 of both
    files; returns the written file's path. ``calibration``: for int8, uint8 (N, 48, 48)
    training faces that set the activations' ranges."""
    from ferkit.models import load_model

    model, sidecar = load_model(model_path)
    h5_sha256 = file_sha256(model_path)  # of the file loaded (read again: no race with it)
    record = {"h5_sha256": h5_sha256}
    if variant == "int8":
        flatbuffer = convert_to_tflite(model, full_int8(calibration))
        record["calibration_faces"] = len(calibration)
    else:
        flatbuffer = convert_to_tflite(model)
    out = tflite_path(model_path, variant)
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(flatbuffer))
    write_record(model_path, sidecar.replace(**{
        VARIANTS[variant][1]: {**record, "sha256": hashlib.sha256(flatbuffer).hexdigest()}}))
    return out


def full_int8(calibration):
    """Converter settings of full-integer quantization: int8 weights and activations, the
    activations' ranges measured on ``calibration`` faces; float32 input and output, so
    the copy takes and gives what the float32 one does."""
    from ferkit.backend import tf

    def settings(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [face[None, :, :, None].astype(np.float32)] for face in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return settings


# --- checking it ----------------------------------------------------------------------------

def staleness(model_path, sidecar: dict, variant: str = "float32") -> str | None:
    """None when ``MODEL.tflite`` (``MODEL.int8.tflite`` for variant "int8") is the one made
    from this very .h5; else why not, one phrase (export_tflite remakes it)."""
    tflite = tflite_path(model_path, variant)
    record = sidecar.get(VARIANTS[variant][1])
    if not tflite.exists():
        return f"{tflite} not found"
    if not isinstance(record, dict) or not {"h5_sha256", "sha256"} <= set(record):
        return f"{tflite}: its sidecar records no hash of it, so it may be stale"
    if file_sha256(model_path) != record["h5_sha256"]:
        return (f"{tflite} is stale: made from another {Path(model_path).name} than the one "
                f"there now (SHA-256 differs from its sidecar's record)")
    if file_sha256(tflite) != record["sha256"]:
        return (f"{tflite} is not the file its sidecar records (SHA-256 differs): "
                f"replaced or damaged")
    return None


# --- running it (no TensorFlow) -------------------------------------------------------------

class LiteRTModel:
    """A .tflite classifier run by LiteRT's interpreter with XNNPACK on every core:
    float32 (n, 48, 48, 1) raw pixels -> float32 (n, K) softmax, like the Keras model it was
    made from. ferkit.inference.predict_probs runs either kind through the same code."""

    def __init__(self, path, threads: int | None = None, batch: int = LITERT_BATCH):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.batch = batch
        self._interpreter = Interpreter(model_path=str(path),
                                        num_threads=threads or os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.output_shape = (None, int(self._interpreter.get_output_details()[0]["shape"][-1]))
        self._rows = None  # faces the interpreter's tensors are sized for now
        with _quiet_stderr():  # the first allocation prints "INFO: Created ... XNNPACK ..."
            self._resize(batch)

    def _resize(self, rows: int) -> None:
        self._interpreter.resize_tensor_input(self._input, [rows, *self._interpreter
                                              .get_input_details()[0]["shape"][1:]])
        self._interpreter.allocate_tensors()
        self._rows = rows

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((len(x), self.output_shape[-1]), dtype=np.float32)
        for start in range(0, len(x), self.batch):
            chunk = x[start:start + self.batch]
            # A short chunk (the last one, or a few faces) gets tensors of its own size
            # rather than padding: resizing costs milliseconds, padding a whole batch.
            if len(chunk) != self._rows:
                self._resize(len(chunk))
            self._interpreter.set_tensor(self._input, chunk)
            self._interpreter.invoke()
            out[start:start + len(chunk)] = self._interpreter.get_tensor(self._output)
        return out


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 pointed at /dev/null: LiteRT's native code logs there directly
    (as TensorFlow's does, see ferkit.backend), and a successful prediction should print only
    what the script says. Python exceptions still propagate."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_litert(model_path, kind: str = "", variant: str = "float32"
                ) -> tuple[LiteRTModel, dict]:
    """(LiteRTModel of ``MODEL.tflite`` or ``MODEL.int8.tflite``, sidecar); a stale or
    missing one is a ParameterError (runtime) naming it, carrying ("tflite", model_path,
    variant) as what remakes it. ``kind``: the model's, for a missing .h5 (read_record)."""
    sidecar = read_record(model_path, kind)
    problem = staleness(model_path, sidecar, variant)
    if problem is not None:
        raise ParameterError("runtime", problem, VARIANTS[variant][2],
                             makes=("tflite", model_path, variant))
    return LiteRTModel(tflite_path(model_path, variant)), sidecar

