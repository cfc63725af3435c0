"""Paths are checked before any work and before TensorFlow is imported; only the toolkit's
own input errors become one line (exit 2), Ctrl-C is exit 130, and a bug keeps its
traceback."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, write_csv, make_faces
from ferkit.app import predict
from ferkit import DataError, InputError, paths
from ferkit.app import cli
from ferkit.app.cli import UsageError


def fake_model(path):
    """A model file and its sidecar: enough for the path checks, which never open them."""
    path.write_bytes(b"not really a model")
    path.with_suffix(".json").write_text("{}")
    return path


# --- ferkit.paths ------------------------------------------------------------------------------

def test_missing_file_points_at_the_gz_beside_it(tmp_path):
    write_csv(tmp_path / "test.csv.gz", "id,feature", [])
    with pytest.raises(DataError, match=r"test\.csv: file not found; test\.csv\.gz is "
                                        r"beside it$"):
        paths.input_file(tmp_path / "test.csv")
    with pytest.raises(DataError, match=r"other\.csv: file not found$"):
        paths.input_data(tmp_path / "other.csv")


def test_inputs_must_be_the_right_kind(tmp_path):
    with pytest.raises(DataError, match="answers: expected a file, found a folder"):
        (tmp_path / "answers").mkdir()
        paths.input_file(tmp_path / "answers")
    assert paths.input_data(tmp_path / "answers") == tmp_path / "answers"  # an image folder


def test_missing_model_carries_what_makes_it(tmp_path):
    with pytest.raises(DataError, match=r"m\.h5: model file not found$") as raised:
        paths.model_file(tmp_path / "m.h5", ("stage1",))
    assert raised.value.makes == ("stage1",)
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(DataError, match=r"m\.json: sidecar not found beside the model$"):
        paths.model_file(tmp_path / "m.h5")


def test_outputs_must_be_writable_where_they_go(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.csv").write_text("")
    with pytest.raises(InputError, match="folder: expected a file name for the output, "
                                         "found a folder"):
        paths.output_file(tmp_path / "folder")
    with pytest.raises(InputError, match=r"file\.csv: expected a folder for the PNGs, found "
                                         r"a file"):
        paths.output_folder(tmp_path / "file.csv", "PNGs")
    with pytest.raises(InputError, match=r"cannot make the folder for the output: .*file\.csv "
                                         r"is a file"):
        paths.output_file(tmp_path / "file.csv" / "sub" / "out.csv")
    # Not there yet, but can be made: fine (nothing is created by the check).
    assert paths.output_file(tmp_path / "new" / "out.csv") == tmp_path / "new" / "out.csv"
    assert paths.output_folder(tmp_path / "new" / "figures")
    assert not (tmp_path / "new").exists()


# --- errors before TensorFlow, in a fresh process -------------------------------------------

# Each script's main with a bad path, run in one fresh Python; after each error, whether
# TensorFlow had been imported. The bench's training defaults first, before any script is
# imported, to see that they do not import one.
CHECKS = r"""
import io, json, sys, contextlib
import bench.throughput
bench.throughput.cnn_training_defaults()
report = {"bench imports a script": "cnn_train" in sys.modules}
from ferkit.app import cli
cases = json.loads(sys.argv[2])
for name, (module, argv) in cases.items():
    main = __import__(module, fromlist=["main"]).main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.run(main, argv)
    report[name] = [code, err.getvalue(), out.getvalue(), "tensorflow" in sys.modules]
print(json.dumps(report))
"""


def test_bad_paths_fail_in_every_script_before_tensorflow_is_imported(tmp_path):
    model = str(fake_model(tmp_path / "m.h5"))
    images, labels = make_faces(7)
    faces = str(write_csv(tmp_path / "faces.csv", "label,feature", zip(labels, images)))
    write_csv(tmp_path / "test.csv.gz", "id,feature", [])
    (tmp_path / "folder").mkdir()
    missing, folder = str(tmp_path / "missing.h5"), str(tmp_path / "folder")
    cases = {  # name: (module, argv, the one error line expected)
        "predict gz": ("predict", [str(tmp_path / "test.csv"), str(tmp_path / "o.csv")],
                       "test.csv: file not found; test.csv.gz is beside it"),
        "predict out folder": ("predict", [faces, folder, "--stage1", model, "--stage2", model],
                               "folder: expected a file name for the predictions"),
        "predict stage 2": ("predict", [faces, "o.csv", "--stage1", model, "--stage2", missing],
                            "missing.h5: model file not found; make it with: python3 "
                            "cnn_train_mod.py --specific 0_2_4_6"),
        "confusion out file": ("confusion", ["--model", model, "--out", faces],
                               "faces.csv: expected a folder for the PNGs (--out), found a file"),
        "saliency labels": ("saliency", ["--model", model, "--data", faces, "--labels", folder],
                            "folder: expected a file, found a folder"),
        "filter_vis model": ("filter_vis", ["--model", missing], "missing.h5: model file not "
                                                                  "found"),
        "average_weights": ("average_weights", [model, missing, "--out", str(tmp_path / "a.h5")],
                            "missing.h5: model file not found"),
        "cnn_train data": ("cnn_train", ["--data", str(tmp_path / "test.csv"), "--out",
                                         str(tmp_path / "c.h5")],
                           "test.csv: file not found; test.csv.gz is beside it"),
        "cnn_train_mod init": ("cnn_train_mod", ["--data", faces, "--init-from", missing,
                                                 "--out", str(tmp_path / "s.h5")],
                               "missing.h5: model file not found"),
        "dnn_train out": ("dnn_train", ["--data", faces, "--out", folder],
                          "folder: expected a file name for the model (--out), found a folder"),
        "bench results": ("bench.results", ["--data", faces, "--stage1", model, "--stage2",
                                            model, "--dnn", missing],
                          "missing.h5: model file not found; make it with: python3 "
                          "dnn_train.py"),
    }
    argvs = {name: (module, argv) for name, (module, argv, _) in cases.items()}
    # Run from tmp_path (the relative paths above), the checkout's scripts importable.
    done = subprocess.run([sys.executable, "-c", CHECKS, str(ROOT), json.dumps(argvs)],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report.pop("bench imports a script") is False
    for name, (code, err, out, tensorflow) in report.items():
        expected = cases[name][2]
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert expected in err, (name, err)
        assert out == "" and not tensorflow, (name, out)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "a.h5").exists()


def test_predict_on_a_missing_file_fails_fast_and_points_at_the_gz(tmp_path):
    """README's predict command with only test.csv.gz present: one line, under 2 s (it was
    8 s of TensorFlow before the message)."""
    write_csv(tmp_path / "test.csv.gz", "id,feature", [])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), "test.csv", "out.csv"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert done.returncode == 2
    assert done.stderr == "error: test.csv: file not found; test.csv.gz is beside it\n"
    assert seconds < 2, f"{seconds:.2f} s"
    assert not (tmp_path / "out.csv").exists()


def test_predict_refuses_an_output_folder_before_reading_any_face(tmp_path, test_csv,
                                                                 monkeypatch, capsys):
    model = str(fake_model(tmp_path / "m.h5"))
    (tmp_path / "some_existing_folder").mkdir()

    def no_work(*args, **kwargs):
        raise AssertionError("faces read before the output path was checked")
    monkeypatch.setattr("ferkit.data.labelled_file", no_work)
    code = cli.run(predict.main, [str(test_csv), str(tmp_path / "some_existing_folder"),
                                  "--stage1", model, "--stage2", model])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == (f"error: {tmp_path / 'some_existing_folder'}: expected a file name "
                            f"for the predictions ('id,label' CSV), found a folder\n")


# --- ferkit.app.cli.run: which exceptions become one line ------------------------------------------

@pytest.mark.parametrize("error", [InputError, UsageError, DataError])
def test_each_input_error_is_one_line_and_exit_2(error, capsys):
    def main(argv):
        raise error("bad.csv: line 3: expected this, found that\n(more detail)")
    assert cli.run(main, []) == 2
    assert capsys.readouterr().err == "error: bad.csv: line 3: expected this, found that\n"


def test_a_bug_inside_a_script_keeps_its_traceback(tmp_path, test_csv, monkeypatch):
    """A ValueError that is not an input error (here forced inside predict's main) is not
    turned into one line: it propagates, so Python prints its traceback."""
    model = str(fake_model(tmp_path / "m.h5"))
    argv = [str(test_csv), str(tmp_path / "o.csv"), "--stage1", model, "--stage2", model]
    for bug in (ValueError("operands could not be broadcast together"),
                FileNotFoundError("a file the toolkit itself opens"), KeyError("classes")):
        def fail(*args, **kwargs):
            raise bug
        monkeypatch.setattr(predict, "labelled_file", fail)
        with pytest.raises(type(bug)) as raised:
            cli.run(predict.main, argv)
        assert raised.value is bug and not isinstance(bug, InputError)


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def main(argv):
        raise KeyboardInterrupt
    assert cli.run(main, []) == 130
    assert capsys.readouterr().err == "interrupted\n"
