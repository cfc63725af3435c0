"""Train the stage-1 CNN on all seven classes.

Usage:
    python3 cnn_train.py                       # data/train.csv -> models/cnn.h5
    python3 cnn_train.py --data ../shared/data/fer2013/train.csv.gz --epochs 80
    python3 cnn_train.py --resume              # continue models/cnn.h5 where it stopped
    python3 cnn_train.py --init-from models/cnn.h5 --epochs 16 --out models/cnn2.h5
                                               # a second cosine cycle (warm restart)

Writes the best-validation model to --out, with a JSON sidecar (classes, normalization,
command, config, epochs, best validation accuracy, wall time, versions), the history as
CSV and the curves as PNG beside it. Ctrl-C stops and keeps the best model. The run ends
by re-estimating the best model's BatchNorm statistics on the plain training faces (kept
when validation accuracy does not drop). Averaging the best models of several warm
restarts can do better still: see average_weights.py.
"""
import sys

from fer import cli
from fer.labels import NUM_CLASSES
from fer import MODELS

DEFAULT_OUT = MODELS / "cnn.h5"


def parse_args(argv=None):
    parser = cli.training_parser(
        __doc__.splitlines()[0], DEFAULT_OUT,
        init_from_help="start from this trained 7-class CNN's weights, all of them, with a "
                       "fresh optimizer and cosine schedule: a warm restart that trains a "
                       "finished model further (unlike --resume, which continues its "
                       "schedule); give the --seed and --val-split it was trained with")
    cli.add_cnn_options(parser)
    args = parser.parse_args(argv)
    cli.resolve_lr(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    from fer.training import train

    train(args, "cnn", list(range(NUM_CLASSES)), cli.cnn_build_options(args),
          init_from=args.init_from, recalibrate_bn=args.recalibrate_bn)


if __name__ == "__main__":
    sys.exit(cli.run(main))
