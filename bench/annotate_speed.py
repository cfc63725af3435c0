"""Speed of annotate.py: faces per second on a picture with several faces, and frames per
second on a 640x480 video with one face (target: at least 15 frames/s on a 2-core CPU).

Usage:
    nice -n 10 python3 bench/annotate_speed.py
    python3 bench/annotate_speed.py --frames 20 --repeats 1      # a quick check that it works

Both use the astronaut from scikit-image's wheel (ferkit/composites.py): copies of her head
on a textured background for the picture, one copy moving across 640x480 frames for the
video (written to a temporary .mp4 first). The picture's figure times annotate.py's work
per picture after start-up (detection, crops, cascade), the median of --repeats runs after
a warm-up; the video's times annotate.py's whole video loop (decode, detect, crop,
cascade, draw, encode the annotated .mp4), and once without drawing (--no-draw). Wall-clock
figures depend on what else the machine runs; the CPU time per frame (all threads of the
process) much less so.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ferkit import cli
from ferkit.faces import DEFAULT_MIN_FACE

VIDEO_SIZE = (640, 480)
VIDEO_FPS = 30
TARGET_FPS = 15


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--faces", type=int, default=6, help="faces in the picture")
    parser.add_argument("--frames", type=int, default=150, help="frames of the video")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs on the picture (after one warm-up run)")
    parser.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE,
                        help="annotate.py's --min-face: the detector's smallest face, pixels "
                             "(its cost falls with it: a webcam's face is rarely under 80)")
    cli.add_prediction_options(parser)
    args = parser.parse_args(argv)
    for name in ("faces", "frames", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a count >= 1, found {getattr(args, name)}")
    return args


def picture_with_faces(n: int):
    """The astronaut's head n times, in a grid of 3 columns."""
    from ferkit.composites import astronaut_head, scene

    head = astronaut_head()
    side = head.shape[0] + 20
    columns = min(n, 3)
    rows = -(-n // columns)
    spots = [(10 + (i % columns) * side, 10 + (i // columns) * side) for i in range(n)]
    return scene(head, spots, rows * side + 20, columns * side + 20)


def write_video(path, frames: int) -> None:
    """A 640x480 .mp4 of the astronaut's head gliding back and forth on a fixed background."""
    import cv2
    import numpy as np
    from ferkit.composites import astronaut_head, scene

    head = astronaut_head()
    width, height = VIDEO_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS,
                             VIDEO_SIZE)
    for i in range(frames):
        phase = 2 * np.pi * i / max(frames, 2)
        x = int((width - head.shape[1]) * (0.5 + 0.45 * np.sin(phase)))
        y = int((height - head.shape[0]) * (0.5 + 0.4 * np.cos(phase)))
        writer.write(scene(head, [(x, y)], height, width))
    writer.release()


def main(argv=None):
    args = parse_args(argv)
    from ferkit.annotation import Annotator, Source, annotate_video
    from ferkit.faces import FaceSettings, find_faces
    from ferkit.inference import Cascade

    settings = FaceSettings(min_face=args.min_face)
    settings.check()
    cascade = Cascade.from_args(args)
    print(cascade.runtime_line)
    annotator = Annotator(cascade, settings)
    picture = picture_with_faces(args.faces)
    annotator.look(picture)  # warm-up: traces the cascade for this batch size
    looks, detections = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        found = annotator.look(picture)
        looks.append(time.perf_counter() - started)
        started = time.perf_counter()
        find_faces(picture, annotator.detector, annotator.settings)
        detections.append(time.perf_counter() - started)
    look, detect = statistics.median(looks), statistics.median(detections)
    print(f"picture {picture.shape[1]}x{picture.shape[0]} with {args.faces} faces: found "
          f"{len(found)}; {len(found) / look:.1f} faces/s ({1000 * look:.0f} ms per picture: "
          f"detection and crops {1000 * detect:.0f} ms, cascade {1000 * (look - detect):.0f} "
          f"ms; min face {args.min_face} px; {'cascade' if args.cascade else 'stage 1 alone'}"
          f"{' + TTA' if args.tta else ''})")

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "astronaut.mp4"
        write_video(video, args.frames)
        source = Source("astronaut.mp4", video, "video")
        annotator.look(picture[:VIDEO_SIZE[1], :VIDEO_SIZE[0]])  # warm-up: one face
        for drawn in (True, False):
            started, cpu_started = time.perf_counter(), time.process_time()
            rows, frames = annotate_video(annotator, source,
                                          Path(folder) / "out.mp4" if drawn else None,
                                          show_progress=False)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            fps = frames / seconds
            print(f"video {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {frames} frames, one face "
                  f"({len(rows)} found){'' if drawn else ', --no-draw'}: {fps:.1f} frames/s "
                  f"({1000 * seconds / frames:.0f} ms per frame, {1000 * cpu / frames:.0f} ms "
                  f"of CPU time per frame, all threads; target {TARGET_FPS} frames/s: "
                  f"{'met' if fps >= TARGET_FPS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
