"""The model record: what a trained model's JSON sidecar (MODEL.json beside MODEL.h5) says,
as one typed, versioned, frozen record, read and written only here.

The record carries what is needed to rebuild and use the model (architecture, classes,
build options, input), where its faces came from and how they were split (data,
data_identity, seed, val_split), how it was trained (command, config, schedule, final
weights, accuracies), its LiteRT copies' hashes and, for a specialist, the tuned hand-off.
Every field but the first three is optional (None: not recorded), so a new field (say,
calibration) is one line with a default, and older sidecars still load. A key the record
does not know is kept, unchanged, in ``extra`` and written back.

Schema versions: 0, the sidecars written before the record had a version (today's shipped
models/*.json): the same keys, read as they are; 1 adds ``schema``. A sidecar of a later
version than this code knows is refused (it may mean something else by a key).

For code that reads a sidecar as the JSON object it is, a record also reads as a mapping of
its recorded keys (``record["classes"]``, ``record.get("handoff_below", 1.0)``); it is
changed only by ``replace`` (a new record).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import json
from pathlib import Path

from ferkit import paths
from ferkit.errors import DataError
from ferkit.files import sidecar_path, write_atomically

SCHEMA_VERSION = 1
REQUIRED = ("architecture", "classes", "build")
# Recorded even when None: a null here says something (stage 1 from scratch, the file's
# only rows, a run started from Python, an average that has no best epoch).
WRITTEN_WHEN_NONE = ("usage", "init_from", "command", "best_epoch")


@dataclasses.dataclass(frozen=True)
class ModelRecord(collections.abc.Mapping):
    """A model's sidecar. Fields, by what they say:

    the model: ``architecture`` ("cnn", "dnn"), ``classes`` (output j is class
    classes[j]), ``class_names``, ``build`` (ferkit.models.build_model's options),
    ``input_shape``, ``normalization``, ``parameters``, ``precision`` (of training);
    its faces: ``data`` (the file, as ferkit.recorded_path writes it), ``usage``,
    ``data_identity`` (ferkit.data.faces_identity), ``seed``, ``val_split``;
    its run: ``command``, ``config``, ``init_from``, ``prior_epochs``, ``epochs_run``,
    ``schedule``, ``final_weights``, ``best_epoch``, ``best_epoch_val_accuracy``,
    ``val_accuracy``, ``val_accuracy_tta``, ``wall_time_s``, ``seconds_per_epoch``,
    ``batchnorm_recalibration``, ``resumed_with``, ``machine``, ``versions``;
    an average's (average_weights): ``averaged_from``, ``batchnorm_faces``,
    ``best_val_accuracy``;
    its LiteRT copies: ``tflite``, ``tflite_int8`` ({"h5_sha256", "sha256", ...});
    a specialist's hand-off: ``handoff_below``, ``handoff_below_tta``, ``handoff_tuning``,
    ``stage1``, ``stage1_sha256``;
    its calibration (ferkit.evaluation.fit_model_calibration): ``calibration``, and a
    specialist's on the faces the cascade hands it, ``cascade_calibration``;
    and ``extra``: keys this version does not know, kept as they were.
    """

    architecture: str
    classes: list
    build: dict
    class_names: list | None = None
    input_shape: list | None = None
    normalization: str | None = None
    parameters: int | None = None
    precision: str | None = None
    data: str | None = None
    usage: str | None = None
    data_identity: str | None = None
    seed: int | None = None
    val_split: float | None = None
    command: str | None = None
    config: dict | None = None
    init_from: str | None = None
    prior_epochs: int | None = None
    epochs_run: int | None = None
    schedule: dict | None = None
    final_weights: dict | None = None
    best_epoch: int | None = None
    best_epoch_val_accuracy: float | None = None
    val_accuracy: float | None = None
    val_accuracy_tta: float | None = None
    wall_time_s: float | None = None
    seconds_per_epoch: float | None = None
    batchnorm_recalibration: dict | None = None
    resumed_with: list | None = None
    machine: str | None = None
    versions: dict | None = None
    averaged_from: list | None = None
    batchnorm_faces: int | None = None
    best_val_accuracy: float | None = None
    tflite: dict | None = None
    tflite_int8: dict | None = None
    handoff_below: float | None = None
    handoff_below_tta: float | None = None
    handoff_tuning: dict | None = None
    stage1: str | None = None
    stage1_sha256: str | None = None
    calibration: dict | None = None
    cascade_calibration: dict | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    # --- JSON ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict, source="sidecar") -> ModelRecord:
        """The record of a sidecar's JSON object (any schema version up to SCHEMA_VERSION);
        ``source`` names it in errors (its path)."""
        if not isinstance(values, dict):
            raise DataError(f"{source}: expected a JSON object, found {type(values).__name__}")
        values = dict(values)
        version = values.pop("schema", 0)
        if not isinstance(version, int) or not 0 <= version <= SCHEMA_VERSION:
            raise DataError(f"{source}: expected a sidecar of schema version 0 to "
                            f"{SCHEMA_VERSION}, found {version!r} (made by a newer ferkit?)")
        for key in REQUIRED:
            if key not in values:
                raise DataError(f"{source}: expected a key {key!r} in the sidecar, found "
                                f"{sorted(values)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {**values.pop("extra", {}), **{k: values.pop(k) for k in list(values)
                                                if k not in known}}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict:
        """The sidecar's JSON object: ``schema``, then every recorded field in the order
        above, then ``extra``'s keys."""
        values = {"schema": SCHEMA_VERSION}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name != "extra" and (value is not None or field.name in WRITTEN_WHEN_NONE):
                values[field.name] = value
        return {**values, **self.extra}

    @classmethod
    def from_json(cls, text: str, source="sidecar") -> ModelRecord:
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{source}: expected a JSON sidecar, found invalid JSON "
                            f"({err})") from None
        return cls.from_dict(values, source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def replace(self, **changes) -> ModelRecord:
        """A new record with ``changes``; a key the record has no field for goes to extra."""
        known = {f.name for f in dataclasses.fields(self)}
        extra = {**self.extra, **{k: v for k, v in changes.items() if k not in known}}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if k in known},
                                   extra=extra)

    # --- read as the JSON object it is -------------------------------------------------------

    def __getitem__(self, key: str):
        values = self.to_dict()
        if key not in values:
            raise KeyError(key)
        return values[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def read_record(model_path, kind: str = "") -> ModelRecord:
    """The record of the model at ``model_path``; a missing model or sidecar is a DataError
    carrying the ``kind`` of model ("stage1": ferkit.paths.model_file's makes)."""
    path = sidecar_path(paths.model_file(model_path, (kind,) if kind else ()))
    return ModelRecord.from_json(path.read_bytes(), path)


def write_record(model_path, record: ModelRecord) -> None:
    """The record as the sidecar of the model at ``model_path``, written atomically."""
    if not isinstance(record, ModelRecord):
        raise TypeError(f"record: expected a ModelRecord, found {type(record).__name__}")
    text = record.to_json()
    write_atomically(sidecar_path(model_path), lambda tmp: Path(tmp).write_text(text))
