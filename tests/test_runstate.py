"""A run's state and the rules of resuming it (ferkit.runstate), without training: run
folders of the form written before --epochs meant the whole run, the changes a resumed run
allows, and a model never touched by a run that did not make it."""
import dataclasses
import json

import pytest

from ferkit.errors import ParameterError
from ferkit.recipes import Stage1Recipe
from ferkit.runstate import RunState, check_fresh_start, recorded_config, run_folder
from ferkit.schedule import Schedule


def old_state(command="python3 cnn_train.py --data ../shared/data/fer2013/train.csv.gz",
              epochs=60, epochs_done=3):
    """state.json as cnn_train.py wrote it while --epochs was the first phase: the parsed
    options as `args`, no version, no schedule (a stage-1 run with the defaults)."""
    args = {"data": "/data/train.csv.gz", "usage": None, "out": "/work/models/cnn.h5",
            "overwrite": False, "resume": False, "epochs": epochs, "lr": 0.0003, "cycles": 10,
            "cycle_epochs": 6, "cycle_lr": 0.00015, "average": "ema", "ema_momentum": 0.999,
            "label_smoothing": 0.1, "augment": True, "batch_size": 128, "val_split": 0.1,
            "seed": 42, "precision": "auto", "init_from": None, "conv_dropout": 0.05,
            "dense_dropout": 0.1, "bn_momentum": 0.99, "recalibrate_bn": True}
    sidecar = {"architecture": "cnn", "classes": list(range(7)), "command": command,
               "config": {**args, "data": "../shared/data/fer2013/train.csv.gz",
                          "out": "models/cnn.h5"}, "prior_epochs": 0}
    return {"args": args, "command": command, "sidecar": sidecar, "data_identity": "abc",
            "epochs_done": epochs_done, "history": [], "best": {"epoch": 3, "val_accuracy": 0.47},
            "averaged": 0, "wall_time_s": 500.0, "arrays": f"state-{epochs_done:04d}.npz"}


def write_state(out, info):
    run_folder(out).mkdir(parents=True)
    (run_folder(out) / "state.json").write_text(json.dumps(info))


def test_a_run_folder_of_the_old_form_resumes_as_the_run_it_started(tmp_path):
    out = tmp_path / "cnn.h5"
    write_state(out, old_state())
    state = RunState.open(out)
    # epochs was the first phase: the run is 60 + 10 x 6 = 120 epochs, today's default.
    assert state.recipe == Stage1Recipe()
    assert state.schedule == Schedule(60, 3e-4, 10, 6, 1.5e-4) == Schedule.of(Stage1Recipe())
    assert state.info["sidecar"]["config"]["epochs"] == 120
    assert state.info["command"] == state.info["sidecar"]["command"] == old_state()["command"]
    assert (state.info["data"], state.info["out"]) == ("/data/train.csv.gz", "/work/models/cnn.h5")
    assert state.epochs_done == 3 and state.info["arrays"] == "state-0003.npz"
    # Saved again, it is read as today's form.
    state.folder = tmp_path / "again.run"
    state.folder.mkdir()
    state.write_info()
    assert RunState.open(tmp_path / "again.h5").info == state.info


def test_an_old_command_that_set_the_layout_gains_the_total(tmp_path):
    out = tmp_path / "cnn.h5"
    write_state(out, old_state("python3 cnn_train.py --epochs 30", epochs=30))
    state = RunState.open(out)
    assert state.recipe.epochs == 90 and state.schedule.first_epochs == 30
    assert state.info["command"] == "python3 cnn_train.py --epochs 90"


def new_state(tmp_path, recipe, epochs_done=0):
    out = tmp_path / "m.h5"
    info = {"recipe": {"kind": "Stage1Recipe", **dataclasses.asdict(recipe)},
            "schedule": dataclasses.asdict(Schedule.of(recipe)), "epochs_done": epochs_done,
            "command": "python3 cnn_train.py --epochs 5 --cycles 1 --cycle-epochs 2",
            "sidecar": {"config": recorded_config(recipe, tmp_path / "d.csv", out)}}
    return RunState.start(out, info)


def test_more_warm_restarts_keep_the_first_phase_and_grow_the_total(tmp_path):
    state = new_state(tmp_path, Stage1Recipe(epochs=5, cycles=1, cycle_epochs=2), 4)
    state.change(cycles=3)
    assert state.schedule == Schedule(3, 3e-4, 3, 2, 1.5e-4)
    assert state.recipe.epochs == state.info["sidecar"]["config"]["epochs"] == 9
    assert state.info["command"] == "python3 cnn_train.py --epochs 9 --cycles 3 --cycle-epochs 2"
    assert state.info["sidecar"]["resumed_with"] == [{"after_epoch": 4, "cycles": 3, "epochs": 9}]
    with pytest.raises(ParameterError, match="expected more warm restarts than the 3") as caught:
        state.change(cycles=2)
    assert (caught.value.parameter, caught.value.value) == ("cycles", 2)


def test_swa_is_refused_once_an_ema_run_passed_a_cycle_end(tmp_path):
    state = new_state(tmp_path, Stage1Recipe(epochs=5, cycles=1, cycle_epochs=2), 5)
    with pytest.raises(ParameterError, match="kept no average of the cycle ends"):
        state.change(average="swa")
    state.change(average="ema")  # no change: accepted, nothing recorded
    assert "resumed_with" not in state.info["sidecar"]


def test_a_run_without_warm_restarts_cannot_be_changed_and_keeps_no_state(tmp_path):
    state = new_state(tmp_path, Stage1Recipe(epochs=2), 1)  # two epochs: no room for cycles
    with pytest.raises(ParameterError, match="has no warm restarts"):
        state.change(cycles=4)
    state.mark_finished()
    assert not state.folder.exists()


def test_a_model_is_only_replaced_with_overwrite(tmp_path):
    out = tmp_path / "m.h5"
    out.write_bytes(b"model")
    with pytest.raises(ParameterError, match="a model is already there") as caught:
        check_fresh_start(out, overwrite=False)
    assert caught.value.parameter == "out"
    check_fresh_start(out, overwrite=True)
    with pytest.raises(ParameterError, match="keeps no state, and has nothing to resume"):
        RunState.open(out)
