"""predict.py end to end with small models whose outputs are known."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, make_faces, write_csv
from ferkit.app import predict
from ferkit.app import cli
from ferkit.models import build_dnn, save_model


def constant_model(path, classes, answer):
    """A model that always outputs class ``answer`` (an index into ``classes``)."""
    model = build_dnn(len(classes))
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    bias[:] = 0
    bias[answer] = 10.0
    logits.set_weights([np.zeros_like(kernel), bias])
    save_model(model, path, {"architecture": "dnn", "classes": classes, "build": {}})
    return path


@pytest.fixture
def models(tmp_path):
    return {
        "sad": constant_model(tmp_path / "sad.h5", list(range(7)), 4),
        "happy": constant_model(tmp_path / "happy.h5", list(range(7)), 3),
        # Specialist on Angry, Fear, Sad, Neutral that always answers Neutral (index 3).
        "spec": constant_model(tmp_path / "spec.h5", [0, 2, 4, 6], 3),
    }


def run_predict(args, capsys):
    code = cli.run(predict.main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def read_output(path):
    lines = path.read_text().splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


def test_cascade_replaces_specialist_classes_and_keeps_ids(tmp_path, test_csv, models, capsys):
    out = tmp_path / "out.csv"
    code, stdout, _ = run_predict([test_csv, out, "--stage1", models["sad"],
                                   "--stage2", models["spec"]], capsys)
    assert code == 0
    header, rows = read_output(out)
    assert header == "id,label"
    assert [r[0] for r in rows] == [f"img{i}" for i in range(30)]
    assert {r[1] for r in rows} == {"6"}  # stage 1 says Sad, the specialist says Neutral
    assert "images/s" in stdout


def test_stage1_outside_the_subset_is_kept_and_no_cascade_uses_stage1(tmp_path, test_csv,
                                                                      models, capsys):
    out = tmp_path / "out.csv"
    run_predict([test_csv, out, "--stage1", models["happy"], "--stage2", models["spec"]], capsys)
    assert {r[1] for r in read_output(out)[1]} == {"3"}
    run_predict([test_csv, out, "--stage1", models["sad"], "--no-cascade", "--tta"], capsys)
    assert {r[1] for r in read_output(out)[1]} == {"4"}


def test_tuned_threshold_in_the_sidecar_is_the_default_and_the_option_overrides_it(
        tmp_path, test_csv, models, capsys):
    import json

    sidecar = models["spec"].with_suffix(".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "handoff_below": 0.5}))
    out = tmp_path / "out.csv"
    # Stage 1 says Sad with confidence 0.9997 > 0.5: nothing is handed over.
    code, stdout, _ = run_predict([test_csv, out, "--stage1", models["sad"],
                                   "--stage2", models["spec"]], capsys)
    assert code == 0 and {r[1] for r in read_output(out)[1]} == {"4"}
    assert "specialist on 0 faces, hand-off below 0.5" in stdout
    run_predict([test_csv, out, "--stage1", models["sad"], "--stage2", models["spec"],
                 "--handoff-below", "1"], capsys)
    assert {r[1] for r in read_output(out)[1]} == {"6"}


def test_labels_prints_both_accuracies(tmp_path, models, capsys):
    images, labels = make_faces(20)
    test = write_csv(tmp_path / "t.csv", "id,feature", ((i, im) for i, im in enumerate(images)))
    answers = tmp_path / "answers.csv"
    answers.write_text("id,label\n" + "".join(f"{i},{l}\n" for i, l in enumerate(labels)))
    code, stdout, _ = run_predict([test, tmp_path / "o.csv", "--stage1", models["sad"],
                                   "--stage2", models["spec"], "--labels", answers], capsys)
    assert code == 0
    sad, neutral = np.mean(labels == 4), np.mean(labels == 6)
    # As README's tables give accuracies; the specialist's changes said in words.
    assert (f"accuracy: stage 1 alone {100 * sad:.2f}%, cascade {100 * neutral:.2f}% (the "
            f"specialist changed 20 of stage 1's 20 labels: {np.sum(labels == 6)} from wrong to "
            f"right, {np.sum(labels == 4)} from right to wrong, "
            f"{np.sum((labels != 4) & (labels != 6))} from one wrong label to another)"
            ) in stdout


@pytest.mark.parametrize("problem,message", [
    ("missing_stage1", "model file not found; make it with: python3 cnn_train.py"),
    ("missing_stage2", "make it with: python3 cnn_train_mod.py --specific 0_2_4_6"),
    ("stage2_not_specialist", "expected a specialist on 2-6 of the classes 0-6"),
    ("stage1_not_7_classes", "expected a 7-class stage-1 model"),
    ("bad_test_row", "line 3: expected 2304 pixels, found 3"),
    ("answers_missing_id", "expected a label for every id"),
])
def test_bad_input_one_line_exit_2_no_output(tmp_path, test_csv, models, capsys, problem,
                                             message):
    out = tmp_path / "out.csv"
    args = [test_csv, out, "--stage1", models["sad"], "--stage2", models["spec"]]
    if problem == "missing_stage1":
        args[3] = tmp_path / "none.h5"
    elif problem == "missing_stage2":
        args[5] = tmp_path / "none.h5"
    elif problem == "stage2_not_specialist":
        args[5] = models["happy"]
    elif problem == "stage1_not_7_classes":
        args[3] = models["spec"]
    elif problem == "bad_test_row":
        args[0] = write_csv(tmp_path / "bad.csv", "id,feature", [("a", "1 " * 2304), ("b", "1 2 3")])
    else:
        answers = tmp_path / "answers.csv"
        answers.write_text("id,label\nimg0,3\n")
        args += ["--labels", answers]
    code, stdout, err = run_predict(args, capsys)
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


def test_command_line_error_has_no_traceback(tmp_path):
    """The real process: exit code 2, one line on stderr, no TensorFlow noise."""
    result = subprocess.run([sys.executable, str(ROOT / "predict.py"), str(tmp_path / "x.csv"),
                             str(tmp_path / "o.csv")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'x.csv'}: file not found\n"
    assert not (tmp_path / "o.csv").exists()
