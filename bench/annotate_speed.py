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

Each runtime of --runtimes (default: LiteRT and Keras) is measured in a fresh process of
its own, so neither pays for the other's imports, the runtimes taking turns --rounds times,
so a busy spell of the machine hits each alike; a table of the runtimes side by side (the
median of the rounds) ends the output, with whether the process imported TensorFlow (the
LiteRT path must not). --runtime R measures R alone.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ferkit.app import cli
from ferkit.faces import DEFAULT_MIN_FACE, DETECTORS

VIDEO_SIZE = (640, 480)
VIDEO_FPS = 30
TARGET_FPS = 15
GLIDE_SECONDS = 10  # the head's round trip in the video
RESULT_TAG = "result: "  # a worker's last line: its figures as JSON


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--faces", type=int, default=6, help="faces in the picture")
    parser.add_argument("--frames", type=int, default=150, help="frames of the video")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs on the picture (after one warm-up run)")
    parser.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE,
                        help="annotate.py's --min-face: the detector's smallest face, pixels "
                             "(its cost falls with it: a webcam's face is rarely under 80)")
    parser.add_argument("--detector", choices=("auto",) + DETECTORS, default="auto",
                        help="face detector (auto: annotate.py's for video frames, "
                             "ferkit.faces.SOURCE_DETECTORS; MTCNN imports TensorFlow on "
                             "either runtime, Haar does not)")
    cli.add_prediction_options(parser)
    parser.add_argument("--runtimes", default="litert,keras",
                        help="runtimes to compare, each in its own process (unless --runtime "
                             "names one)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each runtime is measured, taking turns")
    parser.add_argument("--long-minutes", type=float, default=0, metavar="MINUTES",
                        help="also annotate (--no-draw) a video this long that the benchmark "
                             "writes, printing the process's memory over time (0: not)")
    parser.add_argument("--long-every", type=int, default=1, metavar="N",
                        help="annotate.py's --every for the long video")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("faces", "frames", "repeats", "rounds"):
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
    """A 640x480 .mp4 of the astronaut's head gliding round an ellipse once every
    GLIDE_SECONDS on a fixed background (so a short video moves as little as a long one
    does frame to frame, as a person does)."""
    import cv2
    import numpy as np
    from ferkit.composites import astronaut_head, scene

    head = astronaut_head()
    width, height = VIDEO_SIZE
    background = scene(head[:0, :0], [], height, width)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS,
                             VIDEO_SIZE)
    for i in range(frames):
        phase = 2 * np.pi * i / (GLIDE_SECONDS * VIDEO_FPS)
        x = int((width - head.shape[1]) * (0.5 + 0.45 * np.sin(phase)))
        y = int((height - head.shape[0]) * (0.5 + 0.4 * np.cos(phase)))
        picture = background.copy()
        picture[y:y + head.shape[0], x:x + head.shape[1]] = head
        writer.write(picture)
    writer.release()


class TrackingClock:
    """Time spent tracking and smoothing inside annotate.py's video loop
    (ferkit.tracking.VideoTracks.update, wrapped while the clock runs) and in writing a
    video's summary and timeline."""

    def __init__(self):
        from ferkit import tracking

        self.seconds, self.calls = 0.0, 0
        self._tracking, self._update = tracking, tracking.VideoTracks.update

    def __enter__(self):
        update = self._update

        def timed(tracks, *args):
            started = time.perf_counter()
            try:
                return update(tracks, *args)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        self._tracking.VideoTracks.update = timed
        return self

    def __exit__(self, *exc):
        self._tracking.VideoTracks.update = self._update


def report_seconds(folder, rows) -> float:
    """Seconds annotate.py takes to write one video's summary and timeline."""
    from ferkit.app.annotation import write_video_report

    started = time.perf_counter()
    write_video_report(Path(folder), "astronaut_annotated.mp4", "astronaut.mp4", rows)
    return time.perf_counter() - started


def rss_mib() -> float:
    """This process's resident memory now, MiB (Linux /proc)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_over_time(annotator, minutes: float, every: int) -> None:
    """annotate.py's video loop (--no-draw, --every) over a ``minutes``-long video this
    writes: the process's resident memory sampled every second, printed at each tenth."""
    import threading
    from ferkit.app.annotation import Source, annotate_video

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "long.mp4"
        frames = int(minutes * 60 * VIDEO_FPS)
        started = time.perf_counter()
        write_video(video, frames)
        print(f"wrote a {minutes:g}-minute video ({frames} frames) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        samples, done = [], threading.Event()

        def sample():
            while not done.wait(1.0):
                samples.append((time.perf_counter() - started, rss_mib()))
        started = time.perf_counter()
        samples.append((0.0, rss_mib()))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rows, read = annotate_video(annotator, Source("long.mp4", video, "video"), None, every,
                                    show_progress=False)
        done.set()
        sampler.join()
        samples.append((time.perf_counter() - started, rss_mib()))
    print(f"{read} frames, every {every}-th looked at, {len(rows)} rows: resident memory, MiB, "
          f"at each tenth of the run:")
    marks = [samples[min(len(samples) - 1, round(k * (len(samples) - 1) / 10))] for k in range(11)]
    print(" ".join(f"{mib:.0f}" for _, mib in marks))
    print(f"peak {max(m for _, m in samples):.0f} MiB; from the first tenth to the end "
          f"{marks[-1][1] - marks[1][1]:+.0f} MiB")


def measure(args) -> dict:
    """The figures of one runtime (--runtime), printed as they come; returned for the table."""
    from ferkit.app.annotation import Annotator, Source, annotate_video
    from ferkit.faces import find_faces

    recognizer = cli.recognizer(args, detector=None if args.detector == "auto"
                                else args.detector, min_face=args.min_face)
    print(cli.runtime_said(recognizer.cascade))
    annotator = Annotator(recognizer, "live")
    settings = annotator.settings
    result = {"runtime": recognizer.runtime}
    picture = picture_with_faces(args.faces)
    annotator.look(picture)  # warm-up: traces the cascade for this batch size
    looks, detections = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        found = annotator.look(picture)
        looks.append(time.perf_counter() - started)
        started = time.perf_counter()
        find_faces(picture, recognizer.face_detector(settings.detector), settings)
        detections.append(time.perf_counter() - started)
    look, detect = statistics.median(looks), statistics.median(detections)
    result["faces_per_s"] = len(found) / look
    print(f"picture {picture.shape[1]}x{picture.shape[0]} with {args.faces} faces: found "
          f"{len(found)}; {len(found) / look:.1f} faces/s ({1000 * look:.0f} ms per picture: "
          f"detection and crops {1000 * detect:.0f} ms, cascade {1000 * (look - detect):.0f} "
          f"ms; {settings.detector}, min face {args.min_face} px; {'cascade' if args.cascade else 'stage 1 alone'}"
          f"{' + TTA' if args.tta else ''})")

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "astronaut.mp4"
        write_video(video, args.frames)
        source = Source("astronaut.mp4", video, "video")
        annotator.look(picture[:VIDEO_SIZE[1], :VIDEO_SIZE[0]])  # warm-up: one face
        # Drawn first, as annotate.py's first video: a one-off cost of the video loop (an
        # import, say) shows here.
        for drawn in (True, False):
            started, cpu_started = time.perf_counter(), time.process_time()
            with TrackingClock() as clock:
                rows, frames = annotate_video(annotator, source,
                                              Path(folder) / "out.mp4" if drawn else None,
                                              show_progress=False)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            fps = frames / seconds
            key = "drawn" if drawn else "no_draw"
            result[f"{key}_fps"], result[f"{key}_cpu_ms"] = fps, 1000 * cpu / frames
            result[f"{key}_tracking_share"] = clock.seconds / seconds
            # Once a video, after its frames: the summary and the timeline figure.
            report = report_seconds(folder, rows)
            print(f"  tracking and smoothing: {1000 * clock.seconds / frames:.2f} ms a frame, "
                  f"{100 * result[f'{key}_tracking_share']:.1f}% of the loop's time (frames/s "
                  f"without them: {frames / (seconds - clock.seconds):.1f}); then the summary "
                  f"and timeline: {1000 * report:.0f} ms once")
            print(f"video {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {frames} frames, one face "
                  f"({len(rows)} found){'' if drawn else ', --no-draw'}: {fps:.1f} frames/s "
                  f"({1000 * seconds / frames:.0f} ms per frame, {1000 * cpu / frames:.0f} ms "
                  f"of CPU time per frame, all threads; target {TARGET_FPS} frames/s: "
                  f"{'met' if fps >= TARGET_FPS else 'NOT met'})")
    if args.long_minutes > 0:
        memory_over_time(annotator, args.long_minutes, args.long_every)
    result["tensorflow"] = "tensorflow" in sys.modules
    return result


def run_worker(argv, runtime: str) -> dict:
    """measure() in a fresh process for ``runtime``; its lines are passed on as they come."""
    # As a module from the checkout, so the worker imports this checkout's ferkit.
    command = [sys.executable, "-m", "bench.annotate_speed", *argv, "--runtime", runtime,
               "--worker"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith(RESULT_TAG)), flush=True)
    results = [line for line in lines if line.startswith(RESULT_TAG)]
    if done.returncode != 0 or not results:
        raise RuntimeError(f"the {runtime} worker failed (exit {done.returncode})")
    return json.loads(results[-1][len(RESULT_TAG):])


def table(results) -> str:
    """The runtimes side by side, a Markdown table: per runtime, the median of its rounds."""
    rows = ["| runtime | picture faces/s | video frames/s drawn | --no-draw | CPU ms/frame "
            "drawn | --no-draw | tracking's share drawn | --no-draw | TensorFlow imported |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for runtime, rounds in results.items():
        r = {key: statistics.median(result[key] for result in rounds)
             for key in ("faces_per_s", "drawn_fps", "no_draw_fps", "drawn_cpu_ms",
                         "no_draw_cpu_ms", "drawn_tracking_share", "no_draw_tracking_share")}
        rows.append(f"| {runtime} | {r['faces_per_s']:.1f} | {r['drawn_fps']:.1f} | "
                    f"{r['no_draw_fps']:.1f} | {r['drawn_cpu_ms']:.0f} | "
                    f"{r['no_draw_cpu_ms']:.0f} | {100 * r['drawn_tracking_share']:.1f}% | "
                    f"{100 * r['no_draw_tracking_share']:.1f}% | "
                    f"{'yes' if any(result['tensorflow'] for result in rounds) else 'no'} |")
    return "\n".join(rows)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(measure(args)))
        return 0
    runtimes = args.runtimes.split(",") if args.runtime == "auto" else [args.runtime]
    results = {runtime: [] for runtime in runtimes}
    for round_ in range(args.rounds):
        for runtime in runtimes:
            print(f"--- {runtime}, round {round_ + 1} of {args.rounds}", flush=True)
            results[runtime].append(run_worker(argv, runtime))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
