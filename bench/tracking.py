"""Which tracker, how long a track must be, how long a smoothing window: measured on the
scenes of ferkit.composites.TRACKING_SCENES and on a still composite of FER2013 faces.

Usage:
    pip install motpy==0.0.10 filterpy==2.0.0  # the other candidate (not a requirement)
    python3 -m bench.tracking
    python3 -m bench.tracking --trackers norfair       # the chosen one alone

1. Trackers (norfair and motpy: PyPI trackers whose requirements leave the project's
   opencv-python-headless and numpy 2 alone; supervision's ByteTrack moved into `trackers`,
   which requires opencv-python): on each scene, OpenCV's Haar cascade finds the faces
   of every frame (annotate.py's video settings) and each tracker gives them ids. Per
   scene: tracks made, id switches (a person's id differs from its previous frame's),
   persons per track (more than 1: a swap), ms per frame.
2. False faces: the chosen tracker's tracks that follow no drawn head, and their lengths
   in frames, on the scenes and on --still-frames frames of a picture of 9 FER2013 faces
   (ferkit.composites, if ../shared/data/fer2013 is there) with fresh camera noise in
   each frame: MIN_TRACK_FRAMES must lie above them.
3. Smoothing: FER2013 faces held still (jittered by a detector's few pixels, with camera
   noise) and labelled by the shipped cascade: label changes per second of a track, raw
   and smoothed over each --windows seconds (each is flicker: the face does not change).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ferkit.app import cli
from ferkit.composites import person_of

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--trackers", default="norfair,motpy",
                        help="trackers to compare (norfair, motpy)")
    parser.add_argument("--still-frames", type=int, default=100,
                        help="frames of the FER2013 composite video")
    parser.add_argument("--windows", default="0,0.25,0.5,1,2,4",
                        help="smoothing windows to compare, seconds")
    parser.add_argument("--faces", type=int, default=200,
                        help="FER2013 faces held still for the smoothing measurement")
    parser.add_argument("--seconds", type=float, default=4, help="how long each is held")
    parser.add_argument("--fps", type=float, default=30, help="frames a second")
    return parser.parse_args(argv)


class MotpyTracker:
    """motpy's MultiObjectTracker behind FaceTracker's update(boxes) -> ids (its tracks
    carry no detection index: each box takes the id of the active track it overlaps most)."""

    def __init__(self, fps: float):
        from motpy import Detection, MultiObjectTracker

        self._detection = Detection
        self._tracker = MultiObjectTracker(dt=1 / fps)
        self._ids = {}

    def update(self, boxes) -> np.ndarray:
        xyxy = [np.array([x, y, x + w, y + h], float) for x, y, w, h in boxes]
        self._tracker.step([self._detection(box=b) for b in xyxy])
        tracks = self._tracker.active_tracks(min_steps_alive=1)
        ids = np.zeros(len(boxes), int)
        for i, b in enumerate(xyxy):
            overlaps = [iou(b, t.box) for t in tracks]
            if overlaps and max(overlaps) > 0.3:
                uid = tracks[int(np.argmax(overlaps))].id
                ids[i] = self._ids.setdefault(uid, len(self._ids) + 1)
        return ids


def iou(a, b) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def make_tracker(name: str, fps: float):
    from ferkit.tracking import FaceTracker

    return FaceTracker(fps) if name == "norfair" else MotpyTracker(fps)


def detections(frames):
    from ferkit.faces import find_faces, load_detector, source_settings

    detector, settings = load_detector(), source_settings("live")
    return [find_faces(frame, detector, settings)[0] for frame in frames]


def follow(tracker, boxes_per_frame):
    """(ids per frame, ms per frame) of a tracker over the frames' boxes."""
    started = time.perf_counter()
    ids = [tracker.update(boxes) for boxes in boxes_per_frame]
    return ids, 1000 * (time.perf_counter() - started) / len(boxes_per_frame)


def score(ids, boxes_per_frame, heads) -> dict:
    """Tracks, id switches, tracks holding more than one person, false tracks' lengths."""
    last, switches, persons, lengths = {}, 0, {}, {}
    for frame, (frame_ids, boxes) in enumerate(zip(ids, boxes_per_frame)):
        for track, box in zip(frame_ids, boxes):
            person = person_of(box, [h[frame] for h in heads])
            lengths[track] = lengths.get(track, 0) + 1
            persons.setdefault(track, set()).add(person)
            if person >= 0:
                switches += person in last and last[person] != track
                last[person] = track
    false = [lengths[t] for t, p in persons.items() if p == {-1}]
    return {"tracks": len(persons), "switches": switches,
            "mixed": sum(len(p - {-1}) > 1 for p in persons.values()), "false": false}


def compare_trackers(names) -> None:
    import importlib.util
    from ferkit.composites import TRACKING_SCENES, scene_video

    if "motpy" in names and importlib.util.find_spec("motpy") is None:
        print("(motpy is not installed: pip install motpy==0.0.10; compared without it)")
        names = [name for name in names if name != "motpy"]

    print("| scene | tracker | persons | tracks | id switches | tracks with 2 persons | "
          "false tracks' frames | ms/frame |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for scene in TRACKING_SCENES:
        video = scene_video(scene)
        boxes = detections(video.frames)
        for name in names:
            ids, ms = follow(make_tracker(name, video.fps), boxes)
            s = score(ids, boxes, video.heads)
            print(f"| {scene} | {name} | {len(video.heads)} | {s['tracks']} | {s['switches']} | "
                  f"{s['mixed']} | {s['false'] or '-'} | {ms:.2f} |", flush=True)


def false_faces_on_composite(frames: int) -> None:
    """The chosen tracker's false tracks on a still picture of FER2013 faces with camera
    noise: Haar's false faces on a textured background, as a video would give them."""
    import cv2
    from ferkit.composites import PIXEL_NOISE, make_composites
    from ferkit.data import load_faces

    train = ROOT.parent / "shared" / "data" / "fer2013" / "train.csv.gz"
    if not train.exists():
        print(f"(no {train}: the FER2013 composite is skipped)")
        return
    faces = load_faces(train).images[:36]
    rng = np.random.default_rng(0)
    counts = []
    for composite in make_composites(faces, per_picture=9):
        picture = cv2.cvtColor(composite.picture, cv2.COLOR_GRAY2BGR)
        video = [np.clip(picture + rng.normal(0, PIXEL_NOISE / 3, picture.shape), 0, 255)
                 .astype(np.uint8) for _ in range(frames)]
        boxes = detections(video)
        ids, _ = follow(make_tracker("norfair", 30.0), boxes)
        heads = [[tuple(square)] * frames for square in composite.squares]
        s = score(ids, boxes, heads)
        counts.append(s["false"])
        print(f"composite of {len(composite.rows)} FER2013 faces, {frames} frames: "
              f"{s['tracks']} tracks, false tracks' frames {sorted(s['false']) or '-'}")


def jittered_tracks(faces, frames: int, rng) -> np.ndarray:
    """Each face as a track of ``frames`` crops, as a detector gives them from a still
    face in a video: shifted by up to 2 pixels and a 2% change of scale, with fresh camera
    noise, uint8 (faces, frames, 48, 48)."""
    import cv2
    from ferkit.composites import PIXEL_NOISE

    tracks = np.empty((len(faces), frames, 48, 48), np.uint8)
    for i, face in enumerate(faces):
        for t in range(frames):
            scale = 1 + rng.uniform(-0.02, 0.02)
            matrix = cv2.getRotationMatrix2D((23.5, 23.5), 0, scale)
            matrix[:, 2] += rng.uniform(-2, 2, 2)
            moved = cv2.warpAffine(face, matrix, (48, 48), borderMode=cv2.BORDER_REFLECT)
            noisy = moved + rng.normal(0, PIXEL_NOISE / 3, moved.shape)
            tracks[i, t] = np.clip(noisy, 0, 255)
    return tracks


def smoothing(windows, faces_count: int, seconds: float, fps: float) -> None:
    """Label changes per second of track, raw and smoothed over each window, on FER2013
    faces held still for ``seconds`` at ``fps`` (ferkit.tracking.smoothed_labels): each
    change is flicker, since the face does not change; a trailing window of W seconds
    follows a real change W/2 seconds late."""
    import pandas as pd
    from ferkit import Recognizer
    from ferkit.data import load_faces
    from ferkit.tracking import PROBABILITY_FIELDS, smoothed_labels

    train = ROOT.parent / "shared" / "data" / "fer2013" / "train.csv.gz"
    if not train.exists():
        print(f"(no {train}: the smoothing measurement is skipped)")
        return
    faces = load_faces(train).images[-faces_count:]  # the file's last rows: any faces do
    frames = int(seconds * fps)
    tracks = jittered_tracks(faces, frames, np.random.default_rng(0))
    said = Recognizer().predict(tracks.reshape(-1, 48, 48))
    table = pd.DataFrame(said.probabilities, columns=list(PROBABILITY_FIELDS))
    table["file"], table["track"] = "still", np.repeat(np.arange(len(faces)), frames)
    table["time"] = np.tile(np.arange(frames) / fps, len(faces)).round(3)
    print(f"{len(faces)} FER2013 faces held still {seconds:g} s at {fps:g} frames/s (jittered "
          f"2 px, camera noise), the shipped cascade:\n"
          "| window, s | label changes per second of track | faces whose label ever changes "
          "| lag of a real change, s |\n| --- | --- | --- | --- |")
    for window in windows:
        labels = smoothed_labels(table, window).reshape(len(faces), frames)
        changes = (np.diff(labels, axis=1) != 0)
        print(f"| {window:g} | {changes.sum() / (len(faces) * (frames - 1) / fps):.2f} | "
              f"{changes.any(axis=1).mean():.0%} | {window / 2:g} |")


def cpu_line() -> str:
    """The CPU's model name and whether it has AMX or AVX512-BF16 (figures depend on it)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    flags = [flag for flag in ("amx_bf16", "avx512_bf16") if flag in text]
    return f"CPU: {model} ({', '.join(flags) or 'no AMX, no AVX512-BF16'})"


def main(argv=None):
    args = parse_args(argv)
    print(cpu_line())
    compare_trackers(args.trackers.split(","))
    false_faces_on_composite(args.still_frames)
    smoothing([float(w) for w in args.windows.split(",")], args.faces, args.seconds, args.fps)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
