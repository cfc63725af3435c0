"""The cascade rule, a pure function of two probability arrays and the class subset."""
import numpy as np
import pytest

from ferkit.inference import (HANDOFF_GRID, Cascade, handoff_mask, handoff_threshold,
                              hand_over, best_handoff)
from ferkit.litert import LiteRTModel
from ferkit.labels import parse_specific, specific_name


def one_hot_probs(labels, k, confidence=0.9):
    probs = np.full((len(labels), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def cascade_labels(stage1_probs, stage2_probs, classes, handoff_below=1.0):
    return hand_over(stage1_probs, stage2_probs, classes, handoff_below).labels


class RowModel(LiteRTModel):
    """A stand-in model (predict_probs runs it as it runs a LiteRT copy): face i is the
    48x48 picture of grey level i; ``answer(rows)`` gives its probabilities."""

    def __init__(self, answer, k):
        self.answer, self.output_shape = answer, (None, k)

    def __call__(self, x):
        return np.asarray(self.answer(x[:, 0, 0, 0].astype(int)), np.float32)


def test_specialist_decides_only_where_stage1_says_one_of_its_classes():
    classes = [0, 2, 4, 6]
    stage1 = one_hot_probs([0, 3, 4, 5, 6, 1], 7)
    stage2 = one_hot_probs([1, 0, 3, 2, 0, 3], 4)  # its picks: 2, 0, 6, 4, 0, 6
    labels = cascade_labels(stage1, stage2, classes)
    # Rows 1, 3 and 5 (Happy, Surprise, Disgust) are not the specialist's: stage 1 stands.
    assert labels.tolist() == [2, 3, 6, 5, 0, 1]


def test_handoff_threshold_keeps_confident_stage1_answers():
    classes = [0, 2, 4, 6]
    stage1 = np.vstack([one_hot_probs([4], 7, 0.95), one_hot_probs([4], 7, 0.5)])
    stage2 = one_hot_probs([0, 0], 4)
    assert cascade_labels(stage1, stage2, classes, handoff_below=0.8).tolist() == [4, 0]
    assert handoff_mask(stage1, classes, 0.8).tolist() == [False, True]
    assert cascade_labels(stage1, stage2, classes).tolist() == [0, 0]


def test_rows_not_handed_off_are_never_read():
    stage1 = one_hot_probs([3, 0], 7)
    stage2 = np.array([[np.nan] * 2, [0.2, 0.8]])
    assert cascade_labels(stage1, stage2, [0, 2]).tolist() == [3, 2]


def test_the_cascade_shows_the_specialist_only_the_faces_handed_to_it():
    classes = [0, 2, 4, 6]
    stage1 = np.vstack([one_hot_probs([4], 7, 0.95), one_hot_probs([4, 3, 0], 7, 0.5)])
    images = np.repeat(np.arange(4), 48 * 48).reshape(4, 48, 48)  # face i: grey level i
    shown = []

    def specialist(rows):  # picks Neutral (its output 3) for every face shown
        shown.append(rows.tolist())
        return one_hot_probs([3] * len(rows), 4)

    cascade = Cascade(RowModel(lambda rows: stage1[rows], 7), RowModel(specialist, 4), classes,
                      0.8)
    said = cascade.predict(images)
    assert shown == [[1, 3]]  # row 0 is too confident, row 2 is Happy
    assert said.handed_over.tolist() == [False, True, False, True]
    assert said.labels.tolist() == [4, 6, 3, 6]
    assert said.labels.tolist() == cascade_labels(stage1, one_hot_probs([3] * 4, 4), classes,
                                                  0.8).tolist()
    forced = np.array([True, False, False, False])
    said = cascade.predict(images, forced)
    assert shown[-1] == [0] and said.labels.tolist() == [6, 4, 3, 0]


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match=r"stage2_probs: expected shape \(2, 4\), found \(2, 3\)"):
        cascade_labels(one_hot_probs([0, 1], 7), one_hot_probs([0, 1], 3), [0, 2, 4, 6])


@pytest.mark.parametrize("spec,classes", [("0_2_4_6", [0, 2, 4, 6]), ("6_1", [6, 1])])
def test_specific_parses_in_order(spec, classes):
    assert parse_specific(spec) == classes
    assert specific_name(classes) == spec


@pytest.mark.parametrize("spec,message", [
    ("0_2_7", "expected class digits 0-6"), ("0,2", "expected class digits 0-6"),
    ("", "expected class digits 0-6"), ("0__2", "expected class digits 0-6"),
    ("02_4", "expected class digits 0-6"), ("2_2_4", "found a repeat"),
    ("3", "expected at least two classes"),
])
def test_bad_specific_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_specific(spec)


def test_tuning_picks_the_threshold_that_keeps_confident_stage1_answers():
    classes = [0, 2, 4, 6]
    # Stage 1 says Sad for all four: right when sure (0.9), wrong when unsure (0.5), where
    # the specialist (always Neutral) is right. Only thresholds in [0.5, 0.9) get all four.
    stage1 = np.vstack([one_hot_probs([4, 4], 7, 0.9), one_hot_probs([4, 4], 7, 0.5)])
    stage2 = one_hot_probs([3, 3, 3, 3], 4)
    truth = [4, 4, 6, 6]
    threshold, accuracy = best_handoff(stage1, stage2, classes, truth)
    assert threshold == 0.5  # the lowest of the best: fewest faces handed over
    assert accuracy[0.0] == 0.5 and accuracy[1.0] == 0.5 and accuracy[0.85] == 1.0
    assert list(accuracy) == sorted(HANDOFF_GRID)


def test_tuning_never_hands_over_when_the_specialist_only_hurts():
    stage1 = one_hot_probs([4, 0], 7, 0.6)
    stage2 = one_hot_probs([1, 1], 4)  # says Fear, wrong for both
    assert best_handoff(stage1, stage2, [0, 2, 4, 6], [4, 0]) == (
        0.0, {t: (1.0 if t < 0.6 else 0.0) for t in sorted(HANDOFF_GRID)})


def test_handoff_threshold_option_overrides_the_sidecar_which_overrides_always():
    assert handoff_threshold(None, {}) == 1.0
    assert handoff_threshold(None, {"handoff_below": 0.55}) == 0.55
    assert handoff_threshold(0.7, {"handoff_below": 0.55}) == 0.7
    with pytest.raises(ValueError, match="handoff_below: expected a confidence between 0 "
                                         "and 1, found 1.5"):
        handoff_threshold(1.5, {})


def test_tta_uses_the_threshold_tuned_with_tta_and_falls_back_to_the_plain_one():
    tuned = {"handoff_below": 0.55, "handoff_below_tta": 0.0}
    assert handoff_threshold(None, tuned, tta=True) == 0.0  # 0 is a threshold, not "unset"
    assert handoff_threshold(None, tuned, tta=False) == 0.55
    assert handoff_threshold(0.7, tuned, tta=True) == 0.7
    assert handoff_threshold(None, {"handoff_below": 0.55}, tta=True) == 0.55
    assert handoff_threshold(None, {}, tta=True) == 1.0
