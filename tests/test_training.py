"""The training recipe through the three trainers, on small generated data: the schedule,
cycle-end averaging, BatchNorm re-estimation, the run state that --resume continues, and
the rule that a run never touches a model it did not make."""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, make_faces, write_csv
from ferkit.app import cnn_train
from ferkit.app import cnn_train_mod
from ferkit.app import dnn_train
from ferkit import MODELS, recorded_path
from ferkit.app import cli
from ferkit.averaging import batchnorm_statistics
from ferkit.backend import keras, tf
from ferkit.data import load_faces, select_classes, stratified_split, train_val_rows
from ferkit.inference import HANDOFF_GRID, predict_probs
from ferkit.litert import file_sha256, staleness
from ferkit.models import build_cnn, load_model
from ferkit.pipeline import TrainingData
from ferkit.recipes import DEFAULT_LR, FINE_TUNE_LR, DnnRecipe, SpecialistRecipe
from ferkit.runstate import recorded_config
from ferkit.training import compile_for_training, copy_body_weights, recalibrated
import ferkit.training

pytestmark = [pytest.mark.usefixtures("no_tflite_export"), pytest.mark.slow]  # all train

# float32 pinned: `--precision auto` picks mixed bfloat16 on a CPU with AVX512-BF16, and
# the figures these tests assert on would then depend on the machine running them.
FAST = ["--batch-size", "16", "--lr", "1e-3", "--cycle-lr", "5e-4", "--no-augment",
        "--precision", "float32", "--val-split", "0.25"]
CNN_FAST = [*FAST, "--bn-momentum", "0.8"]
# The recipe in miniature: three epochs, a one-epoch first phase and two one-epoch cycles.
RECIPE = ["--epochs", "3", "--cycles", "2", "--cycle-epochs", "1"]
# Stage 1 keeps Adam's moving average by default; its fixture keeps the cycle ends' mean,
# the one with bookkeeping of its own to test (the moving average: test_ema_*).
STAGE1_RECIPE = [*RECIPE, "--average", "swa"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    images, labels = make_faces(280)
    return write_csv(folder / "train.csv", "label,feature", zip(labels, images))


@pytest.fixture(scope="module")
def stage1(data):
    """A stage-1 CNN trained by the recipe in miniature: (path, sidecar)."""
    out = data.parent / "cnn.h5"
    assert cli.run(cnn_train.main, ["--data", str(data), "--out", str(out), *STAGE1_RECIPE,
                                    *CNN_FAST]) == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def split_faces(data, sidecar):
    """(training images, validation images, validation labels renumbered) of a model."""
    faces = load_faces(data)
    train, val = train_val_rows(faces.labels, sidecar["classes"], sidecar["val_split"],
                                sidecar["seed"])
    images, labels = select_classes(faces.images[val], faces.labels[val], sidecar["classes"])
    return faces.images[train], images, labels


def interrupt_after(monkeypatch, epochs: int):
    """Make the run stop with Ctrl-C once ``epochs`` epochs have finished (in the next
    epoch's fit), as a user would."""
    fit = keras.Model.fit
    seen = []

    def fit_until(self, *args, **kwargs):
        if len(seen) == epochs:
            raise KeyboardInterrupt
        seen.append(1)
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "fit", fit_until)


def record_epochs(monkeypatch, val_accuracy=None):
    """The model's weights after each epoch (a list filled as the run goes). With
    ``val_accuracy``, the validation accuracy each epoch reports is replaced by the given
    one, so that the test chooses which epoch is the best."""
    fit, after = keras.Model.fit, []

    def recording_fit(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        if val_accuracy is not None:
            history.history["val_accuracy"] = [val_accuracy[len(after)]]
        after.append(self.get_weights())
        return history
    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return after


def as_written_before_epochs_meant_the_whole_run(path):
    """Rewrite a run's state.json as the trainers wrote it while --epochs was the first
    phase: the parsed options as `args` (epochs: the first phase), no version, recipe,
    schedule or file entries."""
    info = json.loads(path.read_text())
    recipe, schedule = info.pop("recipe"), info.pop("schedule")
    del recipe["kind"], info["version"]
    info["args"] = {**recipe, "epochs": schedule["first_epochs"], "overwrite": False,
                    "resume": False, **{key: info.pop(key) for key in ("data", "out", "usage")}}
    info["sidecar"]["config"] = dict(info["args"])
    info["command"] = info["sidecar"]["command"] = info["command"].replace(
        f"--epochs {schedule['first_epochs'] + schedule['cycles'] * schedule['cycle_epochs']}",
        f"--epochs {schedule['first_epochs']}")
    path.write_text(json.dumps(info))


@pytest.fixture(scope="module", autouse=True)
def op_determinism():
    """TensorFlow's op determinism for every training in this file: then only a run's state
    can make two runs with the same seed differ, and the seeded thresholds hold on every
    run, not on most. Restored for the files that follow."""
    from tensorflow.python.framework import config

    was_deterministic = config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    yield
    if not was_deterministic:
        config.disable_op_determinism()


def test_recipe_writes_the_mean_of_the_cycle_ends_with_batchnorm_re_estimated(data, stage1):
    out, sidecar = stage1
    model, _ = load_model(out)
    folder = out.with_suffix(".run")
    ends = [load_model(folder / f"cycle{c:02d}_end.h5")[0] for c in (1, 2)]
    assert sidecar["final_weights"] == {"kind": "swa", "cycle_ends": 2}
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            for i, weight in enumerate(layer.get_weights()):
                mean = np.mean([end.get_layer(layer.name).get_weights()[i] for end in ends], 0)
                np.testing.assert_allclose(weight, mean, atol=1e-6)
    # BatchNorm: not the mean of the cycle ends' statistics, but those of the plain
    # training faces under the averaged weights.
    train_images, val_images, val_labels = split_faces(data, sidecar)
    mean_of_ends = np.mean([e.get_layer("bn2_2").moving_mean.numpy() for e in ends], axis=0)
    found = model.get_layer("bn2_2").moving_mean.numpy()
    assert not np.allclose(found, mean_of_ends, atol=1e-3)
    np.testing.assert_allclose(found, batchnorm_statistics(model, train_images)["bn2_2"][0],
                               rtol=1e-4, atol=1e-5)
    assert sidecar["batchnorm_recalibration"]["kept"]
    # The sidecar's accuracy is the written model's, far above chance (1/7).
    accuracy = np.mean(predict_probs(model, val_images).argmax(1) == val_labels)
    assert accuracy == pytest.approx(sidecar["val_accuracy"], abs=1e-4) and accuracy > 0.6


def test_sidecar_names_the_one_command_and_history_and_curves_are_written(data, stage1):
    out, sidecar = stage1
    assert sidecar["command"] == ("python3 cnn_train.py --data " + str(data) + " --out "
                                  + str(out) + " " + " ".join(STAGE1_RECIPE + CNN_FAST))
    assert sidecar["parameters"] == 1_704_391 and sidecar["precision"] == "float32"
    assert sidecar["epochs_run"] == 3 and sidecar["schedule"]["cycles"] == 2
    assert sidecar["data_identity"] == ferkit.data.faces_identity(load_faces(data))
    for key in ("classes", "normalization", "config", "seed", "val_split", "val_accuracy_tta",
                "wall_time_s", "seconds_per_epoch", "versions", "machine"):
        assert key in sidecar
    history = out.with_suffix(".history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,cycle,learning_rate,") and len(history) == 4
    assert [row.split(",")[1] for row in history[1:]] == ["0", "1", "2"]
    assert "average_val_accuracy" in history[0] and "ema_val_accuracy" in history[0]
    assert out.with_suffix(".curves.png").read_bytes()[:4] == b"\x89PNG"
    # A finished run keeps its best epoch, cycle ends and last state (to add cycles to).
    assert len(list(out.with_suffix(".run").glob("state-*.npz"))) == 1
    assert staleness(out, sidecar) is None  # its LiteRT copy, made from this very .h5


def test_run_interrupted_inside_a_warm_restart_and_resumed_ends_as_an_uninterrupted_one(
        data, tmp_path, monkeypatch, capsys):
    whole, parts = tmp_path / "whole.h5", tmp_path / "parts.h5"
    # The DNN: the same machinery as the CNNs, dropout's random state included, faster.
    # A first phase of 2 epochs, then one warm restart of 2: stopped after its first epoch.
    argv = ["--data", str(data), "--epochs", "4", "--cycles", "1", "--cycle-epochs", "2", *FAST]
    assert cli.run(dnn_train.main, [*argv, "--out", str(whole)]) == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)  # inside the warm restart
        assert cli.run(dnn_train.main, [*argv, "--out", str(parts)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after epoch 3 of 4" in err and "--resume" in err
    assert not parts.exists() and (parts.with_suffix(".run") / "best.h5").exists()
    # Resumed by this version from the state.json the version before the total wrote.
    as_written_before_epochs_meant_the_whole_run(parts.with_suffix(".run") / "state.json")
    assert cli.run(dnn_train.main, ["--resume", "--out", str(parts)]) == 0
    (a, whole_sidecar), (b, parts_sidecar) = load_model(whole), load_model(parts)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    # The resumed run's sidecar is the model as built and names the command that started it.
    assert parts_sidecar["command"] == whole_sidecar["command"].replace(str(whole), str(parts))
    assert parts_sidecar["build"] == whole_sidecar["build"]
    assert parts_sidecar["epochs_run"] == 4 and "--resume" not in parts_sidecar["command"]
    assert parts_sidecar["final_weights"] == {"kind": "swa", "cycle_ends": 1}


@pytest.fixture(scope="module")
def dnn_recipe(data):
    """The DNN trained by the recipe in miniature, its cycle ends' mean kept (the DNN's
    default): the run that others, resumed, must end as. Its path; not to be changed."""
    out = data.parent / "dnn_recipe.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ferkit.training, "export_tflite", lambda out: None)
        assert cli.run(dnn_train.main, ["--data", str(data), *RECIPE, *FAST,
                                        "--out", str(out)]) == 0
    return out


def test_resume_with_more_cycles_ends_as_a_run_started_with_them(data, dnn_recipe, tmp_path,
                                                                 capsys):
    """A finished one-cycle run grown to two cycles equals a two-cycle run (op determinism
    on), and its sidecar names that run's command."""
    whole, grown = dnn_recipe, tmp_path / "grown.h5"
    argv = ["--data", str(data), "--cycle-epochs", "1", *FAST]
    assert cli.run(dnn_train.main, [*argv, "--epochs", "2", "--cycles", "1", "--out",
                                    str(grown)]) == 0
    capsys.readouterr()
    # A finished run is only resumed to grow, and only grows.
    for extra, message in (([], "has finished; give --cycles N (more than its 1)"),
                           (["--cycles", "0"], "--cycles 0: expected more warm restarts")):
        assert cli.run(dnn_train.main, ["--resume", "--out", str(grown), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert cli.run(dnn_train.main, ["--resume", "--out", str(grown), "--cycles", "2"]) == 0
    (a, whole_sidecar), (b, grown_sidecar) = load_model(whole), load_model(grown)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert grown_sidecar["final_weights"] == {"kind": "swa", "cycle_ends": 2}
    assert grown_sidecar["epochs_run"] == 3 and grown_sidecar["config"]["cycles"] == 2
    # The first phase kept, the total grown by the warm restart: the command says both.
    assert grown_sidecar["command"] == ("python3 dnn_train.py " + " ".join(argv)
                                        + " --epochs 3 --cycles 2 --out " + str(grown))
    assert grown_sidecar["schedule"]["epochs"] == grown_sidecar["config"]["epochs"] == 3
    assert grown_sidecar["resumed_with"] == [{"after_epoch": 2, "cycles": 2, "epochs": 3}]


def test_resume_with_the_other_average_ends_as_a_run_started_with_it(data, tmp_path, capsys):
    """Adam's moving average is kept in every run with cycles: a finished swa run ends as an
    ema run would (op determinism on); the other way is refused, no cycle-end average kept."""
    swa, ema = tmp_path / "swa.h5", tmp_path / "ema.h5"
    argv = ["--data", str(data), *RECIPE, *FAST]
    assert cli.run(dnn_train.main, [*argv, "--average", "ema", "--out", str(ema)]) == 0
    assert cli.run(dnn_train.main, [*argv, "--out", str(swa)]) == 0
    assert cli.run(dnn_train.main, ["--resume", "--out", str(swa), "--average", "ema"]) == 0
    capsys.readouterr()
    assert cli.run(dnn_train.main, ["--resume", "--out", str(ema), "--average", "swa"]) == 2
    assert "kept no average of the cycle ends" in capsys.readouterr().err
    # A run without cycles ends with its best epoch: no average to change, and it keeps no
    # state that nothing could resume.
    best = tmp_path / "best.h5"
    assert cli.run(dnn_train.main, ["--data", str(data), "--epochs", "1", *FAST,
                                    "--out", str(best)]) == 0
    assert "a run without warm restarts keeps no state" in capsys.readouterr().out
    assert best.exists() and not best.with_suffix(".run").exists()
    for extra in (["--average", "ema"], []):
        assert cli.run(dnn_train.main, ["--resume", "--out", str(best), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "keeps no state, and has nothing to resume" in err
    (a, ema_sidecar), (b, swa_sidecar) = load_model(ema), load_model(swa)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert swa_sidecar["final_weights"]["kind"] == "ema"
    assert swa_sidecar["command"].endswith("--average ema")
    assert swa_sidecar["resumed_with"] == [{"after_epoch": 3, "average": "ema"}]


def test_a_first_epoch_interrupted_leaves_no_folder_it_made_and_says_so_in_one_line(
        data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "new" / "deeper" / "dnn.h5"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 0)
        assert cli.run(dnn_train.main, ["--data", str(data), "--out", str(out), "--epochs",
                                        "2", *FAST]) == 130
    assert capsys.readouterr().err == ("interrupted before the first epoch finished: nothing "
                                       "written\n")
    assert list(tmp_path.iterdir()) == []  # the folders it made are gone with the run's state


def test_an_existing_model_is_never_touched_by_a_run_that_did_not_make_it(data, tmp_path,
                                                                        monkeypatch, capsys):
    out = tmp_path / "dnn.h5"
    out.write_bytes(b"a model a user cares about")
    argv = ["--data", str(data), "--out", str(out), "--epochs", "2", *FAST]
    assert cli.run(dnn_train.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume its run (--resume), replace it (--overwrite)" in err
    with monkeypatch.context() as patch:
        interrupt_after(patch, 0)  # Ctrl-C in the first epoch of a run that would replace it
        assert cli.run(dnn_train.main, [*argv, "--overwrite"]) == 130
    assert "nothing written" in capsys.readouterr().err
    assert out.read_bytes() == b"a model a user cares about"
    assert not out.with_suffix(".run").exists()
    assert cli.run(dnn_train.main, [*argv, "--overwrite"]) == 0
    assert load_model(out)[1]["epochs_run"] == 2


def test_resume_continues_with_the_options_the_run_started_with(data, tmp_path, monkeypatch):
    """--cycles 0: the model is the best epoch. The second of three epochs reports the
    best validation accuracy (set by the test): the written model is its weights."""
    out = tmp_path / "dnn.h5"
    argv = ["--data", str(data), "--out", str(out), "--epochs", "3", "--cycles", "0", *FAST]
    after_epoch = record_epochs(monkeypatch, val_accuracy=[0.2, 0.9, 0.5])
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        assert cli.run(dnn_train.main, argv) == 130
    assert cli.run(dnn_train.main, ["--resume", "--out", str(out), "--epochs", "9",
                                    "--dense-dropout", "0.5"]) == 0
    model, sidecar = load_model(out)
    assert sidecar["epochs_run"] == len(after_epoch) == 3
    assert sidecar["build"] == {"dense_dropout": 0.3}
    assert sidecar["final_weights"] == {"kind": "best epoch", "epoch": 2}
    for written, best, last in zip(model.get_weights(), after_epoch[1], after_epoch[2]):
        np.testing.assert_array_equal(written, best)
        assert not np.array_equal(written, last)
    history = out.with_suffix(".history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history] == ["epoch", "1", "2", "3"]


def test_ema_keeps_adams_moving_average_of_the_weights(data, tmp_path):
    out = tmp_path / "ema.h5"
    # With a vanishing momentum the moving average is the last step's weights.
    assert cli.run(dnn_train.main, ["--data", str(data), "--out", str(out), *RECIPE, *FAST,
                                    "--average", "ema", "--ema-momentum", "1e-9"]) == 0
    model, sidecar = load_model(out)
    assert sidecar["final_weights"] == {"kind": "ema", "momentum": 1e-9}
    last_end, _ = load_model(out.with_suffix(".run") / "cycle02_end.h5")
    for x, y in zip(model.get_weights(), last_end.get_weights()):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_the_moving_average_is_kept_beside_the_weights_not_swapped_in():
    # The trainer calls fit() once per epoch, and Keras' fit() ends by overwriting the
    # weights with Adam's moving average: with a momentum near 1 (an average that stays at
    # the first step's weights) training would then never move the weights from one epoch
    # to the next.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    compile_for_training(model, 1e-2, ema_momentum=0.9999999)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 3, 3)
    model.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0)  # the average starts here
    first_step = model.get_weights()
    for _ in range(2):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    moved = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), first_step))
    assert moved > 0.05
    for average, start in zip(ferkit.training.moving_average_weights(model), first_step):
        np.testing.assert_allclose(average, start, atol=1e-5)


@pytest.fixture(scope="module")
def specialist(data, stage1):
    """A Sad/Fear specialist grown from the stage-1 fixture for one epoch: its path."""
    out = data.parent / "spec.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ferkit.training, "export_tflite", lambda out: None)
        assert cli.run(cnn_train_mod.main, ["--data", str(data), "--out", str(out),
                                            "--specific", "4_2", "--init-from", str(stage1[0]),
                                            "--epochs", "1", "--cycles", "0", *CNN_FAST]) == 0
    return out


def test_specialist_grows_from_stage1_and_tunes_the_hand_off(data, stage1, specialist):
    model, sidecar = load_model(specialist)
    assert sidecar["classes"] == [4, 2] and sidecar["class_names"] == ["Sad", "Fear"]
    assert model.output_shape == (None, 2)
    assert sidecar["init_from"] == recorded_path(stage1[0], specialist)
    # Its data stream goes on from stage 1's epochs instead of replaying them.
    assert sidecar["prior_epochs"] == stage1[1]["epochs_run"] == 3
    tuning = sidecar["handoff_tuning"]
    assert tuning["faces"] == len(split_faces(data, stage1[1])[2])
    for threshold, table in (("handoff_below", "accuracy"), ("handoff_below_tta", "accuracy_tta")):
        accuracy = {float(t): a for t, a in tuning[table].items()}
        assert list(accuracy) == sorted(HANDOFF_GRID)
        assert accuracy[sidecar[threshold]] == max(accuracy.values())


def test_train_from_python_writes_a_specialist_with_its_hand_off_tuned(data, stage1, tmp_path):
    """ferkit.train(SpecialistRecipe(...)) tunes the cascade's hand-off against its stage 1
    (init_from), as cnn_train_mod.py does: the cascade does not hand over every face."""
    recipe = SpecialistRecipe(specific=(4, 2), init_from=str(stage1[0]), epochs=1, cycles=0,
                              batch_size=16, precision="float32", val_split=0.25,
                              augment=False, bn_momentum=0.8)
    out, sidecar = ferkit.train(recipe, data, tmp_path / "spec.h5")
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["stage1_sha256"] == file_sha256(stage1[0])
    assert written["handoff_tuning"]["stage1"] == recorded_path(stage1[0], out)
    for key in ("handoff_below", "handoff_below_tta"):
        assert written[key] in HANDOFF_GRID and sidecar[key] == written[key]


def test_stage1_keeps_the_moving_average_and_the_specialist_the_cycle_ends_mean(capsys):
    assert cnn_train.parse_args([]).average == "ema"
    assert cnn_train_mod.parse_args([]).average == "swa"
    with pytest.raises(SystemExit):
        cnn_train.parse_args(["--help"])
    assert "(default: ema)" in " ".join(capsys.readouterr().out.split())


def test_specialist_defaults_depend_on_whether_it_grows_from_stage1(tmp_path):
    grown = cnn_train_mod.parse_args(["--init-from", str(tmp_path / "cnn.h5")])
    assert (grown.epochs, grown.lr, grown.cycles) == (18, FINE_TUNE_LR, 4)
    scratch = cnn_train_mod.parse_args(["--init-from", "none"])
    assert scratch.init_from is None and (scratch.epochs, scratch.lr) == (72, DEFAULT_LR)
    assert cnn_train_mod.parse_args(["--init-from", "none", "--epochs", "9"]).epochs == 9
    assert cnn_train_mod.parse_args(["--init-from", "none", "--lr", "1e-4"]).lr == 1e-4
    assert cnn_train_mod.parse_args([]).init_from == str(MODELS / "cnn.h5")
    assert cnn_train_mod.parse_args(["--specific", "2_4"]).out == \
        str(Path("models") / "cnn_specific_2_4.h5")  # in the current folder
    stage1 = cnn_train.parse_args([])
    assert (stage1.epochs, stage1.cycles, stage1.cycle_epochs) == (120, 10, 6)
    assert (stage1.label_smoothing, stage1.conv_dropout, stage1.dense_dropout) == (0.1, 0.05, 0.1)
    dnn = dnn_train.parse_args([])
    assert (dnn.epochs, dnn.cycles, dnn.augment) == (40, 0, False)


def test_tune_only_retunes_a_trained_specialist_without_training_it(data, stage1, specialist,
                                                                  tmp_path):
    out = tmp_path / "spec.h5"
    shutil.copy(specialist, out)
    shutil.copy(data, tmp_path / data.name)  # its sidecar records its data beside it
    tuned = json.loads(specialist.with_suffix(".json").read_text())
    untuned = {key: value for key, value in tuned.items() if not key.startswith("handoff")}
    out.with_suffix(".json").write_text(json.dumps(untuned))
    model_bytes = out.read_bytes()
    assert cli.run(cnn_train_mod.main, ["--data", str(data), "--out", str(out), "--specific",
                                        "4_2", "--tune-only", "--stage1", str(stage1[0])]) == 0
    after = json.loads(out.with_suffix(".json").read_text())
    assert out.read_bytes() == model_bytes
    for key in ("handoff_below", "handoff_below_tta"):
        assert after[key] == tuned[key]
    # The same tuning, its stage 1 named from the copy's folder.
    assert after["handoff_tuning"] == {**tuned["handoff_tuning"],
                                       "stage1": recorded_path(stage1[0], out)}
    # Which stage 1 the hand-off was tuned against: a cascade with another one can tell.
    assert after["stage1"] == recorded_path(stage1[0], out)
    assert after["stage1_sha256"] == file_sha256(stage1[0]) == tuned["stage1_sha256"]


def test_warm_restart_refuses_a_split_that_would_validate_on_trained_faces(data, stage1,
                                                                          tmp_path, capsys):
    out = tmp_path / "restart.h5"
    argv = ["--data", str(data), "--out", str(out), "--init-from", str(stage1[0]), "--epochs",
            "1", "--cycles", "0", *CNN_FAST]
    assert cli.run(cnn_train.main, [*argv, "--val-split", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected the val_split it was trained with, 0.25" in err
    # Other faces (here: the same file less one row) fail on their identity.
    other = tmp_path / "other.csv"
    other.write_text("\n".join(data.read_text().splitlines()[:-1]) + "\n")
    assert cli.run(cnn_train.main, [*argv[:1], str(other), *argv[2:]]) == 2
    assert "expected the faces it was trained on" in capsys.readouterr().err
    # Nor may it write over the model it starts from.
    source_bytes = stage1[0].read_bytes()
    assert cli.run(cnn_train.main, [*argv[:2], "--out", str(stage1[0]), *argv[4:],
                                    "--overwrite"]) == 2
    assert "expected another file than init_from's" in capsys.readouterr().err
    assert stage1[0].read_bytes() == source_bytes and not out.exists()


def test_sidecar_config_names_files_relative_to_the_model_folder():
    recipe = SpecialistRecipe()
    assert recipe.init_from == str(MODELS / "cnn.h5")  # the default is absolute
    config = recorded_config(recipe, ROOT.parent / "shared/fer/train.csv.gz",
                             MODELS / "cnn_specific_0_2_4_6.h5")
    assert config["out"] == "cnn_specific_0_2_4_6.h5"
    assert config["data"] == "../../shared/fer/train.csv.gz"
    assert config["init_from"] == "cnn.h5"
    assert config["kind"] == "SpecialistRecipe" and config["epochs"] == 18
    assert recipe.init_from == str(MODELS / "cnn.h5")  # the recipe is left as it was


@pytest.mark.parametrize("argv,message", [
    (["--specific", "0_9"], "--specific: expected class digits 0-6"),
    (["--specific", "4_4"], "found a repeat"),
    (["--val-split", "1.5"], "--val-split: expected a share between 0 and 1, found 1.5"),
    (["--epochs", "0"], "--epochs: expected a positive integer, found 0"),
    (["--cycles", "-1"], "--cycles: expected 0 or more warm restarts, found -1"),
    (["--label-smoothing", "1"], "--label-smoothing: expected a share from 0 up to (not "
                                 "including) 1, found 1.0"),
    (["--data", "BAD_DATA"], "bad.csv: line 3: expected a label 0-6, found '8'"),
    (["--data", "MISSING"], "missing.csv: file not found"),
    (["--resume"], "--resume: expected the state of a run in"),
])
def test_trainer_bad_input_one_line_exit_2(data, tmp_path, capsys, argv, message):
    out = tmp_path / "m.h5"
    images, _ = make_faces(2)
    write_csv(tmp_path / "bad.csv", "label,feature", [(0, images[0]), (8, images[1])])
    argv = [{"BAD_DATA": str(tmp_path / "bad.csv"),
             "MISSING": str(tmp_path / "missing.csv")}.get(a, a) for a in argv]
    code = cli.run(cnn_train_mod.main, ["--data", str(data), "--out", str(out),
                                        "--init-from", "none", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists() and not out.with_suffix(".run").exists()


def test_mixed_bfloat16_model_loads_as_float32_with_the_same_classes(data, tmp_path):
    out = tmp_path / "mixed.h5"
    assert cli.run(dnn_train.main, ["--data", str(data), "--out", str(out), "--epochs", "1",
                                    *FAST[:6], "--precision", "bfloat16"]) == 0
    reloaded, sidecar = load_model(out)
    assert sidecar["precision"] == "mixed_bfloat16" and sidecar["classes"] == list(range(7))
    assert reloaded.get_layer("dense1").compute_dtype == "float32"


def test_mirrored_strategy_trains_on_two_logical_devices(data, tmp_path):
    """Several devices -> MirroredStrategy; shown on CPU split into two logical devices
    (in a fresh process: logical devices must be set before TensorFlow starts)."""
    script = textwrap.dedent(f"""
        import sys
        from ferkit.backend import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        from ferkit.app import dnn_train
        import ferkit.training
        ferkit.training.default_strategy = lambda: strategy
        ferkit.training.export_tflite = lambda out: None  # (seconds, and tested elsewhere)
        dnn_train.main(["--data", {str(data)!r}, "--out", {str(tmp_path / "m.h5")!r},
                        "--epochs", "2", "--batch-size", "32"])
        print("replicas", strategy.num_replicas_in_sync)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "replicas 2" in result.stdout and "epoch 2/2" in result.stdout
    assert json.loads((tmp_path / "m.json").read_text())["epochs_run"] == 2


def test_init_from_copies_every_layer_but_the_logits():
    source, target = build_cnn(7), build_cnn(4)
    copy_body_weights(source, target)
    np.testing.assert_array_equal(source.get_layer("conv2_2").get_weights()[0],
                                  target.get_layer("conv2_2").get_weights()[0])
    assert target.get_layer("logits").get_weights()[0].shape == (64, 4)
    assert not np.allclose(target.get_layer("logits").get_weights()[0],
                           source.get_layer("logits").get_weights()[0][:, [0, 2, 4, 6]])


def test_init_from_a_7_class_model_starts_as_it_restricted_to_the_subset():
    keras.utils.set_random_seed(3)
    source, target = build_cnn(7), build_cnn(4)
    classes = [0, 2, 4, 6]
    copy_body_weights(source, target, list(range(7)), classes)
    images = np.random.default_rng(0).integers(0, 256, (16, 48, 48)).astype(np.uint8)
    restricted = predict_probs(source, images)[:, classes]
    np.testing.assert_allclose(predict_probs(target, images),
                               restricted / restricted.sum(axis=1, keepdims=True), atol=1e-5)


def test_split_is_stratified_shuffled_and_seeded():
    labels = np.repeat(np.arange(7), 20)
    train, val = stratified_split(labels, 0.25, seed=3)
    assert np.bincount(labels[val]).tolist() == [5] * 7
    assert not np.array_equal(np.sort(val), np.arange(len(labels) - len(val), len(labels)))
    np.testing.assert_array_equal(val, stratified_split(labels, 0.25, seed=3)[1])
    assert set(train) | set(val) == set(range(len(labels))) and not set(train) & set(val)


def test_specialist_split_is_stage1_split_narrowed_to_its_classes():
    labels = np.repeat(np.arange(7), 20)
    train1, val1 = train_val_rows(labels, range(7), 0.25, seed=1)
    train2, val2 = train_val_rows(labels, [0, 2, 4, 6], 0.25, seed=1)
    assert set(val2) == {r for r in val1 if labels[r] in (0, 2, 4, 6)}
    assert set(train2) == {r for r in train1 if labels[r] in (0, 2, 4, 6)}


def test_select_classes_renumbers_in_the_given_order():
    images = np.arange(6)[:, None, None] * np.ones((1, 48, 48), dtype=np.uint8)
    kept, labels = select_classes(images, np.array([0, 6, 2, 3, 6, 1]), [6, 0])
    assert labels.tolist() == [1, 0, 0] and kept[:, 0, 0].tolist() == [0, 1, 4]


def test_label_smoothing_spreads_the_target_over_every_class():
    # Fixed softmax outputs p for every input: the loss must be the cross-entropy with
    # the target (1 - s) * one_hot + s / K, which the unsmoothed loss is not.
    classes, smoothing = 3, 0.3
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(classes, "softmax")])
    model.layers[0].set_weights([np.zeros((2, classes)), np.array([2.0, 0.0, -1.0])])
    probs = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    target = np.full(classes, smoothing / classes) + (1 - smoothing) * np.eye(classes)[1]
    x, y = np.zeros((4, 2), np.float32), np.tile(np.eye(classes, dtype=np.float32)[1], (4, 1))
    compile_for_training(model, 1e-3, label_smoothing=smoothing)
    loss = model.evaluate(x, y, verbose=0)[0]
    assert loss == pytest.approx(-(target * np.log(probs)).sum(), rel=1e-5)
    assert abs(loss + np.log(probs[1])) > 0.05  # plain cross-entropy: -log p[1]


# --- --epochs is the whole run ----------------------------------------------------------------

def test_a_two_epoch_trial_of_the_recipe_runs_two_epochs_and_says_what_it_left_out(
        train_csv, tmp_path, monkeypatch, capsys):
    """Stage 1's recipe but --epochs 2: no room for its warm restarts, so the model is the
    best epoch. The first epoch reports the better validation accuracy (set by the test);
    without BatchNorm re-estimation, the written model is that epoch's weights, all of them.
    (On 70 faces: what is asserted is the schedule, not what the model learns.)"""
    out = tmp_path / "trial.h5"
    after_epoch = record_epochs(monkeypatch, val_accuracy=[0.9, 0.5])
    assert cli.run(cnn_train.main, ["--data", str(train_csv), "--out", str(out), "--epochs", "2",
                                    "--batch-size", "16", "--precision", "float32",
                                    "--val-split", "0.25", "--no-bn-recalibration"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "left out" in line] == [
        "left out: the recipe's 10 warm restarts of 6 epochs and Adam's moving average as "
        "the final weights (no room in 2 epochs; the model is the best epoch)"]
    assert [line.split(" (")[0] for line in lines if line.startswith("epoch ")] == [
        "epoch 1/2", "epoch 2/2"]
    model, sidecar = load_model(out)
    assert sidecar["epochs_run"] == len(after_epoch) == 2
    assert sidecar["schedule"] == {"epochs": 2, "first_epochs": 2, "lr": 3e-4, "cycles": 0,
                                   "cycle_epochs": 6, "cycle_lr": 1.5e-4, "cycles_left_out": 10}
    assert (sidecar["config"]["epochs"], sidecar["config"]["cycles"]) == (2, 10)
    assert sidecar["final_weights"] == {"kind": "best epoch", "epoch": 1}
    assert "batchnorm_recalibration" not in sidecar
    for written, best in zip(model.get_weights(), after_epoch[0]):
        np.testing.assert_array_equal(written, best)
    assert not all(np.array_equal(a, b) for a, b in zip(after_epoch[0], after_epoch[1]))
    assert not out.with_suffix(".run").exists()  # nothing that could be resumed


# --- training from Python ---------------------------------------------------------------------

def test_train_from_python_writes_the_model_the_script_writes(data, tmp_path, capsys):
    script, api = tmp_path / "script.h5", tmp_path / "api.h5"
    assert cli.run(dnn_train.main, ["--data", str(data), "--out", str(script), "--epochs", "2",
                                    *FAST]) == 0
    capsys.readouterr()
    config = DnnRecipe(epochs=2, batch_size=16, lr=1e-3, cycle_lr=5e-4, augment=False,
                       precision="float32", val_split=0.25)
    out, sidecar = ferkit.training.train(config, data, api)
    assert capsys.readouterr().out == ""  # nothing printed unless asked (verbose=True)
    assert out == api and sidecar == load_model(api)[1]
    for x, y in zip(load_model(script)[0].get_weights(), load_model(api)[0].get_weights()):
        np.testing.assert_array_equal(x, y)
    written = load_model(script)[1]
    assert {k: v for k, v in sidecar["config"].items() if k != "out"} == \
        {k: v for k, v in written["config"].items() if k != "out"}
    assert sidecar["command"] is None and written["command"].startswith("python3 dnn_train.py")


# --- the paths README promises ----------------------------------------------------------------

def test_init_from_starts_the_run_from_the_source_s_weights(data, stage1, tmp_path,
                                                           monkeypatch):
    starts = []

    def first_fit(self, *args, **kwargs):
        starts.append(self.get_weights())
        raise KeyboardInterrupt  # the starting weights are all this test needs
    monkeypatch.setattr(keras.Model, "fit", first_fit)
    assert cli.run(cnn_train.main, ["--data", str(data), "--out", str(tmp_path / "warm.h5"),
                                    "--init-from", str(stage1[0]), "--epochs", "1",
                                    "--cycles", "0", *CNN_FAST]) == 130
    source = load_model(stage1[0])[0].get_weights()
    assert len(starts[0]) == len(source)  # the logits and the BatchNorm statistics too
    for start, weight in zip(starts[0], source):
        np.testing.assert_array_equal(start, weight)


def test_re_estimated_batchnorm_statistics_are_kept_for_an_epoch_only_when_accuracy_holds():
    keras.utils.set_random_seed(0)
    model = build_cnn(2, bn_momentum=0.5)
    images, labels = make_faces(40, classes=[0, 1])
    faces = TrainingData(images[:30], labels[:30], images[30:], labels[30:], [0, 1], "")
    expected = batchnorm_statistics(model, faces.train_images)["bn2_2"][0]
    old = model.get_layer("bn2_2").moving_mean.numpy()
    for before, only_if_better, kept in ((2.0, True, False), (0.0, True, True),
                                         (2.0, False, True)):
        sidecar = {}
        result, accuracy = recalibrated(model, faces, before, sidecar, only_if_better)
        found = result.get_layer("bn2_2").moving_mean.numpy()
        np.testing.assert_allclose(found, expected if kept else old, rtol=1e-4, atol=1e-5)
        assert sidecar["batchnorm_recalibration"]["kept"] is kept
        assert (accuracy == before) is not kept
