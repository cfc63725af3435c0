"""ferkit.Recognizer: the toolkit from Python, and the one path that finds faces in a picture
and reads their expressions (annotate.py and serve.py render what it returns).

    recognizer = ferkit.Recognizer()              # the shipped cascade
    found = recognizer.predict(faces)              # 48x48 grey faces -> ferkit.Prediction
    for face in recognizer.faces("photo.jpg"):     # faces in a picture -> ferkit.FaceResult
        print(face.box, face.label_name, face.confidence)
    records = recognizer.detect("photo.jpg")       # the same faces as the fer package's
                                                   # FER().detect_emotions gives them
    table = recognizer.analyze_video("clip.mp4")   # a pandas DataFrame: faces.csv's rows,
                                                   # each face's track, time, smoothed label

Nothing here prints; the runtime chosen is an attribute and is logged (logging, INFO).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ferkit import paths
from ferkit.errors import DataError, ParameterError
from ferkit.faces import (DEFAULT_MIN_NEIGHBORS, SOURCE_DETECTORS, find_faces,
                          load_face_detector, source_settings)
from ferkit.inference import DEFAULT_STAGE1, DEFAULT_STAGE2, Cascade, FaceResult, Prediction
from ferkit.tracking import DEFAULT_SMOOTH, MIN_TRACK_FRAMES, TABLE_COLUMNS, VideoTable
from ferkit.video import frames, open_video_file, video_fps

COLORS = ("rgb", "bgr")  # the channel orders faces and detect take


class Recognizer:
    """Facial expressions of 48x48 grey faces (predict) and of the faces in a picture
    (faces; detect in the fer package's form), by stage 1 and the specialist that re-decides
    among its classes when stage 1 is unsure (the cascade predict.py runs, with the same
    labels).

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
    How faces are found and framed in a picture, as annotate.py finds them: ``detector``
    ("haar", "mtcnn"; None: each source's own, ferkit.faces.SOURCE_DETECTORS: MTCNN for a
    photo, which finds the most faces and loads TensorFlow, Haar for a live frame, which
    keeps the frame rate), ``min_face`` (pixels; None: the source's), ``min_neighbors``
    (Haar's overlapping windows) and ``margin`` (None: the detector's tuned one).
    """

    def __init__(self, stage1=None, stage2=None, *, cascade: bool = True,
                 runtime: str = "auto", tta: bool = False, handoff_below: float | None = None,
                 detector: str | None = None, min_face: int | None = None,
                 min_neighbors: int = DEFAULT_MIN_NEIGHBORS, margin: float | None = None,
                 calibrated: bool = True):
        if not cascade and stage2 is not None:
            raise ParameterError("stage2", "expected no specialist with cascade=False, found "
                                           f"{stage2}")
        self.stage1 = Path(DEFAULT_STAGE1 if stage1 is None else stage1)
        self.stage2 = Path(DEFAULT_STAGE2 if stage2 is None else stage2) if cascade else None
        for parameter, path, kind in (("stage1", self.stage1, "stage1"),
                                      ("stage2", self.stage2, "specialist")):
            if path is not None:
                try:
                    paths.model_file(path, (kind,))
                except DataError as error:  # named by the parameter that gave the path
                    raise ParameterError(parameter, error.template, makes=error.makes) from None
        # Checked now, before any model loads: a bad value fails fast.
        self.detector = detector
        self.face_settings = {source: source_settings(source, detector, min_face,
                                                      min_neighbors, margin)
                              for source in SOURCE_DETECTORS}
        self.cascade = Cascade.load(self.stage1, self.stage2, handoff_below, tta, runtime,
                                    calibrated)
        self._detectors = {}  # name -> detector, each loaded by its first use

    @property
    def runtime(self) -> str:
        return self.cascade.runtime

    @property
    def runtime_reason(self) -> str:
        return self.cascade.runtime_reason

    @property
    def tta(self) -> bool:
        return self.cascade.tta

    @property
    def calibrated(self) -> bool:
        """Whether the probabilities are calibrated (False: asked for the raw softmax, or
        no calibration in the sidecars: calibration_notice says which)."""
        return (self.cascade.cascade_calibration if self.stage2 is not None
                else self.cascade.stage1_calibration) is not None

    @property
    def calibration_notice(self) -> str | None:
        """The line saying which probabilities are uncalibrated and how to calibrate them."""
        return self.cascade.calibration_notice

    @property
    def handoff_below(self) -> float:
        """The threshold in use (1.0 with cascade=False: nothing is handed over then)."""
        return self.cascade.handoff_below

    @property
    def specialist_classes(self) -> list[int]:
        """The classes the specialist decides among ([] with cascade=False)."""
        return list(self.cascade.classes)

    def __repr__(self) -> str:
        return (f"Recognizer(stage1={str(self.stage1)!r}, stage2="
                f"{None if self.stage2 is None else str(self.stage2)!r}, runtime="
                f"{self.runtime!r}, tta={self.tta}, handoff_below={self.handoff_below:g}, "
                f"calibrated={self.calibrated})")

    def predict(self, faces) -> Prediction:
        """Grey faces framed as FER2013's, uint8 or float pixels 0-255, one (48, 48) or
        N (N, 48, 48) -> ferkit.Prediction: ``labels`` (N,) 0-6, ``probabilities`` (N, 7)
        that go with them (the cascade's where the specialist decided), stage 1's
        ``stage1_probabilities``, the ``handed_over`` mask and the labels' ``names``
        (``.results()``: one ferkit.FaceResult a face). Any other array is a ValueError
        saying what was expected (ferkit.arrays)."""
        return self.cascade.predict(faces)

    def faces(self, image, color: str = "rgb", source: str = "photo") -> tuple[FaceResult, ...]:
        """Every face in a picture with its expression, top to bottom: one ferkit.FaceResult
        a face (box, detector score, label and name, the label's probabilities, stage 1's,
        handed_over). ``image``: a uint8 array (H, W, 3), or (H, W, 4) with alpha, in
        ``color`` order ("rgb", as PIL, matplotlib and scikit-image give it, or "bgr", as
        cv2.imread does and the fer package takes), or grey (H, W); a PIL image; or a path
        to a photo. ``source``: "photo" or "live" (a video frame, a webcam's), which picks
        the detector and smallest face unless the Recognizer's ``detector`` and
        ``min_face`` say otherwise (as annotate.py picks them)."""
        return self.look(bgr_picture(image, color), source)[0]

    def detect(self, image, color: str = "rgb", source: str = "photo") -> list[dict]:
        """faces() in the fer package's form, one dict per face: ``{"box": (x, y, w, h),
        "emotions": {"angry": p, ..., "neutral": p}, "label": "happy", "handed_over":
        False}`` (FaceResult.as_fer): ``[face.as_fer() for face in recognizer.faces(image)]``."""
        return [face.as_fer() for face in self.faces(image, color, source)]

    def look(self, picture: np.ndarray, source: str = "photo", detector: str | None = None
             ) -> tuple[tuple[FaceResult, ...], np.ndarray]:
        """(the FaceResults, their grey crops uint8 (N, 48, 48)) of a BGR, BGRA or grey
        uint8 picture (bgr_picture's), its faces found by ``detector`` (None: the one
        ``source`` gets) and labelled by the cascade. annotate.py and serve.py go through
        this, and draw the crops' Grad-CAM."""
        if source not in self.face_settings:
            raise ParameterError("source", f"expected one of {', '.join(self.face_settings)}, "
                                           f"found {source!r}")
        settings = self.face_settings[source]
        if detector is not None and detector != settings.detector:
            settings = source_settings(source, detector, settings.min_face,
                                       settings.min_neighbors, settings.margin)
        boxes, scores, crops = find_faces(picture, self.face_detector(settings.detector),
                                          settings)
        return self.predict(crops).results(boxes, scores), crops

    def analyze_video(self, path, every: int = 1, max_frames: int | None = None,
                      smooth: float = DEFAULT_SMOOTH, min_track: int = MIN_TRACK_FRAMES):
        """Every face of a video over time: a pandas DataFrame with faces.csv's columns
        (ferkit.tracking.TABLE_COLUMNS), the rows annotate.py writes for it. One row a face
        of every ``every``-th frame (up to ``max_frames`` frames): ``file`` (``path`` as
        given), ``frame``, ``time`` (seconds from the start), ``track`` (the same for one
        person across frames), the face (FaceResult.record(): box, score, label,
        probabilities, stage 1's, handed_over), ``smooth_label`` and its name (the track's
        probabilities averaged over the last ``smooth`` seconds). A track seen in fewer
        than ``min_track`` sampled frames (a detector's false face) is left out. Faces are
        found as in a video frame (``source="live"``). ferkit.tracking.summary(table) and
        ferkit.tracking.timeline_arrays(table) summarise and draw it."""
        import pandas as pd

        for name, value in (("every", every), ("max_frames", max_frames)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ParameterError(name, f"expected a count >= 1, found {value}")
        capture = open_video_file(paths.input_file(path, "video"), str(path))
        try:
            table = VideoTable(str(path), video_fps(capture), every, smooth, min_track)
            for frame, image, sampled in frames(capture, every, max_frames):
                if sampled:
                    table.add(frame, self.look(image, "live")[0])
        finally:
            capture.release()
        return pd.DataFrame(table.rows(), columns=list(TABLE_COLUMNS))

    def face_detector(self, name: str):
        """The face detector ``name`` ("haar", "mtcnn"), loaded once (ferkit.faces)."""
        if name not in self._detectors:
            self._detectors[name] = load_face_detector(name)
        return self._detectors[name]


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
