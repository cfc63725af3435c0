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

from ferkit import recorded_path
from ferkit.app import cli
from ferkit.files import read_sidecar, write_sidecar
from ferkit.labels import DEFAULT_SPECIFIC, parse_specific, specific_name
from ferkit.litert import file_sha256
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
    # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
    from ferkit.inference import load_stage1

    stage1 = args.stage1 or args.init_from
    if args.tune_only:
        if stage1 is None:
            raise cli.UsageError("--tune-only: expected --stage1, the 7-class CNN to tune the "
                                 "hand-off against, found none")
        record_handoff(stage1, args.out, read_sidecar(args.out))
        return
    if stage1 is not None:
        load_stage1(stage1)  # a bad stage 1 fails now, not after the training
    out, sidecar = cli.run_training(config, args, "cnn_train_mod.py", argv)
    if stage1 is not None:
        record_handoff(stage1, out, sidecar)


def record_handoff(stage1, out, sidecar):
    """Record in the specialist's sidecar the hand-off thresholds that make the cascade
    most accurate on stage 1's validation split, without and with flip TTA
    (ferkit.evaluation.tune_handoff), and which stage 1 they were tuned against (its path
    and the SHA-256 of its .h5: a cascade with another stage 1 can then tell)."""
    from ferkit.evaluation import fit_cascade_calibration, record_calibration, tune_handoff

    tuned, n_faces = tune_handoff(stage1, out)
    (threshold, accuracy), (threshold_tta, accuracy_tta) = tuned[False], tuned[True]
    print(f"cascade accuracy on {n_faces} validation faces of {stage1}, by hand-off threshold:")
    print("  threshold  plain    flip TTA")
    for t in accuracy:
        what = {0.0: " (stage 1 alone)", 1.0: " (always hand over)"}.get(t, "")
        print(f"  {t:4.2f}       {accuracy[t]:.4f}{'*' if t == threshold else ' '}  "
              f"{accuracy_tta[t]:.4f}{'*' if t == threshold_tta else ' '}{what}")
    sidecar["handoff_below"] = threshold
    sidecar["handoff_below_tta"] = threshold_tta
    sidecar["stage1"] = recorded_path(stage1, out)
    sidecar["stage1_sha256"] = file_sha256(stage1)
    sidecar["handoff_tuning"] = {"stage1": recorded_path(stage1, out), "faces": n_faces,
                                 "accuracy": accuracy, "accuracy_tta": accuracy_tta}
    write_sidecar(out, sidecar)
    print(f"hand-off thresholds {threshold:g} (plain), {threshold_tta:g} (flip TTA; * = chosen) "
          f"recorded in {Path(out).with_suffix('.json')}")
    # The cascade's probabilities changed with its thresholds: calibrate them again.
    entry = fit_cascade_calibration(stage1, out)
    record_calibration(out, entry, "cascade_calibration")
    print(f"cascade calibration recorded: validation ECE {entry['plain']['before']['ece']:.2%}"
          f" -> {entry['plain']['after']['ece']:.2%} ({entry['tta']['before']['ece']:.2%} -> "
          f"{entry['tta']['after']['ece']:.2%} with flip TTA)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
