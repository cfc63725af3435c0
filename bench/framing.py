"""Framing measured: annotate.py's detection, crop and cascade on FER2013 faces placed in
larger pictures, against the cascade on the same faces' original 48x48 crops.

Usage:
    nice -n 10 python3 bench/framing.py                       # tune: validation composites
    nice -n 10 python3 bench/framing.py --detector mtcnn      # the same with MTCNN
    nice -n 10 python3 bench/framing.py --split test          # once, with the chosen margin
    python3 bench/framing.py --limit 40 --margins 0.1,0.2     # a quick check that it works

Faces (ferkit/composites.py): each enlarged x3-x5 and placed at a random offset on a
textured background, several to a picture. ``validation`` takes the stage-1 validation
split its sidecar records (faces no model trained on; the margin is chosen on these);
``test`` takes FER2013's PublicTest. For every margin tried, prints the share of faces
found, stage 1's and the cascade's accuracy on the crops of the faces found and the share
of all faces found and labelled right, and the cascade's accuracy on the same faces'
original 48x48 crops (and on all original crops); then how the detector's boxes sit on the
faces (the margin that would give back the original framing exactly).
The pictures stay in memory: none is written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ferkit.app import cli
from ferkit.faces import (DEFAULT_DETECTOR, DEFAULT_MIN_FACE, DEFAULT_MIN_NEIGHBORS, DETECTORS,
                          MARGINS)

FER2013 = ROOT.parent / "shared" / "data" / "fer2013"
MARGIN_GRID = "-0.1,-0.05,-0.025,0,0.025,0.05,0.075,0.1,0.15,0.2,0.3"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--split", choices=("validation", "test"), default="validation",
                        help="validation: stage 1's recorded validation split (choose the "
                             "margin here); test: PublicTest (report once)")
    parser.add_argument("--test-data", default=str(FER2013 / "test.csv.gz"),
                        help="PublicTest faces 'id,feature' (--split test)")
    parser.add_argument("--test-labels", default=str(FER2013 / "test_labels.csv"),
                        help="PublicTest answers 'id,label' (--split test)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help="the face detector (ferkit.faces)")
    parser.add_argument("--margins", default=None,
                        help="comma-separated crop margins to try (default: "
                             f"{MARGIN_GRID} on validation, the detector's on test)")
    parser.add_argument("--per-picture", type=int, default=4, help="faces per picture")
    parser.add_argument("--scale", default="3,5",
                        help="smallest,largest enlargement of a 48x48 face")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N faces (a quick run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of offsets and backgrounds")
    parser.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE,
                        help="the detector's smallest face, pixels")
    parser.add_argument("--min-neighbors", type=int, default=DEFAULT_MIN_NEIGHBORS,
                        help="the detector's windows needed per face")
    cli.add_prediction_options(parser)
    args = parser.parse_args(argv)
    try:
        args.margins = [float(m) for m in (args.margins or (
            MARGIN_GRID if args.split == "validation" else str(MARGINS[args.detector]))
                                                ).split(",")]
        args.scale = tuple(float(s) for s in args.scale.split(","))
    except ValueError as err:
        parser.error(f"--margins/--scale: expected comma-separated numbers ({err})")
    if len(args.scale) != 2 or not 1 <= args.scale[0] <= args.scale[1]:
        parser.error(f"--scale: expected smallest,largest with 1 <= smallest <= largest, "
                     f"found {args.scale}")
    return args


def load_split(args):
    """The labelled faces of --split (and --limit)."""
    from ferkit.data import labelled_file
    from ferkit.evaluation import subset, validation_faces
    from ferkit.record import read_record

    if args.split == "validation":
        faces = validation_faces(read_record(args.stage1, "stage1"), args.stage1)
    else:
        faces = labelled_file(args.test_data, labels_path=args.test_labels)
    return faces if args.limit is None else subset(faces, list(range(min(args.limit,
                                                                           len(faces)))))


def detect_all(composites, settings):
    """Detections of every picture: [(boxes, scores, matched, spare)], ms per picture."""
    from ferkit.composites import match_boxes
    from ferkit.faces import find_faces, load_face_detector
    from ferkit.progress import progress_bar

    detector = load_face_detector(settings.detector)
    found = []
    bar = progress_bar(len(composites), "picture")
    started = time.perf_counter()
    for composite in composites:
        boxes, scores = find_faces(composite.picture, detector, settings)[:2]
        found.append((boxes, scores, *match_boxes(boxes, scores, composite.squares)))
        bar.add(1)
    return found, 1000 * (time.perf_counter() - started) / len(composites)


def framing_offsets(composites, found):
    """How each matched box sits on its face: (side of the face's square / box side, the
    square's centre minus the box's, across and down, in box sides)."""
    import numpy as np

    ratios, shifts = [], []
    for composite, (boxes, _, matched, _) in zip(composites, found):
        for (x, y, side), i in zip(composite.squares, matched):
            if i < 0:
                continue
            bx, by, bw, bh = boxes[i]
            ratios.append(side / bw)
            shifts.append(((x + side / 2 - bx - bw / 2) / bw, (y + side / 2 - by - bh / 2) / bw))
    return np.array(ratios), np.array(shifts).reshape(-1, 2)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    from ferkit.composites import make_composites
    from ferkit.faces import FaceSettings, face_crops

    settings = FaceSettings(args.min_face, args.min_neighbors, detector=args.detector)
    settings.check()
    faces = load_split(args)
    cascade = cli.load_cascade(args)
    print(cli.runtime_said(cascade))
    composites = make_composites(faces.images, args.per_picture, args.scale, args.seed)
    print(f"{args.split}: {len(faces)} faces in {len(composites)} pictures of "
          f"{composites[0].picture.shape[1]}x{composites[0].picture.shape[0]}, each face "
          f"x{args.scale[0]:g}-x{args.scale[1]:g}; {settings.detector}, min face "
          f"{settings.min_face} px, min neighbours {settings.min_neighbors} (Haar); "
          f"{'cascade' if args.cascade else 'stage 1 alone'}{' + flip TTA' if args.tta else ''}")
    found, ms_per_picture = detect_all(composites, settings)

    rows = np.concatenate([c.rows[m >= 0] for c, (_, _, m, _) in zip(composites, found)])
    truth = faces.labels[rows]
    original_labels = cascade.predict(faces.images).labels
    share = len(rows) / len(faces)
    spare = sum(f[3] for f in found)
    print(f"found {len(rows)} of {len(faces)} faces ({share:.1%}); {spare} detections on no "
          f"face; detection {ms_per_picture:.0f} ms per picture")
    print()
    print("| margin | faces found | stage 1 on the crops found | cascade on them | found and "
          "right, stage 1 | found and right, cascade | same faces, original 48x48 | all "
          "faces, original 48x48 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    on_originals = np.mean(original_labels[rows] == truth)
    on_all = np.mean(original_labels == faces.labels)
    for margin in args.margins:
        crops = np.concatenate([face_crops(c.picture, boxes[m[m >= 0]], margin)
                                for c, (boxes, _, m, _) in zip(composites, found)])
        said = cascade.predict(crops)
        labels, probs = said.labels, said.stage1_probabilities
        right1, right = probs.argmax(axis=1) == truth, labels == truth
        print(f"| {margin:g} | {share:.1%} | {np.mean(right1):.4f} | {np.mean(right):.4f} | "
              f"{right1.sum() / len(faces):.1%} | {right.sum() / len(faces):.1%} | "
              f"{on_originals:.4f} | {on_all:.4f} |")
    ratios, shifts = framing_offsets(composites, found)
    if len(ratios):
        exact = (np.median(ratios) - 1) / 2
        print(f"\nthe face's square is {np.median(ratios):.2f}x the detector's box side "
              f"(median; quartiles {np.percentile(ratios, 25):.2f}-"
              f"{np.percentile(ratios, 75):.2f}): a margin of {exact:.3f} gives back the "
              f"original framing; its centre lies {np.median(shifts[:, 0]):+.3f} across and "
              f"{np.median(shifts[:, 1]):+.3f} down of the box's centre, in box sides")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
