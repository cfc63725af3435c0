"""The Python API (ferkit.Recognizer, ferkit.load_faces, ferkit.check_faces): the installed
package, used from outside the checkout, labels faces as predict.py does and finds the
faces of a photo; arrays are checked where they enter; README's example runs."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import ferkit
from conftest import ROOT, fer2013_file, make_faces, open_text
from ferkit.arrays import check_faces
from ferkit.errors import ParameterError
from ferkit.inference import cascade_probs, hand_over
from ferkit.labels import EMOTIONS

PUBLIC_TEST = fer2013_file("test.csv.gz")
README = (ROOT / "README.md").read_text()


def installed_ferkit() -> str:
    """Where `python3 -I` (isolated: no checkout, no PYTHONPATH) finds ferkit."""
    done = subprocess.run([sys.executable, "-I", "-c", "import importlib.util; "
                           "print(importlib.util.find_spec('ferkit').origin)"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, f"ferkit is not installed: {done.stderr}"
    return done.stdout.strip()


# TensorFlow's start-up lines on stderr: absl's ("I0000 00:00:...", "E0000 ...") and the
# lines around them.
TENSORFLOW_LOG = re.compile(r"[IWE]\d{4} |WARNING: All log messages before absl|To enable the "
                            r"following instructions")


def test_the_installed_package_labels_faces_as_predict_py_and_finds_the_astronaut(tmp_path):
    if PUBLIC_TEST is None:
        pytest.skip("real FER2013's test.csv.gz not found")
    if installed_ferkit() != str(ROOT / "ferkit" / "__init__.py"):
        pytest.skip(f"the installed ferkit is {installed_ferkit()}, not this checkout's "
                    f"(python3 -m pip install -e .)")
    with open_text(PUBLIC_TEST) as f:
        lines = [next(f) for _ in range(11)]  # header + 10 faces
    faces = tmp_path / "faces.csv"
    faces.write_text("".join(lines))
    elsewhere = tmp_path / "elsewhere"  # outside the checkout: nothing found through cwd
    elsewhere.mkdir()
    code = (
        "import json, sys\n"
        "import skimage.data\n"
        "import ferkit\n"
        "recognizer = ferkit.Recognizer()\n"
        f"found = recognizer.predict(ferkit.load_faces({str(faces)!r}).images)\n"
        "print(json.dumps({'labels': found.labels.tolist(), 'names': found.names,\n"
        "    'sums': found.probabilities.sum(axis=1).tolist(), 'runtime': recognizer.runtime,\n"
        "    'detected': recognizer.detect(skimage.data.astronaut())}))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    # Nothing printed but what the code printed; detect finds a photo's faces with MTCNN, as
    # annotate.py does, and TensorFlow's native code logs its start-up on fd 2, which a
    # library must leave alone (ferkit.backend): only those lines.
    assert [line for line in done.stderr.splitlines()
            if not TENSORFLOW_LOG.match(line)] == [], done.stderr
    api = json.loads(done.stdout)
    out = tmp_path / "out.csv"
    script = subprocess.run([sys.executable, str(ROOT / "predict.py"), str(faces), str(out)],
                            capture_output=True, text=True, timeout=300, cwd=elsewhere)
    assert script.returncode == 0, script.stderr
    assert f"runtime: {'LiteRT' if api['runtime'] == 'litert' else 'Keras'}" in script.stdout
    rows = out.read_text().splitlines()[1:]
    assert api["labels"] == [int(row.split(",")[1]) for row in rows]
    assert api["names"] == [EMOTIONS[label] for label in api["labels"]]
    np.testing.assert_allclose(api["sums"], 1, atol=1e-5)
    [face] = api["detected"]  # one face in the astronaut photo
    assert set(face) == {"box", "emotions", "label", "handed_over"}
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert list(face["emotions"]) == list(EMOTIONS) and face["label"] in EMOTIONS
    assert face["emotions"][face["label"]] == max(face["emotions"].values())


@pytest.fixture(scope="module")
def recognizer():
    return ferkit.Recognizer()


def astronaut_face() -> np.ndarray:
    """The astronaut's face, 48x48 as detect frames it (stage 1: happy, surely)."""
    import skimage.data
    from ferkit.faces import FaceSettings, find_faces, load_detector
    from ferkit.recognizer import bgr_picture

    return find_faces(bgr_picture(skimage.data.astronaut()), load_detector(),
                      FaceSettings())[2]


def test_the_cascades_probabilities_go_with_its_labels():
    """Where the specialist decided, its share of stage 1's mass over its classes; the
    label is the most probable of those classes; elsewhere stage 1's softmax."""
    recognizer = ferkit.Recognizer(handoff_below=1.0)  # every face stage 1 puts in its classes
    faces = np.concatenate([make_faces(10, seed=3)[0], astronaut_face()])
    found = recognizer.predict(faces)
    stage1 = found.stage1_probabilities
    assert found.handed_over.any() and not found.handed_over.all()
    classes = recognizer.specialist_classes
    handed = found.handed_over
    np.testing.assert_array_equal(found.probabilities[~handed], stage1[~handed])
    np.testing.assert_allclose(found.probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(found.probabilities[handed][:, classes].sum(axis=1),
                               stage1[handed][:, classes].sum(axis=1), atol=1e-5)
    others = [c for c in range(7) if c not in classes]
    np.testing.assert_array_equal(found.probabilities[handed][:, others],
                                  stage1[handed][:, others])
    assert np.all(np.asarray(classes)[found.probabilities[handed][:, classes].argmax(axis=1)]
                  == found.labels[handed])
    assert not np.allclose(found.probabilities[handed], stage1[handed])


def test_cascade_probs_shares_stage1s_mass_as_the_specialist_says():
    stage1 = np.array([[0.3, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1],
                       [0.1, 0.0, 0.1, 0.6, 0.1, 0.0, 0.1]], dtype=np.float32)
    specialist = np.array([[0.1, 0.6, 0.2, 0.1]], dtype=np.float32)  # classes 0, 2, 4, 6
    handoff = np.array([True, False])
    probs = cascade_probs(stage1, specialist, [0, 2, 4, 6], handoff)
    np.testing.assert_allclose(probs[0], [0.07, 0.1, 0.42, 0.1, 0.14, 0.1, 0.07], atol=1e-6)
    np.testing.assert_array_equal(probs[1], stage1[1])
    assert hand_over(stage1, np.vstack([specialist, specialist]), [0, 2, 4, 6],
                     0.5).labels[0] == 2


def test_a_single_face_and_float_pixels_give_the_same_prediction(recognizer):
    faces, _ = make_faces(3, seed=4)
    as_uint8 = recognizer.predict(faces)
    as_float = recognizer.predict(faces.astype(np.float64))
    one = recognizer.predict(faces[1])
    np.testing.assert_array_equal(as_uint8.labels, as_float.labels)
    np.testing.assert_allclose(as_uint8.probabilities, as_float.probabilities, atol=1e-6)
    assert one.labels.tolist() == [as_uint8.labels[1]] and one.probabilities.shape == (1, 7)
    empty = recognizer.predict(np.zeros((0, 48, 48), np.uint8))
    assert empty.labels.shape == (0,) and empty.probabilities.shape == (0, 7)


GOOD = make_faces(2)[0]


@pytest.mark.parametrize("faces, expected", [
    (GOOD[:, :47], r"faces: expected shape \(48, 48\) \(one face\) or \(N, 48, 48\), "
                   r"found \(2, 47, 48\)"),
    (GOOD[..., None], r"expected shape .* found \(2, 48, 48, 1\)"),
    (GOOD[0, 0], r"expected shape .* found \(48,\)"),
    (GOOD.astype(str), r"faces: expected uint8 or float pixels 0-255, found an array of <U3"),
    (GOOD > 100, r"expected uint8 or float pixels 0-255, found an array of bool"),
    (np.where(GOOD == 255, np.nan, GOOD.astype(np.float32)),
     r"faces: expected finite pixels 0-255, found nan in face 0"),
    (np.where(GOOD == 255, np.inf, GOOD.astype(np.float32)), r"found inf in face 0"),
    (GOOD.astype(np.int16) - 1, r"faces: expected pixels 0-255, found values from -1 to 254"),
    (GOOD * 2.0, r"expected pixels 0-255, found values from 0.0 to 510.0"),
    (GOOD / 255.0, r"faces: expected pixels 0-255, found floats all within 0-1 \(max 1.0\): "
                   r"scaled pixels\? multiply them by 255"),
    (GOOD.astype(np.float32) / 510, r"found floats all within 0-1 \(max 0.5\)"),
])
def test_a_bad_array_of_faces_is_a_value_error_saying_what_was_expected(faces, expected):
    with pytest.raises(ParameterError, match=expected) as raised:
        check_faces(faces)
    assert isinstance(raised.value, ValueError) and raised.value.parameter == "faces"


def test_good_faces_pass_the_check_unchanged():
    for faces in (GOOD, GOOD.astype(np.float32), GOOD.astype(np.float64), GOOD.astype(int)):
        checked = check_faces(faces)
        assert checked.dtype == np.float32 and checked.shape == (2, 48, 48)
        np.testing.assert_array_equal(checked, GOOD)
    np.testing.assert_array_equal(check_faces(GOOD[0]), GOOD[:1])
    assert check_faces(np.zeros((48, 48))).shape == (1, 48, 48)  # black: 0 on either scale
    assert check_faces(np.zeros((0, 48, 48), np.float32)).shape == (0, 48, 48)


def test_predict_and_detect_check_their_input(recognizer):
    with pytest.raises(ParameterError, match="found floats all within 0-1"):
        recognizer.predict(GOOD / 255.0)
    with pytest.raises(ParameterError, match=r"image: expected a picture of shape .* found "
                                             r"\(10, 10, 2\)"):
        recognizer.detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ParameterError, match="image: expected a uint8 picture, found .*float"):
        recognizer.detect(np.zeros((10, 10, 3)))
    with pytest.raises(ParameterError, match="color: expected one of rgb, bgr, found 'RGB'"):
        recognizer.detect(np.zeros((10, 10, 3), np.uint8), color="RGB")
    with pytest.raises(ferkit.DataError, match="nowhere.png: picture not found"):
        recognizer.detect("nowhere.png")


def test_detect_reads_rgb_bgr_pil_and_paths_alike(recognizer, tmp_path):
    import cv2
    import skimage.data
    from PIL import Image

    rgb = skimage.data.astronaut()
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    found = recognizer.detect(rgb)
    assert len(found) == 1
    assert recognizer.detect(np.ascontiguousarray(rgb[:, :, ::-1]), color="bgr") == found
    assert recognizer.detect(Image.fromarray(rgb)) == found
    assert recognizer.detect(path) == recognizer.detect(str(path)) == found
    # Read as BGR, the red and blue channels swap: another grey picture (not the same
    # probabilities), which color="bgr" exists to avoid.
    assert recognizer.detect(np.ascontiguousarray(rgb[:, :, ::-1])) != found
    assert recognizer.detect(np.zeros((64, 64), np.uint8)) == []


def test_the_runtime_is_an_attribute_and_logged_never_printed(capsys, caplog):
    with caplog.at_level("INFO", logger="ferkit"):
        recognizer = ferkit.Recognizer(cascade=False, runtime="keras")
    assert recognizer.runtime == "keras" and recognizer.runtime_reason == "{runtime} keras"
    assert capsys.readouterr() == ("", "")
    assert caplog.messages == ["runtime: Keras (runtime keras)"]  # the parameter, not a flag
    assert recognizer.specialist_classes == [] and recognizer.stage2 is None
    with pytest.raises(ParameterError, match="stage2: expected no specialist with "
                                             "cascade=False"):
        ferkit.Recognizer(stage2=ferkit.MODELS / "cnn_specific_0_2_4_6.h5", cascade=False)
    with pytest.raises(ParameterError, match="runtime: expected one of auto, litert, "
                                             "litert-int8, keras, found 'tpu'"):
        ferkit.Recognizer(runtime="tpu")


def test_import_ferkit_is_light_and_exports_the_api_lazily():
    code = ("import sys, ferkit\n"
            "light = not any(m in sys.modules for m in ('tensorflow', 'pandas', 'cv2'))\n"
            "names = [n for n in ferkit.__all__ if n not in ('train', 'Stage1Recipe', "
            "'SpecialistRecipe', 'DnnRecipe')]\n"
            "[getattr(ferkit, n) for n in names]\n"
            "print(light, 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]  # the API without TensorFlow
    assert {"Recognizer", "Prediction", "load_faces", "check_faces", "train", "Stage1Recipe",
            "SpecialistRecipe", "DnnRecipe"} <= set(ferkit.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Recogniser'"):
        ferkit.Recogniser


def readme_python_example() -> str:
    """The code block of README's "From Python" section."""
    section = README.split("## From Python", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readmes_python_example_runs(capsys):
    exec(compile(readme_python_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\(\d+, \d+, \d+, \d+\) Happy 0\.\d\d", printed[0])  # a FaceResult
    assert len(printed) == 2 and printed[1].endswith("[False False]")
