"""README's timeline figure: a video the repository makes (the astronaut and her mirror image
crossing the picture; for two of its six seconds the astronaut's mouth is turned upside
down), annotated by `ferkit annotate` (annotate.py); its NAME.timeline.png is copied into
figures/.

Usage:
    python3 -m bench.timeline_figure                   # figures/astronauts.timeline.png
    python3 -m bench.timeline_figure --keep runs/astronauts   # keep the video and outputs
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ferkit.app import cli
from ferkit.composites import astronaut_head, scene, write_video

ROOT = Path(__file__).resolve().parent.parent
FPS = 10
SECONDS = 6
TURNED = (2.0, 4.0)          # seconds during which the astronaut's mouth is upside down
MOUTH = (115, 150, 70, 145)  # rows and columns of her mouth in astronaut_head()
SIZE = (640, 400)            # width, height


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "figures" / "astronauts.timeline.png"),
                        help="where the figure goes")
    parser.add_argument("--keep", default=None, metavar="FOLDER",
                        help="also keep the video and annotate.py's outputs here")
    return parser.parse_args(argv)


def frames() -> np.ndarray:
    """The video's BGR frames: the astronaut gliding right along the top, her mirror image
    left along the bottom."""
    head = astronaut_head()
    turned = head.copy()
    y0, y1, x0, x1 = MOUTH
    turned[y0:y1, x0:x1] = head[y0:y1, x0:x1][::-1]
    width, height = SIZE
    background = scene(head[:0, :0], [], height, width)
    count = SECONDS * FPS
    found = []
    for i in range(count):
        picture = background.copy()
        x = round(10 + (width - head.shape[1] - 20) * i / (count - 1))
        face = turned if TURNED[0] <= i / FPS < TURNED[1] else head
        picture[0:head.shape[0], x:x + head.shape[1]] = face
        mirrored = cv2.flip(head, 1)
        xm = width - head.shape[1] - x
        picture[height - head.shape[0]:, xm:xm + head.shape[1]] = mirrored
        found.append(picture)
    return np.stack(found)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(args.keep) if args.keep else Path(folder)
        work.mkdir(parents=True, exist_ok=True)
        video = work / "astronauts.mp4"
        write_video(video, frames(), FPS)
        # The command itself, as a user runs it (bench imports no command).
        subprocess.run([sys.executable, "-m", "ferkit", "annotate", str(video), "--out",
                        str(work / "annotated")], cwd=ROOT, check=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "annotated" / "astronauts.timeline.png", args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
