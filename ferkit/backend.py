"""TensorFlow and Keras, imported on first use: ``from ferkit.backend import keras, tf``.

Importing this module imports nothing heavy and changes nothing; the first access to ``tf``
or ``keras`` imports them (PEP 562). A library user gets TensorFlow as TensorFlow behaves
in their process. The command line asks for quiet (quiet_tensorflow, called by
ferkit.app.cli.run before a script's main): TensorFlow's native code writes "Could not find
cuda drivers..." and absl notices straight to file descriptor 2 at import and when it first
looks for devices, which no environment variable fully silences; they would bury the
one-line error messages the scripts promise. Only then is fd 2 pointed at /dev/null for
the import, as a script owns its process; a library must not redirect its caller's stderr.
Python exceptions raised by the import still propagate normally.
"""
import os
import sys

_quiet = False


def quiet_tensorflow() -> None:
    """Make the coming import of TensorFlow quiet (the scripts' start-up, not the library's:
    it sets TF_CPP_MIN_LOG_LEVEL, which child processes inherit, and silences TensorFlow's
    logger). Imports nothing itself, so a script that runs on LiteRT never loads TensorFlow."""
    global _quiet
    _quiet = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:  # already imported: only its Python logger can change
        _silence_logger(sys.modules["tensorflow"])


def _silence_logger(tensorflow) -> None:
    # Retracing notices ("5 out of the last 5 calls ... triggered tf.function retracing")
    # come from the many short-lived models that weight averaging and BatchNorm passes build.
    tensorflow.get_logger().setLevel("ERROR")


def _import() -> tuple:
    if not _quiet or "tensorflow" in sys.modules:
        import tensorflow
        import keras
        return tensorflow, keras
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow
        import keras
        # Finding the devices is what prints "failed call to cuInit" on machines without
        # a GPU: do it now, while fd 2 is quiet.
        tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    _silence_logger(tensorflow)
    return tensorflow, keras


def __getattr__(name: str):
    if name not in ("tf", "keras"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    tensorflow, keras = _import()
    globals().update(tf=tensorflow, keras=keras)  # later accesses skip this function
    return globals()[name]
