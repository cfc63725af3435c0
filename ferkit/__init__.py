"""Shared code of the FER toolkit: labels, data loading, models, training, prediction."""
import os
from pathlib import Path

from ferkit.errors import DataError, InputError, ParameterError

ROOT = Path(__file__).resolve().parent.parent  # the checkout: default paths hang off it
MODELS = ROOT / "models"


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
