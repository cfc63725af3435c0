"""TensorFlow and Keras, imported once without the C++ start-up lines they print.

TensorFlow's native code writes "Could not find cuda drivers..." and absl notices straight
to file descriptor 2 at import, which no environment variable silences; they would bury
the one-line error messages this toolkit promises. We point fd 2 at /dev/null for the
import only. Python exceptions raised by the import still propagate normally.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_quietly():
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow, keras


tf, keras = _import_quietly()
