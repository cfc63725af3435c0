"""The one training routine shared by cnn_train.py, cnn_train_mod.py and dnn_train.py.

Story: load faces -> keep the chosen classes -> stratified train/validation split ->
tf.data pipeline (augmentation inside the graph) -> build under the chosen precision and
distribution strategy -> fit with a cosine learning-rate schedule and early stopping ->
the best-validation model is written atomically after every improvement, with its sidecar,
the history CSV and a PNG of the curves -> (CNNs) its BatchNorm statistics re-estimated on
the plain training faces, kept if validation accuracy holds.
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fer import recorded_path
from fer.backend import keras, tf
from fer.cli import progress_verbosity
from fer.data import IMAGE_SIZE, load_faces
from fer.labels import CLASS_NAMES
from fer.models import (NORMALIZATION, build_model, class_names, load_model, read_sidecar,
                        save_model, write_atomically, write_sidecar)

# Augmentation strengths: FER2013 faces are roughly aligned, so only small moves help.
MAX_SHIFT = 0.1      # share of the image size
MAX_ROTATION = 10.0  # degrees
MAX_ZOOM = 0.1       # +-10 %


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


def stratified_split(labels: np.ndarray, val_split: float, seed: int):
    """Shuffled, class-stratified (train_indices, val_indices): never the tail of the file."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_split < 1:
        raise ValueError(f"--val-split: expected a share between 0 and 1, found {val_split}")
    indices = np.arange(len(labels))
    try:
        return train_test_split(indices, test_size=val_split, random_state=seed,
                                stratify=labels, shuffle=True)
    except ValueError as err:
        raise ValueError(f"--val-split {val_split}: cannot split {len(labels)} images "
                         f"by class ({err})") from None


def train_val_rows(labels, classes, val_split: float, seed: int):
    """(training rows, validation rows) of a labelled set, for a model of ``classes``.

    The stratified split is drawn over all seven classes first and only then narrowed to
    ``classes``, so a specialist trained on the same data with the same seed and share
    never trains on a face that stage 1 holds out: the cascade can be scored on stage 1's
    validation split.
    """
    train, val = stratified_split(labels, val_split, seed)
    keep = np.isin(labels, classes)
    return train[keep[train]], val[keep[val]]


def check_same_split(args, source_path) -> None:
    """A run that starts from a trained model (--init-from: a warm restart, or a specialist
    grown from stage 1) must hold out the faces that model held out: with another --seed or
    --val-split it would validate on faces its starting weights trained on, and the
    validation accuracy that picks its best epoch would flatter it."""
    source = read_sidecar(source_path)
    for option, ours, theirs in (("--seed", args.seed, source.get("seed")),
                                 ("--val-split", args.val_split, source.get("val_split"))):
        if theirs is not None and ours != theirs:
            raise ValueError(f"--init-from {source_path}: expected the {option} it was trained "
                             f"with, {theirs}, found {ours} (it would validate on faces the "
                             f"model trained on)")


def select_classes(images, labels, classes):
    """Keep only the given classes and renumber them 0..K-1 in the given order."""
    keep = np.isin(labels, classes)
    remap = np.full(len(CLASS_NAMES), -1)
    remap[classes] = np.arange(len(classes))
    return images[keep], remap[labels[keep]]


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


def make_dataset(images, labels, batch_size, augment=False, shuffle=False, seed=0,
                 first_epoch=0, one_hot=None):
    """uint8 (N, 48, 48) + labels -> batches of float32 (B, 48, 48, 1) and int labels
    (or, with ``one_hot`` = the number of classes, float32 (B, one_hot) one-hot rows).

    The arrays stay uint8 in memory (1/4 the size); casting, augmentation and batching
    happen in the graph, in parallel, and the next batch is prefetched while the model
    trains on this one. A run resumed at ``first_epoch`` > 0 (or a warm restart from
    weights trained that many epochs) draws its order and augmentation from ``seed`` and
    ``first_epoch`` together: from ``seed`` alone it would replay the first run's epochs
    1, 2, ... image for image. A fresh run uses ``seed``.
    """
    if first_epoch:
        seed = int(np.random.SeedSequence([seed, first_epoch]).generate_state(1)[0])
    data = tf.data.Dataset.from_tensor_slices((images[..., None], labels))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    data = data.map(lambda x, y: (tf.cast(x, tf.float32),
                                  tf.one_hot(y, one_hot) if one_hot else y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        counter = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
        data = tf.data.Dataset.zip((data, counter)).map(
            lambda xy, s: (augment_batch(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


class BestCheckpoint(keras.callbacks.Callback):
    """After each epoch: history CSV and curves PNG; on a new best validation accuracy,
    the model and its sidecar, each written atomically."""

    def __init__(self, out, sidecar, best=-1.0, history=None):
        super().__init__()
        self.out, self.sidecar, self.best = Path(out), sidecar, best
        self.history = history or []
        self.started = time.time() - sidecar.get("wall_time_s", 0.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})  # LearningRateScheduler has added "learning_rate"
        self.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        self.sidecar["epochs_run"] = epoch + 1
        self.sidecar["wall_time_s"] = round(time.time() - self.started, 1)
        if logs.get("val_accuracy", -1) > self.best:
            self.best = logs["val_accuracy"]
            self.sidecar.update(best_epoch=epoch + 1, best_val_accuracy=round(self.best, 4))
            save_model(self.model, self.out, self.sidecar)
            print(f"\nepoch {epoch + 1}: validation accuracy {self.best:.4f}, "
                  f"best so far: saved {self.out}", flush=True)
        elif self.out.exists():  # keep the sidecar's epoch count current for --resume
            write_sidecar(self.out, self.sidecar)
        write_history(self.out, self.history)


def write_history(out, history):
    out = Path(out)
    keys = list(dict.fromkeys(key for row in history for key in row))  # resumed runs may differ
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys, restval="")
            writer.writeheader()
            writer.writerows(history)
    write_atomically(out.with_suffix(".history.csv"), write_csv)
    write_atomically(out.with_suffix(".curves.png"), lambda tmp: plot_history(history, tmp))


def plot_history(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[metric] for h in history], label="training")
        if f"val_{metric}" in history[0]:
            ax.plot(epochs, [h[f"val_{metric}"] for h in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)


def library_versions() -> dict:
    import matplotlib, pandas, sklearn
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


PATH_OPTIONS = ("data", "out", "init_from", "stage1")  # options that name files


def recorded_config(args) -> dict:
    """The options of a run as its sidecar records them: file paths as recorded_path
    writes them, so that a shipped sidecar names no folder of the machine it trained on."""
    config = dict(vars(args))
    for key in PATH_OPTIONS:
        if config.get(key):
            config[key] = recorded_path(config[key])
    return config


def train(args, architecture: str, classes, build_options: dict, strategy=None,
          init_from=None, recalibrate_bn: bool = False):
    """Train ``architecture`` on ``classes`` as the parsed ``args`` say.

    Returns (model as training left it, sidecar of the best checkpoint written to args.out).

    ``init_from``: a trained model of the same architecture whose weights (all but the
    logits layer, whose size may differ) start this one. ``recalibrate_bn``: end by
    re-estimating the best checkpoint's BatchNorm statistics (recalibrate_checkpoint).
    """
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive integer, "
                             f"found {getattr(args, name)}")
    if args.lr <= 0:
        raise ValueError(f"--lr: expected a positive learning rate, found {args.lr}")
    if not 0 <= args.label_smoothing < 1:
        raise ValueError(f"--label-smoothing: expected a share from 0 up to (not including) "
                         f"1, found {args.label_smoothing}")
    if init_from:
        if Path(init_from).resolve() == Path(args.out).resolve():
            raise ValueError(f"--out {args.out}: expected another file than --init-from's "
                             f"(the first epoch would overwrite the model this run starts "
                             f"from)")
        check_same_split(args, init_from)
    configure_threads()
    keras.utils.set_random_seed(args.seed)

    # Data: uint8 (N, 48, 48) and labels renumbered 0..K-1 in the order of `classes`.
    faces = load_faces(args.data, usage=args.usage, require_labels=True)
    train_rows, val_rows = train_val_rows(faces.labels, classes, args.val_split, args.seed)
    train_images, train_labels = select_classes(faces.images[train_rows],
                                                faces.labels[train_rows], classes)
    val_images, val_labels = select_classes(faces.images[val_rows], faces.labels[val_rows],
                                            classes)
    names = class_names(classes)
    print(f"data: {args.data}: {len(train_rows) + len(val_rows)} images of {len(classes)} "
          f"classes ({len(train_rows)} training, {len(val_rows)} validation)")
    train_counts = np.bincount(train_labels, minlength=len(classes))
    val_counts = np.bincount(val_labels, minlength=len(classes))
    for name, n_train, n_val in zip(names, train_counts, val_counts):
        print(f"  {name:<9} {n_train:6d} training {n_val:6d} validation")

    out = Path(args.out)
    model, previous, policy, strategy = build_for_training(
        architecture, classes, build_options, args.lr, args.precision, strategy,
        resume_from=out if args.resume else None, init_from=init_from,
        label_smoothing=args.label_smoothing)
    print(f"model: {architecture}, {model.count_params():,} parameters, precision {policy}, "
          f"{strategy.num_replicas_in_sync} replica(s)")

    initial_epoch = previous.get("epochs_run", 0)
    # Epochs of training behind the starting weights, before this run's own: a warm
    # restart (init_from) continues its source's shuffling and augmentation stream
    # instead of replaying it from epoch 1 (same --seed, so the same stream otherwise).
    if args.resume:
        prior_epochs = previous.get("prior_epochs", 0)
    elif init_from:
        source = read_sidecar(init_from)
        prior_epochs = source.get("prior_epochs", 0) + source.get("epochs_run", 0)
    else:
        prior_epochs = 0
    # Targets in the form the compiled loss takes: one-hot for the categorical loss that
    # compile_for_training picks to smooth them, integers for the sparse one otherwise.
    one_hot = (len(classes) if isinstance(model.loss, keras.losses.CategoricalCrossentropy)
               else None)
    train_data = make_dataset(train_images, train_labels, args.batch_size,
                              augment=args.augment, shuffle=True, seed=args.seed,
                              first_epoch=prior_epochs + initial_epoch, one_hot=one_hot)
    val_data = make_dataset(val_images, val_labels, 2 * args.batch_size, one_hot=one_hot)
    config = recorded_config(args)
    sidecar = {
        "architecture": architecture, "classes": list(classes), "class_names": names,
        "build": build_options, "input_shape": [IMAGE_SIZE, IMAGE_SIZE, 1],
        "normalization": NORMALIZATION, "command": " ".join(sys.argv),
        "config": config,
        "init_from": recorded_path(init_from) if init_from else None,
        "prior_epochs": prior_epochs, "seed": args.seed,
        "val_split": args.val_split,
        "data": config["data"], "usage": args.usage, "precision": policy,
        "parameters": model.count_params(), "epochs_run": initial_epoch,
        "wall_time_s": previous.get("wall_time_s", 0.0),
        "best_epoch": previous.get("best_epoch"),
        "best_val_accuracy": previous.get("best_val_accuracy"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                   f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)",
        "versions": library_versions(),
    }
    history = read_history(out) if args.resume else []
    checkpoint = BestCheckpoint(out, sidecar, best=previous.get("best_val_accuracy") or -1.0,
                                history=history)

    def cosine(epoch, _lr):  # from args.lr down to 1% of it over args.epochs
        progress = min(epoch / max(args.epochs - 1, 1), 1.0)
        return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))

    callbacks = [keras.callbacks.LearningRateScheduler(cosine), checkpoint,
                 keras.callbacks.EarlyStopping("val_accuracy", patience=args.patience,
                                               mode="max")]
    try:
        model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                  initial_epoch=initial_epoch, callbacks=callbacks, shuffle=False,
                  verbose=progress_verbosity())
    except KeyboardInterrupt:
        print(f"\ninterrupted after {sidecar['epochs_run']} epoch(s)", file=sys.stderr)
    if out.exists() and recalibrate_bn:
        try:
            recalibrate_checkpoint(out, sidecar, train_images, val_images, val_labels)
        except KeyboardInterrupt:
            print("\ninterrupted: BatchNorm statistics left as trained", file=sys.stderr)
    if out.exists():
        print(f"best model: {out} (epoch {sidecar['best_epoch']}, validation accuracy "
              f"{sidecar['best_val_accuracy']}); sidecar {out.with_suffix('.json')}")
    else:
        print("no epoch finished: no model written", file=sys.stderr)
    return model, sidecar


def recalibrate_checkpoint(out, sidecar, train_images, val_images, val_labels) -> None:
    """Re-estimate the BatchNorm statistics of the checkpoint at ``out`` on the plain
    training faces with dropout off (fer.averaging.recalibrate_batchnorm) and keep them
    when the validation accuracy does not drop; the sidecar records both accuracies.

    Why: training collects the statistics on augmented faces with dropout on, and
    prediction meets neither. Measured on FER2013's validation split: the second-cycle
    stage 1 went from 63.74% to 64.02% (with flip TTA 64.93% -> 65.66%), a specialist
    fine-tuned from stage 1 for 3 epochs from 58.22% to 59.62% on its four classes.
    """
    from fer.averaging import recalibrate_batchnorm
    from fer.inference import predict_probs

    checkpoint, _ = load_model(out)
    if not any(isinstance(layer, keras.layers.BatchNormalization) for layer in checkpoint.layers):
        return
    print(f"re-estimating BatchNorm statistics on {len(train_images)} training faces, "
          f"dropout off")
    calibrated = recalibrate_batchnorm(checkpoint, train_images, progress=True)
    before, after = (float(np.mean(predict_probs(m, val_images).argmax(axis=1) == val_labels))
                     for m in (checkpoint, calibrated))
    kept = after >= before
    sidecar["batchnorm_recalibration"] = {"faces": len(train_images),
                                          "val_accuracy_before": round(before, 4),
                                          "val_accuracy_after": round(after, 4), "kept": kept}
    print(f"validation accuracy {before:.4f} -> {after:.4f} with re-estimated BatchNorm: "
          + ("kept" if kept else "not kept"))
    if kept:
        sidecar["best_val_accuracy"] = round(after, 4)
        save_model(calibrated, out, sidecar)
    else:
        write_sidecar(out, sidecar)


def build_for_training(architecture: str, classes, build_options: dict, lr: float,
                       precision: str = "auto", strategy=None, resume_from=None,
                       init_from=None, label_smoothing: float = 0.0):
    """The model as train() fits it: built (or reloaded from ``resume_from``) under the
    resolved precision and the distribution strategy, then compiled. The benchmark
    (bench/throughput.py) times this same model. Returns (model, previous sidecar or {},
    dtype policy name, strategy)."""
    policy = resolve_precision(precision)
    strategy = strategy or default_strategy()
    with dtype_policy(policy), strategy.scope():
        if resume_from is not None:
            model, previous = load_model(resume_from)
            if previous.get("averaged_from"):
                raise ValueError(f"{resume_from}: --resume: an average of trained models "
                                 f"(average_weights.py) is no run to continue; start one "
                                 f"from it with --init-from")
            if previous["classes"] != list(classes):
                raise ValueError(f"{resume_from}: --resume: the model covers classes "
                                 f"{previous['classes']}, this run trains {list(classes)}")
        else:
            model, previous = build_model(architecture, len(classes), **build_options), {}
            if init_from:
                source, source_info = load_model(init_from)
                copy_body_weights(source, model, source_info["classes"], list(classes))
        compile_for_training(model, lr, label_smoothing)
    return model, previous, policy, strategy


def compile_for_training(model: keras.Model, lr: float, label_smoothing: float = 0.0) -> None:
    """Adam, cross-entropy (sparse; on one-hot targets when smoothing them), accuracy;
    Keras' default execution (a traced graph, with XLA left off on machines without an
    accelerator)."""
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
            if label_smoothing else "sparse_categorical_crossentropy")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])


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


def read_history(out) -> list[dict]:
    path = Path(out).with_suffix(".history.csv")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: int(float(v)) if k == "epoch" else float(v)
                 for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
