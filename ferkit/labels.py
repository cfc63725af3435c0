"""Class names and the --specific class-subset parser: the single place they live."""
from __future__ import annotations

from ferkit.errors import ParameterError

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(CLASS_NAMES)
# The names ferkit.Recognizer gives (labels and the keys of detect's "emotions"), spelt as
# the fer package's detect_emotions spells them, so its users' code reads ours unchanged.
EMOTIONS = tuple(name.lower() for name in CLASS_NAMES)
DEFAULT_SPECIFIC = "0_2_4_6"  # the four negative emotions: Angry, Fear, Sad, Neutral


def parse_specific(spec: str) -> list[int]:
    """'0_2_4_6' -> [0, 2, 4, 6]: at least two distinct classes 0-6, joined by '_'."""
    parts = spec.split("_")
    if not all(p.isdigit() and len(p) == 1 and int(p) < NUM_CLASSES for p in parts):
        raise ParameterError("specific", f"expected class digits 0-6 joined by '_' (e.g. 0_2_4_6), "
                         f"found {spec!r}")
    classes = [int(p) for p in parts]
    if len(set(classes)) != len(classes):
        raise ParameterError("specific", f"expected each class once, found a repeat in {spec!r}")
    if len(classes) < 2:
        raise ParameterError("specific", f"expected at least two classes, found {spec!r}")
    return classes


def specific_name(classes) -> str:
    """[0, 2, 4, 6] -> '0_2_4_6' (used in default file names)."""
    return "_".join(str(c) for c in classes)
