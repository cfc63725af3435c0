"""The analysis and annotation scripts checked by what they do, not by the files they leave:
which faces saliency.py explains, the accuracies confusion.py prints, and what annotate.py's
--margin, --min-face, --explain and --max-frames change."""
import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from conftest import ROOT
from test_framing import hand_crop
from ferkit.app import annotate
from ferkit.app import confusion
from ferkit.app import saliency
import ferkit.explain
from ferkit.app import cli
from ferkit.inference import LABEL_PROBABILITY_FIELDS
from ferkit.composites import astronaut_head, astronaut_path, scene
from ferkit.data import labelled_file
from ferkit.inference import Cascade, predict_probs
from ferkit.labels import CLASS_NAMES
from ferkit.models import load_model

STAGE1 = ROOT / "models" / "cnn.h5"
PROBABILITIES = list(LABEL_PROBABILITY_FIELDS)  # faces.csv: the label's probabilities


@pytest.fixture
def models(analysis_models):
    """conftest's tiny stage 1 and specialist, trained once for every module."""
    return analysis_models


# --- saliency.py: which faces ---------------------------------------------------------------

@pytest.fixture
def explained(monkeypatch):
    """The faces and output indices each Grad-CAM call was given, in calls' order."""
    calls = []
    gradcam = ferkit.explain.gradcam

    def spy(model, images, outputs, *args, **kwargs):
        calls.append((np.array(images), np.array(outputs)))
        return gradcam(model, images, outputs, *args, **kwargs)
    monkeypatch.setattr(ferkit.explain, "gradcam", spy)
    return calls


def rows_of(images, faces):
    """The row of ``faces`` each image is (every image must be exactly one of them)."""
    rows = []
    for image in images:
        same = np.flatnonzero((faces == image).all(axis=(1, 2)))
        assert len(same) == 1
        rows.append(int(same[0]))
    return rows


def test_saliency_explains_per_class_the_most_confident_correct_face(models, tmp_path,
                                                                       explained):
    assert saliency.main(["--model", models["stage1"], "--data", models["test"], "--labels",
                          models["answers"], "--method", "gradcam", "--out",
                          str(tmp_path)]) == 0
    faces = labelled_file(models["test"], labels_path=models["answers"])
    probs = predict_probs(load_model(models["stage1"])[0], faces.images)
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    correct = predicted == faces.labels
    assert len(set(faces.labels[correct])) >= 2  # a choice to make, in several classes
    (images, outputs), = explained
    rows = rows_of(images, faces.images)
    # The model's own answer is explained, and it is right on every face explained ...
    assert outputs.tolist() == predicted[rows].tolist()
    assert correct[rows].all()
    # ... one face for each class with a correct face, the one the model is surest of.
    expected = [int(np.flatnonzero(correct & (faces.labels == c))[
        confidence[correct & (faces.labels == c)].argmax()])
        for c in range(7) if (correct & (faces.labels == c)).any()]
    assert rows == expected


def test_saliency_ids_explain_those_faces_in_that_order(models, tmp_path, explained):
    assert saliency.main(["--model", models["stage1"], "--data", models["test"], "--ids",
                          "face12, face3,face7", "--method", "gradcam", "--out",
                          str(tmp_path)]) == 0
    faces = labelled_file(models["test"], labels_path=models["answers"])
    (images, outputs), = explained
    assert rows_of(images, faces.images) == [12, 3, 7]
    probs = predict_probs(load_model(models["stage1"])[0], faces.images[[12, 3, 7]])
    assert outputs.tolist() == probs.argmax(axis=1).tolist()


# --- confusion.py: the accuracies printed ---------------------------------------------------

def printed_scores(out, title):
    """(accuracy, macro-F1) from the line 'TITLE: accuracy A, macro-F1 F'."""
    line = next(line for line in out.splitlines() if line.startswith(f"{title}: accuracy"))
    accuracy, macro_f1 = line.split("accuracy ")[1].split(", macro-F1 ")
    assert accuracy.endswith("%")  # as README's tables give it: 68.60%
    return float(accuracy[:-1]) / 100, float(macro_f1)


@pytest.mark.parametrize("tta", [False, True], ids=["plain", "tta"])
def test_confusion_prints_scikit_learns_accuracy_and_macro_f1(models, tmp_path, capsys, tta):
    assert confusion.main(["--stage1", models["stage1"], "--stage2", models["stage2"],
                           "--data", models["test"], "--labels", models["answers"],
                           "--handoff-below", "0.9", "--runtime", "keras", "--out",
                           str(tmp_path)] + ["--tta"] * tta) == 0
    out = capsys.readouterr().out
    faces = labelled_file(models["test"], labels_path=models["answers"])
    cascade = Cascade.load(models["stage1"], models["stage2"], 0.9, tta, "keras")
    said = cascade.predict(faces.images)
    labels, probs, handoff = said.labels, said.stage1_probabilities, said.handed_over
    assert 0 < handoff.sum() < len(handoff)  # the specialist decides some faces
    capsys.readouterr()
    for title, predicted in (("cnn.h5 alone", probs.argmax(axis=1)), ("cascade", labels)):
        accuracy, macro_f1 = printed_scores(out, title)
        assert accuracy == pytest.approx(accuracy_score(faces.labels, predicted), abs=5e-5)
        assert macro_f1 == pytest.approx(f1_score(faces.labels, predicted, labels=range(7),
                                                  average="macro", zero_division=0), abs=5e-5)


# --- annotate.py: --margin, --explain, --max-frames --------------------------------------------

def run_annotate(args, capsys):
    code = cli.run(annotate.main, [str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def stage1():
    return load_model(STAGE1)[0]


@pytest.mark.slow
def test_margin_crops_the_square_computed_by_hand(tmp_path, capsys, stage1):
    grey = cv2.cvtColor(cv2.imread(str(astronaut_path())), cv2.COLOR_BGR2GRAY)
    found = {}
    for margin in (0.0, 0.2):
        out = tmp_path / f"margin{margin}"
        # --no-calibration: faces.csv then holds the model's raw softmax of the crop.
        run_annotate([astronaut_path(), "--out", out, "--margin", margin, "--no-draw",
                      "--no-cascade", "--runtime", "keras", "--no-calibration"], capsys)
        row = pd.read_csv(out / "faces.csv").iloc[0]
        crop = hand_crop(grey, [int(row[k]) for k in "xywh"], margin)
        expected = predict_probs(stage1, crop[None])[0]
        found[margin] = row[PROBABILITIES].to_numpy(float)
        # faces.csv keeps 4 decimals: the probabilities are those of the hand-made crop.
        np.testing.assert_allclose(found[margin], expected, atol=6e-5)
    assert np.abs(found[0.0] - found[0.2]).max() > 1e-3  # the margin did change the crop
    # By default faces.csv is calibrated: other probabilities, the same label.
    run_annotate([astronaut_path(), "--out", tmp_path / "calibrated", "--margin", 0.2,
                  "--no-draw", "--no-cascade", "--runtime", "keras"], capsys)
    calibrated = pd.read_csv(tmp_path / "calibrated" / "faces.csv").iloc[0][PROBABILITIES]
    assert np.abs(calibrated.to_numpy(float) - found[0.2]).max() > 1e-2
    assert calibrated.to_numpy(float).argmax() == found[0.2].argmax()


@pytest.mark.slow
def test_explain_draws_only_beside_its_face_and_changes_no_answer(tmp_path, capsys):
    spot = (345, 345)  # the head in the middle of a large picture
    picture = scene(astronaut_head(), [spot], 900, 900)
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), picture)
    drawn, rows = {}, {}
    for explain in (False, True):
        out = tmp_path / f"explain{explain}"
        run_annotate([path, "--out", out, "--no-cascade", "--runtime", "keras"]
                     + ["--explain"] * explain, capsys)
        drawn[explain] = cv2.imread(str(out / "one_annotated.png")).astype(int)
        rows[explain] = pd.read_csv(out / "faces.csv")
    pd.testing.assert_frame_equal(rows[False], rows[True])
    changed = np.abs(drawn[True] - drawn[False]).max(axis=2) > 0
    assert changed.sum() > 500  # the Grad-CAM tile: many pixels
    # The Grad-CAM tile joins the face's panel beside its box: nothing changes over the face
    # (it stays visible), and every pixel changed lies by it (the panel is a few box sides
    # wide, in the box's rows), none elsewhere in the picture.
    x, y, w, h = rows[True].iloc[0][["x", "y", "w", "h"]]
    assert not changed[y:y + h, x:x + w].any()
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x - 4 * w and xs.max() < x + 5 * w
    assert ys.min() >= y - h and ys.max() < y + 2 * h


def test_max_frames_stops_each_video_there(tmp_path, capsys):
    picture = scene(astronaut_head(), [(20, 30)], 260, 260)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (260, 260))
    for i in range(6):
        writer.write(np.roll(picture, i, axis=1))
    writer.release()
    out = tmp_path / "out"
    printed = run_annotate([clip, "--out", out, "--max-frames", "4", "--every", "2",
                            "--no-cascade"], capsys)
    assert pd.read_csv(out / "faces.csv")["frame"].tolist() == [0, 2]
    capture = cv2.VideoCapture(str(out / "clip_annotated.avi"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 4
    assert "1 face from 0 photos and 4 video frames" not in printed  # two rows, not one
    assert "2 faces from 0 photos and 4 video frames" in printed


def test_min_face_passes_over_smaller_faces(tmp_path, capsys):
    side = cv2.imread(str(astronaut_path())).shape[0]  # 512: her face is some 100 pixels
    found = {}
    for min_face in (48, side // 2):
        out = tmp_path / f"min{min_face}"
        printed = run_annotate([astronaut_path(), "--out", out, "--min-face", min_face,
                                "--no-draw", "--no-cascade"], capsys)
        found[min_face] = (len(pd.read_csv(out / "faces.csv")), "no face found" in printed)
    assert found == {48: (1, False), side // 2: (0, True)}
