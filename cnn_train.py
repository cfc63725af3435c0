"""Train the stage-1 CNN on all seven classes.

Usage:
    python3 cnn_train.py                       # data/train.csv -> models/cnn.h5
    python3 cnn_train.py --data ../shared/data/fer2013/train.csv.gz --epochs 80
    python3 cnn_train.py --resume              # continue models/cnn.h5 where it stopped

Writes the best-validation model to --out, with a JSON sidecar (classes, normalization,
command, config, epochs, best validation accuracy, wall time, versions), the history as
CSV and the curves as PNG beside it. Ctrl-C stops and keeps the best model.
"""
import sys

from fer import cli
from fer.labels import NUM_CLASSES
from fer import MODELS

DEFAULT_OUT = MODELS / "cnn.h5"


def parse_args(argv=None):
    parser = cli.training_parser(__doc__.splitlines()[0], DEFAULT_OUT)
    cli.add_cnn_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fer.training import train

    train(args, "cnn", list(range(NUM_CLASSES)),
          cli.cnn_build_options(args))


if __name__ == "__main__":
    sys.exit(cli.run(main))
