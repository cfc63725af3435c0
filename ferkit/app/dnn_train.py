"""Train the plain DNN baseline (dense 512-512-512-256-7 on the flat pixels).

Usage:
    python3 dnn_train.py                       # data/train.csv -> models/dnn.h5
    python3 dnn_train.py --data ../shared/data/fer2013/train.csv.gz

Same options, outputs and sidecar as cnn_train.py, with its own recipe
(ferkit.recipes.DnnRecipe): one cosine of 40 epochs, no warm restarts, the best-validation
epoch kept. It exists to show what the convolutions
add over a network of about the same size that ignores image structure.
"""
import sys
from pathlib import Path

from ferkit.app import cli
from ferkit.recipes import DnnRecipe

DEFAULT_OUT = Path("models") / "dnn.h5"  # in the current folder


def parse_args(argv=None):
    parser = cli.training_parser(cli.summary(__doc__), DEFAULT_OUT, DnnRecipe)
    parser.add_argument("--dense-dropout", type=float,
                        help="dropout after each hidden dense layer")
    return cli.parse_training_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    config = cli.training_recipe(DnnRecipe, args)
    cli.check_training_paths(args)
    # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
    cli.run_training(config, args, "dnn_train.py", argv)


if __name__ == "__main__":
    sys.exit(cli.run(main))
