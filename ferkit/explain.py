"""Seeing inside a model: one function per technique, each returning numpy arrays.

  * vanilla_saliency   |d logit / d pixel|                     -> (N, 48, 48)
  * smoothgrad         the same, averaged over noisy copies     -> (N, 48, 48)
  * gradcam            class-weighted feature maps of a layer   -> (N, 48, 48)
  * filter_ascent      inputs that excite a layer's filters     -> (F, 48, 48), (F,)
  * class_ascent       inputs that raise a class logit          -> (C, 48, 48), (C,)
  * activation_maps    a layer's feature maps for some inputs   -> (N, h, w, C)
  * most_important     the share of each map's pixels that matter most -> (N, 48, 48) bool

The score explained is always a pre-softmax value picked by a small explicit argument (a
class index or a filter index), taken from a sub-model that ends at the ``logits`` layer or
at the chosen layer, so the loaded model is never modified and no gradient goes through
the softmax (whose saturation would flatten the maps of confident predictions). Inputs
are raw 0-255 grey pixels, (N, 48, 48) or (N, 48, 48, 1): the models rescale them
themselves, so gradients are per raw pixel.
"""
from __future__ import annotations

import cv2
import numpy as np

from ferkit.errors import DataError, ParameterError
from ferkit.backend import keras, tf
from ferkit.models import logits_model

GREY = 128.0          # the mid-grey the ascents start from and decay back to
START_NOISE = 20.0    # +- pixel levels of uniform noise on that grey start
# A map is ranked for most_important after a Gaussian blur of this sigma, in pixels of the
# 48x48 face: a single gradient jumps from pixel to pixel, and the top pixels of the raw
# map are specks all over the face; blurred, they gather into the eyes, brows and mouth
# the map points at (Grad-CAM's maps are smooth already and barely change).
MASK_SMOOTHING = 2.0


# --- layers ------------------------------------------------------------------------------

def conv_layers(model) -> list[str]:
    """Names of the model's Conv2D layers, input to output."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def resolve_layer(model, spec) -> str:
    """A layer given by name or by index into ``model.layers`` (negative counts from the
    end, '3' works as 3) -> its name; it must output feature maps (batch, h, w, channels)."""
    text = str(spec).strip()
    known = ", ".join(conv_layers(model)) or "none"
    if text.lstrip("-").isdigit():
        index = int(text)
        if not -len(model.layers) <= index < len(model.layers):
            raise ParameterError("layer", f"expected an index 0-{len(model.layers) - 1} into "
                                          f"{model.name}'s layers, found {text} (its "
                                          f"convolutions: {known})")
        layer = model.layers[index]
    else:
        names = [layer.name for layer in model.layers]
        if text not in names:
            raise ParameterError("layer", f"expected a layer of {model.name}, found {text!r} "
                                          f"(its convolutions: {known})")
        layer = model.get_layer(text)
    if isinstance(layer, keras.layers.InputLayer) or len(layer.output.shape) != 4:
        raise ParameterError("layer", f"expected a layer with feature maps (batch, height, "
                                      f"width, channels), found {text!r} ({layer.name}) of "
                                      f"output shape {tuple(layer.output.shape)} (its "
                                      f"convolutions: {known})")
    return layer.name


def last_conv_output(model) -> str:
    """Grad-CAM's default layer: the last Conv2D, followed through the BatchNormalization
    and ReLU/Activation layers right after it (relu3_3 in the CNN).

    Grad-CAM weights the *rectified* feature maps the rest of the network reads (in the
    VGG of the paper the ReLU is fused into the conv). Before BN+ReLU (conv3_3) the maps
    still carry each channel's BN shift and sign, so negative responses that the ReLU
    discards would enter the weighted sum. Pooling is not followed: it halves the map
    (12x12 -> 6x6 in the CNN).
    """
    convs = conv_layers(model)
    if not convs:
        raise ParameterError("model", f"expected a model with a convolutional layer for "
                                      f"Grad-CAM, found {model.name} without one")
    layers = model.layers
    index = layers.index(model.get_layer(convs[-1]))
    elementwise = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation)
    while (index + 1 < len(layers) and isinstance(layers[index + 1], elementwise)
           and layers[index + 1].input is layers[index].output
           and layers[index + 1].name != "softmax"):
        index += 1
    return layers[index].name


def _sub_model(model, *outputs) -> keras.Model:
    """A model from the input to the named layers' outputs; ``model`` is left untouched."""
    if "logits" in outputs and "logits" not in [layer.name for layer in model.layers]:
        raise DataError(f"{model.name}: expected a layer named 'logits' (the pre-softmax "
                        f"scores), found none")
    if outputs == ("logits",):
        return logits_model(model)
    tensors = [model.get_layer(name).output for name in outputs]
    return keras.Model(model.input, tensors if len(tensors) > 1 else tensors[0])


def _as_input(images) -> tf.Tensor:
    """(N, 48, 48) or (N, 48, 48, 1) raw pixels -> float32 tensor (N, 48, 48, 1)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"images: expected shape (N, 48, 48) or (N, 48, 48, 1), found "
                         f"{np.shape(images)}")
    return tf.constant(x)


def _targets(index, n: int, count: int, what: str) -> np.ndarray:
    """One index per image (a single int is broadcast), each checked against ``count``."""
    targets = np.broadcast_to(np.asarray(index, dtype=np.int64), (n,)).copy()
    bad = targets[(targets < 0) | (targets >= count)]
    if len(bad):
        raise ValueError(f"{what} {bad[0]}: expected 0-{count - 1}")
    return targets


def _pick(outputs: tf.Tensor, targets) -> tf.Tensor:
    """(N, ..., C) outputs, (N,) channel indices -> (N,) mean of each row's chosen channel
    (a logit for (N, K); a filter's mean activation for feature maps (N, h, w, C))."""
    flat = tf.reshape(outputs, (tf.shape(outputs)[0], -1, outputs.shape[-1]))
    return tf.reduce_mean(tf.gather(flat, targets, axis=2, batch_dims=1), axis=1)


# --- attribution ---------------------------------------------------------------------------

def _logit_gradients(logits, x: tf.Tensor, targets) -> tf.Tensor:
    """d logit[target] / d x for every image: (N, 48, 48, 1)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = _pick(logits(x, training=False), targets)
    return tape.gradient(score, x)


def vanilla_saliency(model, images, class_index) -> np.ndarray:
    """|d logit[class] / d pixel| (Simonyan et al. 2014): (N, 48, 48) float32, unnormalized.

    ``class_index``: the output index explained, one int or one per image.
    """
    x = _as_input(images)
    logits = _sub_model(model, "logits")
    targets = _targets(class_index, len(x), logits.output_shape[-1], "class index")
    return np.abs(_logit_gradients(logits, x, targets).numpy()[..., 0])


def smoothgrad(model, images, class_index, samples: int = 25, noise: float = 0.15,
               seed: int = 0) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the mean |gradient| over ``samples`` copies of each
    image with Gaussian noise of std ``noise`` x 255 added: (N, 48, 48) float32.

    Averaging absolute values (not signed gradients) keeps it comparable to
    vanilla_saliency; the noise washes out the pixel-level jitter of single gradients.
    """
    if samples < 1:
        raise ParameterError("samples", f"expected at least 1, found {samples}")
    if noise < 0:
        raise ParameterError("noise", f"expected a share of the 0-255 range >= 0, found {noise}")
    x = _as_input(images)
    logits = _sub_model(model, "logits")
    targets = _targets(class_index, len(x), logits.output_shape[-1], "class index")
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[:3], dtype=np.float32)
    # One batch per sample: N noisy images (N, 48, 48, 1) at a time keeps memory at N images.
    for _ in range(samples):
        noisy = x + rng.normal(0, noise * 255, x.shape).astype(np.float32)
        total += np.abs(_logit_gradients(logits, noisy, targets).numpy()[..., 0])
    return total / samples


def gradcam(model, images, class_index, layer=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) on ``layer`` (name or index; default
    last_conv_output): ReLU(sum_k alpha_k A_k), alpha_k = spatial mean of
    d logit[class] / d A_k, bilinearly upsampled to the input: (N, 48, 48) float32 >= 0.
    """
    x = _as_input(images)
    name = last_conv_output(model) if layer is None else resolve_layer(model, layer)
    sub = _sub_model(model, name, "logits")
    targets = _targets(class_index, len(x), sub.output_shape[1][-1], "class index")
    with tf.GradientTape() as tape:
        maps, logits = sub(x, training=False)      # (N, h, w, C), (N, K)
        score = _pick(logits, targets)
    alpha = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)  # (N,1,1,C)
    cam = tf.nn.relu(tf.reduce_sum(alpha * maps, axis=-1, keepdims=True))           # (N,h,w,1)
    return tf.image.resize(cam, x.shape[1:3], method="bilinear").numpy()[..., 0]


def most_important(maps, keep: float, smoothing: float = MASK_SMOOTHING) -> np.ndarray:
    """(N, h, w) bool: in each map, the ``keep`` share of its pixels that matter most
    (exactly round(keep * h * w) of them, ties broken by position), ranked on the map
    blurred by a Gaussian of sigma ``smoothing`` pixels (0: the map as it is)."""
    if not 0 < keep <= 1:
        raise ParameterError("keep", f"expected a share of the pixels, 0 < keep <= 1, found "
                                     f"{keep}")
    maps = np.asarray(maps, dtype=np.float32)
    if smoothing > 0:
        maps = np.stack([cv2.GaussianBlur(m, (0, 0), smoothing) for m in maps])
    flat = maps.reshape(len(maps), -1)
    count = round(keep * flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    kept = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(kept, order, True, axis=1)
    return kept.reshape(maps.shape)


# --- what the units respond to --------------------------------------------------------------

def activation_maps(model, layer, images) -> np.ndarray:
    """The feature maps of ``layer`` (name or index) for the images: (N, h, w, C) float32."""
    sub = _sub_model(model, resolve_layer(model, layer))
    return sub(_as_input(images), training=False).numpy()


def random_grey(n: int, seed: int = 0) -> np.ndarray:
    """The ascents' start: mid-grey with +-START_NOISE uniform noise, (n, 48, 48) float32."""
    rng = np.random.default_rng(seed)
    return (GREY + rng.uniform(-START_NOISE, START_NOISE, (n, 48, 48))).astype(np.float32)


def _ascend(sub, targets, steps, lr, jitter, decay, blur_every, seed, callback):
    """Gradient ascent of _pick(sub(x), targets) for each of len(targets) images at once
    (inference mode, so the images do not interact). Returns (images (T, 48, 48) in 0-255,
    scores (T,) reached by the final images, un-jittered)."""
    if steps < 1:
        raise ParameterError("steps", f"expected at least 1, found {steps}")
    if lr <= 0:
        raise ParameterError("lr", f"expected a positive step size (pixel levels), found {lr}")
    if not 0 <= decay < 1:
        raise ParameterError("decay", f"expected a share per step, 0 <= decay < 1, found {decay}")
    if jitter < 0:
        raise ParameterError("jitter", f"expected a pixel count >= 0, found {jitter}")
    if blur_every < 0:
        raise ParameterError("blur_every", f"expected a step count >= 0 (0 = never), found "
                                           f"{blur_every}")
    rng = np.random.default_rng(seed)
    x = tf.Variable(random_grey(len(targets), seed)[..., None])  # (T, 48, 48, 1)
    targets = tf.constant(targets)
    # 3x3 binomial blur: a gentle low-pass that keeps the images from turning into
    # high-frequency patterns that excite a unit but show nothing.
    kernel = tf.constant(np.outer([1, 2, 1], [1, 2, 1])[..., None, None] / 16, tf.float32)

    @tf.function
    def step(shift, blur):
        with tf.GradientTape() as tape:
            # Random jitter: a shifted copy each step, so no single pixel grid is exploited.
            score = tf.reduce_sum(_pick(sub(tf.roll(x, shift, axis=[1, 2]), training=False),
                                        targets))
        grad = tape.gradient(score, x)
        # Normalized per image: lr is then in pixel levels per step whatever the layer's scale.
        grad /= tf.sqrt(tf.reduce_mean(grad ** 2, axis=(1, 2, 3), keepdims=True)) + 1e-8
        moved = GREY + (x + lr * grad - GREY) * (1 - decay)   # decay towards the grey start
        if blur:
            moved = GREY + tf.nn.conv2d(moved - GREY, kernel, 1, "SAME")
        x.assign(tf.clip_by_value(moved, 0.0, 255.0))

    for i in range(steps):
        shift = rng.integers(-jitter, jitter + 1, 2) if jitter else np.zeros(2, np.int64)
        step(tf.constant(shift, tf.int32), bool(blur_every and (i + 1) % blur_every == 0))
        if callback is not None:
            callback(i + 1)
    scores = _pick(sub(x, training=False), targets).numpy()
    return x.numpy()[..., 0], scores


def sees_the_pixels(model, layer) -> bool:
    """Whether ``layer`` is a convolution on the grey image itself (one input channel: the
    first convolution), whose kernels are pictures of what it matches."""
    layer = model.get_layer(resolve_layer(model, layer))
    return isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[2] == 1


def first_layer_kernels(model, layer, filters) -> np.ndarray:
    """(F, kh, kw) float32: the kernels of ``filters`` (channel indices) of ``layer``, a
    convolution on the grey image (sees_the_pixels): each the pattern of pixels its filter
    responds to most, positive weights where brighter pixels raise it. Gradient ascent on
    such a filter says little: a 3x3 kernel is filled by any input with its edge, and the
    images it finds are flat."""
    name = resolve_layer(model, layer)
    if not sees_the_pixels(model, name):
        raise ValueError(f"first_layer_kernels: expected a convolution on the grey image, "
                         f"found {name!r}")
    kernel = model.get_layer(name).kernel.numpy()[:, :, 0, :]          # (kh, kw, C)
    return np.moveaxis(kernel, -1, 0)[np.atleast_1d(filters)].astype(np.float32)


def filter_ascent(model, layer, filters, steps: int = 100, lr: float = 4.0, jitter: int = 2,
                  decay: float = 0.01, blur_every: int = 0, seed: int = 0,
                  callback=None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs that maximize the mean activation of each filter in ``filters`` (indices into
    the channels of ``layer``, a name or index), by gradient ascent from random_grey(seed)
    with jitter, decay and blur every ``blur_every`` steps (0 = never).

    Returns (images (F, 48, 48) float32 in 0-255, mean activations reached (F,)).
    ``callback(step)`` is called after each step (a progress bar).
    """
    sub = _sub_model(model, resolve_layer(model, layer))
    targets = _targets(filters, len(np.atleast_1d(filters)), sub.output_shape[-1], "filter")
    return _ascend(sub, targets, steps, lr, jitter, decay, blur_every, seed, callback)


def class_ascent(model, class_indices, steps: int = 200, lr: float = 4.0, jitter: int = 2,
                 decay: float = 0.01, blur_every: int = 0, seed: int = 0,
                 callback=None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs that maximize each given output's logit (what the model thinks that class
    looks like); same regularization as filter_ascent.

    Returns (images (C, 48, 48) float32 in 0-255, logits reached (C,)).
    """
    sub = _sub_model(model, "logits")
    targets = _targets(class_indices, len(np.atleast_1d(class_indices)),
                       sub.output_shape[-1], "class index")
    return _ascend(sub, targets, steps, lr, jitter, decay, blur_every, seed, callback)
