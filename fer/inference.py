"""Prediction: class probabilities of a model, flip test-time augmentation, and the cascade.

The cascade rule is a pure function of two probability arrays and the specialist's class
subset, so it can be tested without any model.
"""
from __future__ import annotations

import numpy as np

PREDICT_BATCH = 256  # large enough to keep both cores busy, small enough for any laptop


def predict_probs(model, images: np.ndarray, tta: bool = False,
                  batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """uint8/float (N, 48, 48) -> float32 (N, K) softmax of ``model``.

    With ``tta`` the softmax of each image and of its mirror image are averaged.
    """
    from fer.backend import tf

    x = np.asarray(images, dtype=np.float32)[..., None]
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    forward = _compiled_forward(model)
    outputs = []
    for start in range(0, len(x), batch_size):
        batch = tf.constant(x[start:start + batch_size])
        probs = forward(batch)
        if tta:
            probs = (probs + forward(tf.reverse(batch, axis=[2]))) / 2
        outputs.append(probs.numpy())
    return np.concatenate(outputs).astype(np.float32)


def _compiled_forward(model):
    """A traced inference function, cached on the model (model.predict re-enters Keras'
    epoch machinery for every call, which costs more than the forward pass on small sets)."""
    from fer.backend import tf

    forward = getattr(model, "_fer_forward", None)
    if forward is None:
        forward = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
        model._fer_forward = forward
    return forward


def cascade_labels(stage1_probs: np.ndarray, stage2_probs: np.ndarray, classes,
                   handoff_below: float = 1.0) -> np.ndarray:
    """Final labels of the two-stage cascade.

    stage1_probs: (N, 7) from the 7-class model. stage2_probs: (N, K) from the specialist,
    whose output j is class ``classes[j]``. Where stage 1's top class is one of ``classes``
    and its confidence is at most ``handoff_below``, the specialist's top class among its
    own replaces it; elsewhere stage 1's top class stands (and stage2_probs is not read
    there, so a caller may run the specialist only on the handed-off rows).
    """
    stage1_probs, stage2_probs = np.asarray(stage1_probs), np.asarray(stage2_probs)
    classes = np.asarray(classes)
    if stage2_probs.shape != (len(stage1_probs), len(classes)):
        raise ValueError(f"stage2_probs: expected shape {(len(stage1_probs), len(classes))}, "
                         f"found {stage2_probs.shape}")
    labels = stage1_probs.argmax(axis=1)
    handoff = handoff_mask(stage1_probs, classes, handoff_below)
    labels[handoff] = classes[stage2_probs[handoff].argmax(axis=1)]
    return labels


def handoff_mask(stage1_probs: np.ndarray, classes, handoff_below: float = 1.0) -> np.ndarray:
    """Which images the cascade hands to the specialist (so stage 2 runs only on those)."""
    stage1_probs = np.asarray(stage1_probs)
    return (np.isin(stage1_probs.argmax(axis=1), classes)
            & (stage1_probs.max(axis=1) <= handoff_below))
