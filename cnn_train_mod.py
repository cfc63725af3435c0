"""Train the specialist CNN on a subset of classes: the second stage of the cascade.

Usage:
    python3 cnn_train_mod.py --specific 0_2_4_6     # Angry, Fear, Sad, Neutral
    python3 cnn_train_mod.py --specific 2_4 --init-from models/cnn.h5

Same body as the stage-1 CNN with one output per listed class; default output
models/cnn_specific_<spec>.h5, whose sidecar records the classes in output order, which
is how predict.py learns what the specialist covers.
"""
import sys

from fer import MODELS, cli
from fer.labels import DEFAULT_SPECIFIC, parse_specific, specific_name


def parse_args(argv=None):
    parser = cli.training_parser(__doc__.splitlines()[0], None)
    parser.add_argument("--specific", default=DEFAULT_SPECIFIC,
                        help="classes to specialize in: digits 0-6 joined by '_' "
                             "(0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral)")
    parser.add_argument("--init-from", default=None,
                        help="start from this trained 7-class CNN's weights (all but the "
                             "output layer), which converges in far fewer epochs")
    cli.add_cnn_options(parser)
    args = parser.parse_args(argv)
    args.out = args.out or str(MODELS / f"cnn_specific_{args.specific}.h5")
    return args


def main(argv=None):
    args = parse_args(argv)
    classes = parse_specific(args.specific)
    args.specific = specific_name(classes)
    from fer.training import train

    train(args, "cnn", classes,
          cli.cnn_build_options(args),
          init_from=args.init_from)


if __name__ == "__main__":
    sys.exit(cli.run(main))
