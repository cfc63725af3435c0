"""Videos through OpenCV: opened and checked (one clear error, not OpenCV's own warnings),
their frame rate, their frames. Recognizer.analyze_video and annotate.py read video (and
annotate.py its camera) through these."""
from __future__ import annotations

import os

import cv2

from ferkit.errors import DataError

CAMERA_FPS = 30.0  # a capture (a camera, say) that does not say its frame rate


def quiet_video_warnings() -> None:
    """OpenCV and the FFmpeg inside it print warnings straight to stderr when a camera or a
    video does not open ("can't open camera by index", "moov atom not found"); the toolkit
    says that itself, in one line. The openers call this before opening one, not import:
    OpenCV's level is set through its API (its environment variable is read only when cv2
    is imported), FFmpeg's variable is read when the first capture opens."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def open_video_file(path, name=None) -> cv2.VideoCapture:
    """An opened capture of the video file at ``path`` (called ``name`` in the error) that
    gives at least one frame, at its first frame (the file is opened again: seeking back is
    not exact with every codec). A file OpenCV cannot play, or one without frames, is a
    DataError."""
    quiet_video_warnings()
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened() or not capture.read()[0]:
        capture.release()
        raise DataError(f"{name or path}: expected a video OpenCV can play, found one it "
                        f"cannot open or read a frame from")
    capture.release()
    return cv2.VideoCapture(str(path))


def video_fps(capture) -> float:
    """The frame rate a capture says, or CAMERA_FPS where it says none that makes sense."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else CAMERA_FPS


def frames(capture, every: int = 1, max_frames: int | None = None):
    """(frame index, BGR picture, whether it is a sampled frame: every ``every``-th from
    0) of each frame of an opened capture, up to ``max_frames``."""
    frame = 0
    while max_frames is None or frame < max_frames:
        ok, image = capture.read()
        if not ok:
            return
        yield frame, image, frame % every == 0
        frame += 1
