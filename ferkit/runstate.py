"""The state of a training run in ``OUT.run/`` and the rules of resuming it: a run never
touches a model it did not make; a resumed run continues with the recipe it started with,
and may only be changed in ways that leave what it has done valid (more warm restarts, the
other final average). Run folders written before ``epochs`` meant the whole run are read
too (``upgraded``)."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from ferkit import recorded_path
from ferkit.errors import ParameterError
from ferkit.files import write_atomically
from ferkit.recipes import Recipe, recipe_from_record, recipe_record
from ferkit.schedule import Schedule

STATE_VERSION = 2  # 2: the recipe's epochs are the whole run, the schedule is recorded


def run_folder(out) -> Path:
    """Where a run keeps its state beside its model: models/cnn.h5 -> models/cnn.run/."""
    return Path(out).with_suffix(".run")


def recorded_config(recipe: Recipe, data, out, usage=None) -> dict:
    """The options of a run as its sidecar records them: the recipe's fields, the faces and
    the model, file paths as recorded_path writes them (a shipped sidecar names no folder
    of the machine it trained on)."""
    config = recipe_record(recipe)
    config.update(data=data, usage=usage, out=out)
    for key in ("data", "out", "init_from", "stage1"):
        if config.get(key):
            config[key] = recorded_path(config[key], out)
    return config


def command_with(command: str, option: str, value) -> str:
    """``command`` (words joined by spaces) with ``option`` set to ``value``: in place where
    the command gives it, else added at the end."""
    words, given = command.split(" "), False
    for i, word in enumerate(words):
        if word == option and i + 1 < len(words):
            words[i + 1], given = str(value), True
        elif word.startswith(option + "="):
            words[i], given = f"{option}={value}", True
    return " ".join(words if given else [*words, option, str(value)])


def check_fresh_start(out, overwrite: bool) -> None:
    """A run never touches a model it did not make: an existing ``out`` (or the state of an
    unfinished run beside it) is only continued by resuming or replaced with ``overwrite``."""
    out, folder = Path(out), run_folder(out)
    if overwrite:
        return
    if out.exists():
        raise ParameterError("out", "a model is already there; resume its run ({resume}), "
                                    "replace it ({overwrite}), or choose another path",
                             value=out, others=("resume", "overwrite"))
    if (folder / "state.json").exists() and not RunState.open(out).finished:
        raise ParameterError("out", f"an unfinished run is in {folder}; resume it ({{resume}}), "
                                    f"start afresh ({{overwrite}}), or choose another path",
                             value=out, others=("resume", "overwrite"))


class RunState:
    """The state of a run in ``OUT.run/``, written after every epoch: ``state.json`` (the
    recipe, the faces, the command, the schedule, the position in it, the history, the best
    epoch) and the arrays it names (every model variable, BatchNorm statistics and
    dropout's seed states included; every optimizer variable; the running average), each
    file written atomically, the arrays before the JSON that names them."""

    def __init__(self, out, info: dict):
        self.folder = run_folder(out)
        self.info = info
        self.made = None  # the highest folder this run makes (the run folder or one above)

    @classmethod
    def start(cls, out, info: dict) -> RunState:
        """A new run's state. Its folder (and any missing folder above it) is made by the
        first file written in it, so a run stopped before that leaves no folder behind."""
        folder = run_folder(out)
        if folder.exists():  # overwrite: the old run's state goes, its model stays until the end
            shutil.rmtree(folder)
        state = cls(out, {"version": STATE_VERSION, **info})
        state.made = folder.absolute()
        while not state.made.parent.exists():
            state.made = state.made.parent
        return state

    def path(self, name: str) -> Path:
        """``name`` in the run folder, the folder made first if missing."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name

    @classmethod
    def open(cls, out) -> RunState:
        path = run_folder(out) / "state.json"
        if not path.exists():
            finished = (" (its model is there: a run without warm restarts keeps no state, "
                        "and has nothing to resume)" if Path(out).exists() else
                        " (start a run without {resume})")
            raise ParameterError("resume", f"expected the state of a run in {path.parent}, "
                                           f"found none{finished}")
        return cls(out, upgraded(json.loads(path.read_text())))

    @property
    def recipe(self) -> Recipe:
        return recipe_from_record(self.info["recipe"])

    @property
    def schedule(self) -> Schedule:
        return Schedule(**self.info["schedule"])

    @property
    def epochs_done(self) -> int:
        return self.info["epochs_done"]

    @property
    def finished(self) -> bool:
        return self.info.get("finished", False)

    def save(self, model, average: list | None) -> None:
        arrays = {f"model/{i}": v.numpy() for i, v in enumerate(model.variables)}
        arrays.update({f"optimizer/{i}": v.numpy()
                       for i, v in enumerate(model.optimizer.variables)})
        for i, w in enumerate(average or []):
            arrays[f"average/{i}"] = w
        name = f"state-{self.epochs_done:04d}.npz"
        # (the temporary file's name ends in .npz, so savez writes to it as named)
        write_atomically(self.path(name), lambda tmp: np.savez(tmp, **arrays))
        previous = self.info.get("arrays")
        self.info["arrays"] = name
        self.write_info()
        if previous and previous != name:
            (self.folder / previous).unlink(missing_ok=True)

    def write_info(self) -> None:
        text = json.dumps(self.info, indent=1, default=str)
        write_atomically(self.path("state.json"), lambda tmp: Path(tmp).write_text(text))

    def discard(self) -> None:
        """Remove the run's folder (a finished run without warm restarts)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def abandon(self) -> None:
        """Remove all the run wrote and every folder it made (a run interrupted before its
        first epoch ended): empty folders only, from the model's up to the highest the run
        made."""
        self.discard()
        if self.made is None or self.made == self.folder.absolute():
            return
        folder = self.folder.absolute().parent
        while folder.is_relative_to(self.made):
            try:
                folder.rmdir()
            except OSError:  # not empty: something else is in it
                return
            folder = folder.parent

    def mark_finished(self) -> None:
        """A finished run with warm restarts keeps its last state: resuming with more
        ``cycles`` or the other ``average`` can still change it. One without has nothing
        that could change it: its folder goes (its model is its best epoch)."""
        if not self.schedule.cycles:
            self.discard()
            return
        self.info["finished"] = True
        self.write_info()

    def restore(self, model) -> list | None:
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

    def change(self, cycles: int | None = None, average: str | None = None) -> None:
        """More warm restarts (``cycles``) or the other final average (``average``). Neither
        changes what the run has done: a cycle's rates depend only on its own position, and
        Adam's moving average is kept in every run with cycles (the running average of the
        cycle ends beside it with swa). So the run ends as one started with these options
        would (the first phase kept, the total grown by the new warm restarts), and its
        sidecar names that command. A run without warm restarts has nothing to change, and
        once finished nothing to resume: both are refused."""
        schedule, recipe = self.schedule, self.recipe
        changes = {name: value for name, value in (("cycles", cycles), ("average", average))
                   if value is not None and value != getattr(recipe if name == "average"
                                                             else schedule, name)}
        self.check_change(schedule, changes)
        if not changes:
            return
        if "cycles" in changes:
            schedule = Schedule(schedule.first_epochs, schedule.lr, changes["cycles"],
                                schedule.cycle_epochs, schedule.cycle_lr)
            self.info["schedule"] = dataclasses.asdict(schedule)
            changes["epochs"] = schedule.total
        self.info["recipe"].update(changes)
        self.info["sidecar"]["config"].update(changes)
        command = self.info["command"]
        for option, value in changes.items():
            command = command_with(command, f"--{option.replace('_', '-')}", value)
        self.info["command"] = self.info["sidecar"]["command"] = command
        self.info["sidecar"].setdefault("resumed_with", []).append(
            {"after_epoch": self.epochs_done, **changes})
        self.info["finished"] = False

    def check_change(self, schedule: Schedule, changes: dict) -> None:
        if schedule.cycles == 0 and (changes or self.finished):
            finished = "it has finished, and " if self.finished else ""
            raise ParameterError("resume", f"the run in {self.folder} has no warm restarts "
                                           f"(its model is its best epoch): {finished}neither "
                                           f"{{cycles}} nor {{average}} can change it",
                                 others=("cycles", "average"))
        if changes.get("cycles", schedule.cycles) < schedule.cycles:
            raise ParameterError("cycles", f"expected more warm restarts than the "
                                           f"{schedule.cycles} of the run in {self.folder} "
                                           f"(resuming only adds warm restarts)",
                                 value=changes["cycles"])
        if changes.get("average") == "swa" and any(
                schedule.ends_cycle(epoch) for epoch in range(self.epochs_done)):
            raise ParameterError("average", f"the run in {self.folder} was started with "
                                            f"{{average}} ema and kept no average of the "
                                            f"cycle ends it has passed", value="swa")


# --- run folders written before epochs meant the whole run -----------------------------------

def upgraded(info: dict) -> dict:
    """state.json as this version writes it. A run folder written before the version field
    recorded the trainer's options as ``args``, with ``epochs`` the first phase only; its
    total is the first phase plus its warm restarts, and its recipe, schedule, sidecar
    config and command are rewritten to say so (the command gains ``--epochs TOTAL`` where
    it set the layout, so that it names the same run under today's meaning)."""
    if info.get("version") == STATE_VERSION:
        return info
    args, sidecar = info.pop("args"), info["sidecar"]
    first, cycles, cycle_epochs = args["epochs"], args["cycles"], args["cycle_epochs"]
    total = first + cycles * cycle_epochs
    kind = ("DnnRecipe" if sidecar["architecture"] == "dnn" else
            "Stage1Recipe" if len(sidecar["classes"]) == 7 else "SpecialistRecipe")
    recipe = recipe_from_record({**args, "kind": kind, "epochs": total,
                                 "specific": sidecar["classes"]})
    command = info["command"]
    if any(f"--{name}" in command.split(" ") for name in ("epochs", "cycles", "cycle-epochs")):
        command = command_with(command, "--epochs", total)
    sidecar["config"] = recorded_config(recipe, args["data"], args["out"], args.get("usage"))
    sidecar["command"] = command
    schedule = dataclasses.asdict(Schedule(first, args["lr"], cycles, cycle_epochs,
                                           args["cycle_lr"]))
    return {"version": STATE_VERSION, **info, "recipe": recipe_record(recipe),
            "data": args["data"], "usage": args.get("usage"), "out": args["out"],
            "schedule": schedule, "command": command}
