"""A better model from trained ones without training: average their weights and
re-estimate BatchNorm's statistics (average_weights.py runs both).

- Weight averaging (as in SWA, Izmailov et al. 2018): models from one line of training
  (here the best checkpoints of successive warm restarts) lie in one basin of the loss,
  and the average of their weights tends to sit nearer its flat middle than any of them.
- BatchNorm re-estimation: training collects BatchNorm's moving mean and variance on
  augmented faces with dropout on, and a warm-restarted or averaged model has statistics
  that belong to other weights; prediction sees plain faces with dropout off. One pass
  over the plain training faces, with dropout off, gives each BatchNorm layer the
  statistics of the inputs it will meet.
"""
from __future__ import annotations

import numpy as np

from ferkit import DataError
from ferkit.backend import keras, tf
from ferkit.progress import progress_bar

STATS_BATCH = 256  # faces per batch of the statistics pass (batch statistics, as in training)


def average_weights(models) -> list[np.ndarray]:
    """The element-wise mean of each weight over ``models`` (same architecture)."""
    if not models:
        raise ValueError("average_weights: expected at least one model, found none")
    shapes = [[w.shape for w in m.get_weights()] for m in models]
    for model, model_shapes in zip(models[1:], shapes[1:]):
        if model_shapes != shapes[0]:
            raise DataError(f"average_weights: expected models of one architecture, found "
                            f"{models[0].name} and {model.name} with different weights")
    return [np.mean(ws, axis=0) for ws in zip(*(m.get_weights() for m in models))]


def without_dropout(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same weights) whose Dropout layers pass their input through."""
    def clone(layer):
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def batchnorm_statistics(model: keras.Model, images: np.ndarray, batch_size: int = STATS_BATCH,
                         progress: bool = False) -> dict[str, tuple]:
    """{BatchNorm layer name: (mean, variance) per channel} of the inputs that layer meets
    when ``model`` runs on ``images`` (uint8 (N, 48, 48)) with dropout off.

    Each layer normalizes with its batch's own statistics during the pass, as in training
    (so the statistics of a later layer do not depend on the old ones of an earlier layer);
    the result is the mean over batches of each batch's mean and variance. ``progress``
    shows a progress bar.
    """
    if len(images) == 0:
        raise DataError("batchnorm_statistics: expected faces to estimate from, found none")
    plain = without_dropout(model)
    norms = [layer for layer in plain.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return {}
    inputs = keras.Model(plain.input, [layer.input for layer in norms])
    axes = [list(range(len(layer.input.shape) - 1)) for layer in norms]

    @tf.function(reduce_retracing=True)
    def batch_moments(batch):
        # training=True: each BatchNorm normalizes with this batch's statistics.
        features = inputs(batch, training=True)
        return [tf.nn.moments(f, axes=a) for f, a in zip(features, axes)]

    x = np.asarray(images, dtype=np.float32)[..., None]
    sums = [[0.0, 0.0] for _ in norms]
    bar = progress_bar(len(x), "face", show=progress)
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        for total, (mean, variance) in zip(sums, batch_moments(tf.constant(batch))):
            total[0] += mean.numpy() * len(batch)
            total[1] += variance.numpy() * len(batch)
        bar.add(len(batch))
    return {layer.name: (mean / len(x), variance / len(x))
            for layer, (mean, variance) in zip(norms, sums)}


def recalibrate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int = STATS_BATCH,
                          progress: bool = False) -> keras.Model:
    """A copy of ``model`` whose BatchNorm layers hold the statistics of ``images``
    (batchnorm_statistics); ``model`` itself is not modified."""
    statistics = batchnorm_statistics(model, images, batch_size, progress)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, (mean, variance) in statistics.items():
        layer = copy.get_layer(name)
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(variance.astype(np.float32))
    return copy
