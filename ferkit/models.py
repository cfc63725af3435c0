"""Model builders, the JSON sidecar beside each .h5, and loading a trained model.

Every model takes raw 0-255 pixels shaped (48, 48, 1) and normalizes them itself (a
Rescaling layer), so the normalization is decided once and travels inside the .h5. The
last Dense layer is named ``logits`` and is followed by a float32 ``softmax`` layer:
saliency and filter visualization take their gradients from a sub-model ending at the
logits, never through the softmax.
"""
from __future__ import annotations

import logging

from ferkit import DataError
from ferkit.backend import keras
from ferkit.data import IMAGE_SIZE
from ferkit.files import sidecar_path, write_atomically
from ferkit.record import ModelRecord, read_record, write_record
from ferkit.labels import CLASS_NAMES

layers = keras.layers

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
NORMALIZATION = "x / 255 inside the model (Rescaling layer): feed raw 0-255 grey pixels"
CNN_FILTERS = (32, 64, 128)     # one group of three 3x3 convolutions per entry
CONVS_PER_GROUP = 3
CNN_DENSE = (256, 128, 64)
DNN_DENSE = (512, 512, 512, 256)


def build_cnn(num_classes: int = 7, conv_dropout: float = 0.2, dense_dropout: float = 0.3,
              bn_momentum: float = 0.99) -> keras.Model:
    """Stage-1 CNN (1,704,391 parameters for 7 classes); the specialist is the same body.

    (48,48,1) -> 3 groups of [conv3x3+BN+ReLU]x3 + 2x2 max-pool: (24,24,32) -> (12,12,64)
    -> (6,6,128) -> Flatten 4,608 -> Dense 256-128-64 -> logits (num_classes) -> softmax.
    A lower ``bn_momentum`` lets BatchNorm's moving statistics catch up in very short runs.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for group, filters in enumerate(CNN_FILTERS, start=1):
        for i in range(1, CONVS_PER_GROUP + 1):
            # The convolutions keep their bias: the specified parameter count includes it.
            x = layers.Conv2D(filters, 3, padding="same", name=f"conv{group}_{i}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{group}_{i}")(x)
            x = layers.ReLU(name=f"relu{group}_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{group}")(x)
        x = layers.Dropout(conv_dropout, name=f"drop{group}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(CNN_DENSE, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(dense_dropout, name=f"dense_drop{i}")(x)
    return _classifier_head(inputs, x, num_classes, "cnn")


def build_dnn(num_classes: int = 7, dense_dropout: float = 0.3) -> keras.Model:
    """Plain DNN on the flat pixels (1,838,599 parameters for 7 classes).

    (48,48,1) -> Flatten 2,304 -> Dense 512-512-512-256 -> logits (num_classes) -> softmax.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(DNN_DENSE, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(dense_dropout, name=f"dense_drop{i}")(x)
    return _classifier_head(inputs, x, num_classes, "dnn")


def _classifier_head(inputs, features, num_classes, name):
    logits = layers.Dense(num_classes, name="logits")(features)
    # float32 softmax: under mixed precision, bf16 probabilities are too coarse to rank.
    probs = layers.Activation("softmax", dtype="float32", name="softmax")(logits)
    return keras.Model(inputs, probs, name=name)


BUILDERS = {"cnn": build_cnn, "dnn": build_dnn}


def build_model(architecture: str, num_classes: int, **options) -> keras.Model:
    if architecture not in BUILDERS:
        raise ValueError(f"architecture: expected one of {sorted(BUILDERS)}, found {architecture!r}")
    return BUILDERS[architecture](num_classes, **options)


def logits_model(model: keras.Model) -> keras.Model:
    """A sub-model from the input to the pre-softmax logits (the given model is untouched)."""
    return keras.Model(model.input, model.get_layer("logits").output, name=f"{model.name}_logits")


def save_model(model: keras.Model, path, record: ModelRecord | dict) -> None:
    """Write the .h5 (weights and architecture, no optimizer state) and its sidecar: the
    model's record (a dict of its fields, as a run's state keeps it, becomes one)."""
    # .h5 is the format this toolkit ships on purpose; Keras logs (through absl) that it is
    # "legacy" on every save, which would repeat after every better epoch of a training run.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        write_atomically(path, lambda tmp: model.save(tmp, include_optimizer=False))
    finally:
        absl_logger.setLevel(level)
    write_record(path, record if isinstance(record, ModelRecord)
                 else ModelRecord.from_dict(record, path))


def load_model(path, kind: str = "") -> tuple[keras.Model, ModelRecord]:
    """Rebuild the architecture from the sidecar in float32 and load the weights.

    Rebuilding (rather than keras.models.load_model) makes a model trained under mixed
    precision load as plain float32 anywhere. Returns (model, its record).
    """
    sidecar = read_record(path, kind)
    if sidecar["architecture"] not in BUILDERS:
        raise DataError(f"{sidecar_path(path)}: architecture: expected one of "
                        f"{sorted(BUILDERS)}, found {sidecar['architecture']!r}")
    model = build_model(sidecar["architecture"], len(sidecar["classes"]), **sidecar["build"])
    try:
        model.load_weights(path)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: weights do not fit the architecture its sidecar describes "
                        f"({str(err).splitlines()[0]})") from None
    return model, sidecar


def class_names(classes) -> list[str]:
    return [CLASS_NAMES[c] for c in classes]
