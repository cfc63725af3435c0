"""Framing on generated pictures (no FER2013 needed): the composites bench/framing.py
measures on, the square crops with a margin that annotate.py labels, and the framing
benchmark end to end on a few drawn faces."""
import cv2
import numpy as np
import pytest

from conftest import astronaut_test_files, make_faces
from bench import framing
from ferkit.app import cli
from ferkit.composites import make_composites, match_boxes, textured_background
from ferkit.faces import face_crops


def test_composites_place_every_face_once_where_their_squares_say():
    faces, _ = make_faces(10, seed=2)
    composites = make_composites(faces, per_picture=4, scale=(2.0, 3.0), seed=1)
    assert [c.rows.tolist() for c in composites] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    sides = []
    for composite in composites:
        height, width = composite.picture.shape
        covered = np.zeros((height, width), int)
        for (x, y, side), row in zip(composite.squares, composite.rows):
            assert 0 <= x and x + side <= width and 0 <= y and y + side <= height
            placed = composite.picture[y:y + side, x:x + side]
            np.testing.assert_array_equal(
                placed, cv2.resize(faces[row], (side, side), interpolation=cv2.INTER_LINEAR))
            # Shrunk back, it is the face it was made from, not another one.
            back = cv2.resize(placed, (48, 48), interpolation=cv2.INTER_AREA).astype(int)
            gaps = [np.abs(back - face.astype(int)).mean() for face in faces]
            assert int(np.argmin(gaps)) == row and gaps[row] < 20
            covered[y:y + side, x:x + side] += 1
            sides.append(side)
        assert covered.max() == 1  # no two faces overlap
    assert 96 <= min(sides) and max(sides) <= 144 and len(set(sides)) > 3
    again = make_composites(faces, per_picture=4, scale=(2.0, 3.0), seed=1)
    for one, other in zip(composites, again):  # seeded: the same pictures again
        np.testing.assert_array_equal(one.picture, other.picture)


def test_detections_are_matched_to_the_face_whose_square_holds_their_centre():
    squares = np.array([(10, 10, 100), (200, 10, 100)])
    boxes = [(20, 20, 80, 80),      # face 0
             (0, 0, 40, 40),        # centre (20, 20): face 0 too, but a lower score
             (205, 15, 90, 90),     # face 1
             (400, 400, 50, 50)]    # no face
    matched, spare = match_boxes(boxes, [5, 3, 9, 7], squares)
    assert matched.tolist() == [0, 2] and spare == 2
    matched, spare = match_boxes(boxes[:2], [1, 3], squares)  # the higher score wins
    assert matched.tolist() == [1, -1] and spare == 1


def hand_crop(picture, box, margin):
    """The square crop annotate.py promises, computed here step by step: centred on the
    box, its side the box's longer side plus ``margin`` of it on each side, the picture's
    edge pixels repeated where the square reaches past it, shrunk to 48x48 by area."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    pad = side  # more than the square can reach past any edge
    padded = np.pad(picture, pad, mode="edge")
    square = padded[top + pad:top + pad + side, left + pad:left + pad + side]
    return cv2.resize(square, (48, 48), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.25, -0.1])
@pytest.mark.parametrize("box", [(50, 40, 144, 144), (60, 50, 120, 130), (2, 230, 100, 100)],
                         ids=["square", "taller", "at the edge"])
def test_crops_with_a_margin_are_the_squares_computed_by_hand(margin, box):
    picture = textured_background(300, 400, np.random.default_rng(0))
    face = make_faces(1, seed=4)[0][0]
    picture[40:184, 50:194] = cv2.resize(face, (144, 144), interpolation=cv2.INTER_LINEAR)
    crop = face_crops(picture, [box], margin)
    assert crop.shape == (1, 48, 48) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop[0], hand_crop(picture, box, margin))
    if box == (50, 40, 144, 144) and margin == 0:  # the face's own square: the face again
        assert np.abs(crop[0].astype(int) - face).mean() < 20


def test_framing_benchmark_runs_on_a_few_drawn_faces(tmp_path, capsys):
    """On the astronaut's face and its mirror (no FER2013): every face found, a row per
    margin and the framing offsets."""
    data, answers = astronaut_test_files(tmp_path, 3)
    code = cli.run(framing.main, ["--split", "test", "--test-data", str(data),
                                  "--test-labels", str(answers), "--margins", "0,0.1",
                                  "--no-cascade"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "test: 6 faces in 2 pictures" in out
    assert "found 6 of 6 faces (100.0%)" in out
    assert "| 0 | 100.0% |" in out and "| 0.1 | 100.0% |" in out
    assert "gives back the original framing" in out
