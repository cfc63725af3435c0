"""Command-line plumbing shared by every script: the parent parser and the error wrapper."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ferkit import backend, paths
from ferkit.data import DEFAULT_TRAIN, USAGES, check_data_path
from ferkit.errors import InputError
from ferkit.inference import (DEFAULT_STAGE1, DEFAULT_STAGE2, RUNTIMES, Cascade, runtime_line,
                              stale_handoff)
from ferkit.recipes import AVERAGES, PRECISIONS, recipe_fields
from ferkit.schedule import Schedule
from ferkit.words import counted


class UsageError(InputError):
    """A bad combination of options, found by a script; printed as one line, exit code 2.
    (The library raises ParameterError, naming the parameter rather than the flag.)"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show '(default: X)' only where X tells the reader something (not for flags or None)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


# Where the analysis scripts write their figures by default: git ignores runs/, so a
# default run never replaces the committed figures README shows (made with --out figures).
FIGURES_OUT = Path("runs") / "figures"


def training_parser(description: str, default_out, recipe) -> argparse.ArgumentParser:
    """Options every trainer shares, with the defaults of its recipe class (ferkit.recipes:
    the options are its fields); each script adds its own options. Parse with
    parse_training_args."""
    defaults = recipe_fields(recipe)
    schedule = Schedule.laid_out(defaults["epochs"], defaults["lr"], defaults["cycles"],
                                 defaults["cycle_epochs"], defaults["cycle_lr"])
    parser = argparse.ArgumentParser(
        description=description, formatter_class=HelpFormatter,
        epilog=f"The defaults train {schedule.layout()} (README.md says how long an epoch "
               f"takes on which CPU). --epochs is the whole run: --cycles warm restarts of "
               f"--cycle-epochs come last, the first phase is what remains; when --epochs "
               f"leaves no room for them all, the last warm restarts are left out until the "
               f"first phase has at least --cycle-epochs epochs, and the run says so in one "
               f"line (without warm restarts the model is the best epoch). After every "
               f"epoch the run's state goes to OUT.run/; Ctrl-C, or the end of a session, "
               f"loses at most one epoch: continue with --resume.")
    parser.add_argument("--data", default=str(DEFAULT_TRAIN),
                        help="training data: a CSV 'label,feature' (.gz fine), Kaggle's "
                             "fer2013.csv (its Training rows unless --usage), or an image "
                             "folder ROOT/<class>/")
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to read from Kaggle's fer2013.csv (Usage column; "
                             "default: its Training rows)")
    parser.add_argument("--out", default=default_out and str(default_out),
                        help="the final model (.h5); its sidecar .json, history .csv and "
                             "curves .png go beside it, the run's state in OUT.run/"
                             + ("" if default_out else " (default: models/cnn_specific_<spec>.h5)"))
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the model at --out when this run ends (without it, an "
                             "existing --out is refused)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the unfinished run of --out from its last epoch, with "
                             "the options it started with; with --cycles N (more warm restarts, "
                             "the total growing by them) or --average, also change a run, "
                             "finished or not: it then ends as a run started with those options")
    add_recipe_options(parser)
    parser.set_defaults(**{name: value for name, value in defaults.items()
                           if name not in ("specific", "init_from")})
    return parser


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """The options every recipe has (ferkit.recipes.Recipe's fields); their defaults come
    from the trainer's recipe class."""
    parser.add_argument("--epochs", type=int,
                        help="epochs of the whole run, warm restarts included")
    parser.add_argument("--lr", type=float,
                        help="peak Adam learning rate of the first phase, cosine-decayed to 1%% "
                             "of it")
    parser.add_argument("--cycles", type=int,
                        help="warm restarts at the end of the run, their ends averaged "
                             "(0: one cosine, whose best epoch is the model)")
    parser.add_argument("--cycle-epochs", type=int, help="epochs of each warm restart")
    parser.add_argument("--cycle-lr", type=float,
                        help="peak learning rate of each warm restart, cosine-decayed to 1%% "
                             "of it")
    parser.add_argument("--average", choices=AVERAGES,
                        help="final weights with warm restarts: swa = the mean of the cycle "
                             "ends' weights; ema = Adam's moving average of the weights over "
                             "the whole run (both are scored on validation at every cycle end)")
    parser.add_argument("--ema-momentum", type=float,
                        help="momentum of Adam's moving average per step (kept in every run "
                             "with warm restarts)")
    parser.add_argument("--label-smoothing", type=float,
                        help="share of each face's target spread evenly over all classes "
                             "(0 = plain cross-entropy): FER2013's labels are noisy")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction,
                        help="random flips, shifts (10%%), rotations (10 degrees) and zooms "
                             "(10%%) of the training faces")
    parser.add_argument("--batch-size", type=int, help="images per step")
    parser.add_argument("--val-split", type=float,
                        help="share of the data held out (stratified by class, shuffled with "
                             "--seed) for validation")
    parser.add_argument("--seed", type=int,
                        help="seed for the split, the weights, the order and the augmentation")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="auto = mixed bfloat16 where the CPU has AVX512-BF16/AMX or the "
                             "GPU supports it, else float32; bfloat16/float16 = mixed precision")


# Options whose being given matters, not only their value: with --resume, --cycles and
# --average change the run (the others are the run's own); the specialist's --epochs and
# --lr default to other values when it trains from scratch.
GIVEN_MATTERS = ("epochs", "lr", "cycles", "average")


def parse_training_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with ``given``: the options of GIVEN_MATTERS that the
    command line set (argparse fills a default only into a namespace without the name)."""
    unset = object()
    args = parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(GIVEN_MATTERS, unset)))
    args.given = {name for name in GIVEN_MATTERS if getattr(args, name) is not unset}
    for name in set(GIVEN_MATTERS) - args.given:
        setattr(args, name, parser.get_default(name))
    return args


def training_recipe(recipe, args: argparse.Namespace, **fields):
    """The recipe of class ``recipe`` that the parsed options describe (``fields``: values
    the script resolved itself). Its values are checked here, before TensorFlow loads: a
    bad one is a ParameterError naming the option."""
    names = {f for f in recipe_fields(recipe) if f not in fields}
    return recipe(**{name: getattr(args, name) for name in names if hasattr(args, name)},
                  **fields)


def command_line(script, argv=None) -> str:
    """The command as a user would type it again: `ferkit COMMAND ...` when the ferkit
    command runs it (ferkit.app.command names the program so), else `python3 SCRIPT ...`
    (``script``: the script's name; ``argv``: the options, default sys.argv's)."""
    program = sys.argv[0] if sys.argv[0].startswith("ferkit ") else f"python3 {script}"
    return " ".join([program, *(sys.argv[1:] if argv is None else argv)])


def run_training(config, args: argparse.Namespace, script, argv=None):
    """Train ``config`` as the options say (a new run, or --resume of the run of --out,
    changed by --cycles or --average where given). Returns (model path, sidecar)."""
    from ferkit import training

    if args.resume:
        changes = {name: getattr(args, name) for name in ("cycles", "average")
                   if name in args.given}
        return training.resume(args.out, kind=type(config), verbose=True, **changes)
    return training.train(config, args.data, args.out, usage=args.usage,
                          overwrite=args.overwrite, command=command_line(script, argv),
                          verbose=True)


def check_training_paths(args) -> None:
    """A trainer's paths, checked at the top of its main before any work: --data, the
    models it starts from or tunes against (--init-from, --stage1) and --out (with
    cnn_train_mod.py --tune-only, a trained specialist to re-tune, and no --data read)."""
    for option in ("init_from", "stage1"):  # both a trained 7-class CNN
        if getattr(args, option, None):
            paths.model_file(getattr(args, option), ("stage1",))
    if getattr(args, "tune_only", False):
        paths.model_file(args.out, ("specialist", args.specific))
        return
    if not args.resume:  # a resumed run reads the data it started with
        check_data_path(args.data)
    paths.output_file(args.out, "model (--out)")


def add_data_options(parser: argparse.ArgumentParser, data_help: str) -> None:
    """--data, --usage, --labels and --train-data of the analysis scripts (faces chosen by
    --data, else the validation split recorded in the model's sidecar)."""
    parser.add_argument("--data", default=None, help=data_help)
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to read from Kaggle's fer2013.csv given with --data "
                             "(required when the file holds several)")
    parser.add_argument("--labels", default=None,
                        help="answers 'id,label' for an 'id,feature' file given with --data")
    add_train_data_option(parser)


def add_train_data_option(parser: argparse.ArgumentParser) -> None:
    """--train-data: the file to rebuild a model's validation split from (analysis scripts,
    calibrate.py)."""
    parser.add_argument("--train-data", default=None, metavar="FILE",
                        help="the file the models were trained on, to rebuild their "
                             "validation split from (default: the file each sidecar records, "
                             "else data/train.csv or data/train.csv.gz, each used only when "
                             "it holds the faces the sidecar's data_identity names)")


def scored_faces(args) -> str:
    """What an analysis script's file names say about the faces it scored, so that scoring
    one set never replaces another's figure: 'val' (the model's recorded validation
    split), else the --data file's or folder's name without .csv/.gz, with --usage's split
    (cascade_confusion_test.png, cnn_gradcam_fer2013_PublicTest.png)."""
    if args.data is None:
        return "val"
    name = Path(args.data).name.removesuffix(".gz").removesuffix(".csv")
    name = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "data"
    return name + (f"_{args.usage}" if args.usage else "")


def add_figures_out(parser: argparse.ArgumentParser) -> None:
    """--out of the analysis scripts: a folder git ignores unless the user names one."""
    parser.add_argument("--out", default=str(FIGURES_OUT),
                        help="folder for the PNGs (runs/ is ignored by git; the committed "
                             "figures README shows are made only with an explicit "
                             "--out figures)")


def check_analysis_paths(args, models) -> None:
    """The paths of an analysis script, before any work: its ``models`` as (path, what
    makes it: ferkit.paths.model_file's makes), --data, --labels, --train-data and the
    --out folder."""
    for path, makes in models:
        paths.model_file(path, makes)
    if args.data is not None and args.train_data is not None:
        raise UsageError("--train-data rebuilds the validation split, which --data replaces: "
                         "give one of them")
    for path in (args.data, args.train_data):
        if path is not None:
            check_data_path(path)
    if args.labels is not None:
        paths.input_file(args.labels)
    paths.output_folder(args.out, "PNGs (--out)")


def add_cascade_options(parser: argparse.ArgumentParser) -> None:
    """--stage1, --stage2, --handoff-below and --runtime of the scripts that run the
    cascade."""
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="7-class model")
    parser.add_argument("--stage2", default=str(DEFAULT_STAGE2),
                        help="specialist model; its sidecar says which classes it covers")
    parser.add_argument("--handoff-below", type=float, default=None,
                        help="hand a face to the specialist only when stage 1's confidence "
                             "is at most this (1.0 = always; default: the threshold tuned "
                             "into the specialist's sidecar by cnn_train_mod.py, the one "
                             "tuned with TTA when --tta is on; else 1.0)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="what runs the models: litert = their float32 .tflite copies "
                             "through LiteRT (no TensorFlow import; make a missing one with "
                             "export_tflite.py), litert-int8 = their int8 copies (faster, "
                             "labels may differ slightly; export_tflite.py --int8), keras = "
                             "the .h5 through Keras, auto = litert when every model needed "
                             "has a .tflite made from its current .h5 (hash recorded in the "
                             "sidecar), else keras")



def add_prediction_options(parser: argparse.ArgumentParser) -> None:
    """The cascade's options with --no-cascade and --tta: how predict.py predicts, and
    annotate.py and the benchmarks that measure it."""
    add_cascade_options(parser)
    parser.add_argument("--no-cascade", dest="cascade", action="store_false",
                        help="use stage 1 alone")
    parser.add_argument("--tta", action="store_true",
                        help="average the softmax of each face and its mirror image")

def load_cascade(args) -> Cascade:
    """The cascade add_prediction_options' options describe, loaded (ferkit.inference)."""
    return Cascade.load(args.stage1, args.stage2 if args.cascade else None, args.handoff_below,
                        args.tta, args.runtime, getattr(args, "calibrated", True))


def recognizer(args, **face_options):
    """The ferkit.Recognizer add_prediction_options' options describe; ``face_options``:
    how it finds faces (detector, min_face, min_neighbors, margin)."""
    from ferkit.recognizer import Recognizer

    return Recognizer(args.stage1, args.stage2 if args.cascade else None, cascade=args.cascade,
                      runtime=args.runtime, tta=args.tta, handoff_below=args.handoff_below,
                      calibrated=getattr(args, "calibrated", True), **face_options)


def analysis_faces(args, model_path, sidecar, require_labels: bool = True):
    """The faces an analysis script works on (add_data_options' --data, --usage, --labels,
    --train-data; ferkit.evaluation.faces_for)."""
    from ferkit.evaluation import faces_for

    return faces_for(model_path, sidecar, args.data, args.usage, args.labels, args.train_data,
                     require_labels)


def add_calibration_option(parser: argparse.ArgumentParser) -> None:
    """--no-calibration of the commands whose output holds probabilities."""
    parser.add_argument("--no-calibration", dest="calibrated", action="store_false",
                        help="give the models' raw softmax instead of the probabilities "
                             "calibrated on the validation split (the temperatures in the "
                             "sidecars, fitted by calibrate.py; labels are the same)")


def check_prediction_models(args) -> None:
    """The models add_prediction_options names (stage 1; the specialist unless
    --no-cascade), each with its sidecar, before TensorFlow is imported."""
    paths.model_file(args.stage1, ("stage1",))
    if args.cascade:
        paths.model_file(args.stage2, ("specialist",))


def cascade_changes(stage1_labels, cascade_labels, truth) -> str:
    """What the specialist changed, in words: 'the specialist changed 27 of stage 1's 3589
    labels: 9 from wrong to right, 4 from right to wrong, 14 from one wrong label to
    another'."""
    import numpy as np

    changed = np.asarray(cascade_labels) != np.asarray(stage1_labels)
    fixed = int(np.sum(changed & (cascade_labels == truth)))
    broken = int(np.sum(changed & (stage1_labels == truth)))
    return (f"the specialist changed {int(changed.sum())} of stage 1's "
            f"{counted(len(changed), 'label')}: {fixed} from wrong to right, {broken} from "
            f"right to wrong, {int(changed.sum()) - fixed - broken} from one wrong label to "
            f"another")


def runtime_said(cascade: Cascade) -> str:
    """The cascade's runtime line as a command says it (a requested runtime as its flag)."""
    return runtime_line(cascade.runtime, cascade.runtime_reason, flag)


def announce_cascade(cascade: Cascade, stage1, stage2, handoff_below) -> None:
    """What a script says once its cascade is loaded: the runtime line, and (stderr) the
    command that calibrates it when a calibration is missing (the library warned which),
    and a warning when the specialist's hand-off was tuned against another stage 1."""
    print(runtime_said(cascade))
    if cascade.calibration_notice:
        print(f"calibrate with: {calibrate_command(stage1, None if cascade.stage2 is None else stage2)}",
              file=sys.stderr)
    notice = stale_handoff(stage1, stage2, handoff_below) if cascade.stage2 is not None else None
    if notice:
        print(f"warning: {notice}; retune it with: {retune_command(stage1, stage2)}",
              file=sys.stderr)


def calibrate_command(stage1, specialist=None) -> str:
    """The command that fits stage 1's calibration (and the cascade's, given a specialist)."""
    return f"python3 calibrate.py --stage1 {stage1}" + (f" --stage2 {specialist}"
                                                         if specialist else "")


def retune_command(stage1, specialist) -> str:
    """The command that retunes a specialist's hand-off against another stage 1."""
    return f"python3 cnn_train_mod.py --tune-only --stage1 {stage1} --out {specialist}"


def add_cnn_options(parser: argparse.ArgumentParser) -> None:
    """Architecture knobs of the CNN trainers (stage 1 and the specialist); their defaults
    come from the trainer's recipe."""
    parser.add_argument("--conv-dropout", type=float,
                        help="dropout after each group of three convolutions")
    parser.add_argument("--dense-dropout", type=float,
                        help="dropout after each hidden dense layer")
    parser.add_argument("--bn-momentum", type=float,
                        help="BatchNorm moving-average momentum (lower it for very short runs)")
    parser.add_argument("--no-bn-recalibration", dest="recalibrate_bn", action="store_false",
                        default=True,
                        help="do not re-estimate the final weights' BatchNorm statistics on "
                             "the plain training faces (with dropout off) at the end")


def summary(doc: str) -> str:
    """A script's --help description: its docstring's first paragraph, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


# Library parameters whose option is not named after them.
FLAGS = {"labels_path": "--labels"}


def flag(parameter: str) -> str:
    """The option that sets a library parameter: ``val_split`` -> ``--val-split``."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def make_command(kind: str, *details) -> str:
    """The command that makes a missing or unfit file a library error names
    (InputError.makes): a model of a ``kind``, or a model's LiteRT copy."""
    if kind == "tflite":
        model_path, variant = details
        return f"python3 export_tflite.py {'--int8 ' if variant == 'int8' else ''}{model_path}"
    if kind == "specialist":
        return f"python3 cnn_train_mod.py --specific {details[0] if details else '0_2_4_6'}"
    return {"stage1": "python3 cnn_train.py", "dnn": "python3 dnn_train.py"}.get(kind, "")


def error_line(err: InputError) -> str:
    """The one line a user sees for ``err``: its message's first line, each library
    parameter it names (a ParameterError's own, and InputError.parameters) shown as the
    flag that sets it, and the command that makes what it finds missing (make_command)."""
    text = err.render(flag, make_command) if isinstance(err, InputError) else str(err)
    return text.splitlines()[0] if text else err.__class__.__name__


def run(main, argv=None) -> int:
    """Run main(argv). The errors a user can fix (InputError, raised where the toolkit
    checks input) become one line on stderr and exit code 2; Ctrl-C becomes one line and
    exit code 130, as interrupted programs exit. Any other exception is a bug and keeps
    its traceback. TensorFlow, if the script comes to import it, is imported quietly
    (ferkit.backend.quiet_tensorflow): a script owns its process, a library does not."""
    backend.quiet_tensorflow()
    try:
        return main(argv) or 0
    except InputError as err:
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # an Interrupted says what was kept
        sys.stdout.flush()
        print(str(err) or "interrupted", file=sys.stderr)
        return 130
