"""Calibrate models and the cascade: fit their temperatures on the validation split and write
them into the sidecars (the weights are not touched).

Usage:
    python3 calibrate.py                           # stage 1, the specialist and the cascade
    python3 calibrate.py --model models/dnn.h5     # one model alone
    python3 calibrate.py --stage1 runs/cnn.h5 --stage2 runs/cnn_specific_0_2_4_6.h5

Each model's softmax, plain and with flip TTA, gets a temperature fitted by minimizing the
negative log-likelihood on the validation split its sidecar records (rebuilt from
--train-data, else the file it records; never a test face), written as the sidecar's
`calibration`; one temperature per predicted class replaces it only where it wins on
validation beyond noise (ferkit.calibration.choose_calibration). In the cascade, stage 1's
probabilities keep its own calibration and the specialist's, on the faces handed to it,
get one fitted on the validation faces the cascade hands it (stage 1's split), written
into the specialist's sidecar as `cascade_calibration` with the SHA-256 of the stage 1 it
was fitted with (as the hand-off threshold is). Calibration keeps every label. Prints the
validation ECE, NLL and Brier before and after (the cascade's over all its faces);
trainers calibrate a new model themselves.
"""
import argparse
import sys
from pathlib import Path

from ferkit.app import cli

MODES = (("plain", ""), ("tta", " + flip TTA"))


def parse_args(argv=None):
    from ferkit.inference import DEFAULT_STAGE1, DEFAULT_STAGE2, RUNTIMES

    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="7-class model")
    parser.add_argument("--stage2", default=str(DEFAULT_STAGE2),
                        help="specialist, calibrated alone and in the cascade with --stage1")
    parser.add_argument("--no-cascade", dest="cascade", action="store_false",
                        help="calibrate stage 1 alone (not the specialist or the cascade)")
    parser.add_argument("--model", default=None,
                        help="calibrate this one model alone instead (e.g. models/dnn.h5)")
    cli.add_train_data_option(parser)
    parser.add_argument("--runtime", choices=[r for r in RUNTIMES if r != "auto"],
                        default="keras",
                        help="what runs the models while fitting (keras: the .h5 as trained; "
                             "litert: its float32 .tflite, which agrees to 1e-4)")
    return parser.parse_args(argv)


def show(what: str, entry: dict) -> None:
    """Print one calibration entry: per mode, the method, its temperature and the
    validation ECE, NLL and Brier before -> after."""
    for key, suffix in MODES:
        fitted = entry[key]
        before, after = fitted["before"], fitted["after"]
        method = ("one temperature per predicted class" if fitted["method"] ==
                  "class_temperatures" else "temperature")
        if "handed_faces" in fitted:
            method = (f"the specialist's {method}, fitted on the {fitted['handed_faces']} "
                      f"faces of its classes it was handed")
        print(f"  {what}{suffix}: {method} (T = {fitted['temperature']:.3f}); validation ECE "
              f"{before['ece']:.2%} -> {after['ece']:.2%}, NLL {before['nll']:.4f} -> "
              f"{after['nll']:.4f}, Brier {before['brier']:.4f} -> {after['brier']:.4f} "
              f"({entry['faces']['count']} faces)")


def main(argv=None):
    args = parse_args(argv)
    from ferkit import paths
    from ferkit.data import check_data_path

    if args.model is not None:
        models = [args.model]
        paths.model_file(args.model)
    else:
        models = [args.stage1] + ([args.stage2] if args.cascade else [])
        paths.model_file(args.stage1, ("stage1",))
        if args.cascade:
            paths.model_file(args.stage2, ("specialist",))
    if args.train_data is not None:
        check_data_path(args.train_data)
    from ferkit.evaluation import (fit_cascade_calibration, fit_model_calibration,
                                   record_calibration)

    command = cli.command_line("calibrate.py", argv)
    for model in models:
        entry = {**fit_model_calibration(model, args.train_data, args.runtime),
                 "command": command}
        record_calibration(model, entry)
        print(f"wrote the calibration of {model} into its sidecar:")
        show(Path(model).name, entry)
    if args.model is None and args.cascade:
        entry = {**fit_cascade_calibration(args.stage1, args.stage2, args.train_data,
                                           args.runtime), "command": command}
        record_calibration(args.stage2, entry, "cascade_calibration")
        print(f"wrote the cascade's calibration (with {args.stage1}) into {args.stage2}'s "
              f"sidecar:")
        show("cascade", entry)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
