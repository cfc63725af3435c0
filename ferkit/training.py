"""The one training routine shared by cnn_train.py, cnn_train_mod.py and dnn_train.py: the
whole recipe in one job.

Story: load faces -> keep the chosen classes -> stratified train/validation split -> build
and compile under the chosen precision -> a first cosine phase, then short cosine warm
restarts ("cycles"), with a running average of the weights at each cycle end (stochastic
weight averaging, Izmailov et al. 2018) or Adam's own moving average of the weights
(``--average ema``) -> BatchNorm statistics re-estimated for the final weights on the plain
training faces -> the model, its sidecar, history and curves written atomically.

Without cycles the final model is the best-validation epoch (the DNN's recipe). After
every epoch the run's whole state (weights, optimizer, running average, position in the
schedule, history) goes to ``OUT.run/``, so ``--resume`` continues exactly where an
interrupted run stopped, in this session or the next; the model at ``--out`` is written
only when the run ends, so a run never touches a model it did not make.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas
import sklearn

from ferkit import ROOT, figures, recorded_path
from ferkit.averaging import recalibrate_batchnorm
from ferkit.backend import keras, tf
from ferkit.cli import AVERAGES, UsageError
from ferkit.data import (IMAGE_SIZE, faces_identity, load_training_faces, select_classes,
                      train_val_rows)
from ferkit.files import read_sidecar, write_atomically
from ferkit.inference import predict_probs
from ferkit.litert import export_tflite
from ferkit.models import NORMALIZATION, build_model, class_names, load_model, save_model
from ferkit.progress import progress_verbosity

# Augmentation strengths: FER2013 faces are roughly aligned, so only small moves help.
MAX_SHIFT = 0.1      # share of the image size
MAX_ROTATION = 10.0  # degrees
MAX_ZOOM = 0.1       # +-10 %
FINAL_LR_SHARE = 0.01  # each cosine ends at 1% of its peak rate
# Faces whose BatchNorm statistics the running average gets for its validation score at a
# cycle end: enough for stable statistics, a fraction of a full pass (the final model gets
# all training faces).
AVERAGE_CHECK_FACES = 8192


# --- the machine ---------------------------------------------------------------------------

def configure_threads() -> None:
    """On small CPUs one op at a time using every core beats several ops fighting for them.

    TensorFlow fixes its pools when it first runs an op; after that (a caller that already
    used TensorFlow, such as a test) the existing pools are kept.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


def cpu_has_fast_bfloat16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str) -> str:
    """--precision value -> Keras dtype policy name."""
    if name == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            capability = tf.config.experimental.get_device_details(gpus[0]).get(
                "compute_capability", (0, 0))
            return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
        return "mixed_bfloat16" if cpu_has_fast_bfloat16() else "float32"
    return {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[name]


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under this Keras dtype policy, then restore the caller's: a layer keeps
    the policy it was built with, and the rest of the process (tests, predict) stays float32."""
    caller = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(caller)


def default_strategy() -> tf.distribute.Strategy:
    """All visible GPUs when there are several, else the default (one device) strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def machine_description() -> str:
    flags = "AVX512-BF16" if cpu_has_fast_bfloat16() else "no AVX512-BF16/AMX"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores ({flags}), "
            f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")


def library_versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


# --- the schedule --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Schedule:
    """A first cosine phase of ``epochs`` epochs from ``lr``, then ``cycles`` warm restarts
    of ``cycle_epochs`` epochs each from ``cycle_lr``; every cosine ends at 1% of its peak.
    Epochs are counted from 0 over the whole run; the rate is constant within an epoch."""

    epochs: int
    lr: float
    cycles: int = 0
    cycle_epochs: int = 1
    cycle_lr: float = 0.0

    @property
    def total(self) -> int:
        return self.epochs + self.cycles * self.cycle_epochs

    def position(self, epoch: int) -> tuple[int, int, int]:
        """(cycle, epoch within it, its length): cycle 0 is the first phase."""
        if epoch < self.epochs:
            return 0, epoch, self.epochs
        cycle, within = divmod(epoch - self.epochs, self.cycle_epochs)
        return cycle + 1, within, self.cycle_epochs

    def learning_rate(self, epoch: int) -> float:
        cycle, within, length = self.position(epoch)
        peak = self.lr if cycle == 0 else self.cycle_lr
        progress = within / max(length - 1, 1)
        return peak * (FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * progress)))

    def ends_cycle(self, epoch: int) -> bool:
        """Whether ``epoch`` is the last of a warm-restart cycle (not of the first phase)."""
        cycle, within, length = self.position(epoch)
        return cycle > 0 and within == length - 1

    def describe(self, epoch: int) -> str:
        cycle, within, length = self.position(epoch)
        where = (f"phase 1 epoch {within + 1}/{length}" if cycle == 0 else
                 f"cycle {cycle}/{self.cycles} epoch {within + 1}/{length}")
        return f"epoch {epoch + 1}/{self.total} ({where})"


def schedule_of(args) -> Schedule:
    return Schedule(args.epochs, args.lr, args.cycles, args.cycle_epochs, args.cycle_lr)


def check_options(args) -> None:
    """The numeric options, checked before any work."""
    for name in ("epochs", "batch_size", "cycle_epochs"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')}: expected a positive integer, "
                             f"found {getattr(args, name)}")
    if args.cycles < 0:
        raise UsageError(f"--cycles: expected 0 or more warm restarts, found {args.cycles}")
    for name in ("lr", "cycle_lr"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')}: expected a positive learning rate, "
                             f"found {getattr(args, name)}")
    if not 0 <= args.label_smoothing < 1:
        raise UsageError(f"--label-smoothing: expected a share from 0 up to (not including) "
                         f"1, found {args.label_smoothing}")
    if not 0 < args.ema_momentum < 1:
        raise UsageError(f"--ema-momentum: expected a momentum between 0 and 1, found "
                         f"{args.ema_momentum}")


# --- data ----------------------------------------------------------------------------------

@dataclasses.dataclass
class TrainingData:
    """uint8 (N, 48, 48) images and labels renumbered 0..K-1 in the order of ``classes``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    classes: list
    identity: str  # faces_identity of the whole labelled file the split was drawn from


def prepare_data(args, classes) -> TrainingData:
    """Load ``args.data``, split it as every model of this data and seed is split (over all
    seven classes, then narrowed to ``classes``), and print the counts."""
    faces = load_training_faces(args.data, args.usage)
    train_rows, val_rows = train_val_rows(faces.labels, classes, args.val_split, args.seed)
    data = TrainingData(*select_classes(faces.images[train_rows], faces.labels[train_rows],
                                        classes),
                        *select_classes(faces.images[val_rows], faces.labels[val_rows],
                                        classes),
                        list(classes), faces_identity(faces))
    print(f"data: {args.data}: {len(train_rows) + len(val_rows)} faces of {len(classes)} "
          f"classes ({len(train_rows)} training, {len(val_rows)} validation)")
    counts = zip(class_names(classes), np.bincount(data.train_labels, minlength=len(classes)),
                 np.bincount(data.val_labels, minlength=len(classes)))
    for name, n_train, n_val in counts:
        print(f"  {name:<9} {n_train:6d} training {n_val:6d} validation")
    return data


def augment_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random flip, shift, rotation and zoom of a (B, 48, 48, 1) float batch, as one affine
    warp per image (one bilinear resampling instead of four)."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    def uniform(i, low, high):
        return tf.random.stateless_uniform([batch], seeds[i], low, high)
    flip = tf.where(uniform(0, 0.0, 1.0) < 0.5, -1.0, 1.0)
    angle = uniform(1, -MAX_ROTATION, MAX_ROTATION) * math.pi / 180
    scale = uniform(2, 1 - MAX_ZOOM, 1 + MAX_ZOOM)
    shift_x = uniform(3, -MAX_SHIFT, MAX_SHIFT) * IMAGE_SIZE
    shift_y = uniform(4, -MAX_SHIFT, MAX_SHIFT) * IMAGE_SIZE
    # Output pixel p maps to input pixel c + A (p - c) - shift, with c the image centre and
    # A = rotation / scale with the x axis mirrored when flipping.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos * flip, -sin
    b0, b1 = sin * flip, cos
    centre = (IMAGE_SIZE - 1) / 2
    a2 = centre - a0 * centre - a1 * centre - shift_x
    b2 = centre - b0 * centre - b1 * centre - shift_y
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[IMAGE_SIZE, IMAGE_SIZE],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def make_dataset(images, labels, batch_size, num_classes, augment=False, seed=None,
                 epoch=0) -> tf.data.Dataset:
    """uint8 (N, 48, 48) + int labels -> batches of float32 (B, 48, 48, 1) and one-hot
    float32 (B, num_classes) targets (the categorical loss, which can smooth them).

    With a ``seed``, the order is shuffled and the augmentation drawn from (seed, epoch)
    alone, never from how many epochs this process has run: a resumed run then sees
    exactly the epochs an uninterrupted one would. Without, the order is the file's (for
    validation). The arrays stay uint8 in memory; casting, augmentation and batching happen
    in the graph, and the next batch is prefetched while the model trains on this one.
    """
    if seed is not None:
        order = np.random.default_rng([seed, epoch]).permutation(len(images))
        images, labels = images[order], labels[order]
    data = tf.data.Dataset.from_tensor_slices((images[..., None], labels)).batch(batch_size)
    data = data.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        stream = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
        counter = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(stream, tf.int64), i]))
        data = tf.data.Dataset.zip((data, counter)).map(
            lambda xy, s: (augment_batch(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


# --- the model -----------------------------------------------------------------------------

def build_for_training(architecture: str, num_classes: int, build_options: dict, lr: float,
                       precision: str = "auto", label_smoothing: float = 0.0,
                       ema_momentum: float | None = None, strategy=None):
    """The model as train() fits it, built under the resolved precision and the distribution
    strategy, then compiled (compile_for_training). The benchmark (bench/throughput.py)
    times this same model. Returns (model, dtype policy name, strategy)."""
    policy = resolve_precision(precision)
    strategy = strategy or default_strategy()
    with dtype_policy(policy), strategy.scope():
        model = build_model(architecture, num_classes, **build_options)
        compile_for_training(model, lr, label_smoothing, ema_momentum)
    return model, policy, strategy


def compile_for_training(model: keras.Model, lr: float, label_smoothing: float = 0.0,
                         ema_momentum: float | None = None) -> None:
    """Adam (with its moving average of the weights when ``ema_momentum`` is given),
    categorical cross-entropy on one-hot targets (smoothed by ``label_smoothing``), accuracy.
    Keras' default execution: a traced graph, XLA off on machines without an accelerator."""
    optimizer = AdamKeepingAverage(lr, use_ema=ema_momentum is not None,
                                   ema_momentum=ema_momentum or 0.99)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])


class AdamKeepingAverage(keras.optimizers.Adam):
    """Adam whose moving average of the weights (``use_ema``) is kept beside the weights,
    never swapped in: Keras' fit() ends by overwriting the weights with the average, and
    with one fit() per epoch every epoch would restart from the average."""

    def finalize_variable_values(self, var_list):
        pass


def moving_average_weights(model: keras.Model) -> list[np.ndarray]:
    """``model.get_weights()`` with each trainable weight replaced by Adam's moving average
    of it (the BatchNorm statistics stay the live ones)."""
    weights = {v.path: v.numpy() for v in model.weights}
    for variable, average in zip(model.trainable_variables,
                                 model.optimizer._model_variables_moving_average):
        weights[variable.path] = average.numpy()
    return [weights[v.path] for v in model.weights]


def copy_body_weights(source: keras.Model, target: keras.Model, source_classes=None,
                      target_classes=None) -> None:
    """Copy every layer's weights but the logits' from source to target (same body).

    When the source covers all of the target's classes, the logits also start as the
    source's own columns for those classes: the target then starts as the source
    restricted to its classes, so fine-tuning (at a small learning rate) does not first
    have to relearn an output layer from random weights.
    """
    for layer in target.layers:
        if layer.name != "logits" and layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    if target_classes is not None and set(target_classes) <= set(source_classes or ()):
        columns = [list(source_classes).index(c) for c in target_classes]
        kernel, bias = source.get_layer("logits").get_weights()
        target.get_layer("logits").set_weights([kernel[:, columns], bias[columns]])


def check_same_split(args, source_path, identity: str) -> None:
    """A run that starts from a trained model (--init-from: a warm restart, or a specialist
    grown from stage 1) must hold out the faces that model held out: on other data, or with
    another --seed or --val-split, it would validate on faces its starting weights trained
    on, and the validation accuracy that picks its best epoch would flatter it."""
    source = read_sidecar(source_path)
    for option, ours, theirs in (("--seed", args.seed, source.get("seed")),
                                 ("--val-split", args.val_split, source.get("val_split"))):
        if theirs is not None and ours != theirs:
            raise UsageError(f"--init-from {source_path}: expected the {option} it was trained "
                             f"with, {theirs}, found {ours} (it would validate on faces the "
                             f"model trained on)")
    theirs = source.get("data_identity")
    if theirs is not None and theirs != identity:
        raise UsageError(f"--init-from {source_path}: expected the faces it was trained on "
                         f"({source.get('data')}), found other faces in {args.data} (it "
                         f"would validate on faces the model trained on)")


# --- the run's state -----------------------------------------------------------------------

PATH_OPTIONS = ("data", "out", "init_from", "stage1")  # options that name files


def recorded_config(args) -> dict:
    """The options of a run as its sidecar records them: file paths as recorded_path
    writes them, so that a shipped sidecar names no folder of the machine it trained on."""
    config = dict(vars(args))
    for key in PATH_OPTIONS:
        if config.get(key):
            config[key] = recorded_path(config[key])
    return config


def run_folder(out) -> Path:
    """Where a run keeps its state beside its model: models/cnn.h5 -> models/cnn.run/."""
    return Path(out).with_suffix(".run")


def command_line(script: str, argv) -> str:
    """The command as a user would type it again from the checkout."""
    script = Path(script)
    if script.is_absolute() and script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return " ".join(["python3", str(script), *argv])


def command_with(command: str, option: str, value) -> str:
    """``command`` (as command_line writes it) with ``option`` set to ``value``."""
    words, kept = command.split(" "), []
    while words:
        word = words.pop(0)
        if word == option:
            words.pop(0)
        elif not word.startswith(option + "="):
            kept.append(word)
    return " ".join([*kept, option, str(value)])


def resume_changes(argv) -> dict:
    """The options a resumed run takes from the command line, not from its record (each
    changes how the run ends, not what it has done): {option: value} for those given."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cycles", type=int)
    parser.add_argument("--average", choices=AVERAGES)
    given = vars(parser.parse_known_args(argv)[0])
    return {option: value for option, value in given.items() if value is not None}


def check_fresh_start(args) -> None:
    """A run never touches a model it did not make: an existing --out (or the state of an
    unfinished run beside it) is only continued with --resume or replaced with --overwrite."""
    out, folder = Path(args.out), run_folder(args.out)
    if args.resume or args.overwrite:
        return
    if out.exists():
        raise UsageError(f"--out {out}: a model is already there; use --resume to continue "
                         f"its run, --overwrite to replace it, or another --out")
    if (folder / "state.json").exists() and not RunState.open(out).finished:
        raise UsageError(f"--out {out}: an unfinished run is in {folder}; use --resume to "
                         f"continue it, --overwrite to start afresh, or another --out")


class RunState:
    """The state of a run in ``OUT.run/``, written after every epoch: ``state.json`` (the
    options, the command, the position in the schedule, the history, the best epoch) and
    the arrays it names (every model variable, BatchNorm statistics and dropout's seed
    states included; every optimizer variable; the running average), each file written
    atomically, the arrays before the JSON that names them."""

    def __init__(self, out, info: dict):
        self.folder = run_folder(out)
        self.info = info

    @classmethod
    def start(cls, out, info: dict) -> RunState:
        folder = run_folder(out)
        if folder.exists():  # --overwrite: the old run's state goes, its model stays until the end
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return cls(out, info)

    @classmethod
    def open(cls, out) -> RunState:
        path = run_folder(out) / "state.json"
        if not path.exists():
            raise UsageError(f"--resume: expected the state of a run in {path.parent}, found "
                             f"none (start a run without --resume)")
        return cls(out, json.loads(path.read_text()))

    @property
    def epochs_done(self) -> int:
        return self.info["epochs_done"]

    def save(self, model: keras.Model, average: list | None) -> None:
        arrays = {f"model/{i}": v.numpy() for i, v in enumerate(model.variables)}
        arrays.update({f"optimizer/{i}": v.numpy()
                       for i, v in enumerate(model.optimizer.variables)})
        for i, w in enumerate(average or []):
            arrays[f"average/{i}"] = w
        name = f"state-{self.epochs_done:04d}.npz"
        # (the temporary file's name ends in .npz, so savez writes to it as named)
        write_atomically(self.folder / name, lambda tmp: np.savez(tmp, **arrays))
        previous = self.info.get("arrays")
        self.info["arrays"] = name
        self.write_info()
        if previous and previous != name:
            (self.folder / previous).unlink(missing_ok=True)

    def write_info(self) -> None:
        text = json.dumps(self.info, indent=1, default=str)
        write_atomically(self.folder / "state.json", lambda tmp: Path(tmp).write_text(text))

    @property
    def finished(self) -> bool:
        return self.info.get("finished", False)

    def mark_finished(self) -> None:
        """A finished run keeps its last state: ``--resume`` with ``--cycles N`` or
        ``--average`` can still change it."""
        self.info["finished"] = True
        self.write_info()

    def change(self, changes: dict) -> None:
        """More warm restarts (``cycles``) or the other final average (``average``). Neither
        changes what the run has done: a cycle's rates depend only on its own position, and
        Adam's moving average is kept in every run with cycles (the running average of the
        cycle ends beside it with swa). So the run ends as one started with these options
        would, and its sidecar names that command. A run without cycles has nothing to
        change, and once finished nothing to resume: both are refused."""
        args = self.info["args"]
        changes = {option: value for option, value in changes.items() if value != args[option]}
        if args["cycles"] == 0 and (changes or self.finished):
            finished = "it has finished, and " if self.finished else ""
            raise UsageError(f"--resume: the run in {self.folder} has no warm restarts "
                             f"(its model is its best epoch): {finished}neither --cycles nor "
                             f"--average can change it")
        if not changes:
            return
        if changes.get("cycles", args["cycles"]) < args["cycles"]:
            raise UsageError(f"--cycles {changes['cycles']}: expected more warm restarts than "
                             f"the {args['cycles']} of the run in {self.folder} (with "
                             f"--resume, --cycles only adds warm restarts)")
        schedule = schedule_of(argparse.Namespace(**args))
        if changes.get("average") == "swa" and any(
                schedule.ends_cycle(epoch) for epoch in range(self.epochs_done)):
            raise UsageError(f"--average swa: the run in {self.folder} was started with "
                             f"--average ema and kept no average of the cycle ends it has "
                             f"passed")
        command = self.info["command"]
        for option, value in changes.items():
            args[option] = self.info["sidecar"]["config"][option] = value
            command = command_with(command, f"--{option}", value)
        self.info["command"] = self.info["sidecar"]["command"] = command
        self.info["sidecar"].setdefault("resumed_with", []).append(
            {"after_epoch": self.epochs_done, **changes})
        self.info["finished"] = False

    def restore(self, model: keras.Model) -> list | None:
        """Put the saved variables back into ``model`` and its optimizer; return the
        running average (None before the first cycle end)."""
        with np.load(self.folder / self.info["arrays"]) as saved:
            arrays = dict(saved)
        model.optimizer.build(model.trainable_variables)
        for prefix, variables in (("model", model.variables),
                                  ("optimizer", model.optimizer.variables)):
            for i, variable in enumerate(variables):
                variable.assign(arrays[f"{prefix}/{i}"])
        average = [arrays[f"average/{i}"] for i in range(len(model.weights))
                   if f"average/{i}" in arrays]
        return average or None

    def save_weights(self, model: keras.Model, name: str) -> Path:
        """A plain float32 copy of the model's weights in the run folder (best epoch, cycle
        ends), loadable with ferkit.models.load_model and averageable with average_weights.py."""
        path = self.folder / name
        save_model(float32_copy(model.get_weights(), self.info["sidecar"]), path,
                   self.info["sidecar"])
        return path


def float32_copy(weights, sidecar: dict) -> keras.Model:
    """A float32 model of the sidecar's build holding ``weights``."""
    copy = build_model(sidecar["architecture"], len(sidecar["classes"]), **sidecar["build"])
    copy.set_weights(weights)
    return copy


# --- the story -----------------------------------------------------------------------------

def train(args, architecture: str, classes, script: str = None,
          argv=None) -> tuple[Path, dict]:
    """Run the recipe ``args`` describe (or continue it, with ``args.resume``) and write the
    final model to ``args.out``. Returns (the model's path, its sidecar).

    ``script``, ``argv``: the command that started the run, recorded in the sidecar (a
    resumed run records the command it continues, and is built from its options).
    """
    check_options(args)
    check_fresh_start(args)
    if args.resume:
        state = RunState.open(args.out)
        state.change(resume_changes(sys.argv[1:] if argv is None else argv))
        if state.finished:
            raise UsageError(f"--resume: the run in {state.folder} has finished; give "
                             f"--cycles N (more than its {state.info['args']['cycles']}) to "
                             f"add warm restarts to it, or the other --average")
        args = argparse_namespace(state.info["args"], resume=True)
        print(f"resuming {state.folder} after epoch {state.epochs_done} with the options it "
              f"started with: {state.info['command']}")
    init_from = getattr(args, "init_from", None)  # the DNN has no such option
    configure_threads()
    keras.utils.set_random_seed(args.seed)
    data = prepare_data(args, classes)
    if init_from and not args.resume:
        if Path(init_from).resolve() == Path(args.out).resolve():
            raise UsageError(f"--out {args.out}: expected another file than --init-from's "
                             f"(this run would replace the model it starts from)")
        check_same_split(args, init_from, data.identity)

    build_options = build_options_of(architecture, args)
    model, policy, _ = build_for_training(
        architecture, len(classes), build_options, args.lr, args.precision,
        # Adam's moving average is kept in every run with cycles, so that each cycle end
        # scores both averages on validation, whichever --average keeps.
        args.label_smoothing, args.ema_momentum if args.cycles else None)
    print(f"model: {architecture}, {model.count_params():,} parameters, precision {policy}")
    if args.resume:
        if state.info["sidecar"]["classes"] != list(classes):
            raise UsageError(f"--resume: the run in {state.folder} trains classes "
                             f"{state.info['sidecar']['classes']}, not {list(classes)}")
        if state.info["data_identity"] != data.identity:
            raise UsageError(f"--resume: expected the faces the run started on in "
                             f"{args.data}, found other faces")
        average = state.restore(model)
    else:
        state = RunState.start(args.out, new_run_info(args, architecture, classes,
                                                      build_options, policy, data, model,
                                                      script, argv))
        if init_from:
            source, source_info = load_model(init_from)
            copy_body_weights(source, model, source_info["classes"], list(classes))
        average = None

    average = fit_on_schedule(args, state, model, data, average)
    return finish(args, state, model, data, average,
                  recalibrate_bn=getattr(args, "recalibrate_bn", False))


def build_options_of(architecture: str, args) -> dict:
    """The builder's keyword options from a trainer's arguments."""
    if architecture == "cnn":
        return {"conv_dropout": args.conv_dropout, "dense_dropout": args.dense_dropout,
                "bn_momentum": args.bn_momentum}
    return {"dense_dropout": args.dense_dropout}


def argparse_namespace(recorded: dict, **changes):
    return argparse.Namespace(**{**recorded, **changes})


def new_run_info(args, architecture, classes, build_options, policy, data, model, script,
                 argv) -> dict:
    """state.json of a new run: the options and what the final sidecar will carry."""
    init_from = getattr(args, "init_from", None)
    prior_epochs = 0
    if init_from:  # a warm restart goes on with its source's data stream, not replays it
        source = read_sidecar(init_from)
        prior_epochs = source.get("prior_epochs", 0) + source.get("epochs_run", 0)
    argv = sys.argv[1:] if argv is None else list(argv)
    sidecar = {
        "architecture": architecture, "classes": list(classes),
        "class_names": class_names(classes), "build": build_options,
        "input_shape": [IMAGE_SIZE, IMAGE_SIZE, 1], "normalization": NORMALIZATION,
        "command": command_line(script or sys.argv[0], argv),
        "config": recorded_config(args),
        "init_from": recorded_path(init_from) if init_from else None,
        "prior_epochs": prior_epochs, "seed": args.seed, "val_split": args.val_split,
        "data": recorded_path(args.data), "usage": args.usage,
        "data_identity": data.identity, "precision": policy,
        "parameters": model.count_params(), "machine": machine_description(),
        "versions": library_versions(),
    }
    # Paths absolute, so that --resume works from any folder.
    options = {key: str(Path(value).resolve()) if key in PATH_OPTIONS and value else value
               for key, value in vars(args).items()}
    return {"args": options, "command": sidecar["command"], "sidecar": sidecar,
            "data_identity": data.identity, "epochs_done": 0, "history": [],
            "best": {"epoch": None, "val_accuracy": -1.0}, "averaged": 0,
            "wall_time_s": 0.0}


def fit_on_schedule(args, state: RunState, model: keras.Model, data: TrainingData,
                    average: list | None) -> list | None:
    """Train epoch by epoch from where ``state`` stands to the end of the schedule, saving
    the state after each epoch, the best epoch's weights, and each cycle end's weights and
    running average; returns the running average of the cycle ends (None without).
    Ctrl-C: says what was kept and how to continue, then re-raises."""
    schedule = schedule_of(args)
    num_classes = len(data.classes)
    val_data = make_dataset(data.val_images, data.val_labels, 2 * args.batch_size, num_classes)
    prior = state.info["sidecar"]["prior_epochs"]
    started_at = state.epochs_done
    began = time.time()
    try:
        for epoch in range(state.epochs_done, schedule.total):
            tick = time.time()
            lr = schedule.learning_rate(epoch)
            model.optimizer.learning_rate.assign(lr)
            train_data = make_dataset(data.train_images, data.train_labels, args.batch_size,
                                      num_classes, augment=args.augment, seed=args.seed,
                                      epoch=prior + epoch)
            logs = model.fit(train_data, validation_data=val_data, epochs=1, shuffle=False,
                             verbose=1 if progress_verbosity() == 1 else 0).history
            row = {"epoch": epoch + 1, "cycle": schedule.position(epoch)[0],
                   "learning_rate": lr, **{k: float(v[-1]) for k, v in logs.items()}}
            note = ""
            if row["val_accuracy"] > state.info["best"]["val_accuracy"]:
                state.info["best"] = {"epoch": epoch + 1, "val_accuracy": row["val_accuracy"]}
                state.save_weights(model, "best.h5")
                note = " (best so far)"
            if schedule.ends_cycle(epoch):
                state.save_weights(model, f"cycle{schedule.position(epoch)[0]:02d}_end.h5")
                if args.average == "swa":
                    average = running_average(average, model.get_weights(),
                                              state.info["averaged"])
                    state.info["averaged"] += 1
                    row["average_val_accuracy"] = average_accuracy(
                        state.info["sidecar"], average, data)
                    note += (f"; average of {state.info['averaged']} cycle end(s): "
                             f"validation {row['average_val_accuracy']:.4f}")
                row["ema_val_accuracy"] = average_accuracy(
                    state.info["sidecar"], moving_average_weights(model), data)
                note += f"; Adam's moving average: validation {row['ema_val_accuracy']:.4f}"
            row["seconds"] = round(time.time() - tick, 1)
            state.info["history"].append(row)
            state.info["epochs_done"] = epoch + 1
            state.info["wall_time_s"] = round(state.info["wall_time_s"] + row["seconds"], 1)
            state.save(model, average)
            done = epoch + 1 - started_at
            left = (time.time() - began) / done * (schedule.total - epoch - 1)
            print(f"{schedule.describe(epoch)}: lr {lr:.2e}, loss {row['loss']:.4f}, accuracy "
                  f"{row['accuracy']:.4f}, validation {row['val_accuracy']:.4f}{note}; "
                  f"{row['seconds']:.0f} s, run ETA {format_duration(left)}", flush=True)
    except KeyboardInterrupt:
        report_interrupt(args, state)
        raise
    return average


def running_average(average: list | None, weights: list, count: int) -> list:
    """The mean of ``count`` earlier weight sets (``average``) and ``weights``."""
    if average is None:
        return [np.array(w, dtype=np.float64) for w in weights]
    return [(a * count + w) / (count + 1) for a, w in zip(average, weights)]


def average_accuracy(sidecar: dict, average: list, data: TrainingData) -> float:
    """Validation accuracy of the running average, with BatchNorm statistics re-estimated on
    a fixed share of the training faces (the weights' own statistics do not fit an average)."""
    model = float32_copy([np.asarray(w, np.float32) for w in average], sidecar)
    faces = data.train_images[:AVERAGE_CHECK_FACES]
    if has_batchnorm(model):
        model = recalibrate_batchnorm(model, faces)
    return accuracy(model, data.val_images, data.val_labels)


def has_batchnorm(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def accuracy(model, images, labels, tta: bool = False) -> float:
    return float(np.mean(predict_probs(model, images, tta=tta).argmax(axis=1) == labels))


def format_duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def report_interrupt(args, state: RunState) -> None:
    done = state.epochs_done
    if done == 0:
        shutil.rmtree(state.folder, ignore_errors=True)
        print("\ninterrupted before the first epoch finished: nothing written", file=sys.stderr)
        return
    best = state.info["best"]
    print(f"\ninterrupted after epoch {done} of {schedule_of(args).total}: nothing written "
          f"to {args.out}; the best epoch so far ({best['epoch']}, validation "
          f"{best['val_accuracy']:.4f}) is {state.folder / 'best.h5'}; continue with: "
          f"{command_line(sys.argv[0], ['--resume', '--out', str(args.out)])}",
          file=sys.stderr)


def finish(args, state: RunState, model: keras.Model, data: TrainingData, average: list | None,
           recalibrate_bn: bool) -> tuple[Path, dict]:
    """The final weights (the cycle ends' average, Adam's moving average, or the best epoch
    without cycles), their BatchNorm statistics re-estimated, scored on validation, and
    written with sidecar, history and curves."""
    sidecar = dict(state.info["sidecar"])
    if args.cycles and args.average == "swa":
        weights = [np.asarray(w, np.float32) for w in average]
        how = {"kind": "swa", "cycle_ends": state.info["averaged"]}
    elif args.cycles:  # Adam's moving average of the trainable weights, kept since epoch 1
        weights = moving_average_weights(model)
        how = {"kind": "ema", "momentum": args.ema_momentum}
    else:
        weights = load_model(state.folder / "best.h5")[0].get_weights()
        how = {"kind": "best epoch", "epoch": state.info["best"]["epoch"]}
    final = float32_copy(weights, sidecar)
    val_accuracy = accuracy(final, data.val_images, data.val_labels)
    if recalibrate_bn and has_batchnorm(final):
        final, val_accuracy = recalibrated(final, data, val_accuracy, sidecar,
                                           keep_only_if_better=not args.cycles)
    history = state.info["history"]
    sidecar.update(
        schedule=dataclasses.asdict(schedule_of(args)), final_weights=how,
        epochs_run=state.epochs_done, best_epoch=state.info["best"]["epoch"],
        best_epoch_val_accuracy=round(state.info["best"]["val_accuracy"], 4),
        val_accuracy=round(val_accuracy, 4),
        val_accuracy_tta=round(accuracy(final, data.val_images, data.val_labels, tta=True), 4),
        wall_time_s=state.info["wall_time_s"],
        seconds_per_epoch=round(float(np.median([h["seconds"] for h in history])), 1))
    out = Path(args.out)
    save_model(final, out, sidecar)
    export_tflite(out)  # the LiteRT copy predict.py runs; it records its hashes in the sidecar
    sidecar = read_sidecar(out)
    write_history(out, history)
    state.mark_finished()
    print(f"wrote {out} ({describe_final(how)}): validation accuracy {val_accuracy:.4f} "
          f"({sidecar['val_accuracy_tta']:.4f} with flip TTA); sidecar "
          f"{out.with_suffix('.json')}, history and curves beside it; best epoch, cycle "
          f"ends and last state kept in {state.folder}"
          + (" (--resume with --cycles N or --average changes the run)" if args.cycles else ""))
    return out, sidecar


def describe_final(how: dict) -> str:
    if how["kind"] == "swa":
        return f"the average of {how['cycle_ends']} cycle ends"
    if how["kind"] == "ema":
        return f"Adam's moving average of the weights, momentum {how['momentum']:g}"
    return f"the best epoch, {how['epoch']}"


def recalibrated(model, data: TrainingData, before: float, sidecar: dict,
                 keep_only_if_better: bool):
    """``model`` with BatchNorm statistics re-estimated on the plain training faces with
    dropout off (ferkit.averaging): training collected them on augmented faces with dropout
    on, which prediction never meets, and averaged weights need statistics of their own.
    For a single epoch's weights the new statistics are kept only when validation accuracy
    holds. Returns (model, its validation accuracy); the sidecar records both accuracies."""
    print(f"re-estimating BatchNorm statistics on {len(data.train_images)} training faces, "
          f"dropout off")
    calibrated = recalibrate_batchnorm(model, data.train_images, progress=True)
    after = accuracy(calibrated, data.val_images, data.val_labels)
    kept = after >= before or not keep_only_if_better
    sidecar["batchnorm_recalibration"] = {"faces": len(data.train_images),
                                          "val_accuracy_before": round(before, 4),
                                          "val_accuracy_after": round(after, 4), "kept": kept}
    print(f"validation accuracy {before:.4f} -> {after:.4f} with re-estimated BatchNorm: "
          + ("kept" if kept else "not kept"))
    return (calibrated, after) if kept else (model, before)


# --- history and curves --------------------------------------------------------------------

def write_history(out, history: list[dict]) -> None:
    out = Path(out)
    keys = list(dict.fromkeys(key for row in history for key in row))
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys, restval="")
            writer.writeheader()
            writer.writerows(history)
    write_atomically(out.with_suffix(".history.csv"), write_csv)
    figures.training_curves(history, out.with_suffix(".curves.png"))
