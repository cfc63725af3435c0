"""Train the specialist CNN on a subset of classes: the second stage of the cascade.

Usage:
    python3 cnn_train_mod.py --specific 0_2_4_6     # Angry, Fear, Sad, Neutral, from models/cnn.h5
    python3 cnn_train_mod.py --specific 2_4 --init-from none     # from scratch
    python3 cnn_train_mod.py --tune-only --stage1 models/cnn.h5  # re-tune the hand-off only

Same body as the stage-1 CNN with one output per listed class; default output
models/cnn_specific_<spec>.h5, whose sidecar records the classes in output order, which
is how predict.py learns what the specialist covers. By default it grows from stage 1
(models/cnn.h5, when there) with the same recipe machinery as cnn_train.py
(ferkit.recipes.SpecialistRecipe): 18 epochs, a short first phase at the fine-tuning rate,
then 4 warm restarts of 3 epochs averaged at their ends.

With a stage 1 (--stage1, or the --init-from model), training ends by tuning the cascade:
on stage 1's validation split, the hand-off threshold (hand a face over only when stage 1
is at most this confident) under which the cascade is most accurate is written into the
specialist's sidecar as `handoff_below` (and, tuned on flip-TTA probabilities, as
`handoff_below_tta`), which predict.py and confusion.py then use, with the stage 1 it was
tuned against (`stage1`, and `stage1_sha256`, the SHA-256 of its .h5).
"""
import sys
from pathlib import Path

from ferkit.app import cli
from ferkit.labels import DEFAULT_SPECIFIC, parse_specific, specific_name
from ferkit.recipes import SPECIALIST_FROM_SCRATCH, SpecialistRecipe


def parse_args(argv=None):
    parser = cli.training_parser(cli.summary(__doc__), None, SpecialistRecipe)
    parser.add_argument("--specific", default=DEFAULT_SPECIFIC,
                        help="classes to specialize in: digits 0-6 joined by '_' "
                             "(0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral)")
    parser.add_argument("--init-from", default=SpecialistRecipe.init_from,
                        help="trained 7-class CNN to start from (its output layer's weights for "
                             "the listed classes too: the specialist starts as that CNN "
                             "restricted to its classes), on the --seed and --val-split it was "
                             "trained with; 'none' trains from scratch (--epochs and --lr then "
                             f"default to {SPECIALIST_FROM_SCRATCH['epochs']} and "
                             f"{SPECIALIST_FROM_SCRATCH['lr']:g}, else "
                             f"{SpecialistRecipe.epochs} and {SpecialistRecipe.lr:g})")
    parser.add_argument("--stage1", default=None,
                        help="7-class CNN to tune the cascade's hand-off threshold against, "
                             "on its validation split (default: the --init-from model; "
                             "without either, no tuning: the cascade always hands over)")
    parser.add_argument("--tune-only", action="store_true",
                        help="do not train: re-tune the hand-off threshold of the specialist "
                             "at --out against --stage1 (after stage 1 was retrained)")
    cli.add_cnn_options(parser)
    args = cli.parse_training_args(parser, argv)
    args.out = args.out or str(Path("models") / f"cnn_specific_{args.specific}.h5")
    if args.init_from.lower() == "none":
        args.init_from = None
        for key in {"epochs", "lr"} - args.given:
            setattr(args, key, SPECIALIST_FROM_SCRATCH[key])
    return args


def main(argv=None):
    args = parse_args(argv)
    classes = parse_specific(args.specific)
    args.specific = specific_name(classes)
    config = cli.training_recipe(SpecialistRecipe, args, specific=tuple(classes))
    cli.check_training_paths(args)
    if args.tune_only:
        if config.handoff_stage1 is None:
            raise cli.UsageError("--tune-only: expected --stage1, the 7-class CNN to tune the "
                                 "hand-off against, found none")
        # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
        from ferkit.evaluation import record_handoff

        record_handoff(config.handoff_stage1, args.out)
        return
    # Training ends by tuning the hand-off against the stage 1 (ferkit.training).
    cli.run_training(config, args, "cnn_train_mod.py", argv)


if __name__ == "__main__":
    sys.exit(cli.run(main))
