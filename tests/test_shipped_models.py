"""The trained models committed in models/: exactly the three the toolkit ships, each
answering as pinned in tests/fixtures/shipped_models.json (bench/pin_shipped_models.py), and
README's results table as bench/results.py measures it on FER2013's PublicTest."""
import json
import re
import subprocess

import numpy as np
import pytest

from conftest import ROOT, fer2013_files, make_faces
from bench import pin_shipped_models as pin
from ferkit import MODELS
from ferkit.inference import predict_probs
from ferkit.models import load_model

SHIPPED = [  # file, parameters, classes
    ("cnn.h5", 1_704_391, list(range(7))),
    ("cnn_specific_0_2_4_6.h5", 1_704_391 - 3 * 65, [0, 2, 4, 6]),
    ("dnn.h5", 1_838_599, list(range(7))),
]
SUFFIXES = (".h5", ".tflite", ".json", ".history.csv", ".curves.png")
REPIN = (f"if the model was changed on purpose (retrained, averaged), run {pin.COMMAND} "
         f"and commit {pin.FIXTURE.relative_to(ROOT)}")


@pytest.mark.parametrize("name,parameters,classes", SHIPPED)
def test_shipped_model_loads_and_gives_valid_labels(name, parameters, classes):
    path = MODELS / name
    # Committed: a missing one is a broken checkout, not a model still to train.
    assert path.exists(), f"{path}: missing; the shipped models are committed"
    assert path.stat().st_size < 10 * 2**20
    model, sidecar = load_model(path)
    assert model.count_params() == parameters == sidecar["parameters"]
    assert sidecar["classes"] == classes
    assert 0 < sidecar["val_accuracy"] <= 1
    for key in ("normalization", "command", "config", "seed", "wall_time_s", "versions"):
        assert key in sidecar
    assert path.with_suffix(".history.csv").read_text().startswith("epoch,")
    assert path.with_suffix(".curves.png").read_bytes()[:4] == b"\x89PNG"
    probs = predict_probs(model, make_faces(8)[0])
    assert probs.shape == (8, len(classes))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_models_folder_tracks_exactly_the_shipped_models_and_their_files():
    tracked = subprocess.run(["git", "ls-files", "models"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    shipped = {f"models/{name[:-3]}{suffix}" for name, _, _ in SHIPPED for suffix in SUFFIXES}
    assert set(tracked) == shipped, (f"tracked but not shipped: {sorted(set(tracked) - shipped)}"
                                     f"; shipped but not tracked: "
                                     f"{sorted(shipped - set(tracked))}")
    for path in shipped:
        assert (ROOT / path).exists(), f"{path}: tracked but missing from the checkout"


def test_pinned_faces_are_made_the_same_way_every_time():
    names, faces = pin.pinned_faces()
    again = pin.pinned_faces()
    assert names == again[0] == json.loads(pin.FIXTURE.read_text())["faces"]
    np.testing.assert_array_equal(faces, again[1])
    assert faces.shape == (len(names), 48, 48) and faces.dtype == np.uint8
    assert len({face.tobytes() for face in faces}) == len(faces)  # no two alike


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["keras", "litert"])
def test_shipped_models_answer_as_pinned(runtime):
    """Labels, hand-offs and every probability to 1e-4 of stage 1, the specialist, the DNN
    and the cascade, without and with TTA, on faces made by code (no FER2013 pixel)."""
    expected = json.loads(pin.FIXTURE.read_text())
    assert set(expected["models"]) == {name for name, _, _ in SHIPPED}
    problems = pin.differences(expected, pin.behaviour(runtime))
    assert not problems, "\n".join([f"on {runtime}:", *problems, REPIN])


def test_pin_check_fails_on_a_model_that_answers_otherwise():
    expected = json.loads(pin.FIXTURE.read_text())
    found = json.loads(pin.FIXTURE.read_text())
    assert pin.differences(expected, found) == []
    found["models"]["cnn.h5"]["probs_tta"][2][0] += 2e-4
    found["models"]["cnn.h5"]["sha256"] = "0" * 64
    found["cascade"]["labels"][0] = (found["cascade"]["labels"][0] + 1) % 7
    assert pin.differences(expected, found) == [
        f"cnn.h5 with TTA: probabilities differ by up to 2.00e-04 (face 2, "
        f"{expected['faces'][2]!r})",
        "cnn.h5: not the file pinned (SHA-256 differs): retrained?",
        f"cascade labels: expected {expected['cascade']['labels']}, found "
        f"{found['cascade']['labels']}"]


def test_pin_fails_when_calibration_is_skipped(monkeypatch):
    """The shipped models are calibrated (python3 calibrate.py): without their sidecars'
    calibrations the pinned calibrated probabilities of every model and of the cascade
    differ, while the labels stay as pinned."""
    import ferkit.inference

    expected = json.loads(pin.FIXTURE.read_text())
    for model in expected["models"].values():
        assert np.abs(np.subtract(model["calibrated"], model["probs"])).max() > 1e-2
    monkeypatch.setattr(ferkit.inference, "model_calibration",
                        lambda sidecar, tta=False: ferkit.inference.Calibration(1.0))
    monkeypatch.setattr(ferkit.inference, "cascade_calibration", lambda *args: None)
    problems = pin.differences(expected, pin.behaviour("litert"))
    assert {line.split(":")[0] for line in problems} == {
        *(f"{name}{tta}" for name in expected["models"] for tta in ("", " with TTA")),
        "cascade calibrated", "cascade calibrated_tta"}, problems
    assert all("probabilities differ" in line for line in problems)  # labels as pinned


def markdown_rows(text, first_cells):
    """{first cell: [the other cells]} of the Markdown table rows whose first cell starts
    with one of ``first_cells``."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cells):
            rows[cells[0]] = cells[1:]
    return rows


def number(cell) -> float:
    return float(re.fullmatch(r"([\d.]+)%?", cell).group(1))


@pytest.mark.slow
def test_readme_results_are_what_bench_results_measures_on_public_test(capsys):
    data, labels = fer2013_files("test.csv.gz", "test_labels.csv")
    from bench import results

    assert results.main(["--data", str(data), "--labels", str(labels)]) == 0
    measured = markdown_rows(capsys.readouterr().out, ("DNN", "stage 1 alone", "cascade"))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("\n## Results"):]
    table = table[:table.index("\n\n", table.index("| model |"))]
    # README's row: model, accuracy, macro-F1, with flip TTA, macro-F1.
    names = {"DNN (`models/dnn.h5`)": "DNN", "stage 1 alone (`models/cnn.h5`)": "stage 1 alone",
             "cascade (`ferkit predict`)": "cascade"}
    rows = markdown_rows(table, tuple(names))
    assert set(rows) == set(names), rows
    for row, cells in rows.items():
        for name, (accuracy, macro_f1) in ((names[row], cells[0:2]),
                                           (names[row] + " + flip TTA", cells[2:4])):
            got_accuracy, got_f1 = map(number, measured[name])
            assert abs(number(accuracy) - got_accuracy) <= 0.05, (name, accuracy, got_accuracy)
            assert abs(number(macro_f1) - got_f1) <= 0.0015, (name, macro_f1, got_f1)
