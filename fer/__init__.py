"""Shared code of the FER toolkit: labels, data loading, models, training, prediction."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: default paths hang off it
MODELS = ROOT / "models"
