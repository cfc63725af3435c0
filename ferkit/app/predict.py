"""Predict expressions with the two-stage cascade and write a Kaggle-style 'id,label' file.

Usage:
    python3 predict.py test.csv out.csv
    python3 predict.py ../shared/data/fer2013/test.csv.gz out.csv --tta \
        --labels ../shared/data/fer2013/test_labels.csv
    python3 predict.py faces/ out.csv --no-cascade      # an image folder works too

Stage 1 (models/cnn.h5) predicts one of the seven classes. When that prediction is one of
the specialist's classes (read from the specialist's sidecar) and stage 1's confidence is
at most the hand-off threshold (tuned on the validation split and recorded in the same
sidecar), the specialist's choice among its classes replaces it. Prints images/s and, with --labels, the accuracy of stage 1
alone and of the cascade. The models run through LiteRT when each has a .tflite made from
its current .h5 (export_tflite.py; TensorFlow is then never imported), else through Keras;
--runtime chooses. A stage 1 other than the one the specialist's hand-off threshold was
tuned against (recorded in its sidecar) gets a warning saying how to retune it.
"""
import argparse
import sys
import time

import numpy as np

from ferkit import DataError, paths
from ferkit.app import cli
from ferkit.app.annotation import annotate_command
from ferkit.data import USAGES, check_data_path, labelled_file
from ferkit.files import write_atomically
from ferkit.words import percent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("test", help="faces to label, already cropped: CSV 'id,feature' (or "
                                     "'label,feature', fer2013.csv with --usage, class folders "
                                     "of images); .gz fine (photos and videos: annotate.py)")
    parser.add_argument("out", help="output CSV 'id,label', written atomically (a file "
                                    "name, not a folder, in a folder that exists)")
    cli.add_prediction_options(parser)
    parser.add_argument("--labels", default=None,
                        help="answers 'id,label': also print the accuracy of stage 1 and "
                             "of the cascade")
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to read from Kaggle's fer2013.csv (required when the "
                             "file holds several)")
    return parser.parse_args(argv)


def check_paths(args) -> None:
    """Every path, before any work and before TensorFlow is imported."""
    check_data_path(args.test)
    command = annotate_command(args.test)
    if command is not None:
        raise DataError(f"{args.test}: predict.py labels faces already cropped (a CSV, or "
                        f"class folders of crops); photos and videos go to annotate.py, which "
                        f"finds the faces first: {command}")
    if args.labels is not None:
        paths.input_file(args.labels)
    cli.check_prediction_models(args)
    paths.output_file(args.out, "predictions ('id,label' CSV)")


def main(argv=None):
    started = time.perf_counter()
    args = parse_args(argv)
    check_paths(args)
    # Check every input before the slow work, so a bad file fails fast.
    # ids as given (row numbers for files without ids); labels from --labels, if given.
    faces = labelled_file(args.test, args.usage, args.labels, require_labels=False)
    cascade = cli.load_cascade(args)
    cli.announce_cascade(cascade, args.stage1, args.stage2, args.handoff_below)
    loaded = time.perf_counter()

    # Stage 1 on every face: (N, 7); the specialist only on the faces handed to it.
    said = cascade.predict(faces.images)
    labels, handoff = said.labels, said.handed_over
    stage1_labels = said.stage1_probabilities.argmax(axis=1)
    predicted = time.perf_counter()

    def write_csv(tmp):
        with open(tmp, "w") as f:
            f.write("id,label\n")
            f.writelines(f"{i},{label}\n" for i, label in zip(faces.ids, labels))
    with paths.writing(args.out, "predictions"):
        write_atomically(args.out, write_csv)

    seconds = predicted - loaded
    print(f"wrote {args.out}: {len(faces)} rows; prediction {len(faces) / seconds:.0f} images/s "
          f"({seconds:.2f} s{', with TTA' if args.tta else ''}"
          f"{f', specialist on {int(handoff.sum())} faces' if args.cascade else ''}"
          f"{f', hand-off below {cascade.handoff_below:g}' if args.cascade else ''}); "
          f"end to end {time.perf_counter() - started:.2f} s after start-up")
    if args.labels:
        truth = faces.labels
        print(f"accuracy: stage 1 alone {percent(np.mean(stage1_labels == truth))}", end="")
        if args.cascade:
            print(f", cascade {percent(np.mean(labels == truth))} ("
                  f"{cli.cascade_changes(stage1_labels, labels, truth)})", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
