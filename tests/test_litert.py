"""The LiteRT path: .tflite copies made from the shipped models agree with Keras, a stale
copy is refused (--runtime litert) or passed over (auto), and predict.py on LiteRT never
imports TensorFlow."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, make_faces, op_determinism, write_csv
from ferkit.app import export_tflite
from ferkit.app import predict
from ferkit import MODELS
from ferkit.app import cli
from ferkit.inference import Cascade, load_predictor, predict_probs
from ferkit.litert import LiteRTModel, staleness, tflite_path

SHIPPED = {"stage1": "cnn", "specialist": "cnn_specific_0_2_4_6", "dnn": "dnn"}

pytestmark = pytest.mark.slow  # models exported to LiteRT, benchmarks in processes


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The shipped models copied to a temporary folder, each with its .tflite made there by
    export_tflite.py (trained weights: decisive probabilities, as in real use)."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for role, name in SHIPPED.items():
        for suffix in (".h5", ".json"):
            shutil.copy(MODELS / f"{name}{suffix}", folder / f"{name}{suffix}")
        paths[role] = folder / f"{name}.h5"
    assert cli.run(export_tflite.main, [str(p) for p in paths.values()]) == 0
    return paths


@pytest.fixture(scope="module")
def faces():
    return make_faces(100, seed=5)[0]


@pytest.fixture(scope="module")
def loaded(models):
    """loaded(role, runtime) -> (model, sidecar), each loaded once for the module."""
    cache = {}

    def load(role, runtime):
        if (role, runtime) not in cache:
            cache[role, runtime] = load_predictor(models[role], runtime)
        return cache[role, runtime]
    return load


@pytest.mark.parametrize("tta", [False, True], ids=["plain", "tta"])
@pytest.mark.parametrize("role", list(SHIPPED))
def test_litert_gives_keras_probabilities_and_labels(loaded, faces, role, tta):
    keras_model, litert_model = loaded(role, "keras")[0], loaded(role, "litert")[0]
    assert isinstance(litert_model, LiteRTModel)
    expected = predict_probs(keras_model, faces, tta=tta)
    found = predict_probs(litert_model, faces, tta=tta)
    assert found.shape == expected.shape and found.dtype == np.float32
    np.testing.assert_allclose(found, expected, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(found.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.parametrize("tta", [False, True], ids=["plain", "tta"])
def test_cascade_labels_and_handoff_are_the_same_on_both_runtimes(loaded, faces, tta):
    classes = loaded("specialist", "keras")[1]["classes"]
    # Hand-off at 1.0: the specialist decides every face stage 1 gives one of its classes.
    (labels_k, probs_k, handoff_k), (labels_l, probs_l, handoff_l) = (
        (said.labels, said.stage1_probabilities, said.handed_over)
        for said in (Cascade(loaded("stage1", runtime)[0], loaded("specialist", runtime)[0],
                             classes, 1.0, tta, runtime).predict(faces)
                     for runtime in ("keras", "litert")))
    assert handoff_k.sum() > 10
    np.testing.assert_array_equal(handoff_l, handoff_k)
    np.testing.assert_array_equal(labels_l, labels_k)
    np.testing.assert_allclose(probs_l, probs_k, atol=1e-4, rtol=0)


def test_litert_model_runs_any_number_of_faces(loaded, faces):
    model = loaded("dnn", "litert")[0]
    whole = model(faces[:, :, :, None].astype(np.float32))
    for n in (1, 63, 64, 65, 100):  # shorter than, equal to and across its batch of 64
        np.testing.assert_array_equal(model(faces[:n, :, :, None].astype(np.float32)),
                                      whole[:n])


@pytest.fixture
def test_csv(tmp_path, faces):
    return write_csv(tmp_path / "test.csv", "id,feature",
                     ((f"img{i}", image) for i, image in enumerate(faces[:40])))


def copy_models(models, folder):
    """Stage 1 and the specialist, with their .tflite and sidecars, in ``folder``."""
    copies = {}
    for role in ("stage1", "specialist"):
        for path in (models[role], models[role].with_suffix(".json"), tflite_path(models[role])):
            shutil.copy(path, folder / path.name)
        copies[role] = folder / models[role].name
    return copies


def predict_args(test_csv, out, copies, *more):
    return [str(test_csv), str(out), "--stage1", str(copies["stage1"]),
            "--stage2", str(copies["specialist"]), *more]


def make_stale(model_path):
    """As if the .h5 had been retrained after its .tflite was made: the sidecar's record
    names another .h5."""
    sidecar_path = model_path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["tflite"]["h5_sha256"] = "0" * 64
    sidecar_path.write_text(json.dumps(sidecar))


@pytest.mark.parametrize("problem", ["stale", "missing", "replaced"])
def test_forced_litert_refuses_a_stale_or_missing_tflite_in_one_line(
        models, test_csv, tmp_path, capsys, problem):
    copies = copy_models(models, tmp_path)
    spec = copies["specialist"]
    if problem == "stale":
        make_stale(spec)
        expected = f"{tflite_path(spec)} is stale: made from another"
    elif problem == "missing":
        tflite_path(spec).unlink()
        expected = (f"{tflite_path(spec)} not found; make it with: python3 export_tflite.py "
                    f"{spec}")
    else:  # another model's .tflite put in its place
        shutil.copy(tflite_path(copies["stage1"]), tflite_path(spec))
        expected = f"{tflite_path(spec)} is not the file its sidecar records"
    out = tmp_path / "out.csv"
    code = cli.run(predict.main, predict_args(test_csv, out, copies, "--runtime", "litert"))
    printed = capsys.readouterr()
    err = printed.err
    assert code == 2 and err.startswith("error: --runtime litert: ") and err.count("\n") == 1
    assert expected in err
    assert not out.exists() and printed.out == ""


def test_auto_passes_over_a_stale_tflite_with_a_notice_and_keras_gives_the_same_file(
        models, test_csv, tmp_path, capsys):
    copies = copy_models(models, tmp_path)
    outs = {name: tmp_path / f"{name}.csv" for name in ("fresh", "stale", "keras")}
    assert cli.run(predict.main, predict_args(test_csv, outs["fresh"], copies)) == 0
    assert capsys.readouterr().out.startswith(
        "runtime: LiteRT (every model has a .tflite made from its current .h5)\n")
    assert cli.run(predict.main, predict_args(test_csv, outs["keras"], copies,
                                              "--runtime", "keras")) == 0
    assert capsys.readouterr().out.startswith("runtime: Keras (--runtime keras)\n")
    make_stale(copies["stage1"])
    assert staleness(copies["stage1"], json.loads(
        copies["stage1"].with_suffix(".json").read_text())) is not None
    assert cli.run(predict.main, predict_args(test_csv, outs["stale"], copies)) == 0
    notice = capsys.readouterr().out.splitlines()[0]
    assert notice.startswith(f"runtime: Keras ({tflite_path(copies['stage1'])} is stale")
    assert outs["fresh"].read_bytes() == outs["stale"].read_bytes() == outs["keras"].read_bytes()


def test_predict_on_litert_never_imports_tensorflow(models, test_csv, tmp_path):
    copies = copy_models(models, tmp_path)
    out = tmp_path / "out.csv"
    code = ("import sys\n"
            "import predict\n"
            "status = predict.main(sys.argv[1:])\n"
            "print('tensorflow imported:', 'tensorflow' in sys.modules, "
            "'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code,
                           *predict_args(test_csv, out, copies, "--tta")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "runtime: LiteRT" in done.stdout
    assert done.stdout.splitlines()[-1] == "tensorflow imported: False False"
    assert done.stderr == ""  # not even LiteRT's "Created XNNPACK delegate" line
    assert out.read_text().count("\n") == 41


def test_export_script_skips_fresh_models_and_reports_bad_ones(models, tmp_path, capsys):
    fresh = models["dnn"]
    before = tflite_path(fresh).stat().st_mtime_ns
    assert cli.run(export_tflite.main, [str(fresh)]) == 0
    assert capsys.readouterr().out == f"{fresh}: its float32 copy is up to date\n"
    assert tflite_path(fresh).stat().st_mtime_ns == before
    code = cli.run(export_tflite.main, [str(fresh), str(tmp_path / "none.h5")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: {tmp_path / 'none.h5'}: model file not found\n"


def test_int8_copy_runs_only_when_asked_for(models, tmp_path, capsys):
    """export_tflite.py --int8 calibrates on training faces; --runtime litert-int8 runs it;
    auto keeps float32 (whose output is Keras' byte for byte)."""
    dnn = tmp_path / "dnn.h5"
    for path in (models["dnn"], models["dnn"].with_suffix(".json"), tflite_path(models["dnn"])):
        shutil.copy(path, tmp_path / path.name)
    images, labels = make_faces(140, seed=2)  # 10% held out: 14 faces, 2 of each class
    train = write_csv(tmp_path / "train.csv", "label,feature", zip(labels, images))
    test = write_csv(tmp_path / "test.csv", "id,feature", enumerate(make_faces(40, seed=3)[0]))
    out = tmp_path / "out.csv"
    args = [str(test), str(out), "--stage1", str(dnn), "--no-cascade"]
    assert cli.run(predict.main, args + ["--runtime", "litert-int8"]) == 2
    assert (f"error: --runtime litert-int8: {tflite_path(dnn, 'int8')} not found; make it "
            f"with: python3 export_tflite.py --int8 {dnn}\n") == capsys.readouterr().err

    # Calibration faces are the model's own training faces: a file of other faces is refused.
    assert cli.run(export_tflite.main, [str(dnn), "--int8", "--data", str(train)]) == 2
    assert "--data " + str(train) + ": holds other faces than" in capsys.readouterr().err
    # The copy, recorded as trained on train.csv, calibrates on its training split.
    from ferkit.data import faces_identity, load_training_faces
    from ferkit.record import read_record, write_record

    write_record(dnn, read_record(dnn).replace(
        data=str(train), data_identity=faces_identity(load_training_faces(train))))
    with op_determinism():  # the calibration's outcome is thresholded below
        assert cli.run(export_tflite.main, [str(dnn), "--int8", "--data", str(train),
                                            "--calibration-faces", "30"]) == 0
    assert "calibrated on 30 training faces" in capsys.readouterr().out
    sidecar = json.loads(dnn.with_suffix(".json").read_text())
    assert sidecar["tflite_int8"]["calibration_faces"] == 30
    assert staleness(dnn, sidecar, "int8") is None and staleness(dnn, sidecar) is None

    assert cli.run(predict.main, args + ["--runtime", "litert-int8"]) == 0
    assert capsys.readouterr().out.startswith("runtime: LiteRT int8 (--runtime litert-int8)")
    int8 = out.read_text().splitlines()
    assert cli.run(predict.main, args) == 0
    assert capsys.readouterr().out.startswith("runtime: LiteRT (every model")
    float32 = out.read_text().splitlines()
    assert len(int8) == len(float32) == 41
    assert sum(a == b for a, b in zip(int8, float32)) >= 36  # int8 moves a few labels


def test_agreement_benchmark_exits_1_when_the_runtimes_disagree(models, tmp_path, capsys,
                                                                monkeypatch):
    from bench import litert_agreement

    images, labels = make_faces(12, seed=8)
    data = write_csv(tmp_path / "faces.csv", "label,feature", zip(labels, images))
    args = ["--data", str(data), "--stage1", str(models["stage1"]), "--stage2",
            str(models["specialist"]), "--dnn", str(models["dnn"])]
    assert cli.run(litert_agreement.main, args) == 0
    out = capsys.readouterr().out
    assert "12 faces of" in out and "| cascade (hand-off below 0.3) | yes | n/a | 12 of 12" in out
    assert "\nagree: every probability within 0.0001" in out
    # No difference can be within a negative bound: the check fails, and so does the command.
    monkeypatch.setattr(litert_agreement, "TOLERANCE", -1.0)
    assert cli.run(litert_agreement.main, args) == 1
    assert "\nDISAGREE: every probability within -1" in capsys.readouterr().out
