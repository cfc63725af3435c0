"""The one training routine shared by cnn_train.py, cnn_train_mod.py and dnn_train.py: a
recipe (ferkit.recipes) run from start to finish, or resumed.

Story: load faces -> keep the recipe's classes -> stratified train/validation split ->
build and compile under the chosen precision -> the schedule (ferkit.schedule): a first
cosine phase, then short cosine warm restarts ("cycles"), with a running average of the
weights at each cycle end (stochastic weight averaging, Izmailov et al. 2018) or Adam's own
moving average of the weights (``average="ema"``) -> BatchNorm statistics re-estimated for
the final weights on the plain training faces -> the model, its sidecar, history and curves
written atomically.

Without warm restarts the final model is the best-validation epoch (the DNN's recipe).
After every epoch the run's whole state goes to ``OUT.run/`` (ferkit.runstate), so
``resume`` continues exactly where an interrupted run stopped, in this session or the next;
the model at ``out`` is written only when the run ends, so a run never touches a model it
did not make.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ferkit import figures, recorded_path
from ferkit.averaging import recalibrate_batchnorm
from ferkit.backend import keras
from ferkit.data import IMAGE_SIZE
from ferkit.errors import Interrupted, ParameterError
from ferkit.evaluation import calibration_entry, split_record
from ferkit.files import write_atomically
from ferkit.inference import check_stage1, predict_probs
from ferkit.record import read_record
from ferkit.litert import export_tflite
from ferkit.machine import (configure_threads, default_strategy, dtype_policy,
                            library_versions, machine_description, resolve_precision)
from ferkit.models import NORMALIZATION, build_model, class_names, load_model, save_model
from ferkit.pipeline import TrainingData, make_dataset, prepare_data
from ferkit.progress import EpochProgress, RunClock, RunWork, format_duration
from ferkit.recipes import Recipe, recipe_record
from ferkit.runstate import RunState, check_fresh_start, recorded_config
from ferkit.schedule import Schedule
from ferkit.words import counted

# Faces whose BatchNorm statistics the running average gets for its validation score at a
# cycle end: enough for stable statistics, a fraction of a full pass (the final model gets
# all training faces).
AVERAGE_CHECK_FACES = 8192


def _quiet(*_, **__) -> None:
    pass


# --- the story -------------------------------------------------------------------------------

def train(config: Recipe, data, out, *, usage: str | None = None, overwrite: bool = False,
          command: str | None = None, verbose: bool = False) -> tuple[Path, dict]:
    """Run the recipe ``config`` on the labelled faces file ``data`` and write the final
    model to ``out`` (.h5, with its sidecar, history and curves beside it; the run's state in
    ``OUT.run/``). Returns (the model's path, its sidecar).

    ``usage``: the split of Kaggle's fer2013.csv to read (default: its Training rows).
    ``overwrite``: replace a model already at ``out`` when the run ends (else refused).
    ``command``: the command line that started the run, recorded in the sidecar.
    ``verbose``: print the run's progress (in-epoch progress on a terminal).
    """
    say = print if verbose else _quiet
    check_fresh_start(out, overwrite)
    schedule = Schedule.of(config)
    configure_threads()
    keras.utils.set_random_seed(config.seed)
    faces = prepare_data(data, config.classes, config.val_split, config.seed, usage)
    for line in faces.describe(data):
        say(line)
    init_from = getattr(config, "init_from", None)
    if init_from:
        check_init_from(init_from, out, config, data, faces.identity)
    if getattr(config, "handoff_stage1", None):  # a bad stage 1 fails now, not at the end
        check_stage1(config.handoff_stage1, read_record(config.handoff_stage1))
    model, policy = build_run_model(config, schedule, say)
    info = new_run_info(config, schedule, faces, model, policy, command,
                        {"data": data, "out": out, "usage": usage})
    state = RunState.start(out, info)
    if init_from:
        source, source_info = load_model(init_from)
        copy_body_weights(source, model, source_info["classes"], list(config.classes))
    say(f"schedule: {schedule.layout()}")
    left_out = schedule.left_out(config.average)
    if left_out:
        say(left_out)
    return run_to_end(state, model, faces, None, verbose)


def resume(out, *, cycles: int | None = None, average: str | None = None,
           kind: type | None = None, verbose: bool = False) -> tuple[Path, dict]:
    """Continue the run of ``out`` from its last saved epoch, with the recipe it started
    with, and write its model. ``cycles`` (more warm restarts) or ``average`` (the other
    final average) change the run, finished or not: it then ends as a run started with them
    would (RunState.change). ``kind``: the recipe class the caller trains (a run of another
    trainer is refused). Returns (the model's path, its sidecar)."""
    say = print if verbose else _quiet
    state = RunState.open(out)
    config = state.recipe
    if kind is not None and not isinstance(config, kind):
        raise ParameterError("resume", f"the run in {state.folder} is one of "
                                       f"{type(config).__name__}, not of {kind.__name__}")
    state.change(cycles, average)
    if state.finished:
        raise ParameterError("resume", f"the run in {state.folder} has finished; give "
                                       f"{{cycles}} N (more than its {state.schedule.cycles}) "
                                       f"to add warm restarts to it, or the other {{average}}",
                             others=("cycles", "average"))
    say(f"resuming {state.folder} after epoch {state.epochs_done} with the options it started "
        f"with: {state.info['command']}")
    configure_threads()
    keras.utils.set_random_seed(config.seed)
    data = state.info["data"]
    faces = prepare_data(data, config.classes, config.val_split, config.seed,
                         state.info["usage"])
    for line in faces.describe(data):
        say(line)
    if state.info["data_identity"] != faces.identity:
        raise ParameterError("resume", f"expected the faces the run started on in {data}, "
                                       f"found other faces")
    model, _ = build_run_model(config, state.schedule, say)
    average_so_far = state.restore(model)
    return run_to_end(state, model, faces, average_so_far, verbose)


def run_to_end(state: RunState, model, faces: TrainingData, average, verbose: bool):
    run = RunClock(work_left(state, model, faces))
    average = fit_on_schedule(state, model, faces, average, run, verbose)
    return finish(state, model, faces, average, run, verbose)


def work_left(state: RunState, model, faces: TrainingData) -> RunWork:
    """What the run has left from where ``state`` stands, for its time estimate: the
    epochs' batches and validations, each cycle end's forward passes (BatchNorm statistics
    of AVERAGE_CHECK_FACES and validation, for each average scored), and the end's (the
    final model's validation, BatchNorm re-estimation over the training faces and its
    validation, flip TTA's two passes, and the calibration's plain and flip-TTA passes)."""
    schedule, config = state.schedule, state.recipe
    train, val = len(faces.train_images), len(faces.val_images)
    norms = has_batchnorm(model)
    check = (min(AVERAGE_CHECK_FACES, train) if norms else 0) + val
    cycle_end = check * (2 if config.average == "swa" else 1)
    cycle_ends = sum(schedule.ends_cycle(e) for e in range(state.epochs_done, schedule.total))
    recalibration = train + val if getattr(config, "recalibrate_bn", False) and norms else 0
    return RunWork(epochs=schedule.total - state.epochs_done,
                   steps=math.ceil(train / config.batch_size), batch_size=config.batch_size,
                   val_faces=val, cycle_end_faces=(cycle_end,) * cycle_ends,
                   finish_faces=val + recalibration + 2 * val + 3 * val)


def build_run_model(config: Recipe, schedule: Schedule, say):
    # Adam's moving average is kept in every run with warm restarts, so that each cycle
    # end scores both averages on validation, whichever ``average`` keeps.
    model, policy, _ = build_for_training(
        config.architecture, len(config.classes), config.build_options, config.lr,
        config.precision, config.label_smoothing,
        config.ema_momentum if schedule.cycles else None)
    say(f"model: {config.architecture}, {model.count_params():,} parameters, "
        f"precision {policy}")
    return model, policy


def new_run_info(config: Recipe, schedule: Schedule, faces: TrainingData, model, policy: str,
                 command: str | None, files: dict) -> dict:
    """state.json of a new run: the recipe, the files, the schedule, and what the final
    sidecar will carry. ``files``: data, out, usage."""
    init_from = getattr(config, "init_from", None)
    prior_epochs = 0
    if init_from:  # a warm restart goes on with its source's data stream, not replays it
        source = read_record(init_from)
        prior_epochs = source.get("prior_epochs", 0) + source.get("epochs_run", 0)
    data, out, usage = files["data"], files["out"], files["usage"]
    sidecar = {
        "architecture": config.architecture, "classes": list(config.classes),
        "class_names": class_names(config.classes), "build": config.build_options,
        "input_shape": [IMAGE_SIZE, IMAGE_SIZE, 1], "normalization": NORMALIZATION,
        "command": command, "config": recorded_config(config, data, out, usage),
        "init_from": recorded_path(init_from, out) if init_from else None,
        "prior_epochs": prior_epochs, "seed": config.seed, "val_split": config.val_split,
        "data": recorded_path(data, out), "usage": usage, "data_identity": faces.identity,
        "precision": policy, "parameters": model.count_params(),
        "machine": machine_description(), "versions": library_versions(),
    }
    recipe = recipe_record(config)
    if init_from:
        recipe["init_from"] = str(Path(init_from).resolve())
    # Paths absolute, so that resuming works from any folder.
    return {"recipe": recipe, "data": str(Path(data).resolve()), "usage": usage,
            "out": str(Path(out).resolve()), "schedule": dataclasses.asdict(schedule),
            "command": command, "sidecar": sidecar, "data_identity": faces.identity,
            "epochs_done": 0, "history": [], "best": {"epoch": None, "val_accuracy": -1.0},
            "averaged": 0, "wall_time_s": 0.0}


# --- the loop --------------------------------------------------------------------------------

def fit_on_schedule(state: RunState, model, faces: TrainingData, average: list | None,
                    run: RunClock, verbose: bool) -> list | None:
    """Train epoch by epoch from where ``state`` stands to the end of the schedule, saving
    the state after each epoch, the best epoch's weights, and each cycle end's weights and
    running average; returns the running average of the cycle ends (None without).
    ``run`` times the epochs; with ``verbose`` each epoch's line ends with the command's
    time left. Ctrl-C: says what was kept and how to continue, then re-raises."""
    schedule, config = state.schedule, state.recipe
    val_data = make_dataset(faces.val_images, faces.val_labels, 2 * config.batch_size,
                            len(faces.classes))
    progress = EpochProgress(run, terminal=None if verbose else False,
                             stream=None if verbose else _Silent())
    try:
        for epoch in range(state.epochs_done, schedule.total):
            average, line = run_epoch(state, model, faces, val_data, average, epoch, progress)
            if verbose:
                print(f"{line}; {format_duration(run.left())} left", flush=True)
    except KeyboardInterrupt:
        progress.clear()
        raise interrupted(state) from None
    return average


class _Silent:
    """A stream that keeps nothing: the clock still times a quiet run's epochs."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run_epoch(state: RunState, model, faces: TrainingData, val_data, average, epoch: int,
              progress: EpochProgress):
    """One epoch of the schedule, its row in the history and the state saved after it.
    Returns (the running average, the epoch's line)."""
    schedule, config = state.schedule, state.recipe
    tick = time.time()
    lr = schedule.learning_rate(epoch)
    model.optimizer.learning_rate.assign(lr)
    train_data = make_dataset(faces.train_images, faces.train_labels, config.batch_size,
                              len(faces.classes), augment=config.augment, seed=config.seed,
                              epoch=state.info["sidecar"]["prior_epochs"] + epoch)
    progress.epoch_begin(schedule.describe(epoch))
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=progress.batch_end, on_epoch_end=progress.epoch_end,
        on_test_begin=progress.test_begin, on_test_end=progress.test_end)
    logs = model.fit(train_data, validation_data=val_data, epochs=1, shuffle=False, verbose=0,
                     callbacks=[callback]).history
    row = {"epoch": epoch + 1, "cycle": schedule.position(epoch)[0], "learning_rate": lr,
           **{k: float(v[-1]) for k, v in logs.items()}}
    note = ""
    if row["val_accuracy"] > state.info["best"]["val_accuracy"]:
        state.info["best"] = {"epoch": epoch + 1, "val_accuracy": row["val_accuracy"]}
        save_weights(state, model, "best.h5")
        note = " (best so far)"
    if schedule.ends_cycle(epoch):
        average, note_end = end_cycle(state, model, faces, average, row,
                                      schedule.position(epoch)[0])
        note += note_end
    row["seconds"] = round(time.time() - tick, 1)
    progress.epoch_timed(time.time() - tick, schedule.ends_cycle(epoch))
    state.info["history"].append(row)
    state.info["epochs_done"] = epoch + 1
    state.info["wall_time_s"] = round(state.info["wall_time_s"] + row["seconds"], 1)
    state.save(model, average)
    return average, (f"{schedule.describe(epoch)}: lr {lr:.2e}, loss {row['loss']:.4f}, "
                     f"accuracy {row['accuracy']:.4f}, validation {row['val_accuracy']:.4f}"
                     f"{note}; {row['seconds']:.0f} s")


def end_cycle(state: RunState, model, faces: TrainingData, average, row: dict, cycle: int):
    """At a cycle end: its weights kept, the running average of the cycle ends updated
    (swa), both averages scored on validation. Returns (the running average, a note)."""
    save_weights(state, model, f"cycle{cycle:02d}_end.h5")
    note = ""
    if state.recipe.average == "swa":
        average = running_average(average, model.get_weights(), state.info["averaged"])
        state.info["averaged"] += 1
        row["average_val_accuracy"] = average_accuracy(state.info["sidecar"], average, faces)
        note += (f"; average of {counted(state.info['averaged'], 'cycle end')}: validation "
                 f"{row['average_val_accuracy']:.4f}")
    row["ema_val_accuracy"] = average_accuracy(state.info["sidecar"],
                                               moving_average_weights(model), faces)
    note += f"; Adam's moving average: validation {row['ema_val_accuracy']:.4f}"
    return average, note


def running_average(average: list | None, weights: list, count: int) -> list:
    """The mean of ``count`` earlier weight sets (``average``) and ``weights``."""
    if average is None:
        return [np.array(w, dtype=np.float64) for w in weights]
    return [(a * count + w) / (count + 1) for a, w in zip(average, weights)]


def average_accuracy(sidecar: dict, average: list, faces: TrainingData) -> float:
    """Validation accuracy of the running average, with BatchNorm statistics re-estimated on
    a fixed share of the training faces (the weights' own statistics do not fit an average)."""
    model = float32_copy([np.asarray(w, np.float32) for w in average], sidecar)
    if has_batchnorm(model):
        model = recalibrate_batchnorm(model, faces.train_images[:AVERAGE_CHECK_FACES])
    return accuracy(model, faces.val_images, faces.val_labels)


def interrupted(state: RunState) -> Interrupted:
    """After Ctrl-C: a run with no epoch done leaves nothing behind (no folder it made);
    the one line to show says what was kept and how to continue."""
    done = state.epochs_done
    if done == 0:
        state.abandon()
        return Interrupted("interrupted before the first epoch finished: nothing written")
    best, out, command = state.info["best"], state.info["out"], state.info["command"]
    how = (" ".join([*command.split(" ")[:2], "--resume", "--out", out]) if command
           else f"ferkit.training.resume({out!r})")
    return Interrupted(f"interrupted after epoch {done} of {state.schedule.total}: nothing "
                       f"written to {out}; the best epoch so far ({best['epoch']}, validation "
                       f"{best['val_accuracy']:.4f}) is {state.folder / 'best.h5'}; continue "
                       f"with: {how}")


# --- the end ---------------------------------------------------------------------------------

def final_weights(state: RunState, model, average: list | None):
    """(the final weights, how they were made): the cycle ends' average, Adam's moving
    average, or the best epoch without warm restarts."""
    config = state.recipe
    if state.schedule.cycles and config.average == "swa":
        return ([np.asarray(w, np.float32) for w in average],
                {"kind": "swa", "cycle_ends": state.info["averaged"]})
    if state.schedule.cycles:  # Adam's moving average of the trainable weights, since epoch 1
        return moving_average_weights(model), {"kind": "ema", "momentum": config.ema_momentum}
    return (load_model(state.folder / "best.h5")[0].get_weights(),
            {"kind": "best epoch", "epoch": state.info["best"]["epoch"]})


def finish(state: RunState, model, faces: TrainingData, average: list | None, run: RunClock,
           verbose: bool) -> tuple[Path, dict]:
    """The final weights, their BatchNorm statistics re-estimated, scored on validation, and
    written with sidecar, history and curves. ``run``'s time left is said first, the
    command's time (and its first estimate) last."""
    say = print if verbose else _quiet
    say(f"the final model: validation, BatchNorm re-estimation, flip TTA, calibration, saving "
        f"and the LiteRT export, about {format_duration(run.left())} left")
    sidecar, schedule = dict(state.info["sidecar"]), state.schedule
    weights, how = final_weights(state, model, average)
    final = float32_copy(weights, sidecar)
    val_accuracy = accuracy(final, faces.val_images, faces.val_labels)
    if getattr(state.recipe, "recalibrate_bn", False) and has_batchnorm(final):
        final, val_accuracy = recalibrated(final, faces, val_accuracy, sidecar,
                                           keep_only_if_better=not schedule.cycles, say=say)
    history = state.info["history"]
    # A new model comes calibrated: its temperatures fitted on its validation faces.
    sidecar["calibration"] = calibration_entry(
        lambda tta: predict_probs(final, faces.val_images, tta=tta), faces.val_labels,
        sidecar["seed"], split_record(sidecar, len(faces.val_labels)))
    sidecar.update(
        schedule=schedule.record(), final_weights=how, epochs_run=state.epochs_done,
        best_epoch=state.info["best"]["epoch"],
        best_epoch_val_accuracy=round(state.info["best"]["val_accuracy"], 4),
        val_accuracy=round(val_accuracy, 4),
        val_accuracy_tta=round(accuracy(final, faces.val_images, faces.val_labels, tta=True), 4),
        wall_time_s=state.info["wall_time_s"],
        seconds_per_epoch=round(float(np.median([h["seconds"] for h in history])), 1))
    out = Path(state.info["out"])
    save_model(final, out, sidecar)
    export_tflite(out)  # the LiteRT copy predict.py runs; it records its hashes in the sidecar
    sidecar = read_record(out)
    stage1 = getattr(state.recipe, "handoff_stage1", None)
    if stage1 is not None:  # a specialist: the cascade's hand-off tuned against stage 1
        from ferkit.evaluation import record_handoff

        sidecar = record_handoff(stage1, out, say=say)
    write_history(out, history)
    state.mark_finished()
    kept = (f"best epoch, cycle ends and last state kept in {state.folder} (resuming with "
            f"more cycles or the other average changes the run)" if schedule.cycles else
            "a run without warm restarts keeps no state")
    ece = {key: sidecar["calibration"][key] for key in ("plain", "tta")}
    say(f"wrote {out} ({describe_final(how)}): validation accuracy {val_accuracy:.4f} "
        f"({sidecar['val_accuracy_tta']:.4f} with flip TTA), ECE "
        f"{ece['plain']['before']['ece']:.2%} -> {ece['plain']['after']['ece']:.2%} calibrated "
        f"({ece['tta']['before']['ece']:.2%} -> {ece['tta']['after']['ece']:.2%} with TTA); "
        f"sidecar "
        f"{out.with_suffix('.json')}, history and curves beside it; {kept}")
    spent = run.spent()
    estimated = ("" if run.first_estimate is None else
                 f"; the first estimate was {run.first_estimate:.0f} s "
                 f"({run.first_estimate / spent - 1:+.0%})")
    say(f"done: the command took {format_duration(spent)} ({spent:.0f} s){estimated}")
    return out, sidecar


def describe_final(how: dict) -> str:
    if how["kind"] == "swa":
        return f"the average of {how['cycle_ends']} cycle ends"
    if how["kind"] == "ema":
        return f"Adam's moving average of the weights, momentum {how['momentum']:g}"
    return f"the best epoch, {how['epoch']}"


def recalibrated(model, faces: TrainingData, before: float, sidecar: dict,
                 keep_only_if_better: bool, say=_quiet):
    """``model`` with BatchNorm statistics re-estimated on the plain training faces with
    dropout off (ferkit.averaging): training collected them on augmented faces with dropout
    on, which prediction never meets, and averaged weights need statistics of their own.
    For a single epoch's weights the new statistics are kept only when validation accuracy
    holds. Returns (model, its validation accuracy); the sidecar records both accuracies."""
    say(f"re-estimating BatchNorm statistics on {len(faces.train_images)} training faces, "
        f"dropout off")
    calibrated = recalibrate_batchnorm(model, faces.train_images, progress=say is print)
    after = accuracy(calibrated, faces.val_images, faces.val_labels)
    kept = after >= before or not keep_only_if_better
    sidecar["batchnorm_recalibration"] = {"faces": len(faces.train_images),
                                          "val_accuracy_before": round(before, 4),
                                          "val_accuracy_after": round(after, 4), "kept": kept}
    say(f"validation accuracy {before:.4f} -> {after:.4f} with re-estimated BatchNorm: "
        + ("kept" if kept else "not kept"))
    return (calibrated, after) if kept else (model, before)


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


# --- the model -------------------------------------------------------------------------------

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


def compile_for_training(model, lr: float, label_smoothing: float = 0.0,
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


def moving_average_weights(model) -> list[np.ndarray]:
    """``model.get_weights()`` with each trainable weight replaced by Adam's moving average
    of it (the BatchNorm statistics stay the live ones)."""
    weights = {v.path: v.numpy() for v in model.weights}
    for variable, average in zip(model.trainable_variables,
                                 model.optimizer._model_variables_moving_average):
        weights[variable.path] = average.numpy()
    return [weights[v.path] for v in model.weights]


def copy_body_weights(source, target, source_classes=None, target_classes=None) -> None:
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


def check_init_from(source_path, out, config: Recipe, data, identity: str) -> None:
    """A run that starts from a trained model (a warm restart, or a specialist grown from
    stage 1) must not write over it, and must hold out the faces that model held out: on
    other data, or with another seed or val_split, it would validate on faces its starting
    weights trained on, and the validation accuracy that picks its best epoch would
    flatter it."""
    if Path(source_path).resolve() == Path(out).resolve():
        raise ParameterError("out", "expected another file than init_from's (this run would "
                                    "replace the model it starts from)", value=out)
    source = read_record(source_path)
    for name in ("seed", "val_split"):
        theirs = source.get(name)
        if theirs is not None and getattr(config, name) != theirs:
            raise ParameterError("init_from", f"expected the {name} it was trained with, "
                                              f"{theirs}, found {getattr(config, name)} (it "
                                              f"would validate on faces the model trained on)",
                                 value=source_path)
    theirs = source.get("data_identity")
    if theirs is not None and theirs != identity:
        raise ParameterError("init_from", f"expected the faces it was trained on "
                                          f"({source.get('data')}), found other faces in "
                                          f"{data} (it would validate on faces the model "
                                          f"trained on)", value=source_path)


def float32_copy(weights, sidecar: dict):
    """A float32 model of the sidecar's build holding ``weights``."""
    copy = build_model(sidecar["architecture"], len(sidecar["classes"]), **sidecar["build"])
    copy.set_weights(weights)
    return copy


def save_weights(state: RunState, model, name: str) -> Path:
    """A plain float32 copy of the model's weights in the run folder (best epoch, cycle
    ends), loadable with ferkit.models.load_model and averageable with average_weights.py."""
    path = state.path(name)
    save_model(float32_copy(model.get_weights(), state.info["sidecar"]), path,
               state.info["sidecar"])
    return path


def has_batchnorm(model) -> bool:
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def accuracy(model, images, labels, tta: bool = False) -> float:
    return float(np.mean(predict_probs(model, images, tta=tta).argmax(axis=1) == labels))
