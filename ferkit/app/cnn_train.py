"""Train the stage-1 CNN on all seven classes: the whole recipe in one command.

Usage:
    python3 cnn_train.py                       # data/train.csv -> models/cnn.h5
    python3 cnn_train.py --data ../shared/data/fer2013/train.csv.gz
    python3 cnn_train.py --resume              # continue an interrupted run where it stopped
    python3 cnn_train.py --epochs 2 --out runs/trial.h5   # a two-epoch trial of the tool
    python3 cnn_train.py --cycles 0 --epochs 30 --out runs/short.h5   # one cosine only

The recipe (ferkit.recipes.Stage1Recipe): --epochs in all (120), of which --cycles warm
restarts of --cycle-epochs each (10 x 6, from --cycle-lr) come last and the first cosine
phase (from --lr) is what remains; a shorter run leaves out warm restarts and says so. The
final weights are Adam's moving average of the weights (or the mean of the cycle ends,
--average swa), their BatchNorm statistics re-estimated on the plain training faces. Writes the final model to --out with a JSON
sidecar (classes, normalization, the command that made it, options, schedule, validation
accuracy, time per epoch, machine, versions), the history as CSV and the curves as PNG
beside it; the run's state, best epoch and cycle ends in OUT.run/.
"""
import sys
from pathlib import Path

from ferkit.app import cli
from ferkit.recipes import Stage1Recipe

DEFAULT_OUT = Path("models") / "cnn.h5"  # in the current folder


def parse_args(argv=None):
    parser = cli.training_parser(cli.summary(__doc__), DEFAULT_OUT, Stage1Recipe)
    parser.add_argument("--init-from", default=None,
                        help="start from this trained 7-class CNN's weights, all of them, "
                             "with a fresh optimizer and schedule: a warm restart that trains "
                             "a finished model further; give the --seed and --val-split it "
                             "was trained with")
    cli.add_cnn_options(parser)
    return cli.parse_training_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    config = cli.training_recipe(Stage1Recipe, args)
    cli.check_training_paths(args)
    # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
    cli.run_training(config, args, "cnn_train.py", argv)


if __name__ == "__main__":
    sys.exit(cli.run(main))
