"""Where the models come from when no path names one: the folder the FERKIT_MODELS
environment variable names, else the models that came with the package.

The checkout keeps them in its top-level models/; the wheel carries them as
ferkit/shipped_models/ (pyproject.toml maps that package to models/), so an installed ferkit
finds them there, and a checkout (editable install, or on PYTHONPATH) finds models/ beside
the package."""
from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT = "FERKIT_MODELS"


def package_models() -> Path:
    """The models that came with this copy of the package."""
    package = Path(__file__).resolve().parent
    installed = package / "shipped_models"
    return installed if installed.is_dir() else package.parent / "models"


def models_folder() -> Path:
    """FERKIT_MODELS's folder when it is set (and not empty), else package_models()."""
    chosen = os.environ.get(ENVIRONMENT)
    return Path(chosen) if chosen else package_models()
