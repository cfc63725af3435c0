"""The specialist's sidecar records the stage 1 its hand-off was tuned against
(stage1_sha256); with another stage 1, predict.py, annotate.py and confusion.py warn in one
line and say how to retune; with the shipped pair, or a sidecar that does not say, nothing."""
import hashlib
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT, make_faces, write_csv
from ferkit.app import annotate
from ferkit.app import confusion
from ferkit.app import predict
from ferkit.app import cli
from ferkit.record import read_record, write_record
from ferkit.inference import stale_handoff

MODELS = ROOT / "models"
STAGE1, STAGE2 = MODELS / "cnn.h5", MODELS / "cnn_specific_0_2_4_6.h5"
OTHER_STAGE1 = MODELS / "dnn.h5"  # a 7-class model too, with its own .tflite


def test_the_shipped_specialist_records_the_shipped_stage1():
    recorded = read_record(STAGE2)["stage1_sha256"]
    assert recorded == hashlib.sha256(STAGE1.read_bytes()).hexdigest()
    assert stale_handoff(STAGE1, STAGE2) is None


def test_another_stage1_gets_one_line_naming_the_retune_command():
    warning = stale_handoff(OTHER_STAGE1, STAGE2)
    assert warning == (f"{STAGE2}: its hand-off threshold was tuned for another stage 1 than "
                       f"{OTHER_STAGE1} (SHA-256 differs from its sidecar's stage1_sha256)")
    # The command line adds the command that retunes it (the library names no script).
    assert cli.retune_command(OTHER_STAGE1, STAGE2) == (
        f"python3 cnn_train_mod.py --tune-only --stage1 {OTHER_STAGE1} --out {STAGE2}")
    assert stale_handoff(OTHER_STAGE1, STAGE2, handoff_below=0.4) is None  # not the tuned one


def test_a_sidecar_without_the_record_gives_no_warning(tmp_path):
    specialist = tmp_path / "specialist.h5"
    shutil.copy(STAGE2, specialist)
    write_record(specialist, read_record(STAGE2).replace(stage1_sha256=None))
    assert stale_handoff(OTHER_STAGE1, specialist) is None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    images, labels = make_faces(8)
    faces = write_csv(folder / "faces.csv", "label,feature", zip(labels, images))
    photo = folder / "grey.png"  # no face: annotate.py stops after its checks and the load
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    return faces, photo


@pytest.mark.parametrize("script, argv", [
    (predict, ["{faces}", "{tmp}/out.csv"]),
    (confusion, ["--data", "{faces}", "--out", "{tmp}"]),
    (annotate, ["{photo}", "--out", "{tmp}/annotated"]),
])
@pytest.mark.parametrize("stage1, warned", [(STAGE1, False), (OTHER_STAGE1, True)])
def test_scripts_warn_in_one_line_for_another_stage1(tmp_path, inputs, capsys, script, argv,
                                                     stage1, warned):
    faces, photo = inputs
    argv = [a.format(faces=faces, photo=photo, tmp=tmp_path) for a in argv]
    assert cli.run(script.main, argv + ["--stage1", str(stage1)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert lines == ([f"warning: {stale_handoff(stage1, STAGE2)}; retune it with: "
                      f"{cli.retune_command(stage1, STAGE2)}"] if warned else [])
