"""Flip test-time augmentation as arithmetic: on a model whose answer changes when a face is
mirrored, predict_probs(tta=True) is the mean of the face's and its left-right mirror's
probabilities, on Keras and on the LiteRT copy of the same model."""
import numpy as np
import pytest

from ferkit.inference import predict_probs


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory):
    """{"keras": a tiny dense softmax on the raw pixels, "litert": its .tflite copy}: every
    pixel has a weight of its own, so a mirrored face gets other probabilities."""
    import keras
    from ferkit.litert import LiteRTModel, convert_to_tflite

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax",
                                                 kernel_initializer=keras.initializers
                                                 .RandomNormal(stddev=0.05, seed=7))])
    path = tmp_path_factory.mktemp("tta") / "tiny.tflite"
    path.write_bytes(convert_to_tflite(model))
    return {"keras": model, "litert": LiteRTModel(path)}


@pytest.fixture(scope="module")
def faces():
    """Noise with a bright patch left of centre and high: neither mirror is the face."""
    faces = np.random.default_rng(3).integers(0, 120, (10, 48, 48)).astype(np.uint8)
    faces[:, 6:18, 4:20] = 250
    return faces


@pytest.mark.parametrize("runtime", ["keras", "litert"])
def test_tta_is_the_mean_of_the_face_and_its_left_right_mirror(runtimes, faces, runtime):
    model = runtimes[runtime]
    plain = predict_probs(model, faces)
    left_right = predict_probs(model, faces[:, :, ::-1])
    upside_down = predict_probs(model, faces[:, ::-1, :])
    # The model does tell the mirrors apart (else any flip, or none, would pass).
    assert np.abs(plain - left_right).max() > 0.05
    assert np.abs(left_right - upside_down).max() > 0.05
    # Batches smaller than the faces: each batch's mirrors are its own faces'.
    for batch_size in (256, 3):
        tta = predict_probs(model, faces, tta=True, batch_size=batch_size)
        np.testing.assert_allclose(tta, (plain + left_right) / 2, atol=1e-6)
        assert np.abs(tta - (plain + upside_down) / 2).max() > 0.02
