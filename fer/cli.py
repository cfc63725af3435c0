"""Command-line plumbing shared by every script: the parent parser and the error wrapper."""
from __future__ import annotations

import argparse
import sys


def progress_verbosity() -> int:
    """Keras' ``verbose`` for a progress display: 1 (redrawn in place) on a terminal, 2 (one
    line per bar or epoch, once done) when stdout is a log file (``nohup ... > log``), where
    redrawing would fill the log with a frame per update."""
    return 1 if sys.stdout.isatty() else 2


def progress_bar(total: int, unit: str, show: bool = True):
    """A keras Progbar over ``total`` units, shown as progress_verbosity() says."""
    from fer.backend import keras

    return keras.utils.Progbar(total, unit_name=unit,
                               verbose=progress_verbosity() if show else 0)


class UsageError(ValueError):
    """A bad option or input the user can fix; printed as one line, exit code 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show '(default: X)' only where X tells the reader something (not for flags or None)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


# Adam at 1e-3 did not learn on full FER2013 (stuck at the majority class); 3e-4 did.
DEFAULT_LR = 3e-4
# Fine-tuning a specialist from a trained stage 1 (3 epochs, stage 1 at 62.66%): at 1.5e-4
# it reached 58.8% validation accuracy on its four classes and a cascade 0.56 point above
# stage 1; at 5e-5, 57.5% and no hand-off threshold helped (the specialist stayed a copy of
# stage 1). With an earlier stage 1, 5 epochs at 3e-4 reached only 50.3% (it first unlearns).
# A warm restart of that stage 1 (cnn_train.py --init-from) at 1.5e-4 lost 1.4 points in its
# first epoch and reached 63.74% after 10 of a 16-epoch cycle.
FINE_TUNE_LR = 1.5e-4


def training_parser(description: str, default_out,
                    init_from_help: str | None = None) -> argparse.ArgumentParser:
    """Options every trainer shares; each script adds its own and sets its defaults.

    ``init_from_help``: for the CNN trainers, which can start from a trained CNN's weights,
    the help of their --init-from option; with --init-from, --lr defaults to FINE_TUNE_LR
    instead (resolved by resolve_lr after parsing).
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    from fer.data import DEFAULT_TRAIN, USAGES

    parser.add_argument("--data", default=str(DEFAULT_TRAIN),
                        help="training data: a CSV 'label,feature' (.gz fine), Kaggle's "
                             "fer2013.csv (with --usage), or an image folder ROOT/<class>/")
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to read from Kaggle's fer2013.csv (Usage column)")
    parser.add_argument("--out", default=default_out and str(default_out),
                        help="where to write the best model (.h5); its sidecar .json, "
                             "history .csv and curves .png go beside it"
                             + ("" if default_out else " (default: models/cnn_specific_<spec>.h5)"))
    parser.add_argument("--epochs", type=int, default=60,
                        help="maximum number of epochs (the cosine schedule spans them)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    lr_help = "peak Adam learning rate, decayed by a cosine schedule"
    if init_from_help:
        lr_help += f" (default: {DEFAULT_LR:g}; {FINE_TUNE_LR:g} with --init-from)"
        parser.add_argument("--init-from", default=None, help=init_from_help)
    parser.add_argument("--lr", type=float, default=None if init_from_help else DEFAULT_LR,
                        help=lr_help)
    parser.add_argument("--patience", type=int, default=12,
                        help="stop after this many epochs without a better validation accuracy")
    parser.add_argument("--val-split", type=float, default=0.1,
                        help="share of the data held out (stratified by class) for validation")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed for the split, the weights and the augmentation")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                        default="auto",
                        help="auto = mixed bfloat16 where the CPU has AVX512-BF16/AMX or the "
                             "GPU supports it, else float32; bfloat16/float16 = mixed precision")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="turn off random flips, shifts, rotations and zooms")
    parser.add_argument("--label-smoothing", type=float, default=0.0,
                        help="share of each face's target spread evenly over all classes "
                             "(0 = plain cross-entropy): FER2013's labels are noisy, and "
                             "softer targets keep the model from betting everything on them")
    parser.add_argument("--resume", action="store_true",
                        help="continue training the model at --out from its saved weights "
                             "and epoch count (same options as the first run)")
    return parser


def resolve_lr(args) -> None:
    """Fill in --lr when the user left it out: smaller when starting from trained weights."""
    if args.lr is None:
        args.lr = FINE_TUNE_LR if args.init_from is not None else DEFAULT_LR


def add_data_options(parser: argparse.ArgumentParser, data_help: str) -> None:
    """--data, --usage and --labels of the analysis scripts (faces chosen by --data, else
    the validation split recorded in the model's sidecar)."""
    from fer.data import USAGES

    parser.add_argument("--data", default=None, help=data_help)
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to read from Kaggle's fer2013.csv given with --data")
    parser.add_argument("--labels", default=None,
                        help="answers 'id,label' for an 'id,feature' file given with --data")


def add_cascade_options(parser: argparse.ArgumentParser) -> None:
    """--stage1, --stage2 and --handoff-below of the scripts that run the cascade."""
    from fer.inference import DEFAULT_STAGE1, DEFAULT_STAGE2

    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="7-class model")
    parser.add_argument("--stage2", default=str(DEFAULT_STAGE2),
                        help="specialist model; its sidecar says which classes it covers")
    parser.add_argument("--handoff-below", type=float, default=None,
                        help="hand a face to the specialist only when stage 1's confidence "
                             "is at most this (1.0 = always; default: the threshold tuned "
                             "into the specialist's sidecar by cnn_train_mod.py, the one "
                             "tuned with TTA when --tta is on; else 1.0)")


def add_cnn_options(parser: argparse.ArgumentParser) -> None:
    """Architecture knobs of the CNN trainers (stage 1 and the specialist)."""
    parser.add_argument("--conv-dropout", type=float, default=0.2,
                        help="dropout after each group of three convolutions")
    parser.add_argument("--dense-dropout", type=float, default=0.3,
                        help="dropout after each hidden dense layer")
    parser.add_argument("--bn-momentum", type=float, default=0.99,
                        help="BatchNorm moving-average momentum (lower it for very short runs)")
    parser.add_argument("--no-bn-recalibration", dest="recalibrate_bn", action="store_false",
                        help="do not end training by re-estimating the best model's BatchNorm "
                             "statistics on the plain training faces (kept only when "
                             "validation accuracy does not drop)")


def cnn_build_options(args) -> dict:
    return {"conv_dropout": args.conv_dropout, "dense_dropout": args.dense_dropout,
            "bn_momentum": args.bn_momentum}


def run(main, argv=None) -> int:
    """Run main(argv); turn the errors a user can fix into one line on stderr and exit 2."""
    from fer.data import DataError

    try:
        return main(argv) or 0
    except (DataError, UsageError, FileNotFoundError, ValueError) as err:
        message = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
