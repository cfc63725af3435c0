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

from ferkit.shipped import models_folder

# The models used where none is named: FERKIT_MODELS's folder, else the package's own
# (read when ferkit is imported). Everything else a default names is relative to the
# current folder.
MODELS = models_folder()

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

__all__ = ["DataError", "InputError", "ParameterError", "MODELS", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def recorded_path(path, model) -> str:
    """How the sidecar of ``model`` (a model file) records a file: relative to the model's
    folder when the two share a folder below the file system's root (a shipped model in
    models/ records ../../shared/data/..., which holds wherever the same layout is), else
    absolute. Never relative to a checkout: an installed model records the same way."""
    path, folder = Path(path).resolve(), Path(model).resolve().parent
    if len(Path(os.path.commonpath([path, folder])).parts) > 1:
        return Path(os.path.relpath(path, folder)).as_posix()
    return str(path)


def resolve_recorded(path, model) -> Path:
    """The file that the sidecar of ``model`` names by ``path`` (see recorded_path).
    Sidecars before ferkit 0.5 recorded paths relative to the checkout, the folder above
    their models/: a relative path that is not beside the model is looked for there."""
    path = Path(path)
    if path.is_absolute():
        return path
    folder = Path(model).resolve().parent
    beside, before_05 = (folder / path).resolve(), (folder.parent / path).resolve()
    return before_05 if not beside.exists() and before_05.exists() else beside
