"""Average trained models' weights and re-estimate BatchNorm: a better model without training.

Usage:
    python3 average_weights.py models/cnn_cycle2.h5 models/cnn_cycle3.h5 --out models/cnn.h5
    python3 average_weights.py models/cnn_specific_0_2_4_6.h5 --out models/spec_bn.h5

The models must share architecture, classes and validation split (--seed, --val-split,
training data): typically the best checkpoints of successive warm restarts
(cnn_train.py --init-from). Their weights are averaged, then each BatchNorm layer's moving
mean and variance are re-estimated on the plain training faces with dropout off (with one
model, only the latter). Prints the validation accuracy of each model and of the result,
without and with flip TTA, and writes the result with a sidecar that names its sources
and its LiteRT copy (.tflite, see export_tflite.py).
A specialist's hand-off thresholds are not carried over: re-tune them with
cnn_train_mod.py --tune-only.
"""
import argparse
import sys
import time
from pathlib import Path

from ferkit import DataError, recorded_path
from ferkit.app import cli
from ferkit.app.cli import UsageError

# Keys of a source's sidecar that describe its training run, kept per source.
RUN_KEYS = ("command", "prior_epochs", "epochs_run", "best_epoch", "val_accuracy",
            "wall_time_s")
# Keys that must agree between the sources: same model, same faces held out.
SHARED_KEYS = ("architecture", "classes", "seed", "val_split", "data", "usage")
# Of those, the ones a data identity (ferkit.data.faces_identity) stands for when both
# sidecars record one: the same faces in another file or format are the same data.
DATA_KEYS = ("data", "usage")
# Keys of the first source's sidecar that the average inherits: the model, its split and
# where it was made. Every other key records that source's own run (its command and
# epochs, a specialist's hand-off tuning, a trainer's end-of-run BatchNorm pass) and
# would be false of the average, which records its own below.
MODEL_KEYS = ("architecture", "classes", "class_names", "build", "input_shape",
              "normalization", "seed", "val_split", "data", "usage", "data_identity",
              "precision", "parameters", "machine", "versions")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("models", nargs="+",
                        help="trained models (.h5 with sidecars) of one architecture, classes "
                             "and validation split")
    parser.add_argument("--out", required=True,
                        help="where to write the result (.h5, sidecar .json beside it); "
                             "must not be one of the models")
    parser.add_argument("--data", default=None,
                        help="the models' training data, when it is not where their sidecars "
                             "record it (split again by their --seed and --val-split; used "
                             "only when it holds the faces their data_identity names)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="faces per batch when estimating BatchNorm's statistics")
    return parser.parse_args(argv)


def check_paths(args) -> None:
    """Every path, before any work and before TensorFlow is imported."""
    from ferkit import paths
    from ferkit.data import check_data_path

    for path in args.models:
        if Path(path).resolve() == Path(args.out).resolve():
            raise UsageError(f"--out {args.out}: expected another file than the models "
                             f"averaged (it would replace a trained model)")
        paths.model_file(path)
    if args.data is not None:
        check_data_path(args.data)
    paths.output_file(args.out, "averaged model (--out)")


def check_sources(paths, sidecars):
    """The sources must be one model held out on the same faces."""
    first = sidecars[0]
    for path, sidecar in zip(paths[1:], sidecars[1:]):
        by_identity = bool(first.get("data_identity") and sidecar.get("data_identity"))
        keys = ([k for k in SHARED_KEYS if k not in DATA_KEYS] + ["data_identity"]
                if by_identity else SHARED_KEYS)
        for key in keys:
            if sidecar.get(key) != first.get(key):
                raise DataError(f"{path}: expected the {key} of {paths[0]}, "
                                f"{first.get(key)!r}, found {sidecar.get(key)!r}")


def main(argv=None):
    args = parse_args(argv)
    if args.batch_size <= 0:
        raise UsageError(f"--batch-size: expected a positive integer, found {args.batch_size}")
    check_paths(args)
    from ferkit.averaging import average_weights, recalibrate_batchnorm
    from ferkit.evaluation import (fit_model_calibration, record_calibration, recorded_data,
                                   split_rows, subset)
    from ferkit.inference import predict_probs
    from ferkit.litert import export_tflite
    from ferkit.models import build_model, load_model, save_model
    from ferkit.record import ModelRecord

    started = time.time()
    loaded = [load_model(path) for path in args.models]
    models, sidecars = [m for m, _ in loaded], [s for _, s in loaded]
    check_sources(args.models, sidecars)

    # Faces: the sources' training data, split as they were trained (uint8 (N, 48, 48)).
    faces = recorded_data(sidecars[0], args.models[0], args.data, parameter="data")
    train_rows, val_rows = split_rows(sidecars[0], faces)
    train_images, val = faces.images[train_rows], subset(faces, val_rows)
    classes = sidecars[0]["classes"]
    position = {c: i for i, c in enumerate(classes)}
    truth = [position[label] for label in val.labels]

    def accuracies(model, name):
        return [float((predict_probs(model, val.images, tta, progress=name + suffix)
                       .argmax(axis=1) == truth).mean())
                for tta, suffix in ((False, ""), (True, " + flip TTA"))]

    scores = {path: accuracies(m, Path(path).name) for path, m in zip(args.models, models)}

    # Average (a model built as the first source's sidecar says), then BatchNorm.
    first = sidecars[0]
    average = build_model(first["architecture"], len(classes), **first["build"])
    average.set_weights(average_weights(models))
    print(f"BatchNorm statistics from {len(train_images)} training faces, dropout off")
    result = recalibrate_batchnorm(average, train_images, args.batch_size, progress=True)
    what = "average" if len(models) > 1 else "recalibrated"
    scores[what] = accuracies(result, what)

    print(f"validation accuracy on {len(val)} faces:")
    print(f"  {'model':<40} {'plain':>7} {'flip TTA':>9}")
    for name, (plain, tta) in scores.items():
        print(f"  {str(name):<40} {plain:7.4f} {tta:9.4f}")

    sidecar = ModelRecord(**{key: value for key, value in first.items() if key in MODEL_KEYS})
    sidecar = sidecar.replace(
        command=" ".join(sys.argv),
        config={"models": [recorded_path(p, args.out) for p in args.models],
                "out": recorded_path(args.out, args.out),
                "data": args.data and recorded_path(args.data, args.out),
                "batch_size": args.batch_size},
        averaged_from=[{"model": recorded_path(path, args.out),
                        **{k: s.get(k) for k in RUN_KEYS}}
                       for path, s in zip(args.models, sidecars)],
        batchnorm_faces=len(train_images), init_from=None,
        # A warm restart from the result goes on from the furthest source's stream.
        prior_epochs=max(s.get("prior_epochs", 0) + s.get("epochs_run", 0) for s in sidecars),
        epochs_run=0, best_epoch=None, val_accuracy=round(scores[what][0], 4),
        val_accuracy_tta=round(scores[what][1], 4),
        wall_time_s=round(time.time() - started, 1))
    save_model(result, args.out, sidecar)
    export_tflite(args.out)  # its LiteRT copy, for predict.py (ferkit.litert)
    # Calibrated like a trained model: temperatures fitted on the same validation faces.
    calibration = fit_model_calibration(args.out, args.data)
    record_calibration(args.out, calibration)
    print(f"wrote {args.out}, its sidecar {Path(args.out).with_suffix('.json')} (calibrated: "
          f"validation ECE {calibration['plain']['before']['ece']:.2%} -> "
          f"{calibration['plain']['after']['ece']:.2%}) and its LiteRT copy "
          f"{Path(args.out).with_suffix('.tflite')}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
