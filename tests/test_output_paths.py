"""Every output path is checked before any work, and a failure of the final write is one
line too: a path under /proc, a parent that is a file, a full disk at the end. A missing
folder is made by every command when it writes its output there (and by none that stops
first). Timing is asserted by counting predictions, not seconds."""
import errno

import pytest

from conftest import ROOT, make_faces, write_csv
from ferkit.app import annotate
from ferkit.app import confusion
from ferkit.app import predict
from ferkit import paths
from ferkit.app import cli
from ferkit.errors import InputError
from ferkit.inference import Cascade

STAGE1 = str(ROOT / "models" / "cnn.h5")
STAGE2 = str(ROOT / "models" / "cnn_specific_0_2_4_6.h5")


@pytest.fixture
def predictions(monkeypatch):
    """Counts the cascade's predictions (every script predicts through Cascade.predict)."""
    calls = []
    original = Cascade.predict

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Cascade, "predict", counted)
    return calls


@pytest.fixture
def faces(tmp_path):
    images, labels = make_faces(8)
    return write_csv(tmp_path / "faces.csv", "label,feature", zip(labels, images))


def one_line(capsys, code):
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    return captured.err


@pytest.mark.parametrize("where, expected", [
    ("/proc/out.csv", "/proc/out.csv: cannot write the predictions ('id,label' CSV) in /proc "
                      "(no new file can be made there)"),
    ("{tmp}/faces.csv/out.csv", "cannot make the folder for the predictions ('id,label' "
                                "CSV): {tmp}/faces.csv is a file"),
])
def test_predict_refuses_an_output_it_cannot_write_before_predicting(
        tmp_path, faces, predictions, capsys, where, expected):
    out = where.format(tmp=tmp_path)
    err = one_line(capsys, cli.run(predict.main, [str(faces), out]))
    assert expected.format(tmp=tmp_path) in err
    assert predictions == []
    assert not (tmp_path / "no").exists()


def test_predict_makes_a_missing_folder_when_it_writes_and_none_when_it_fails(
        tmp_path, faces, predictions, capsys, monkeypatch):
    out = tmp_path / "no" / "such" / "out.csv"
    assert cli.run(predict.main, [str(faces), str(out), "--no-cascade"]) == 0
    assert out.read_text().startswith("id,label\n")
    # Stopped by a bad face after its checks: no folder made.
    (tmp_path / "bad.csv").write_text("id,feature\na,1 2 3\n")
    elsewhere = tmp_path / "other" / "out.csv"
    one_line(capsys, cli.run(predict.main, [str(tmp_path / "bad.csv"), str(elsewhere)]))
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("script, argv", [
    (confusion, ["--data", "{faces}", "--out", "/proc/figures"]),
    (confusion, ["--data", "{faces}", "--out", "{faces}/figures"]),
    (annotate, ["{photo}", "--out", "/proc/annotated"]),
])
def test_folders_that_cannot_be_written_fail_before_predicting(tmp_path, faces, predictions,
                                                                capsys, script, argv):
    import cv2
    import numpy as np

    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    argv = [a.format(faces=faces, photo=photo) for a in argv]
    err = one_line(capsys, cli.run(script.main, argv))
    assert "cannot" in err and predictions == []


def test_a_failure_at_the_final_write_is_one_line_after_the_prediction(
        tmp_path, faces, predictions, capsys, monkeypatch):
    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(predict, "write_atomically", full_disk)
    out = tmp_path / "out.csv"
    err = one_line(capsys, cli.run(predict.main, [str(faces), str(out), "--no-cascade"]))
    assert err == f"error: {out}: cannot write the predictions (No space left on device)\n"
    assert predictions == [1] and not out.exists()


def test_writing_turns_only_os_errors_into_one_line(tmp_path):
    with pytest.raises(InputError, match=r"x\.png: cannot write the figure \(Read-only file "
                                         r"system\)"):
        with paths.writing(tmp_path / "x.png", "figure"):
            raise OSError(errno.EROFS, "Read-only file system")
    with pytest.raises(KeyError):
        with paths.writing(tmp_path / "x.png", "figure"):
            raise KeyError("a bug keeps its traceback")
