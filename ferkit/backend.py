"""TensorFlow and Keras, imported once without the C++ start-up lines they print.

TensorFlow's native code writes "Could not find cuda drivers..." and absl notices straight
to file descriptor 2 at import and when it first looks for devices, which no environment variable silences; they would bury
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
        # Finding the devices is what prints "failed call to cuInit" on machines without
        # a GPU: do it now, while fd 2 is quiet.
        tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow, keras


tf, keras = _import_quietly()
# Retracing notices ("5 out of the last 5 calls ... triggered tf.function retracing") come
# from the many short-lived models that weight averaging and BatchNorm passes build.
tf.get_logger().setLevel("ERROR")
