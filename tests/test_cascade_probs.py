"""The probabilities that go with the cascade's labels (faces.csv's p_* columns): stage 1's,
except where the specialist decided, where stage 1's share of the specialist's classes is
split as the specialist says."""
import numpy as np

from ferkit.inference import cascade_probs

CLASSES = [0, 2, 4, 6]


def test_handed_faces_get_stage1s_share_split_by_the_specialist():
    stage1 = np.array([[0.30, 0.05, 0.15, 0.25, 0.10, 0.05, 0.10],   # handed over
                       [0.10, 0.00, 0.00, 0.80, 0.00, 0.00, 0.10]])  # kept
    specialist = np.array([[0.1, 0.2, 0.3, 0.4]])
    probs = cascade_probs(stage1, specialist, CLASSES, np.array([True, False]))
    np.testing.assert_allclose(probs[0, CLASSES], 0.65 * specialist[0], rtol=1e-6)
    np.testing.assert_allclose(probs[0, [1, 3, 5]], stage1[0, [1, 3, 5]])
    np.testing.assert_allclose(probs[1], stage1[1])
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    assert probs[0, CLASSES].argmax() == specialist[0].argmax()  # the specialist's choice


def test_no_face_handed_over_leaves_stage1s_probabilities():
    stage1 = np.full((3, 7), 1 / 7, np.float32)
    probs = cascade_probs(stage1, np.zeros((0, 4)), CLASSES, np.zeros(3, bool))
    np.testing.assert_array_equal(probs, stage1)
