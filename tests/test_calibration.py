"""ferkit.calibration: temperature scaling recovers a known temperature, keeps every label and
gives rows that sum to 1; the reliability bins, ECE, NLL and Brier equal a hand computation;
the richer method is kept only where it wins beyond noise; the cascade applies the fitted
calibrations after the models and gives the same labels either way."""
import numpy as np
import pytest

from ferkit import calibration
from ferkit.calibration import Calibration, choose_calibration, fit_temperature, reliability
from ferkit.inference import Cascade


def known_temperature_faces(temperature, n=20000, k=7, seed=0):
    """(model's softmax (n, k), truth (n,)): logits z; each truth drawn from softmax(z / T),
    so the model's softmax(z) is off by exactly the temperature T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, k))
    truth_probs = calibration.softmax(z / temperature)
    truth = (truth_probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return calibration.softmax(z), truth


@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.7])
def test_fit_recovers_a_known_temperature(temperature):
    probs, truth = known_temperature_faces(temperature)
    assert fit_temperature(probs, truth) == pytest.approx(temperature, rel=0.04)


def test_calibrated_rows_sum_to_one_and_keep_every_label():
    probs, truth = known_temperature_faces(1.7, n=500)
    for fitted in (Calibration(1.7), Calibration(0.4),
                   Calibration(1.0, "class_temperatures", (0.3, 0.5, 1, 2, 3, 4, 9))):
        calibrated = fitted.apply(probs)
        np.testing.assert_allclose(calibrated.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_array_equal(calibrated.argmax(axis=1), probs.argmax(axis=1))
        assert calibrated.dtype == np.float32
    assert np.abs(Calibration(1.7).apply(probs) - probs).max() > 0.05  # it does change them


def test_reliability_bins_equal_a_hand_computation():
    probs = np.array([[0.95, 0.05],   # conf 0.95, right  -> last bin (14: [14/15, 1])
                      [0.10, 0.90],   # conf 0.90, wrong  -> bin 13 ([13/15, 14/15))
                      [0.60, 0.40],   # conf 0.60, right  -> bin 9  ([9/15, 10/15))
                      [0.40, 0.60],   # conf 0.60, right  -> bin 9
                      [0.52, 0.48]])  # conf 0.52, wrong  -> bin 7  ([7/15, 8/15))
    truth = np.array([0, 0, 0, 1, 1])
    bins = reliability(probs, truth)
    expected_counts = np.zeros(15, int)
    expected_counts[[14, 13, 9, 7]] = [1, 1, 2, 1]
    np.testing.assert_array_equal(bins.counts, expected_counts)
    np.testing.assert_allclose(bins.confidence[[14, 13, 9, 7]], [0.95, 0.90, 0.60, 0.52])
    np.testing.assert_allclose(bins.accuracy[[14, 13, 9, 7]], [1, 0, 1, 0])
    np.testing.assert_allclose(bins.share.sum(), 1)
    hand_ece = (0.05 + 0.90 + 2 * 0.40 + 0.52) / 5
    assert bins.ece == pytest.approx(hand_ece)
    assert calibration.ece(probs, truth) == pytest.approx(hand_ece)
    right_probs = [0.95, 0.10, 0.60, 0.60, 0.48]
    assert calibration.nll(probs, truth) == pytest.approx(-np.mean(np.log(right_probs)))
    hand_brier = np.mean([2 * (1 - p) ** 2 for p in right_probs])  # two classes
    assert calibration.brier(probs, truth) == pytest.approx(hand_brier)


def test_the_richer_method_is_kept_only_when_it_wins_beyond_noise():
    probs, truth = known_temperature_faces(1.5, n=6000)
    kept, record = choose_calibration(probs, truth)
    assert kept.method == "temperature" and not record["class_temperatures_tried"]["kept"]
    assert record["after"]["nll"] < record["before"]["nll"]
    # Faces whose top class is 0 are off by T = 4, the others by T = 0.7: one temperature
    # cannot fit both.
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (6000, 7))
    temperature = np.where(z.argmax(axis=1) == 0, 4.0, 0.7)[:, None]
    truth = (calibration.softmax(z / temperature).cumsum(axis=1)
             > rng.random((6000, 1))).argmax(axis=1)
    kept, record = choose_calibration(calibration.softmax(z), truth)
    assert kept.method == "class_temperatures" and record["class_temperatures_tried"]["kept"]
    assert kept.class_temperatures[0] == pytest.approx(4.0, rel=0.15)


def test_a_calibration_round_trips_and_a_bad_one_is_refused():
    fitted = Calibration(1.2, "class_temperatures", (1.0, 2.0))
    assert Calibration.from_dict(fitted.to_dict()) == fitted
    for bad in ({"temperature": -1}, {"method": "isotonic", "temperature": 1}, {}, None):
        with pytest.raises(ValueError):
            Calibration.from_dict(bad)
    with pytest.raises(ValueError, match="truth"):
        calibration.ece(np.full((2, 3), 1 / 3), np.array([0, 3]))


@pytest.fixture(scope="module")
def tiny_models():
    """A 7-class and a 4-class Keras model, a dense layer on the pixels, seeded."""
    import keras

    def tiny(classes, seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Flatten(),
                                 keras.layers.Dense(classes, activation="softmax")])
    return tiny(7, 0), tiny(4, 1)


def test_the_cascade_calibrates_after_the_models_and_keeps_its_labels(tiny_models):
    from conftest import make_faces
    from ferkit.inference import cascade_probs, predict_probs

    faces = make_faces(64)[0]
    stage1, specialist = tiny_models
    raw = Cascade(stage1, specialist, [0, 2, 4, 6], 0.5).predict(faces)
    handed = raw.handed_over
    assert handed.any() and not handed.all()
    on_stage1 = Calibration(1.0, "class_temperatures", (0.3, 0.5, 1, 2, 3, 4, 9))
    on_handed = Calibration(0.4)
    found = Cascade(stage1, specialist, [0, 2, 4, 6], 0.5, stage1_calibration=on_stage1,
                    cascade_calibration=on_handed).predict(faces)
    np.testing.assert_array_equal(found.labels, raw.labels)
    np.testing.assert_array_equal(found.handed_over, handed)
    np.testing.assert_allclose(found.stage1_probabilities,
                               on_stage1.apply(raw.stage1_probabilities), atol=1e-6)
    # Stage 1's calibrated probabilities where it decided; where the specialist did, its
    # calibrated share of stage 1's calibrated mass over its classes.
    np.testing.assert_allclose(found.probabilities[~handed],
                               found.stage1_probabilities[~handed], atol=1e-6)
    expected = cascade_probs(found.stage1_probabilities,
                             on_handed.apply(predict_probs(specialist, faces[handed])),
                             [0, 2, 4, 6], handed)
    np.testing.assert_allclose(found.probabilities, expected, atol=1e-6)
    assert np.abs(found.probabilities[handed] - raw.probabilities[handed]).max() > 1e-3
    np.testing.assert_allclose(found.probabilities.sum(axis=1), 1, atol=1e-5)
    alone = Cascade(stage1, stage1_calibration=on_stage1).predict(faces)
    np.testing.assert_allclose(alone.probabilities, found.stage1_probabilities, atol=1e-6)


def shipped_copy(folder, *names, drop=()):
    """Copies of shipped models (.h5, .tflite, sidecar) in ``folder``, the sidecar keys
    ``drop`` removed (a model made before calibration); the paths of the .h5 files."""
    import json
    import shutil

    from ferkit import MODELS

    copies = []
    for name in names:
        for suffix in (".h5", ".tflite"):
            shutil.copy(MODELS / (name + suffix), folder / (name + suffix))
        sidecar = json.loads((MODELS / (name + ".json")).read_text())
        for key in drop:
            sidecar.pop(key, None)
        (folder / (name + ".json")).write_text(json.dumps(sidecar))
        copies.append(folder / (name + ".h5"))
    return copies


def test_an_old_sidecar_runs_uncalibrated_with_one_line_saying_which(tmp_path, caplog):
    import logging

    from conftest import make_faces
    from ferkit.inference import predict_probs

    stage1, specialist = shipped_copy(tmp_path, "cnn", "cnn_specific_0_2_4_6",
                                      drop=("calibration", "cascade_calibration"))
    faces = make_faces(16)[0]
    with caplog.at_level(logging.WARNING, logger="ferkit.inference"):
        alone = Cascade.load(stage1, runtime="litert")
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "\n" not in line and line == alone.calibration_notice
    assert f"{stage1} (no calibration in its sidecar)" in line
    assert line.endswith("the raw softmax is given")  # the command: cli.announce_cascade
    np.testing.assert_allclose(alone.predict(faces).probabilities,
                               predict_probs(alone.stage1, faces), atol=1e-6)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ferkit.inference"):
        both = Cascade.load(stage1, specialist, runtime="litert")
    assert len(caplog.records) == 1 and "the cascade with" in both.calibration_notice
    assert both.calibration_notice.endswith("stage 1 in its sidecar): the raw softmax is given")


def test_the_command_line_names_the_command_that_calibrates(tmp_path, capsys):
    from conftest import make_faces, write_csv
    from ferkit.app import cli, predict

    stage1, specialist = shipped_copy(tmp_path, "cnn", "cnn_specific_0_2_4_6",
                                      drop=("calibration", "cascade_calibration"))
    faces = write_csv(tmp_path / "faces.csv", "id,feature", enumerate(make_faces(4)[0]))
    assert cli.run(predict.main, [str(faces), str(tmp_path / "out.csv"), "--stage1",
                                  str(stage1), "--stage2", str(specialist),
                                  "--runtime", "litert"]) == 0
    assert (f"calibrate with: python3 calibrate.py --stage1 {stage1} --stage2 {specialist}\n"
            in capsys.readouterr().err)


@pytest.mark.slow  # loads the shipped models on Keras
def test_a_cascade_calibration_fitted_with_another_stage1_is_not_used(tmp_path):
    stage1, specialist = shipped_copy(tmp_path, "cnn", "cnn_specific_0_2_4_6")
    assert Cascade.load(stage1, specialist, runtime="litert").calibration_notice is None
    with open(stage1, "ab") as weights:  # another stage 1: its SHA-256 differs
        weights.write(b"\0")
    found = Cascade.load(stage1, specialist, runtime="keras")
    assert found.cascade_calibration is None and found.stage1_calibration is not None
    assert "no cascade_calibration for this stage 1" in found.calibration_notice


def test_the_recognizer_is_calibrated_by_default_and_raw_on_request():
    from conftest import make_faces
    from ferkit import Recognizer

    faces = make_faces(16)[0]
    calibrated, raw = Recognizer(runtime="litert"), Recognizer(runtime="litert",
                                                               calibrated=False)
    assert calibrated.calibrated and not raw.calibrated and raw.calibration_notice is None
    said, said_raw = calibrated.predict(faces), raw.predict(faces)
    np.testing.assert_array_equal(said.labels, said_raw.labels)
    assert np.abs(said.probabilities - said_raw.probabilities).max() > 1e-3
    np.testing.assert_allclose(said.probabilities.sum(axis=1), 1, atol=1e-5)
