"""Faces in photos and video frames, framed like FER2013's: find each face with OpenCV's
Haar cascade or with MTCNN, crop a square around it with a margin, make the crop grey 48x48.

One step per function; only MTCNN (the ``mtcnn`` package) loads TensorFlow, and only when
asked for: annotate.py, serve.py and the benchmarks (bench/framing.py,
bench/compare_fer_package.py, bench/annotate_speed.py) all go through these.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from ferkit.errors import ParameterError
from ferkit.data import IMAGE_SIZE

# The frontal-face cascade the 4.x wheels ship (cv2.data.haarcascades; 5.0 dropped them).
HAAR_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
HAAR_WINDOW = 24        # the cascade's native window, pixels: the smallest face it sees
SCALE_FACTOR = 1.1      # pyramid step between detection scales (OpenCV's default)
DEFAULT_MIN_FACE = 48   # smaller faces hold less detail than a 48x48 training face
DEFAULT_MIN_NEIGHBORS = 5  # overlapping windows needed for a face (OpenCV's default: 3)
# Share of the detector's box side added on each side of the square crop. Tuned for the
# cascade's accuracy on composites of the stage-1 validation faces (bench/framing.py): FER2013's
# faces are framed much as this detector frames a face, so the best crop is its box itself.
DEFAULT_MARGIN = 0.0

DETECTORS = ("haar", "mtcnn")
DEFAULT_DETECTOR = "haar"
# MTCNN: faces its last network is at least this sure of (the peer `fer` package's choice).
MTCNN_MIN_CONFIDENCE = 0.9
# mtcnn 1.0.0 counts its pyramid's scales as if it started at full size, so when asked
# for faces larger than about 20 px its last scale can fall under the 12 px its first
# network needs, and then it returns no face at all (min_face_size 24 found the astronaut
# in 512x512 and nothing in 640x480). It is asked for faces of 16 px, whose last scale
# stays above 12 px, and larger smallest faces shrink the picture, as Haar's do.
MTCNN_WINDOW = 16
# Its box is a square from the eyebrows to the chin, tighter than FER2013's framing:
# tuned like DEFAULT_MARGIN (bench/framing.py --detector mtcnn).
MTCNN_MARGIN = 0.0
MARGINS = {"haar": DEFAULT_MARGIN, "mtcnn": MTCNN_MARGIN}


@dataclasses.dataclass
class FaceSettings:
    """How faces are found and framed (annotate.py's --detector, --min-face,
    --min-neighbors, --margin; None: the detector's tuned margin)."""

    min_face: int = DEFAULT_MIN_FACE
    min_neighbors: int = DEFAULT_MIN_NEIGHBORS
    margin: float | None = None
    detector: str = DEFAULT_DETECTOR

    @property
    def crop_margin(self) -> float:
        return MARGINS[self.detector] if self.margin is None else self.margin

    def check(self) -> None:
        if self.detector not in DETECTORS:
            raise ParameterError("detector", f"expected one of {', '.join(DETECTORS)}, "
                                             f"found {self.detector!r}")
        if self.min_face < HAAR_WINDOW:
            raise ParameterError("min_face", f"expected at least {HAAR_WINDOW} pixels (the "
                                             f"detector's window), found {self.min_face}")
        if self.min_neighbors < 0:
            raise ParameterError("min_neighbors", f"expected a count >= 0, found "
                                                  f"{self.min_neighbors}")
        if not -0.25 <= self.crop_margin <= 1:
            raise ParameterError("margin", f"expected a share of the box side from -0.25 "
                                           f"(a crop half the box's side) to 1, found "
                                           f"{self.crop_margin}")


# The detector and smallest face (its resolution) for each kind of picture (RESULTS.md): a
# photo gets the detector that finds and labels right the most faces, a live frame (webcam,
# video) the one that keeps the frame rate. Photos: MTCNN at 48 px found 88% of the
# composites' faces against Haar's 73% (bench/framing.py; at 24 px it found no more and
# boxed a patch on the astronaut's suit). Live frames: on a 640x480 video with one face
# (bench/annotate_speed.py) Haar ran at 45 frames/s, MTCNN at 11, under the 15 a webcam needs.
SOURCE_DETECTORS = {"photo": ("mtcnn", DEFAULT_MIN_FACE), "live": ("haar", DEFAULT_MIN_FACE)}


def source_settings(source: str, detector: str | None = None, min_face: int | None = None,
                    min_neighbors: int = DEFAULT_MIN_NEIGHBORS, margin: float | None = None
                    ) -> FaceSettings:
    """Checked FaceSettings for a "photo" or a "live" frame (a video's or a camera's): the
    detector and smallest face SOURCE_DETECTORS gives it, unless ``detector`` or
    ``min_face`` say otherwise."""
    if source not in SOURCE_DETECTORS:
        raise ParameterError("source", f"expected one of {', '.join(SOURCE_DETECTORS)}, "
                                       f"found {source!r}")
    chosen, smallest = SOURCE_DETECTORS[source]
    settings = FaceSettings(min_face or smallest, min_neighbors, margin, detector or chosen)
    settings.check()
    return settings


def load_detector(path=HAAR_CASCADE) -> cv2.CascadeClassifier:
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise FileNotFoundError(f"{path}: cannot load the Haar cascade (is "
                                f"opencv-python-headless 4.x installed?)")
    return detector


def to_grey(image: np.ndarray) -> np.ndarray:
    """A BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W) uint8 image -> grey (H, W) uint8."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def detection_scale(min_face: int) -> float:
    """The scale the detector runs at: faces of ``min_face`` pixels become the cascade's
    native window. Asked for larger windows on the full image, OpenCV scans its coarse
    scales with a one-pixel stride; on the shrunken image the same faces cost half the
    time (a frame of video in real time), with boxes a pixel or two coarser."""
    return min(1.0, HAAR_WINDOW / min_face)


def detect_faces(grey: np.ndarray, detector, settings: FaceSettings
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(boxes int (N, 4) as x, y, w, h in ``grey``'s pixels, scores float (N,)): every face
    of at least settings.min_face pixels, top to bottom then left to right. The score is
    haar_score's: on MTCNN's 0-1 scale, from the detector windows merged into the box."""
    scale = detection_scale(settings.min_face)
    small = grey
    if scale < 1:
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    boxes, scores = detector.detectMultiScale2(
        small, scaleFactor=SCALE_FACTOR, minNeighbors=settings.min_neighbors,
        minSize=(HAAR_WINDOW, HAAR_WINDOW))
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.float64)
    boxes = np.rint(np.asarray(boxes, dtype=np.float64) / scale).astype(np.int64)
    order = np.lexsort((boxes[:, 0], boxes[:, 1]))
    return boxes[order], haar_score(np.ravel(scores)[order], settings.min_neighbors)


def haar_score(windows, min_neighbors: int) -> np.ndarray:
    """A Haar box's score on MTCNN's scale (0-1, higher = surer) from the ``windows`` the
    cascade merged into it: windows / (windows + min_neighbors). A box needs
    ``min_neighbors`` windows to be kept, so a face at that threshold scores 0.5 and the
    score nears 1 as more windows agree (26 windows with the default 5: 0.84). The two
    detectors' scores share a scale and a direction, not a calibration: MTCNN keeps faces
    from MTCNN_MIN_CONFIDENCE up."""
    windows = np.asarray(windows, dtype=np.float64)
    return windows / (windows + max(min_neighbors, 1))


def square_around(box, margin: float) -> tuple[int, int, int]:
    """(x, y, side) of the square crop: centred on the box, its side the box's longer side
    plus ``margin`` of it on each side. May reach past the image's edges."""
    x, y, w, h = (int(v) for v in box)
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    return round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side


def crop_square(grey: np.ndarray, square) -> np.ndarray:
    """The square (x, y, side) of ``grey``, its parts outside the image filled by repeating
    the edge pixels (a face at the border keeps its size and place in the crop)."""
    x, y, side = square
    height, width = grey.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + side, width), min(y + side, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"square {square}: lies outside the {width}x{height} image")
    inside = grey[y0:y1, x0:x1]
    if (x0, y0, x1, y1) == (x, y, x + side, y + side):
        return inside
    return cv2.copyMakeBorder(inside, y0 - y, y + side - y1, x0 - x, x + side - x1,
                              cv2.BORDER_REPLICATE)


def to_face_size(crop: np.ndarray) -> np.ndarray:
    """A square grey crop -> (48, 48) uint8: area averaging when shrinking (no aliasing),
    bilinear when enlarging."""
    shrink = crop.shape[0] >= IMAGE_SIZE
    return cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def face_crops(grey: np.ndarray, boxes, margin: float) -> np.ndarray:
    """uint8 (N, 48, 48): each box's square crop with ``margin``, ready for the models."""
    crops = [to_face_size(crop_square(grey, square_around(box, margin))) for box in boxes]
    return np.stack(crops) if crops else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def find_faces(image: np.ndarray, detector, settings: FaceSettings):
    """A photo or frame (BGR or grey) -> (boxes (N, 4), scores (N,), crops (N, 48, 48));
    ``detector``: load_face_detector's."""
    grey = to_grey(image)
    if isinstance(detector, MtcnnDetector):
        boxes, scores = detector.detect(image, settings.min_face)
    else:
        boxes, scores = detect_faces(grey, detector, settings)
    return boxes, scores, face_crops(grey, boxes, settings.crop_margin)


# --- MTCNN -------------------------------------------------------------------------------------

class MtcnnDetector:
    """MTCNN's three networks (the ``mtcnn`` package: TensorFlow, its weights in the
    wheel), boxes only. detect() gives what detect_faces gives, the score being MTCNN's
    confidence (0-1) instead of a window count."""

    def __init__(self, min_confidence: float = MTCNN_MIN_CONFIDENCE):
        from ferkit.backend import tf  # noqa: F401  (TensorFlow first, without its start-up lines)
        from mtcnn import MTCNN

        self.min_confidence = min_confidence
        self._mtcnn = MTCNN(stages="face_detection_only")

    def detect(self, image: np.ndarray, min_face: int = DEFAULT_MIN_FACE
               ) -> tuple[np.ndarray, np.ndarray]:
        """(boxes int (N, 4) x, y, w, h in ``image``'s pixels, confidences (N,)) of the
        faces of at least ``min_face`` pixels in a BGR or grey picture, top to bottom then
        left to right."""
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else
                           cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        scale = min(1.0, MTCNN_WINDOW / min_face)
        if scale < 1:
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        found = [face for face in self._mtcnn.detect_faces(rgb, min_face_size=MTCNN_WINDOW)
                 if face["confidence"] >= self.min_confidence]
        if not found:
            return np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.float64)
        boxes = np.rint(np.array([face["box"] for face in found], np.float64) / scale
                        ).astype(np.int64)
        scores = np.array([face["confidence"] for face in found], np.float64)
        keep = one_box_per_face(boxes, scores)
        boxes, scores = boxes[keep], scores[keep]
        order = np.lexsort((boxes[:, 0], boxes[:, 1]))
        return boxes[order], scores[order]


def one_box_per_face(boxes, scores, most_shared: float = 0.5) -> np.ndarray:
    """Indices of the boxes kept, surest first: a box sharing more than ``most_shared`` of
    the smaller one's area with a surer box is the same face. (mtcnn 1.0.0's own suppression
    compares intersection with union at 0.7, and so kept a 134 px box around a 105 px one
    on the same face.)"""
    kept = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        x, y, w, h = boxes[i]
        if all(max(0, min(x + w, kx + kw) - max(x, kx)) * max(0, min(y + h, ky + kh) - max(y, ky))
               <= most_shared * min(w * h, kw * kh) for kx, ky, kw, kh in boxes[kept]):
            kept.append(i)
    return np.array(kept, dtype=np.int64)


def load_face_detector(name: str = DEFAULT_DETECTOR):
    """The detector find_faces runs: "haar" (OpenCV's cascade) or "mtcnn"."""
    if name not in DETECTORS:
        raise ParameterError("detector", f"expected one of {', '.join(DETECTORS)}, found "
                                         f"{name!r}")
    return MtcnnDetector() if name == "mtcnn" else load_detector()
