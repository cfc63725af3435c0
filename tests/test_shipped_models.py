"""The trained models committed in models/: the three the toolkit ships, nothing else
(each test skips when its file is absent, as on a fresh clone without them)."""
import subprocess

import numpy as np
import pytest

from conftest import ROOT, make_faces
from ferkit import MODELS
from ferkit.inference import predict_probs
from ferkit.models import load_model

SHIPPED = [  # file, parameters, classes
    ("cnn.h5", 1_704_391, list(range(7))),
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
    assert 0 < sidecar["val_accuracy"] <= 1
    for key in ("normalization", "command", "config", "seed", "wall_time_s", "versions"):
        assert key in sidecar
    assert path.with_suffix(".history.csv").read_text().startswith("epoch,")
    assert path.with_suffix(".curves.png").read_bytes()[:4] == b"\x89PNG"
    probs = predict_probs(model, make_faces(8)[0])
    assert probs.shape == (8, len(classes))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert set(probs.argmax(axis=1)) <= set(range(len(classes)))


def test_models_folder_tracks_only_the_shipped_models_and_their_files():
    tracked = subprocess.run(["git", "ls-files", "models"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    allowed = {f"models/{name[:-3]}{suffix}" for name, _, _ in SHIPPED
               for suffix in (".h5", ".tflite", ".json", ".history.csv", ".curves.png")}
    assert set(tracked) <= allowed, sorted(set(tracked) - allowed)
