"""The annotated picture never hides the face it describes: the bar chart goes beside the
box, smaller where needed, or (a photo) into a strip the picture is widened by; no chart
pixel lands inside a face's box, on small and large pictures. No model is needed: the
faces and their probabilities are given."""
import cv2
import numpy as np
import pytest

from ferkit.app.annotation import Found, draw_found
from ferkit.inference import FaceResult
from ferkit.composites import astronaut_path


def found_at(boxes):
    """A Found of faces at ``boxes`` (x, y, w, h), each labelled Happy at 86%."""
    probs = (0.02, 0.02, 0.02, 0.86, 0.02, 0.04, 0.02)
    return Found(tuple(FaceResult(tuple(box), 1, 3, probs, probs, False) for box in boxes),
                 np.zeros((len(boxes), 48, 48), np.uint8))


def picture(width, height):
    """scikit-image's astronaut resized to width x height."""
    return cv2.resize(cv2.imread(str(astronaut_path())), (width, height))


def inside(box, image, margin):
    """The box's inside below its top quarter (where the label may be drawn when the box
    touches the picture's top) and within its outline."""
    x, y, w, h = box
    return image[y + h // 4:y + h - margin, x + margin:x + w - margin]


@pytest.mark.parametrize("size, boxes, widen", [
    ((380, 384), [(90, 90, 200, 200)], True),     # a 200-pixel face in a small photo
    ((380, 384), [(90, 90, 200, 200)], False),    # the same as a video frame
    ((380, 384), [(160, 100, 200, 200)], True),   # near the right edge
    ((160, 160), [(20, 20, 120, 120)], True),     # a face filling a tiny photo
    ((1600, 1200), [(500, 200, 420, 420), (1100, 300, 300, 300)], True),  # large, two faces
    ((640, 480), [(200, 120, 200, 200)], False),  # a webcam frame
])
def test_no_chart_pixel_inside_a_face_box(size, boxes, widen):
    original = picture(*size)
    drawn = draw_found(original.copy(), found_at(boxes), widen=widen)
    assert drawn.shape[0] == original.shape[0] and drawn.shape[1] >= original.shape[1]
    if not widen:
        assert drawn.shape == original.shape  # a video keeps its frame size
    for box in boxes:
        margin = max(1, round(box[2] / 80)) + 1  # the box's outline
        np.testing.assert_array_equal(inside(box, drawn, margin), inside(box, original, margin))
    # The charts are there: outside the boxes and labels, something was drawn.
    outside = np.ones(original.shape[:2], bool)
    for x, y, w, h in boxes:
        outside[max(0, y - 40):y + h + 2, x - 2:x + w + 40] = False
    changed = (drawn[:, :original.shape[1]] != original).any(axis=2) & outside
    assert changed.sum() > 500 or drawn.shape[1] > original.shape[1]


def test_a_photo_without_room_beside_the_face_is_widened_not_covered():
    original = picture(380, 384)
    drawn = draw_found(original.copy(), found_at([(86, 86, 208, 208)]), widen=True)
    assert drawn.shape[1] > original.shape[1]
    assert drawn[:, original.shape[1]:].any()  # the chart is in the strip
