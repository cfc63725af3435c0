"""Exact parameter counts, the logits sub-model, and sidecar-based loading."""
import logging
from pathlib import Path

import numpy as np
import pytest

from ferkit import DataError, recorded_path, resolve_recorded
from ferkit.models import build_cnn, build_dnn, build_model, load_model, logits_model, save_model


def test_stage1_cnn_has_exactly_1704391_parameters():
    model = build_cnn(7)
    assert model.count_params() == 1_704_391
    assert model.get_layer("flatten").output.shape[-1] == 4608
    assert sum(layer.name.startswith("conv") for layer in model.layers) == 9


def test_dnn_has_exactly_1838599_parameters():
    assert build_dnn(7).count_params() == 1_838_599


def test_specialist_is_the_same_body_with_k_outputs():
    specialist = build_cnn(4)
    assert specialist.output_shape == (None, 4)
    # Only the output layer differs: 64 * (7 - 4) weights and 3 biases fewer.
    assert build_cnn(7).count_params() - specialist.count_params() == 64 * 3 + 3


def test_logits_model_stops_before_softmax_and_leaves_model_untouched():
    model = build_cnn(7)
    x = np.random.default_rng(0).integers(0, 255, (2, 48, 48, 1)).astype("float32")
    logits = logits_model(model)(x).numpy()
    probs = model(x).numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs,
                               rtol=1e-4, atol=1e-6)
    assert model.layers[-1].name == "softmax"


def test_unknown_architecture_is_a_value_error():
    with pytest.raises(ValueError, match="architecture: expected one of .*found 'resnet'"):
        build_model("resnet", 7)


def test_load_model_needs_the_sidecar_and_carries_its_kind(tmp_path):
    path = tmp_path / "m.h5"
    with pytest.raises(DataError, match=r"m\.h5: model file not found$") as raised:
        load_model(path, "stage1")
    assert raised.value.makes == ("stage1",)
    model = build_dnn(3)
    save_model(model, path, {"architecture": "dnn", "classes": [0, 1, 2], "build": {}})
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"
    path.with_suffix(".json").unlink()
    with pytest.raises(DataError, match=r"m\.json: sidecar not found"):
        load_model(path)


def test_saving_does_not_log_the_legacy_format_notice(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    absl_level = logging.getLogger("absl").level
    save_model(build_dnn(3), tmp_path / "m.h5", {"architecture": "dnn", "classes": [0, 1, 2],
                                                 "build": {}})
    assert (tmp_path / "m.h5").exists()
    assert "legacy" not in caplog.text
    assert logging.getLogger("absl").level == absl_level  # restored after the save


def test_weights_that_do_not_fit_the_sidecar_are_a_clear_error(tmp_path):
    path = tmp_path / "m.h5"
    save_model(build_dnn(3), path, {"architecture": "cnn", "classes": [0, 1, 2], "build": {}})
    with pytest.raises(ValueError, match="weights do not fit the architecture"):
        load_model(path)


def test_sidecar_paths_are_recorded_relative_to_the_model_folder(tmp_path):
    model = tmp_path / "project" / "models" / "cnn.h5"
    shared = tmp_path / "shared" / "data" / "train.csv.gz"
    assert recorded_path(shared, model) == "../../shared/data/train.csv.gz"
    assert resolve_recorded("../../shared/data/train.csv.gz", model) == shared
    assert recorded_path(tmp_path / "project" / "data" / "train.csv", model) == \
        "../data/train.csv"
    elsewhere = Path("/") / "elsewhere" / "train.csv"  # no folder in common but the root
    assert recorded_path(elsewhere, model) == str(elsewhere)
    assert resolve_recorded(str(elsewhere), model) == elsewhere


def test_paths_recorded_before_0_5_relative_to_the_checkout_still_resolve(tmp_path):
    """Older sidecars (the shipped ones) recorded ../shared/... from the checkout, the
    folder above their models/: found there when nothing is beside the model."""
    model = tmp_path / "checkout" / "models" / "cnn.h5"
    shared = tmp_path / "shared" / "data" / "train.csv.gz"
    shared.parent.mkdir(parents=True)
    assert resolve_recorded("../shared/data/train.csv.gz", model) == \
        tmp_path / "checkout" / "shared" / "data" / "train.csv.gz"  # missing: beside the model
    shared.write_bytes(b"")
    assert resolve_recorded("../shared/data/train.csv.gz", model) == shared
