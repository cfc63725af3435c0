"""Prediction: class probabilities of a model, flip test-time augmentation, and the cascade.

The cascade rule is a pure function of two probability arrays and the specialist's class
subset, so it can be tested without any model.
"""
from __future__ import annotations

import numpy as np

from fer import MODELS

DEFAULT_STAGE1 = MODELS / "cnn.h5"
DEFAULT_STAGE2 = MODELS / "cnn_specific_0_2_4_6.h5"
MAKE_STAGE1 = "python3 cnn_train.py"
MAKE_STAGE2 = "python3 cnn_train_mod.py --specific 0_2_4_6"

PREDICT_BATCH = 256  # large enough to keep both cores busy, small enough for any laptop

# Hand-off thresholds tried when tuning the cascade: 0 never hands over (no softmax top is
# below 1/7), 1 always does; steps of 0.05 between, finer would only fit the noise of a
# few thousand validation faces.
HANDOFF_GRID = tuple([0.0] + [round(0.3 + 0.05 * i, 2) for i in range(14)] + [1.0])


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
        batch = x[start:start + batch_size]
        if tta:  # each image and its mirror in one forward pass: one call, twice the batch
            n = len(batch)
            probs = forward(tf.constant(np.concatenate([batch, batch[:, :, ::-1]]))).numpy()
            outputs.append((probs[:n] + probs[n:]) / 2)
        else:
            outputs.append(forward(tf.constant(batch)).numpy())
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
    handoff = handoff_mask(stage1_probs, classes, handoff_below)
    return _hand_over(stage1_probs, stage2_probs[handoff], classes, handoff)


def run_cascade(stage1_probs: np.ndarray, images: np.ndarray, stage2, classes,
                handoff_below: float, predict_stage2=predict_probs, handoff=None):
    """(labels, handoff) of the cascade, given stage 1's (N, 7) probabilities of ``images``.

    The specialist runs only on the faces handed to it, through
    ``predict_stage2(model, images) -> (M, K)`` (so a caller chooses TTA or a progress bar).
    ``handoff`` defaults to handoff_mask's, which gives cascade_labels' labels; the
    throughput benchmark passes its own to time a given share.
    """
    if handoff is None:
        handoff = handoff_mask(stage1_probs, classes, handoff_below)
    return _hand_over(stage1_probs, predict_stage2(stage2, images[handoff]), classes,
                      handoff), handoff


def _hand_over(stage1_probs: np.ndarray, handed_probs: np.ndarray, classes,
               handoff: np.ndarray) -> np.ndarray:
    """Stage 1's top classes, with the specialist's top class among its own where
    ``handoff`` is set; handed_probs: (handoff.sum(), K), the specialist's rows for those."""
    labels = np.asarray(stage1_probs).argmax(axis=1)
    labels[handoff] = np.asarray(classes)[np.asarray(handed_probs).argmax(axis=1)]
    return labels


def handoff_mask(stage1_probs: np.ndarray, classes, handoff_below: float = 1.0) -> np.ndarray:
    """Which images the cascade hands to the specialist (so stage 2 runs only on those)."""
    stage1_probs = np.asarray(stage1_probs)
    return (np.isin(stage1_probs.argmax(axis=1), classes)
            & (stage1_probs.max(axis=1) <= handoff_below))


def tune_handoff(stage1_probs: np.ndarray, stage2_probs: np.ndarray, classes, truth,
                 grid=HANDOFF_GRID) -> tuple[float, dict]:
    """The hand-off threshold of ``grid`` under which the cascade is most accurate on
    labelled faces, and {threshold: accuracy} for every one tried.

    Ties go to the lowest threshold, which hands the fewest faces to the specialist (so the
    cascade is faster and never worse than stage 1 alone on these faces: 0 is stage 1).
    stage2_probs must hold the specialist's output for every face.
    """
    truth = np.asarray(truth)
    accuracy = {float(t): float(np.mean(cascade_labels(stage1_probs, stage2_probs, classes, t)
                                        == truth)) for t in sorted(grid)}
    best = max(accuracy.values())
    return next(t for t, a in accuracy.items() if a == best), accuracy


def handoff_threshold(given, specialist_sidecar: dict, tta: bool = False) -> float:
    """The threshold to use: ``given`` (--handoff-below) if not None, else the one tuned
    into the specialist's sidecar for this kind of prediction (``handoff_below_tta`` with
    TTA, whose averaged probabilities are not the plain ones, so its best threshold can
    differ; ``handoff_below`` without, and with TTA for a sidecar tuned before TTA had its
    own), else 1.0 (always hand over)."""
    threshold = given
    if threshold is None:
        threshold = specialist_sidecar.get("handoff_below", 1.0)
        if tta:
            threshold = specialist_sidecar.get("handoff_below_tta", threshold)
    if not 0 <= threshold <= 1:
        raise ValueError(f"--handoff-below: expected a confidence between 0 and 1, found "
                         f"{threshold}")
    return float(threshold)


def load_stage1(path):
    """(model, sidecar) of a 7-class stage-1 model; a clear error naming the file and the
    command that makes it when it is missing or is not a 7-class model."""
    from fer.models import load_model

    model, sidecar = load_model(path, MAKE_STAGE1)
    if sidecar["classes"] != list(range(7)):
        raise ValueError(f"{path}: expected a 7-class stage-1 model, found classes "
                         f"{sidecar['classes']}; make it with: {MAKE_STAGE1}")
    return model, sidecar


def load_specialist(path):
    """(model, sidecar) of a specialist; which classes it covers comes from its sidecar."""
    from fer.models import load_model

    model, sidecar = load_model(path, MAKE_STAGE2)
    classes = sidecar["classes"]
    if not (2 <= len(classes) < 7 and set(classes) <= set(range(7))):
        raise ValueError(f"{path}: expected a specialist on 2-6 of the classes 0-6, found "
                         f"classes {classes}; make it with: {MAKE_STAGE2}")
    return model, sidecar
