"""The input pipeline of training: the faces a run trains and validates on, and the
tf.data stream that feeds them to the model (order and augmentation drawn from the seed and
the epoch alone, so that a resumed run sees exactly what an uninterrupted one would)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ferkit.backend import tf
from ferkit.data import (IMAGE_SIZE, faces_identity, load_training_faces, select_classes,
                         train_val_rows)
from ferkit.models import class_names

# Augmentation strengths: FER2013 faces are roughly aligned, so only small moves help.
MAX_SHIFT = 0.1      # share of the image size
MAX_ROTATION = 10.0  # degrees
MAX_ZOOM = 0.1       # +-10 %


@dataclasses.dataclass
class TrainingData:
    """uint8 (N, 48, 48) images and labels renumbered 0..K-1 in the order of ``classes``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    classes: list
    identity: str  # faces_identity of the whole labelled file the split was drawn from

    def describe(self, data) -> list[str]:
        """The lines a trainer prints about its faces: the file, then counts per class."""
        n_train, n_val = len(self.train_labels), len(self.val_labels)
        k = len(self.classes)
        lines = [f"data: {data}: {n_train + n_val} faces of {k} classes ({n_train} training, "
                 f"{n_val} validation)"]
        counts = zip(class_names(self.classes), np.bincount(self.train_labels, minlength=k),
                     np.bincount(self.val_labels, minlength=k))
        lines += [f"  {name:<9} {a:6d} training {b:6d} validation" for name, a, b in counts]
        return lines


def prepare_data(data, classes, val_split: float, seed: int, usage=None) -> TrainingData:
    """Load the faces file ``data`` and split it as every model of this data and seed is
    split (over all seven classes, then narrowed to ``classes``)."""
    faces = load_training_faces(data, usage)
    classes = list(classes)
    train_rows, val_rows = train_val_rows(faces.labels, classes, val_split, seed)
    return TrainingData(*select_classes(faces.images[train_rows], faces.labels[train_rows],
                                        classes),
                        *select_classes(faces.images[val_rows], faces.labels[val_rows],
                                        classes),
                        list(classes), faces_identity(faces))


def augment_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random flip, shift, rotation and zoom of a (B, 48, 48, 1) float batch, as one affine
    warp per image (one bilinear resampling instead of four)."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    def uniform(i, low, high):
        return tf.random.stateless_uniform([batch], seeds[i], low, high)
    flip = tf.where(uniform(0, 0.0, 1.0) < 0.5, -1.0, 1.0)
    angle = uniform(1, -MAX_ROTATION, MAX_ROTATION) * math.pi / 180
    scale = uniform(2, 1 - MAX_ZOOM, 1 + MAX_ZOOM)
    shift_x = uniform(3, -MAX_SHIFT, MAX_SHIFT) * IMAGE_SIZE
    shift_y = uniform(4, -MAX_SHIFT, MAX_SHIFT) * IMAGE_SIZE
    # Output pixel p maps to input pixel c + A (p - c) - shift, with c the image centre and
    # A = rotation / scale with the x axis mirrored when flipping.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos * flip, -sin
    b0, b1 = sin * flip, cos
    centre = (IMAGE_SIZE - 1) / 2
    a2 = centre - a0 * centre - a1 * centre - shift_x
    b2 = centre - b0 * centre - b1 * centre - shift_y
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[IMAGE_SIZE, IMAGE_SIZE],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def make_dataset(images, labels, batch_size, num_classes, augment=False, seed=None,
                 epoch=0) -> tf.data.Dataset:
    """uint8 (N, 48, 48) + int labels -> batches of float32 (B, 48, 48, 1) and one-hot
    float32 (B, num_classes) targets (the categorical loss, which can smooth them).

    With a ``seed``, the order is shuffled and the augmentation drawn from (seed, epoch)
    alone, never from how many epochs this process has run: a resumed run then sees
    exactly the epochs an uninterrupted one would. Without, the order is the file's (for
    validation). The arrays stay uint8 in memory; casting, augmentation and batching happen
    in the graph, and the next batch is prefetched while the model trains on this one.
    """
    if seed is not None:
        order = np.random.default_rng([seed, epoch]).permutation(len(images))
        images, labels = images[order], labels[order]
    data = tf.data.Dataset.from_tensor_slices((images[..., None], labels)).batch(batch_size)
    data = data.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        stream = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
        counter = tf.data.Dataset.counter().map(
            lambda i: tf.stack([tf.constant(stream, tf.int64), i]))
        data = tf.data.Dataset.zip((data, counter)).map(
            lambda xy, s: (augment_batch(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)
