"""Pin the shipped models' behaviour: their labels and probabilities on a few faces made here.

Usage:
    python3 bench/pin_shipped_models.py            # after retraining a shipped model on purpose
    python3 bench/pin_shipped_models.py --check    # compare only; exit 1 where they differ

The faces are made by code, never read from FER2013: the astronaut's face from scikit-image's
astronaut.png and its mirror image, cartoon faces drawn with OpenCV, seeded noise, a flat
grey and a gradient. For stage 1 (models/cnn.h5), the specialist
(models/cnn_specific_0_2_4_6.h5) and the DNN (models/dnn.h5), without and with flip TTA,
the Keras model's raw and calibrated probabilities (the temperatures in its sidecar) and
labels, and the cascade's labels, hand-offs (the thresholds tuned into the specialist's
sidecar) and calibrated probabilities, are written to
tests/fixtures/shipped_models.json, which tests/test_shipped_models.py checks on Keras and
on LiteRT to 1e-4. A change of a model's behaviour then fails the tests until the fixture
is made again with this command.
"""
import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ferkit import MODELS
from ferkit.app import cli

ROOT = Path(__file__).resolve().parent.parent  # the checkout this tool pins the tests of

FIXTURE = ROOT / "tests" / "fixtures" / "shipped_models.json"
COMMAND = "python3 bench/pin_shipped_models.py"
STAGE1, SPECIALIST, DNN = "cnn.h5", "cnn_specific_0_2_4_6.h5", "dnn.h5"
TOLERANCE = 1e-4  # on every probability: the two runtimes' agreement (README)
# The astronaut's face in astronaut.png as a square (x, y, side): eyebrows to chin with
# some forehead, about as FER2013 frames a face. Fixed here, not taken from the detector,
# so that the faces stay the same whatever annotate.py's framing becomes.
ASTRONAUT_SQUARE = (177, 70, 100)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help=f"compare the models with {FIXTURE.relative_to(ROOT)} instead of "
                             f"writing it; exit 1 where they differ")
    parser.add_argument("--runtime", choices=("keras", "litert"), default="keras",
                        help="runtime to run the models on (the fixture is made on Keras)")
    return parser.parse_args(argv)


def drawn_face(mouth: str) -> np.ndarray:
    """A cartoon face, 48x48 grey: a bright oval, two dark eyes and brows, and a mouth that
    smiles, frowns, opens or lies flat."""
    face = np.full((48, 48), 90, np.uint8)
    cv2.ellipse(face, (24, 25), (17, 21), 0, 0, 360, 200, cv2.FILLED)
    for x in (17, 31):
        cv2.circle(face, (x, 20), 3, 30, cv2.FILLED)
        brow_tilt = {"frown": 3, "open": -3}.get(mouth, 0) * (1 if x < 24 else -1)
        cv2.line(face, (x - 4, 14 - brow_tilt), (x + 4, 14 + brow_tilt), 40, 2)
    if mouth == "smile":
        cv2.ellipse(face, (24, 31), (8, 5), 0, 0, 180, 40, 2)
    elif mouth == "frown":
        cv2.ellipse(face, (24, 37), (8, 5), 0, 180, 360, 40, 2)
    elif mouth == "open":
        cv2.ellipse(face, (24, 35), (5, 6), 0, 0, 360, 30, cv2.FILLED)
    else:
        cv2.line(face, (17, 34), (31, 34), 40, 2)
    return face


def pinned_faces() -> tuple[list[str], np.ndarray]:
    """(names, uint8 (N, 48, 48)): the faces the models are pinned on, made the same way
    on every machine."""
    from ferkit.composites import astronaut_path

    grey = cv2.cvtColor(cv2.imread(str(astronaut_path()), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2GRAY)
    x, y, side = ASTRONAUT_SQUARE
    astronaut = cv2.resize(grey[y:y + side, x:x + side], (48, 48),
                           interpolation=cv2.INTER_AREA)
    faces = {"astronaut": astronaut, "astronaut mirrored": astronaut[:, ::-1]}
    for mouth in ("smile", "frown", "open", "flat"):
        faces[f"drawn, mouth {mouth}"] = drawn_face(mouth)
    noise = np.random.default_rng(0).integers(0, 256, (2, 48, 48))
    faces["noise 1"], faces["noise 2"] = noise
    faces["flat grey"] = np.full((48, 48), 128)
    faces["gradient"] = np.tile(np.linspace(0, 255, 48), (48, 1))
    return list(faces), np.stack(list(faces.values())).astype(np.uint8)


def behaviour(runtime: str = "keras", models=MODELS) -> dict:
    """The models' answers on pinned_faces(): for each model its classes and, without and
    with TTA, its raw and its calibrated probabilities (its sidecar's calibration) and
    labels; the cascade's labels, hand-offs, thresholds and calibrated probabilities (the
    specialist's cascade_calibration)."""
    from ferkit.inference import (Cascade, cascade_calibration, handoff_threshold,
                                  load_predictor, model_calibration, predict_probs)
    from ferkit.record import read_record
    from ferkit.litert import file_sha256

    names, faces = pinned_faces()
    loaded = {name: load_predictor(models / name, runtime)[0]
              for name in (STAGE1, SPECIALIST, DNN)}
    found = {"command": COMMAND, "faces": names, "models": {}, "cascade": {}}
    for name, model in loaded.items():
        sidecar = read_record(models / name)
        classes = sidecar["classes"]
        entry = found["models"][name] = {"classes": classes,
                                         "sha256": file_sha256(models / name)}
        for tta, key in ((False, ""), (True, "_tta")):
            probs = predict_probs(model, faces, tta=tta)
            calibrated = model_calibration(sidecar, tta).apply(probs)
            entry["probs" + key] = np.round(probs.astype(float), 6).tolist()
            entry["calibrated" + key] = np.round(calibrated.astype(float), 6).tolist()
            entry["labels" + key] = np.asarray(classes)[probs.argmax(axis=1)].tolist()
    specialist = read_record(models / SPECIALIST)
    for tta, key in ((False, ""), (True, "_tta")):
        threshold = handoff_threshold(None, specialist, tta)
        found_now = Cascade(loaded[STAGE1], loaded[SPECIALIST], specialist["classes"],
                            threshold, tta, runtime,
                            stage1_calibration=model_calibration(read_record(models / STAGE1),
                                                                 tta),
                            cascade_calibration=cascade_calibration(
                                specialist, models / STAGE1, tta)).predict(faces)
        found["cascade"].update({
            "handoff_below" + key: threshold, "labels" + key: found_now.labels.tolist(),
            "handoff" + key: found_now.handed_over.tolist(),
            "calibrated" + key: np.round(found_now.probabilities.astype(float), 6).tolist()})
    return found


def differences(expected: dict, found: dict, tolerance: float = TOLERANCE) -> list[str]:
    """One line per way ``found`` differs from ``expected``: a label, a hand-off, a
    threshold, or a probability further than ``tolerance`` (the largest, per model); a
    model file whose SHA-256 differs is named only when its answers differ too."""
    lines = []
    if expected["faces"] != found["faces"]:
        return [f"faces: expected {expected['faces']}, found {found['faces']}"]
    for name, want in expected["models"].items():
        got = found["models"].get(name)
        if got is None or got["classes"] != want["classes"]:
            lines.append(f"{name}: expected classes {want['classes']}, found "
                         f"{None if got is None else got['classes']}")
            continue
        before = len(lines)
        for key in ("", "_tta"):
            tta = " with TTA" if key else ""
            for kind, what in (("probs", "probabilities"),
                               ("calibrated", "calibrated probabilities")):
                lines += _gap(f"{name}{tta}: {what}", got[kind + key], want[kind + key],
                              expected["faces"], tolerance)
            if got["labels" + key] != want["labels" + key]:
                lines.append(f"{name}{tta}: expected labels {want['labels' + key]}, found "
                             f"{got['labels' + key]}")
        if len(lines) > before and got["sha256"] != want["sha256"]:
            lines.append(f"{name}: not the file pinned (SHA-256 differs): retrained?")
    for key, want in expected["cascade"].items():
        got = found["cascade"].get(key)
        if key.startswith("calibrated"):
            lines += _gap(f"cascade {key}: probabilities", got, want, expected["faces"],
                          tolerance)
        elif got != want:
            lines.append(f"cascade {key}: expected {want}, found {got}")
    return lines


def _gap(what: str, got, want, faces, tolerance: float) -> list[str]:
    """One line when two lists of probability rows differ by more than ``tolerance``."""
    gap = np.abs(np.subtract(got, want))
    if gap.max() <= tolerance:
        return []
    face = int(gap.max(axis=1).argmax())
    return [f"{what} differ by up to {gap.max():.2e} (face {face}, {faces[face]!r})"]


def main(argv=None):
    args = parse_args(argv)
    found = behaviour(args.runtime)
    if args.check:
        problems = differences(json.loads(FIXTURE.read_text()), found)
        for line in problems:
            print(line)
        print(f"{len(found['faces'])} faces, {len(found['models'])} models on "
              f"{args.runtime}: " + ("as pinned" if not problems else
                                     f"DIFFERENT from {FIXTURE.relative_to(ROOT)}"))
        return 1 if problems else 0
    from ferkit.files import write_atomically

    text = json.dumps(found, indent=1) + "\n"
    write_atomically(FIXTURE, lambda tmp: open(tmp, "w").write(text))
    print(f"wrote {FIXTURE.relative_to(ROOT)}: {len(found['faces'])} faces, "
          f"{len(found['models'])} models and the cascade")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
