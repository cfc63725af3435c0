"""Train the plain DNN baseline (dense 512-512-512-256-7 on the flat pixels).

Usage:
    python3 dnn_train.py                       # data/train.csv -> models/dnn.h5
    python3 dnn_train.py --data ../shared/data/fer2013/train.csv.gz

Same options, outputs and sidecar as cnn_train.py; it exists to show what the
convolutions add over a network of about the same size that ignores image structure.
"""
import sys

from fer import MODELS, cli
from fer.labels import NUM_CLASSES

DEFAULT_OUT = MODELS / "dnn.h5"


def parse_args(argv=None):
    # Adam at 1e-3 left this DNN predicting the majority class on FER2013 (measured: 25%
    # for 10 epochs); 3e-4, the CNN's rate, learns from the first epochs.
    parser = cli.training_parser(__doc__.splitlines()[0], DEFAULT_OUT)
    parser.add_argument("--dense-dropout", type=float, default=0.3,
                        help="dropout after each hidden dense layer")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fer.training import train

    train(args, "dnn", list(range(NUM_CLASSES)), {"dense_dropout": args.dense_dropout})


if __name__ == "__main__":
    sys.exit(cli.run(main))
