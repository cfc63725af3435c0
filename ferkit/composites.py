"""Larger pictures made from 48x48 faces, for measuring annotate.py's detection and framing.

Each picture is a grid of cells on a textured background; each face is enlarged (x3-x5 by
default) and placed at a random offset in its cell, so the true place and size of every
face is known. These pictures are made in memory and never written into the repository
(FER2013 faces must not be committed, nor pictures made from them).
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import cv2
import numpy as np

# Low-frequency texture plus pixel noise: neither flat (which no photo is) nor face-like.
TEXTURE_CELLS = 12     # the texture's coarse grid across the picture
TEXTURE_SPREAD = 60    # +- grey levels of the coarse texture around mid-grey
PIXEL_NOISE = 12       # std of the per-pixel Gaussian noise, grey levels


@dataclasses.dataclass
class Composite:
    """A grey picture and where its faces are: squares (x, y, side) and their row indices
    into the faces it was made from."""

    picture: np.ndarray
    squares: np.ndarray
    rows: np.ndarray


def textured_background(height: int, width: int, rng) -> np.ndarray:
    coarse = rng.uniform(128 - TEXTURE_SPREAD, 128 + TEXTURE_SPREAD,
                         (TEXTURE_CELLS, TEXTURE_CELLS)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = smooth + rng.normal(0, PIXEL_NOISE, (height, width))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def make_composites(faces: np.ndarray, per_picture: int = 4, scale=(3.0, 5.0),
                    seed: int = 0) -> list[Composite]:
    """Every face of ``faces`` (N, 48, 48) placed once, ``per_picture`` to a picture (the
    last may hold fewer), each enlarged by a factor drawn from ``scale`` and put at a random
    offset inside its own cell of a near-square grid (faces never overlap)."""
    rng = np.random.default_rng(seed)
    face_size = faces.shape[1]
    columns = int(np.ceil(np.sqrt(per_picture)))
    grid_rows = int(np.ceil(per_picture / columns))
    cell = int(np.ceil(face_size * scale[1] * 1.25))  # room for the largest face and a shift
    composites = []
    for first in range(0, len(faces), per_picture):
        rows = np.arange(first, min(first + per_picture, len(faces)))
        picture = textured_background(grid_rows * cell, columns * cell, rng)
        squares = []
        for slot, row in enumerate(rows):
            side = int(round(face_size * rng.uniform(*scale)))
            x = (slot % columns) * cell + int(rng.integers(0, cell - side + 1))
            y = (slot // columns) * cell + int(rng.integers(0, cell - side + 1))
            picture[y:y + side, x:x + side] = cv2.resize(faces[row], (side, side),
                                                         interpolation=cv2.INTER_LINEAR)
            squares.append((x, y, side))
        composites.append(Composite(picture, np.array(squares), rows))
    return composites


def match_boxes(boxes, scores, squares) -> tuple[np.ndarray, int]:
    """Which detection belongs to which placed face: (index into ``boxes`` for each square,
    -1 where none was found; number of detections matched to no face). A detection belongs
    to the face whose square holds its centre; of several, the highest score wins."""
    matched = np.full(len(squares), -1)
    spare = 0
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        x, y, w, h = boxes[i]
        cx, cy = x + w / 2, y + h / 2
        inside = [j for j, (sx, sy, side) in enumerate(squares)
                  if sx <= cx < sx + side and sy <= cy < sy + side]
        if inside and matched[inside[0]] < 0:
            matched[inside[0]] = i
        else:
            spare += 1
    return matched, spare


def astronaut_path() -> Path:
    """scikit-image's astronaut.png (public domain, NASA), read from the installed wheel's
    files: skimage.data.astronaut() may try to download it in some versions."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-image is not installed: pip install -r requirements.txt")
    path = Path(spec.origin).parent / "data" / "astronaut.png"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not in the installed scikit-image wheel")
    return path


# The astronaut's face in astronaut.png (x, y, w, h): eyebrows to chin, cheek to cheek,
# read off the picture by eye (not from the detector).
ASTRONAUT_FACE = (180, 80, 95, 90)
# A square around it with hair, neck and background: enough context for the detector.
ASTRONAUT_HEAD = (120, 20, 210)  # x, y, side


def astronaut_head() -> np.ndarray:
    """The astronaut's head and shoulders, BGR (210, 210, 3)."""
    image = cv2.imread(str(astronaut_path()), cv2.IMREAD_COLOR)
    x, y, side = ASTRONAUT_HEAD
    return image[y:y + side, x:x + side].copy()


def scene(patch: np.ndarray, spots, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR picture: ``patch`` pasted with its top-left corner at each (x, y) of ``spots``
    on a textured grey background."""
    picture = cv2.cvtColor(textured_background(height, width, np.random.default_rng(seed)),
                           cv2.COLOR_GRAY2BGR)
    ph, pw = patch.shape[:2]
    for x, y in spots:
        picture[y:y + ph, x:x + pw] = patch
    return picture


# --- videos of moving faces, for measuring and testing tracking -------------------------------

SCENE_HEAD = 150   # the astronaut's head side in the tracking scenes, pixels
SCENE_SIZE = (540, 360)  # width, height
SCENE_FPS = 10.0
SCENE_FRAMES = 30


def _glide(start, end, frames: int = SCENE_FRAMES) -> list:
    """(x, y) top-left corners moving evenly from ``start`` to ``end``."""
    return [(round(start[0] + (end[0] - start[0]) * i / (frames - 1)),
             round(start[1] + (end[1] - start[1]) * i / (frames - 1))) for i in range(frames)]


def _absent(path, frames) -> list:
    return [None if i in frames else spot for i, spot in enumerate(path)]


# Each scene: per person, a head (the astronaut, or her mirror image) and where it is in
# each frame (None: not in the picture). Two heads glide past each other; one leaves the
# picture for half a second and comes back where it was going; two pass with their heads
# touching, one above the other; a third head shows for three frames only (a detector's
# false face lasts as short: it stands for one).
TRACKING_SCENES = {
    "two_move": [("astronaut", _glide((15, 30), (195, 60))),
                 ("mirrored", _glide((375, 195), (210, 165)))],
    "leave_and_return": [("astronaut", _absent(_glide((15, 105), (375, 105)), range(10, 15)))],
    "pass_close": [("astronaut", _glide((15, 15), (375, 15))),
                   ("mirrored", _glide((375, 172), (15, 172)))],
    "false_blob": [("astronaut", _glide((30, 105), (120, 105))),
                   ("mirrored", [(360, 105) if i in (12, 13, 14) else None
                                 for i in range(SCENE_FRAMES)])],
}


@dataclasses.dataclass
class SceneVideo:
    """BGR frames (N, H, W, 3) at ``fps`` and, per person, the square (x, y, side) of its
    head in each frame (None where it is not in the picture)."""

    frames: np.ndarray
    heads: list
    fps: float = SCENE_FPS


def scene_video(name: str, seed: int = 0) -> SceneVideo:
    """The frames of TRACKING_SCENES[name]: the heads on a fixed textured background, with
    fresh pixel noise in every frame (as a camera's)."""
    head = cv2.resize(astronaut_head(), (SCENE_HEAD, SCENE_HEAD), interpolation=cv2.INTER_AREA)
    patches = {"astronaut": head, "mirrored": cv2.flip(head, 1)}
    width, height = SCENE_SIZE
    rng = np.random.default_rng(seed)
    background = cv2.cvtColor(textured_background(height, width, rng), cv2.COLOR_GRAY2BGR)
    people = TRACKING_SCENES[name]
    frames = []
    for i in range(len(people[0][1])):
        picture = background.copy()
        for patch, path in people:
            if path[i] is not None:
                x, y = path[i]
                picture[y:y + SCENE_HEAD, x:x + SCENE_HEAD] = patches[patch]
        noise = rng.normal(0, PIXEL_NOISE / 3, picture.shape)
        frames.append(np.clip(picture + noise, 0, 255).astype(np.uint8))
    heads = [[None if spot is None else (*spot, SCENE_HEAD) for spot in path]
             for _, path in people]
    return SceneVideo(np.stack(frames), heads)


def person_of(box, heads_at_frame) -> int:
    """Which drawn head (its index in SceneVideo.heads, at one frame) holds the box's
    centre, the box no larger than the head; -1 for none: a false face."""
    x, y, w, h = box
    for person, square in enumerate(heads_at_frame):
        if square is not None and square[0] <= x + w / 2 < square[0] + square[2] \
                and square[1] <= y + h / 2 < square[1] + square[2] and w <= square[2]:
            return person
    return -1


def write_video(path, frames, fps: float) -> None:
    """BGR frames to an .mp4 (mp4v) or .avi (MJPG) that OpenCV reads back."""
    codec = "MJPG" if str(path).lower().endswith(".avi") else "mp4v"
    height, width = np.asarray(frames).shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
