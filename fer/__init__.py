"""Shared code of the FER toolkit: labels, data loading, models, training, prediction."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: default paths hang off it
MODELS = ROOT / "models"


class InputError(ValueError):
    """Input the user can fix (a bad option, file or path): the toolkit raises this, or a
    subclass, where it checks input, and fer.cli.run prints it as one line, exit code 2.
    Nothing else is caught there: any other exception is a bug and keeps its traceback."""


class DataError(InputError):
    """Bad input data (a faces file, an answer file, a model file or its sidecar, or a
    path to one that is missing); the message is one line meant for the user. Defined here,
    without pandas or TensorFlow, so the path checks (fer.paths) and the sidecar reader
    (fer.files) raise it too; fer.data.DataError is the same class."""


def recorded_path(path) -> str:
    """How a sidecar records a file: relative to the checkout when it lies inside the
    checkout's parent folder (so a shipped model finds ../shared/... on any machine with
    the same layout), else absolute."""
    path = Path(path).resolve()
    if path.is_relative_to(ROOT.parent):
        return Path(os.path.relpath(path, ROOT)).as_posix()
    return str(path)


def resolve_recorded(path) -> Path:
    """The file a sidecar's recorded path names (see recorded_path)."""
    path = Path(path)
    return path if path.is_absolute() else (ROOT / path).resolve()
