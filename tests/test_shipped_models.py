"""The trained models committed in models/ (each test skips when its file is absent)."""
import numpy as np
import pytest

from conftest import make_faces
from fer import MODELS, resolve_recorded
from fer.inference import predict_probs
from fer.models import load_model

SHIPPED = [  # file, parameters, classes
    ("cnn.h5", 1_704_391, list(range(7))),
    *[(f"cnn_cycle{n}.h5", 1_704_391, list(range(7))) for n in range(2, 31)],  # warm restarts
    ("cnn_specific_0_2_4_6.h5", 1_704_391 - 3 * 65, [0, 2, 4, 6]),
    ("dnn.h5", 1_838_599, list(range(7))),
]


@pytest.mark.parametrize("name,parameters,classes", SHIPPED)
def test_shipped_model_loads_and_gives_valid_labels(name, parameters, classes):
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{path} not trained yet")
    assert path.stat().st_size < 10 * 2**20
    model, sidecar = load_model(path)
    assert model.count_params() == parameters == sidecar["parameters"]
    assert sidecar["classes"] == classes
    assert 0 < sidecar["best_val_accuracy"] <= 1
    for key in ("normalization", "command", "config", "seed", "wall_time_s", "versions"):
        assert key in sidecar
    # A trained model's history lies beside it; an average's, beside each of its sources.
    runs = sidecar.get("averaged_from") or [{"model": str(path), **sidecar}]
    for run in runs:
        trained = resolve_recorded(run["model"])
        assert run["epochs_run"] >= 1 and run["command"]
        assert trained.with_suffix(".history.csv").exists()
        assert trained.with_suffix(".curves.png").exists()
    probs = predict_probs(model, make_faces(8)[0])
    assert probs.shape == (8, len(classes))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert set(probs.argmax(axis=1)) <= set(range(len(classes)))
