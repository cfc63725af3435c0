"""confusion.py, saliency.py and filter_vis.py end to end, in-process, on tiny models
trained for one epoch by the real trainers (so their sidecars are the real thing)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_faces, write_csv

from ferkit.app import confusion
from ferkit.app import filter_vis
from ferkit.app import saliency
import ferkit.data
from ferkit.app import cli
from ferkit.data import load_faces
from ferkit.evaluation import split_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def models(analysis_models):
    """conftest's, trained once for every module that uses it."""
    return analysis_models


def pngs(folder):
    found = sorted(p.name for p in folder.glob("*.png"))
    for name in found:
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    return found


def test_validation_split_is_rebuilt_exactly_as_training_drew_it(models):
    from ferkit.record import read_record

    faces = load_faces(models["data"], require_labels=True)
    for path, classes, (train, val) in zip((models["stage1"], models["stage2"]),
                                           ([0, 1, 2, 3, 4, 5, 6], [0, 2, 4, 6]),
                                           models["splits"]):
        sidecar = read_record(path)
        # Training drew the split over all classes, then kept the model's own.
        keep = np.isin(faces.labels, classes)
        train_rows, val_rows = split_rows(sidecar, faces)
        np.testing.assert_array_equal(val_rows, val[keep[val]])
        np.testing.assert_array_equal(train_rows, train[keep[train]])
        assert set(faces.labels[val_rows]) == set(classes)


def test_confusion_scores_stage1_and_the_cascade_on_the_validation_split(models, tmp_path,
                                                                          capsys):
    out = tmp_path / "figures"
    assert confusion.main(["--stage1", models["stage1"], "--stage2", models["stage2"],
                           "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert pngs(out) == ["cascade_confusion_val.png", "cascade_reliability_val.png"]
    assert "scoring 35 faces: validation split of" in printed
    # Stage 1 comes calibrated from its trainer; this specialist was trained without a
    # stage 1, so the cascade has no calibration: raw only, and the command that makes it.
    assert printed.count("calibration (ECE over 15 confidence bins, NLL, Brier)") == 2
    assert printed.count("  calibrated ECE") == 1
    assert printed.count("no calibration in the sidecar; make it with: python3 calibrate.py") == 1
    assert "cnn.h5 alone: accuracy" in printed and "\ncascade: accuracy" in printed
    assert printed.count("most confused (true -> predicted, share of the true class)") == 2
    assert "the specialist changed" in printed and "from wrong to right" in printed
    # Same data, seed and share: the specialist's split is stage 1's narrowed to its
    # classes, so no scored face was one it trained on.
    assert "were in the specialist's training split" not in printed


def test_confusion_of_one_model_on_a_labelled_id_file(models, tmp_path, capsys):
    out = tmp_path / "figures"
    assert confusion.main(["--model", models["stage2"], "--data", models["test"],
                           "--labels", models["answers"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert pngs(out) == ["special_confusion_test.png", "special_reliability_test.png"]
    assert "cascade" not in printed
    # The specialist is scored on its own four classes only: 3 of each in 21 faces.
    assert "scoring 12 faces" in printed
    for name in ("Angry", "Fear", "Sad", "Neutral"):
        assert f"  {name:<9}" in printed
    assert "  Happy" not in printed


def test_trainers_calibrate_and_calibrate_py_fits_an_existing_cascade(models, tmp_path,
                                                                     capsys):
    """A trainer records its model's calibration, fitted on its validation faces, with the
    ECE before and after; calibrate.py writes the models' and the cascade's into the
    sidecars (the cascade's tied to this stage 1) without touching the weights, and
    confusion.py then shows both sets raw and calibrated."""
    import json
    import shutil

    from ferkit.app import calibrate
    from ferkit.calibration import Calibration
    from ferkit.litert import file_sha256

    stage1, stage2 = tmp_path / "cnn.h5", tmp_path / "special.h5"
    for source, copy in ((models["stage1"], stage1), (models["stage2"], stage2)):
        shutil.copy(source, copy)
        shutil.copy(Path(source).with_suffix(".json"), copy.with_suffix(".json"))
    trained = json.loads(stage1.with_suffix(".json").read_text())["calibration"]
    assert trained["faces"]["count"] == 35 and trained["faces"]["split"] == "validation split"
    for key in ("plain", "tta"):
        assert 0 <= trained[key]["before"]["ece"] <= 1 and "ece" in trained[key]["after"]
        Calibration.from_dict(trained[key])
    weights = {path: file_sha256(path) for path in (stage1, stage2)}
    moved = ["--train-data", str(models["data"])]  # the copies' data is not beside them
    assert calibrate.main(["--stage1", str(stage1), "--stage2", str(stage2), *moved]) == 0
    printed = capsys.readouterr().out
    assert printed.count("validation ECE") == 6  # two models and the cascade, plain and TTA
    assert {path: file_sha256(path) for path in weights} == weights
    special = json.loads(stage2.with_suffix(".json").read_text())
    assert special["calibration"]["faces"]["classes"] == [0, 2, 4, 6]
    assert special["cascade_calibration"]["stage1_sha256"] == weights[stage1]
    assert special["cascade_calibration"]["faces"]["count"] == 35
    assert special["cascade_calibration"]["command"] == (
        f"python3 calibrate.py --stage1 {stage1} --stage2 {stage2} {' '.join(moved)}")
    out = tmp_path / "figures"
    assert confusion.main(["--stage1", str(stage1), "--stage2", str(stage2), *moved,
                           "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("  calibrated ECE") == 2 and "no calibration" not in printed


def test_saliency_draws_one_figure_per_method(models, tmp_path, capsys):
    out = tmp_path / "figures"
    assert saliency.main(["--model", models["stage1"], "--samples", "2", "--out",
                          str(out)]) == 0
    assert pngs(out) == ["cnn_gradcam_val.png", "cnn_saliency_val.png",
                         "cnn_smoothgrad_val.png"]
    assert "explaining" in capsys.readouterr().out


def test_saliency_of_chosen_ids_with_one_method(models, tmp_path):
    out = tmp_path / "figures"
    assert saliency.main(["--model", models["stage1"], "--data", models["test"], "--ids",
                          "face3, face7", "--method", "gradcam", "--layer", "conv2_3",
                          "--keep", "0.3", "--out", str(out)]) == 0
    assert pngs(out) == ["cnn_gradcam_test.png"]


def test_filter_vis_draws_a_grid_per_default_layer(models, tmp_path):
    out = tmp_path / "figures"
    assert filter_vis.main(["--model", models["stage1"], "--filters", "2", "--steps", "3",
                            "--out", str(out)]) == 0
    assert pngs(out) == ["cnn_filters_conv1_1.png", "cnn_filters_conv2_2.png",
                         "cnn_filters_conv3_3.png"]


def test_filter_vis_draws_the_first_layer_as_its_kernels_the_others_by_ascent(
        models, tmp_path, monkeypatch):
    from ferkit import explain, figures
    from ferkit.models import load_model

    grids, ascents = {}, []
    monkeypatch.setattr(figures, "grid_figure",
                        lambda images, captions, title, path, **kw: grids.update(
                            {Path(path).name: np.asarray(images)}))
    ascent = explain.filter_ascent
    monkeypatch.setattr(explain, "filter_ascent", lambda model, layer, *a, **kw: (
        ascents.append(layer), ascent(model, layer, *a, **kw))[1])
    assert filter_vis.main(["--model", models["stage1"], "--layer", "conv1_1", "--layer",
                            "conv2_1", "--filters", "3", "--steps", "2", "--out",
                            str(tmp_path)]) == 0
    kernel = load_model(models["stage1"])[0].get_layer("conv1_1").get_weights()[0]
    np.testing.assert_array_equal(grids["cnn_filters_conv1_1.png"],
                                  np.moveaxis(kernel[:, :, 0, :3], -1, 0))
    assert ascents == ["conv2_1"] and grids["cnn_filters_conv2_1.png"].shape == (3, 48, 48)


def test_filter_vis_class_images_and_activation_maps(models, tmp_path):
    out = tmp_path / "figures"
    # Layer 5 is conv1_2 (pixels, rescale, conv1_1, bn1_1, relu1_1, conv1_2, ...).
    assert filter_vis.main(["--model", models["stage2"], "--class", "all", "--image", "face4",
                            "--data", models["test"], "--layer", "relu1_1", "--layer", "5",
                            "--filters", "4", "--steps", "3", "--out", str(out)]) == 0
    assert pngs(out) == ["special_activations_conv1_2_test_face4.png",
                         "special_activations_relu1_1_test_face4.png", "special_classes.png"]


@pytest.mark.parametrize("script, argv, message", [
    (saliency, ["--ids", "nope"], r"--ids: no face with id 'nope' among the 21 faces"),
    (saliency, ["--layer", "conv9"], r"--layer: expected a layer of cnn, found 'conv9'"),
    (saliency, ["--keep", "0"], r"--keep 0.0: expected a share"),
    (filter_vis, ["--layer", "dense1"], r"--layer: expected a layer with feature maps .*, "
                                        r"found 'dense1' \(dense1\)"),
    (filter_vis, ["--layer", "-3"], r"--layer: expected a layer with .*found '-3' "
                                    r"\(dense_drop3\)"),
    (filter_vis, ["--class", "Angy"], r"--class 'Angy': expected one of the model's classes "
                                      r"0 Angry, 1 Disgust"),
    (filter_vis, ["--image", "face99"], r"--image: no face with id 'face99'"),
    (confusion, ["--model", "missing.h5"], r"missing.h5: model file not found"),
    (confusion, ["--data", "missing.csv"], r"missing.csv: file not found"),
    (confusion, ["--labels", "missing.csv"], r"missing.csv: file not found"),
])
def test_bad_input_is_one_line_exit_2_and_no_figure(models, tmp_path, capsys, monkeypatch,
                                                    script, argv, message):
    import re

    import ferkit.inference
    from ferkit import explain

    def ran(*args, **kwargs):
        raise AssertionError("a model ran on the faces before the options were checked")
    for module, name in ((saliency, "predict_probs"), (ferkit.inference, "predict_probs"),
                         (explain, "filter_ascent"), (explain, "class_ascent"),
                         (explain, "activation_maps")):
        monkeypatch.setattr(module, name, ran)
    out = tmp_path / "figures"
    defaults = {saliency: ["--model", models["stage1"], "--data", models["test"]],
                filter_vis: ["--model", models["stage1"], "--data", models["test"]],
                confusion: ["--stage1", models["stage1"], "--stage2", models["stage2"],
                            "--data", models["test"]]}[script]
    assert cli.run(script.main, [*defaults, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(r"error: " + message, err[0]), err
    assert not out.exists() or pngs(out) == []


def moved_models(models, folder, **changes):
    """Copies of stage 1 and the specialist whose sidecars name a training file that is not
    here (as the shipped ones do on a clone without ../shared), with ``changes``."""
    import json
    import shutil

    folder.mkdir()
    copies = []
    for name in ("stage1", "stage2"):
        path = folder / Path(models[name]).name
        shutil.copy(models[name], path)
        sidecar = json.loads(Path(models[name]).with_suffix(".json").read_text())
        sidecar.update(data=str(folder / "gone" / "train.csv"), **changes)
        sidecar = {k: v for k, v in sidecar.items() if v is not None or k == "usage"}
        path.with_suffix(".json").write_text(json.dumps(sidecar))
        copies.append(str(path))
    return copies


def test_analysis_defaults_find_the_training_faces_at_readmes_data_location(
        models, tmp_path, monkeypatch, capsys):
    """The recorded file is not here, the data is in data/ as README says: the split is
    rebuilt from data/train.csv.gz when it holds the faces the sidecar names; other faces
    there are one line asking for --train-data (never --data, which would score training
    faces)."""
    from ferkit.data import faces_identity

    identity = faces_identity(load_faces(models["data"]))
    stage1, stage2 = moved_models(models, tmp_path / "models", data_identity=identity)
    readme_data = tmp_path / "data" / "train.csv"
    monkeypatch.setattr(ferkit.data, "DEFAULT_TRAIN", readme_data)
    readme_data.parent.mkdir()
    faces = load_faces(models["data"])
    write_csv(tmp_path / "data" / "train.csv.gz", "label,feature", zip(faces.labels, faces.images))
    out = tmp_path / "figures"
    argv = ["--stage1", stage1, "--stage2", stage2, "--out", str(out)]
    assert cli.run(confusion.main, argv) == 0
    printed = capsys.readouterr().out
    assert "scoring 35 faces: validation split of" in printed
    assert "were in the specialist's training split" not in printed

    other_images, other_labels = make_faces(140, seed=11)
    write_csv(readme_data, "label,feature", zip(other_labels, other_images))
    (tmp_path / "data" / "train.csv.gz").unlink()
    assert cli.run(confusion.main, argv) == 2
    # After the line saying how to calibrate these uncalibrated models, one error line.
    notice, *err = capsys.readouterr().err.splitlines()
    assert notice.startswith("calibrate with: python3 calibrate.py --stage1 ")
    assert len(err) == 1 and f"{readme_data} holds other faces" in err[0], err
    assert "pass --train-data FILE, the file it was trained on" in err[0]
    assert "--data FILE" not in err[0]
    assert cli.run(confusion.main, [*argv, "--train-data", str(models["data"])]) == 0


def test_a_sidecar_without_data_identity_never_guesses_readmes_location(models, tmp_path,
                                                                        monkeypatch, capsys):
    stage1, _ = moved_models(models, tmp_path / "models", data_identity=None)
    monkeypatch.setattr(ferkit.data, "DEFAULT_TRAIN", tmp_path / "train.csv")
    (tmp_path / "train.csv").write_bytes(Path(models["data"]).read_bytes())
    assert cli.run(saliency.main, ["--model", stage1, "--out", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err
    assert "is not used: the sidecar has no data_identity to check it by; pass --train-data" \
        in err and err.count("\n") == 1
    assert not (tmp_path / "figures").exists()


def test_analysis_scripts_write_into_an_ignored_folder_by_default():
    from ferkit.app.cli import FIGURES_OUT

    for script in (confusion, saliency, filter_vis):
        assert script.parse_args([]).out == str(FIGURES_OUT)
    # pip's leftovers too: its metadata, build folder and wheels.
    outputs = ["runs/figures/cnn_saliency_val.png", "out.csv", "models/cnn.run/state.json",
               "models/cnn.int8.tflite", "build/lib/ferkit/__init__.py",
               "ferkit.egg-info/PKG-INFO", "dist/ferkit-0.1-py3-none-any.whl"]
    committed = ["figures/cnn_gradcam_test.png", "models/cnn.h5", "data/README.md"]
    check = subprocess.run(["git", "check-ignore", *outputs, *committed], cwd=ROOT,
                           capture_output=True, text=True)
    if check.returncode == 128:
        pytest.skip(f"not a git checkout: {check.stderr.strip()}")
    assert check.stdout.split() == outputs


def test_help_is_fast_without_tensorflow():
    code = ("import sys\nfrom ferkit.app import confusion, saliency, filter_vis\n"
            "for script in (confusion, saliency, filter_vis):\n"
            "    try:\n"
            "        script.parse_args(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False")
    for option in ("--stage1", "--keep", "--method", "--filters", "--class", "--image"):
        assert option in done.stdout
