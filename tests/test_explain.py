"""ferkit.explain on a tiny model trained on generated faces whose class signal sits in a known
quarter of the image (a striped patch somewhere in the top-left 24x24) and noise elsewhere."""
import numpy as np
import pytest

from conftest import op_determinism
from ferkit import explain
from ferkit.backend import keras, tf

SIGNAL = (slice(0, 24), slice(0, 24))   # the top-left quarter of the image


def striped_faces(n, seed):
    """(images uint8 (n, 48, 48), labels (n,)): grey noise 96-159, and in the top-left
    quarter a 16x16 patch of 2-pixel black/white stripes: vertical (class 0), horizontal
    (1) or a checkerboard (2), at a random place inside that quarter."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(96, 160, (n, 48, 48))
    rows, cols = np.mgrid[0:16, 0:16] // 2
    patterns = [cols % 2, rows % 2, (rows + cols) % 2]
    for image, label in zip(images, labels):
        top, left = rng.integers(0, 9, 2)
        image[top:top + 16, left:left + 16] = 255 * patterns[label]
    return images.astype(np.uint8), labels


def signal_share(maps):
    """Per map, the share of its total that lies in the signal quarter."""
    maps = np.abs(maps)
    return maps[:, SIGNAL[0], SIGNAL[1]].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


@pytest.fixture(scope="module", autouse=True)
def deterministic():
    """The seeded training below and the thresholds on what it learned: the same numbers on
    every run."""
    with op_determinism():
        yield


@pytest.fixture(scope="module")
def trained():
    """A small CNN ending in 'logits' + softmax, like the toolkit's models. Global max
    pooling and a zero-initialized logits layer keep it from leaning on the noise: its
    decisions, and so the maps, can only come from where the stripes are."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((48, 48, 1))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalMaxPooling2D()(x)
    logits = layers.Dense(3, kernel_initializer="zeros", name="logits")(x)
    model = keras.Model(inputs, layers.Activation("softmax", name="softmax")(logits))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    images, labels = striped_faces(360, seed=0)
    model.fit(images[..., None].astype(np.float32), labels, epochs=8, batch_size=32,
              verbose=0)
    test_images, test_labels = striped_faces(30, seed=1)
    accuracy = np.mean(model.predict(test_images[..., None].astype(np.float32), verbose=0)
                       .argmax(axis=1) == test_labels)
    assert accuracy > 0.9  # otherwise the maps below would explain nothing
    return model, test_images, test_labels


@pytest.mark.parametrize("method", [
    explain.vanilla_saliency,
    lambda model, images, classes: explain.smoothgrad(model, images, classes, samples=8),
    explain.gradcam,
], ids=["saliency", "smoothgrad", "gradcam"])
def test_maps_put_most_mass_where_the_signal_is(trained, method):
    model, images, labels = trained
    maps = method(model, images, labels)
    assert maps.shape == (len(images), 48, 48) and maps.dtype == np.float32
    assert (maps >= 0).all()
    # A quarter of the image would get a quarter of the mass by chance.
    assert signal_share(maps).mean() > 0.6


def test_saliency_is_the_gradient_of_the_logit_not_of_the_softmax(trained):
    model, images, labels = trained
    x = tf.constant(images[:4, ..., None].astype(np.float32))
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(tf.gather(logits(x), labels[:4], axis=1, batch_dims=1))
    expected = np.abs(tape.gradient(score, x).numpy()[..., 0])
    np.testing.assert_allclose(explain.vanilla_saliency(model, images[:4], labels[:4]),
                               expected, rtol=1e-5, atol=1e-8)


def test_the_explained_model_is_left_untouched(trained):
    model, images, labels = trained
    weights = [w.copy() for w in model.get_weights()]
    layer_names = [layer.name for layer in model.layers]
    explain.gradcam(model, images[:2], 0)
    explain.filter_ascent(model, "conv1", [0], steps=2)
    assert [layer.name for layer in model.layers] == layer_names
    assert model.output.name == model.get_layer("softmax").output.name
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_filter_ascent_raises_the_filters_mean_activation(trained):
    model = trained[0]
    filters = list(range(16))
    images, reached = explain.filter_ascent(model, "conv2", filters, steps=100, seed=3)
    start = explain.activation_maps(model, "conv2", explain.random_grey(16, seed=3))
    start = start.mean(axis=(1, 2))[np.arange(16), filters]     # (16,) at the grey start
    assert images.shape == (16, 48, 48) and images.min() >= 0 and images.max() <= 255
    # The ascent's own report is the activation of the images it returns.
    after = explain.activation_maps(model, "conv2", images).mean(axis=(1, 2))
    np.testing.assert_allclose(reached, after[np.arange(16), filters], rtol=1e-4)
    live = start > 0.05   # dead ReLU filters (no gradient at all) cannot move
    assert live.sum() >= 3
    assert (reached[live] / start[live]).min() > 5


def test_class_ascent_draws_what_the_model_calls_that_class(trained):
    model = trained[0]
    images, logits = explain.class_ascent(model, [0, 1, 2], steps=60)
    probs = model.predict(images[..., None], verbose=0)
    assert probs.argmax(axis=1).tolist() == [0, 1, 2]
    start = keras.Model(model.inputs, model.get_layer("logits").output).predict(
        explain.random_grey(3)[..., None], verbose=0)
    assert (logits > start[np.arange(3), [0, 1, 2]] + 1).all()


def test_gradcam_defaults_to_the_last_rectified_convolution(trained):
    from ferkit.models import build_cnn

    assert explain.last_conv_output(trained[0]) == "conv2"   # ReLU fused into the conv
    assert explain.last_conv_output(build_cnn(7)) == "relu3_3"
    with pytest.raises(ValueError, match="expected a model with a convolutional layer"):
        explain.last_conv_output(keras.Sequential([keras.Input((48, 48, 1)),
                                                   keras.layers.Flatten(),
                                                   keras.layers.Dense(2, name="logits")]))


def test_layers_by_name_or_index_and_clear_errors(trained):
    model = trained[0]
    assert explain.resolve_layer(model, "conv2") == "conv2"
    assert explain.resolve_layer(model, 2) == "conv1" == explain.resolve_layer(model, "2")
    assert explain.activation_maps(model, "conv1", trained[1][:2]).shape == (2, 48, 48, 8)
    with pytest.raises(ValueError, match=r"layer: expected a layer of .*found 'conv9' .*conv1, conv2"):
        explain.resolve_layer(model, "conv9")
    with pytest.raises(ValueError, match=r"layer: expected an index 0-.*found 99"):
        explain.resolve_layer(model, "99")
    with pytest.raises(ValueError, match=r"layer: expected a layer with feature maps .*found 'logits'"):
        explain.resolve_layer(model, "logits")
    with pytest.raises(ValueError, match=r"class index 3: expected 0-2"):
        explain.vanilla_saliency(model, trained[1][:2], 3)
    with pytest.raises(ValueError, match=r"filter 16: expected 0-15"):
        explain.filter_ascent(model, "conv2", [16], steps=1)
    with pytest.raises(ValueError, match=r"lr: expected a positive"):
        explain.class_ascent(model, [0], lr=0)
    no_logits = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(2, name="scores")], name="plain")
    with pytest.raises(ValueError, match=r"plain: expected a layer named 'logits'"):
        explain.vanilla_saliency(no_logits, trained[1][:1], 0)


def test_the_seeded_training_here_runs_with_op_determinism():
    from tensorflow.python.framework import config

    assert config.is_op_determinism_enabled()
