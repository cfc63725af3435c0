"""Progress display for long work (training epochs, prediction, BatchNorm passes): a bar
redrawn in place on a terminal, one line once done in a log file."""
import sys


def progress_verbosity() -> int:
    """Keras' ``verbose`` for a progress display: 1 (redrawn in place) on a terminal, 2 (one
    line per bar or epoch, once done) when stdout is a log file (``nohup ... > log``), where
    redrawing would fill the log with a frame per update."""
    return 1 if sys.stdout.isatty() else 2


def progress_bar(total: int, unit: str, show: bool = True):
    """A keras Progbar over ``total`` units, shown as progress_verbosity() says."""
    from ferkit.backend import keras

    return keras.utils.Progbar(total, unit_name=unit,
                               verbose=progress_verbosity() if show else 0)
