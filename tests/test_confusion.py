"""Confusion counts and metrics against scikit-learn, and what the cascade does to them."""
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from ferkit.evaluation import class_metrics, confusion_counts, most_confused, row_shares
from ferkit.inference import hand_over


def random_labels(n, classes, seed):
    rng = np.random.default_rng(seed)
    return rng.choice(classes, n), rng.choice(classes, n)


@pytest.mark.parametrize("classes", [list(range(7)), [0, 2, 4, 6], [6, 2]])
def test_counts_equal_scikit_learns(classes):
    truth, predicted = random_labels(500, classes, seed=len(classes))
    counts = confusion_counts(truth, predicted, classes)
    np.testing.assert_array_equal(counts, confusion_matrix(truth, predicted, labels=classes))
    assert counts.dtype.kind == "i" and counts.sum() == 500


def test_metrics_equal_scikit_learns_including_a_class_never_predicted():
    classes = list(range(7))
    truth, predicted = random_labels(300, classes, seed=1)
    predicted[predicted == 1] = 3          # Disgust is never predicted: precision 0, not NaN
    metrics = class_metrics(truth, predicted, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0)
    np.testing.assert_allclose(metrics["precision"], precision)
    np.testing.assert_allclose(metrics["recall"], recall)
    np.testing.assert_allclose(metrics["f1"], f1)
    np.testing.assert_array_equal(metrics["support"], support)
    assert metrics["accuracy"] == pytest.approx(np.mean(truth == predicted))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(truth, predicted, labels=classes, average="macro", zero_division=0))
    assert metrics["precision"][1] == 0


def test_cascade_matrix_differs_from_stage1_exactly_where_the_specialist_changed_a_label():
    rng = np.random.default_rng(7)
    n, special = 400, [0, 2, 4, 6]
    truth = rng.integers(0, 7, n)
    stage1_probs = rng.dirichlet(np.ones(7), n)
    stage2_probs = rng.dirichlet(np.ones(4), n)
    stage1 = stage1_probs.argmax(axis=1)
    cascade = hand_over(stage1_probs, stage2_probs, special).labels
    changed = np.flatnonzero(cascade != stage1)
    assert 50 < len(changed) < n

    difference = (confusion_counts(truth, cascade, range(7))
                  - confusion_counts(truth, stage1, range(7)))
    expected = np.zeros((7, 7), dtype=np.int64)
    np.add.at(expected, (truth[changed], cascade[changed]), 1)
    np.add.at(expected, (truth[changed], stage1[changed]), -1)
    np.testing.assert_array_equal(difference, expected)
    # Columns of classes the specialist does not cover cannot gain anything, and their
    # cells only lose what was handed to the specialist.
    others = [1, 3, 5]
    assert (difference[:, others] == 0).all()
    touched = np.zeros((7, 7), dtype=bool)
    touched[truth[changed], cascade[changed]] = touched[truth[changed], stage1[changed]] = True
    assert (difference[~touched] == 0).all()


def test_rows_are_shares_of_the_true_class():
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    shares = row_shares(counts)
    np.testing.assert_allclose(shares, [[0.75, 0.25, 0], [0, 0, 0], [0.25, 0.25, 0.5]])


def test_most_confused_pairs_by_share_of_the_true_class_then_count():
    counts = np.array([[10, 5, 0, 0],      # 0 -> 1: 1/3 of class 0
                       [1, 20, 1, 0],      # 1 -> 0 and 1 -> 2: 1/22 each
                       [0, 6, 6, 0],       # 2 -> 1: half of class 2
                       [0, 0, 10, 30]])    # 3 -> 2: a quarter of class 3
    pairs = most_confused(counts, top=3)
    assert [(t, p, c) for t, p, c, _ in pairs] == [(2, 1, 6), (0, 1, 5), (3, 2, 10)]
    assert pairs[0][3] == pytest.approx(0.5)
    assert len(most_confused(counts, top=5)) == 5
    assert most_confused(np.diag([3, 4])) == []


def test_labels_outside_the_classes_are_a_value_error():
    with pytest.raises(ValueError, match=r"outside the classes \[0, 2\]"):
        confusion_counts([0, 1], [0, 2], [0, 2])
