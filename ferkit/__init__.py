"""ferkit: facial expression recognition on FER2013-style 48x48 grey faces.

From Python (README.md, "From Python"):

    import ferkit
    recognizer = ferkit.Recognizer()                 # the shipped two-stage cascade
    recognizer.predict(faces).labels                 # (N, 48, 48) pixels 0-255 -> 0-6
    recognizer.faces("photo.jpg")                    # faces in a picture: ferkit.FaceResult
    recognizer.detect("photo.jpg")                   # the same as the fer package's dicts
    faces = ferkit.load_faces("test.csv.gz")         # any faces file the scripts read

Importing ferkit is light (no TensorFlow, pandas or OpenCV): the names below are loaded on
first use (PEP 562), and TensorFlow only if a Keras model runs.
"""
import importlib
import os
from pathlib import Path

from ferkit.errors import DataError, InputError, ParameterError

ROOT = Path(__file__).resolve().parent.parent  # the checkout: default paths hang off it
MODELS = ROOT / "models"

# Public name -> the module that defines it, imported when the name is first used. The
# training names come from modules that may be absent in a partial install; only using
# one of them then fails.
_LAZY = {
    "Recognizer": "ferkit.recognizer",
    "Prediction": "ferkit.inference",
    "FaceResult": "ferkit.inference",
    "Faces": "ferkit.data",
    "load_faces": "ferkit.data",
    "check_faces": "ferkit.arrays",
    "CLASS_NAMES": "ferkit.labels",
    "EMOTIONS": "ferkit.labels",
    "train": "ferkit.training",
    "Stage1Recipe": "ferkit.recipes",
    "SpecialistRecipe": "ferkit.recipes",
    "DnnRecipe": "ferkit.recipes",
}

__all__ = ["DataError", "InputError", "ParameterError", "MODELS", "ROOT", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
