"""Weight averaging and BatchNorm re-estimation (ferkit.averaging, average_weights.py)."""
import json

import numpy as np
import pytest

from conftest import make_faces, write_csv
from ferkit.app import average_weights
from ferkit.app import cnn_train
from ferkit.app import cli
from ferkit.backend import keras
from ferkit.averaging import average_weights as mean_weights
from ferkit.averaging import batchnorm_statistics, recalibrate_batchnorm
from ferkit.inference import predict_probs
from ferkit.litert import staleness
from ferkit.models import build_cnn, load_model, save_model
from ferkit.data import train_val_rows


def cnn(seed, **build):
    keras.utils.set_random_seed(seed)
    return build_cnn(7, **build)


def test_average_weights_is_the_elementwise_mean_of_one_architecture():
    a, b = cnn(1), cnn(2)
    averaged = mean_weights([a, b])
    for mean, wa, wb in zip(averaged, a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(mean, (wa + wb) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="expected models of one architecture"):
        mean_weights([a, build_cnn(4)])


@pytest.mark.slow
def test_statistics_are_those_of_the_plain_inputs_with_dropout_off():
    images, _ = make_faces(24)
    model = cnn(3)
    stats = batchnorm_statistics(model, images, batch_size=len(images))
    # The first BatchNorm meets conv1_1's output of the rescaled faces: nothing before it
    # normalizes, so its statistics are plain moments over faces and pixels.
    conv = keras.Model(model.input, model.get_layer("conv1_1").output)
    features = conv(images[..., None].astype(np.float32)).numpy()
    mean, variance = stats["bn1_1"]
    np.testing.assert_allclose(mean, features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(variance, features.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6)
    assert len(stats) == 9
    # bn2_1 comes after the first dropout: with dropout on, heavy dropout would change it.
    heavy = cnn(3, conv_dropout=0.5)
    heavy.set_weights(model.get_weights())
    heavy_stats = batchnorm_statistics(heavy, images, batch_size=len(images))
    for name in stats:
        np.testing.assert_allclose(heavy_stats[name][1], stats[name][1], rtol=1e-4)


@pytest.mark.slow
def test_recalibration_ignores_the_old_statistics_and_leaves_the_model_alone():
    images, _ = make_faces(40)
    model = cnn(4)
    before = [w.copy() for w in model.get_weights()]
    calibrated = recalibrate_batchnorm(model, images, batch_size=16)
    assert all(np.array_equal(w, b) for w, b in zip(model.get_weights(), before))
    np.testing.assert_allclose(calibrated.get_layer("bn3_3").moving_mean.numpy(),
                               batchnorm_statistics(model, images, 16)["bn3_3"][0], rtol=1e-5)
    # Statistics wrecked on purpose come back to the same recalibrated model.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 50.0, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 1e-3, np.float32))
    again = recalibrate_batchnorm(model, images, batch_size=16)
    np.testing.assert_allclose(predict_probs(again, images), predict_probs(calibrated, images),
                               atol=1e-5)
    assert not np.allclose(predict_probs(model, images), predict_probs(calibrated, images),
                           atol=1e-3)


@pytest.fixture
def sources(tmp_path):
    """Two untrained CNNs saved with sidecars as if trained on a generated file."""
    images, labels = make_faces(84)
    data = write_csv(tmp_path / "train.csv", "label,feature", zip(labels, images))
    paths = []
    for i, (prior, epochs) in enumerate(((0, 5), (5, 3))):
        sidecar = {"architecture": "cnn", "classes": list(range(7)),
                   "build": {"conv_dropout": 0.2, "dense_dropout": 0.3, "bn_momentum": 0.99},
                   "seed": 42, "val_split": 0.25, "data": str(data), "usage": None,
                   "command": f"cnn_train.py run {i}", "prior_epochs": prior,
                   "epochs_run": epochs, "best_epoch": epochs, "val_accuracy": 0.2,
                   "wall_time_s": 10.0, "parameters": 1_704_391,
                   "handoff_below": 0.5,
                   "batchnorm_recalibration": {"faces": 63, "kept": True}}
        path = tmp_path / f"cycle{i}.h5"
        save_model(cnn(10 + i), path, sidecar)
        paths.append(path)
    return data, paths


@pytest.mark.slow
def test_script_writes_the_recalibrated_average_with_its_sources(sources, tmp_path, capsys):
    data, paths = sources
    out = tmp_path / "average.h5"
    assert cli.run(average_weights.main, [*map(str, paths), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "validation accuracy on 21 faces" in printed and "average" in printed

    (a, _), (b, _), (result, sidecar) = (load_model(p) for p in (*paths, out))
    np.testing.assert_allclose(result.get_layer("conv2_2").get_weights()[0],
                               (a.get_layer("conv2_2").get_weights()[0]
                                + b.get_layer("conv2_2").get_weights()[0]) / 2, rtol=1e-5)
    # BatchNorm holds the statistics of the average on the sources' training faces only.
    from ferkit.data import load_faces
    faces = load_faces(data)
    train_rows, _ = train_val_rows(faces.labels, list(range(7)), 0.25, 42)
    average = cnn(0)
    average.set_weights(mean_weights([a, b]))
    expected = batchnorm_statistics(average, faces.images[train_rows])
    np.testing.assert_allclose(result.get_layer("bn2_1").moving_variance.numpy(),
                               expected["bn2_1"][1], rtol=1e-4)

    assert [s["command"] for s in sidecar["averaged_from"]] == ["cnn_train.py run 0",
                                                                "cnn_train.py run 1"]
    assert sidecar["prior_epochs"] == 8 and sidecar["epochs_run"] == 0
    assert sidecar["batchnorm_faces"] == len(train_rows) == 63
    # Calibrated as a trained model is, on the same 21 validation faces.
    assert sidecar["calibration"]["faces"]["count"] == 21 and "(calibrated: validation ECE" \
        in printed
    # Records of a source's tuning and end-of-run BatchNorm pass, not of the average.
    assert "handoff_below" not in sidecar and "batchnorm_recalibration" not in sidecar
    assert 0 <= sidecar["val_accuracy"] <= 1 and sidecar["seed"] == 42
    assert staleness(out, sidecar) is None  # its LiteRT copy, made from this very .h5


@pytest.mark.slow
def test_an_average_is_no_run_to_resume(sources, tmp_path, capsys):
    data, paths = sources
    out = tmp_path / "average.h5"
    assert cli.run(average_weights.main, [*map(str, paths), "--out", str(out)]) == 0
    capsys.readouterr()
    code = cli.run(cnn_train.main, ["--data", str(data), "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "--resume: expected the state of a run in" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("change,message", [
    ("OUT_IS_SOURCE", "expected another file than the models averaged"),
    ("OTHER_SPLIT", "expected the val_split of"),
    ("OTHER_SEED", "expected the seed of"),
    ("NO_DATA", "cannot rebuild its validation split: its training data"),
])
def test_script_bad_input_one_line_exit_2_nothing_written(sources, tmp_path, capsys,
                                                          change, message):
    data, paths = sources
    out = tmp_path / "average.h5"
    sidecar_path = paths[1].with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    if change == "OUT_IS_SOURCE":
        out = paths[1]
    elif change == "OTHER_SPLIT":
        sidecar["val_split"] = 0.1
    elif change == "OTHER_SEED":
        sidecar["seed"] = 7
    else:
        data.unlink()
    sidecar_path.write_text(json.dumps(sidecar))
    source_bytes = paths[1].read_bytes()
    code = cli.run(average_weights.main, [*map(str, paths), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert paths[1].read_bytes() == source_bytes
    assert change == "OUT_IS_SOURCE" or not out.exists()
