"""ferkit.Recognizer: the toolkit from Python, what predict.py and annotate.py do from the
command line.

    recognizer = ferkit.Recognizer()              # the shipped cascade
    found = recognizer.predict(faces)              # 48x48 grey faces -> ferkit.Prediction
    records = recognizer.detect("photo.jpg")       # faces found in a picture, as the fer
                                                   # package's FER().detect_emotions gives

Nothing here prints; the runtime chosen is an attribute and is logged (logging, INFO).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ferkit import paths
from ferkit.errors import DataError, ParameterError
from ferkit.faces import FaceSettings, find_faces, load_face_detector
from ferkit.inference import (DEFAULT_STAGE1, DEFAULT_STAGE2, MAKE_STAGE1, MAKE_STAGE2,
                              Cascade, Prediction)
from ferkit.labels import EMOTIONS

COLORS = ("rgb", "bgr")  # the channel orders detect takes


class Recognizer:
    """Facial expressions of 48x48 grey faces (predict) and of the faces in a picture
    (detect), by stage 1 and the specialist that re-decides among its classes when stage 1
    is unsure (the cascade predict.py runs, with the same labels).

    ``stage1``, ``stage2``: model files (.h5 with their sidecars; default: the shipped
    models/cnn.h5 and models/cnn_specific_0_2_4_6.h5); ``cascade=False``: stage 1 alone.
    ``runtime``: "auto" (LiteRT when every model has a .tflite made from its current .h5,
    else Keras), "litert", "litert-int8" or "keras"; the one chosen is ``self.runtime``,
    the reason ``self.runtime_reason``. ``tta``: average each face's softmax with its
    mirror image's. ``handoff_below``: hand a face to the specialist when stage 1 is at
    most this sure (default: the threshold tuned into the specialist's sidecar).
    ``calibrated``: probabilities calibrated by the temperatures fitted on validation and
    kept in the sidecars (a model without them gives its raw softmax, logged once, WARNING);
    False: the raw softmax. Labels are the same either way.
    ``face_settings``: how detect finds and frames faces (ferkit.faces.FaceSettings, as
    annotate.py's --detector, --min-face, --min-neighbors, --margin; default: OpenCV's Haar
    cascade, which needs no TensorFlow; annotate.py's choice for photos, MTCNN, finds more
    faces: ``face_settings=ferkit.faces.source_settings("photo")``).
    """

    def __init__(self, stage1=None, stage2=None, *, cascade: bool = True,
                 runtime: str = "auto", tta: bool = False, handoff_below: float | None = None,
                 face_settings: FaceSettings | None = None, calibrated: bool = True):
        if not cascade and stage2 is not None:
            raise ParameterError("stage2", "expected no specialist with cascade=False, found "
                                           f"{stage2}")
        self.stage1 = Path(DEFAULT_STAGE1 if stage1 is None else stage1)
        self.stage2 = Path(DEFAULT_STAGE2 if stage2 is None else stage2) if cascade else None
        paths.model_file(self.stage1, MAKE_STAGE1)
        if self.stage2 is not None:
            paths.model_file(self.stage2, MAKE_STAGE2)
        self.face_settings = face_settings or FaceSettings()
        self.face_settings.check()
        self._cascade = Cascade.load(self.stage1, self.stage2, handoff_below, tta, runtime,
                                     calibrated)
        self._detector = None  # loaded by the first detect

    @property
    def runtime(self) -> str:
        return self._cascade.runtime

    @property
    def runtime_reason(self) -> str:
        return self._cascade.runtime_reason

    @property
    def tta(self) -> bool:
        return self._cascade.tta

    @property
    def calibrated(self) -> bool:
        """Whether the probabilities are calibrated (False: asked for the raw softmax, or
        no calibration in the sidecars: calibration_notice says which)."""
        return (self._cascade.cascade_calibration if self.stage2 is not None
                else self._cascade.stage1_calibration) is not None

    @property
    def calibration_notice(self) -> str | None:
        """The line saying which probabilities are uncalibrated and how to calibrate them."""
        return self._cascade.calibration_notice

    @property
    def handoff_below(self) -> float:
        """The threshold in use (1.0 with cascade=False: nothing is handed over then)."""
        return self._cascade.handoff_below

    @property
    def specialist_classes(self) -> list[int]:
        """The classes the specialist decides among ([] with cascade=False)."""
        return list(self._cascade.classes)

    def __repr__(self) -> str:
        return (f"Recognizer(stage1={str(self.stage1)!r}, stage2="
                f"{None if self.stage2 is None else str(self.stage2)!r}, runtime="
                f"{self.runtime!r}, tta={self.tta}, handoff_below={self.handoff_below:g}, "
                f"calibrated={self.calibrated})")

    def predict(self, faces) -> Prediction:
        """Grey faces framed as FER2013's, uint8 or float pixels 0-255, one (48, 48) or
        N (N, 48, 48) -> ferkit.Prediction: ``labels`` (N,) 0-6, ``probabilities`` (N, 7)
        that go with them (the cascade's where the specialist decided), stage 1's
        ``stage1_probabilities``, the ``handed_over`` mask and the labels' ``names``.
        Any other array is a ValueError saying what was expected (ferkit.arrays)."""
        return self._cascade.predict_all(faces)

    def detect(self, image, color: str = "rgb") -> list[dict]:
        """Every face in a picture with its expression, one dict per face, top to bottom:
        ``{"box": (x, y, w, h), "emotions": {"angry": p, ..., "neutral": p}, "label":
        "happy", "handed_over": False}``. ``emotions`` are the probabilities that go with
        the label (Prediction.probabilities). ``image``: a uint8 array (H, W, 3), or (H, W, 4)
        with alpha, in ``color`` order ("rgb", as PIL, matplotlib and scikit-image give it, or "bgr", as
        cv2.imread does and the fer package takes), or grey (H, W); a PIL image; or a
        path to a photo. Faces are found and framed as ``face_settings`` say (as
        annotate.py's options do)."""
        picture = bgr_picture(image, color)
        if self._detector is None:
            self._detector = load_face_detector(self.face_settings.detector)
        boxes, _, crops = find_faces(picture, self._detector, self.face_settings)
        found = self.predict(crops)
        return [{"box": tuple(int(v) for v in box),
                 "emotions": dict(zip(EMOTIONS, map(float, probs))),
                 "label": name, "handed_over": bool(handed)}
                for box, probs, name, handed in zip(boxes, found.probabilities, found.names,
                                                    found.handed_over)]


def bgr_picture(image, color: str = "rgb") -> np.ndarray:
    """detect's ``image`` -> a uint8 picture as OpenCV orders it, which the face finders
    take: BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W); see Recognizer.detect."""
    if color not in COLORS:
        raise ParameterError("color", f"expected one of {', '.join(COLORS)}, found {color!r}")
    if isinstance(image, (str, Path)):
        path = paths.input_file(image, "picture")
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)  # turned as its EXIF says, as
        if picture is None:                                 # annotate.py reads a photo
            raise DataError(f"{path}: expected a JPEG, PNG, BMP or WebP image, found a file "
                            f"OpenCV cannot read as one")
        return picture
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        image, color = np.asarray(image.convert("RGB")), "rgb"
    picture = np.asarray(image)
    if picture.dtype != np.uint8:
        raise ParameterError("image", f"expected a uint8 picture, found an array of "
                                      f"{picture.dtype}")
    if picture.ndim == 2 and picture.size:
        return picture
    if picture.ndim != 3 or picture.shape[2] not in (3, 4) or not picture.size:
        raise ParameterError("image", f"expected a picture of shape (H, W, 3), (H, W, 4) or "
                                      f"grey (H, W), found {picture.shape}")
    if color == "bgr":
        return picture
    return cv2.cvtColor(picture, cv2.COLOR_RGB2BGR if picture.shape[2] == 3
                        else cv2.COLOR_RGBA2BGRA)
