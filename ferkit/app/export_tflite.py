"""Make the LiteRT copy (MODEL.tflite) of trained models that have none or a stale one.

Usage:
    python3 export_tflite.py models/cnn.h5 models/cnn_specific_0_2_4_6.h5 models/dnn.h5
    python3 export_tflite.py my_model.h5 --force
    python3 export_tflite.py --int8 models/cnn.h5 models/cnn_specific_0_2_4_6.h5

The trainers and average_weights.py write the float32 .tflite themselves; this is for
models made before they did, or elsewhere. Each .tflite is made from the .h5 by
TensorFlow's converter and its sidecar records the SHA-256 of both files, so predict.py
(--runtime auto) uses it only while it matches the .h5 beside it. A model whose copy is
already up to date is left as it is unless --force.

With --int8 it makes MODEL.int8.tflite instead: full-integer quantization, its activation
ranges calibrated on training faces of the model's recorded split (never its validation
faces), run only with --runtime litert-int8.
"""
import argparse
import sys

from ferkit.app import cli
from ferkit.litert import CALIBRATION_FACES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("models", nargs="+", help="trained models (.h5 with their sidecars)")
    parser.add_argument("--force", action="store_true",
                        help="remake the copy even where it is up to date")
    parser.add_argument("--int8", action="store_true",
                        help="make the full-integer copy MODEL.int8.tflite (for --runtime "
                             "litert-int8) instead of the float32 MODEL.tflite")
    parser.add_argument("--calibration-faces", type=int, default=CALIBRATION_FACES,
                        help="with --int8: training faces, drawn at random from the "
                             "model's recorded training split, that calibrate it")
    parser.add_argument("--data", default=None,
                        help="with --int8: the model's training data, when it is not where "
                             "its sidecar records it (used only when it holds the faces its "
                             "data_identity names; split again by its seed and share)")
    parser.add_argument("--seed", type=int, default=0,
                        help="with --int8: seed of the calibration faces' draw")
    args = parser.parse_args(argv)
    if args.calibration_faces <= 0:
        raise cli.UsageError(f"--calibration-faces: expected a positive integer, found "
                             f"{args.calibration_faces}")
    return args


def main(argv=None):
    args = parse_args(argv)
    from ferkit.evaluation import calibration_faces
    from ferkit.litert import staleness
    from ferkit.record import read_record

    variant = "int8" if args.int8 else "float32"
    # Every model checked (file, sidecar, calibration faces) before the first conversion.
    todo = []
    for path in args.models:
        sidecar = read_record(path)
        if staleness(path, sidecar, variant) is None and not args.force:
            print(f"{path}: its {variant} copy is up to date")
        else:
            todo.append((path, calibration_faces(sidecar, path, args.calibration_faces,
                                                 args.seed, args.data, "data")
                               if args.int8 else None))
    if todo:
        from ferkit.litert import export_tflite

        for path, calibration in todo:
            out = export_tflite(path, variant, calibration)
            how = f", calibrated on {len(calibration)} training faces" if args.int8 else ""
            print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB{how}) and its hash in "
                  f"{path}'s sidecar")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
