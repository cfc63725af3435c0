"""The model record (ferkit.record): a typed, versioned sidecar with a JSON round trip, and
today's shipped sidecars (schema 0, written before the record had a version) still load."""
import json

import pytest

from ferkit import DataError, MODELS
from ferkit.record import SCHEMA_VERSION, ModelRecord, read_record, write_record

SHIPPED = sorted(MODELS.glob("*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_every_shipped_sidecar_loads_and_keeps_every_key(path):
    old = json.loads(path.read_text())
    assert "schema" not in old  # written before the record: schema 0
    record = read_record(path.with_suffix(".h5"))
    assert record.architecture == old["architecture"] and record.classes == old["classes"]
    assert record.extra == {}  # every key it has is a field of the record
    assert {key: value for key, value in record.to_dict().items() if key != "schema"} == old
    assert record["build"] == old["build"] and record.get("handoff_below") == old.get(
        "handoff_below")


def test_the_shipped_specialist_reads_as_typed_fields():
    record = read_record(MODELS / "cnn_specific_0_2_4_6.h5")
    assert record.classes == [0, 2, 4, 6] and 0 <= record.handoff_below <= 1
    assert record.stage1_sha256 and record.tflite["sha256"]


def test_the_json_round_trip_is_exact_and_versioned(tmp_path):
    record = ModelRecord("cnn", [4, 2], {"dense_dropout": 0.1}, seed=7, usage=None,
                         handoff_below=0.55, extra={"a_later_key": [1, 2]})
    text = record.to_json()
    assert json.loads(text)["schema"] == SCHEMA_VERSION
    assert json.loads(text)["usage"] is None and "handoff_below_tta" not in json.loads(text)
    assert ModelRecord.from_json(text) == record
    write_record(tmp_path / "m.h5", record)
    (tmp_path / "m.h5").write_bytes(b"")
    assert read_record(tmp_path / "m.h5") == record
    changed = record.replace(handoff_below=0.6, another=3)
    assert changed.handoff_below == 0.6 and changed.extra["another"] == 3
    assert record.handoff_below == 0.55  # frozen: replace makes a new record
    with pytest.raises(dataclasses_frozen()):
        record.seed = 8


def dataclasses_frozen():
    import dataclasses
    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("text, message", [
    ('{"architecture": "cnn", "classes": [0]}', "expected a key 'build'"),
    ('[1, 2]', "expected a JSON object, found list"),
    ('{"schema": 99, "architecture": "cnn", "classes": [0], "build": {}}',
     "expected a sidecar of schema version 0 to 1, found 99"),
    ('{"architecture": ', "expected a JSON sidecar, found invalid JSON"),
])
def test_a_bad_sidecar_is_one_data_error_naming_it(text, message):
    with pytest.raises(DataError, match=message) as err:
        ModelRecord.from_json(text, "m.json")
    assert str(err.value).startswith("m.json: ")
