"""annotate.py end to end on the astronaut photo from scikit-image's wheel, pictures and
videos made from it, and bad inputs (the shipped models label the faces)."""
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from ferkit.app import annotate
from ferkit.composites import ASTRONAUT_FACE, astronaut_head, astronaut_path, scene
from ferkit.app import cli
from ferkit.app.annotation import CSV_COLUMNS
from ferkit.inference import (LABEL_PROBABILITY_FIELDS,
                               STAGE1_PROBABILITY_FIELDS)
from ferkit.labels import CLASS_NAMES
from ferkit.faces import (DEFAULT_MARGIN, FaceSettings, face_crops, find_faces, haar_score,
                          load_detector)

STAGE1 = ROOT / "models" / "cnn.h5"
SPOTS = [(20, 30), (280, 40), (150, 270)]  # where the three heads go (top-left corners)


def run_annotate(args, capsys):
    code = cli.run(annotate.main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def read_rows(out_dir):
    table = pd.read_csv(out_dir / "faces.csv")
    assert tuple(table.columns) == CSV_COLUMNS
    return table


def overlap(a, b) -> float:
    """Intersection over union of two boxes x, y, w, h."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def no_staging_left(folder):
    return not [p for p in folder.iterdir() if p.name.endswith(".staging")]


@pytest.fixture(scope="module")
def three_heads(tmp_path_factory):
    """A picture with the astronaut's head at SPOTS, and its path."""
    picture = scene(astronaut_head(), SPOTS, 500, 520)
    path = tmp_path_factory.mktemp("pictures") / "three.png"
    cv2.imwrite(str(path), picture)
    return picture, path


def test_astronaut_gives_one_face_in_the_right_place(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_annotate([astronaut_path(), "--out", out, "--explain", "--tta"],
                                   capsys)
    assert code == 0
    rows = read_rows(out)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["file"] == str(astronaut_path()) and row["frame"] == 0
    assert overlap((row.x, row.y, row.w, row.h), ASTRONAUT_FACE) > 0.5
    assert row["label"] in range(7) and 0.9 <= row["score"] <= 1  # MTCNN's confidence
    assert row["label_name"] == CLASS_NAMES[row["label"]]
    for fields in (LABEL_PROBABILITY_FIELDS, STAGE1_PROBABILITY_FIELDS):
        assert abs(row[list(fields)].sum() - 1) < 2e-3
    # The label's probabilities are stage 1's unless the specialist decided.
    same = np.allclose(row[list(LABEL_PROBABILITY_FIELDS)].to_numpy(float),
                       row[list(STAGE1_PROBABILITY_FIELDS)].to_numpy(float))
    assert same != bool(row["handed_over"])
    assert b"\r" not in (out / "faces.csv").read_bytes()
    drawn = cv2.imread(str(out / "astronaut_annotated.png"))
    assert drawn.shape == cv2.imread(str(astronaut_path())).shape
    assert "1 face from 1 photo and 0 video frames" in stdout
    assert no_staging_left(tmp_path)


def test_three_faces_give_three_rows_whose_crops_match_the_original(tmp_path, capsys,
                                                                    three_heads):
    picture, path = three_heads
    out = tmp_path / "out"
    # Haar's box, whose place on a face hardly moves with what is around the face.
    assert run_annotate([path, "--out", out, "--no-cascade", "--detector", "haar"],
                        capsys)[0] == 0
    rows = read_rows(out)
    assert len(rows) == 3
    # Haar's score on MTCNN's 0-1 scale: 0.5 at the windows a box needs, more above.
    assert rows["score"].between(0.5, 1, inclusive="left").all(), rows["score"]
    # The face as found in the astronaut photo itself, and where it lies in her head.
    head = astronaut_head()
    boxes, _, originals = find_faces(head, load_detector(), FaceSettings())
    assert len(boxes) == 1
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    found = rows[["x", "y", "w", "h"]].to_numpy()
    for spot in SPOTS:
        expected = (spot[0] + boxes[0][0], spot[1] + boxes[0][1], *boxes[0][2:])
        box = max(found, key=lambda b: overlap(b, expected))
        assert overlap(box, expected) > 0.8
        crop = face_crops(grey, [box], DEFAULT_MARGIN)[0]
        # The detector's box moves by a few pixels with the background around a face: on
        # these crops a 2-pixel shift makes a mean difference of 12 grey levels, a 4-pixel
        # one 21; the face's mirror image differs by 48, another part of the head by 59.
        assert np.abs(crop.astype(int) - originals[0].astype(int)).mean() < 20


def write_video(path, picture, frames, codec):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10,
                             (picture.shape[1], picture.shape[0]))
    for i in range(frames):
        writer.write(np.roll(picture, 2 * i, axis=1))  # the heads drift right
    writer.release()


def test_help_says_each_default_once(capsys):
    with pytest.raises(SystemExit):
        annotate.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 48)" in text and "48 in photos" not in text
    assert "auto = mtcnn for photos, haar for videos and the camera" in text


def test_haar_scores_its_windows_on_mtcnns_scale():
    # 5 windows (the default --min-neighbors, the fewest a box is kept with) and 26.
    assert haar_score([5, 26], 5).tolist() == [0.5, 26 / 31]
    assert haar_score([3], 0).tolist() == [0.75]  # every box kept: scored as if 1 needed


@pytest.mark.slow
def test_videos_give_rows_per_sampled_frame_and_a_video_opencv_reads_back(
        tmp_path, capsys, three_heads):
    picture, _ = three_heads
    mp4, avi = tmp_path / "clip.mp4", tmp_path / "clip.avi"
    write_video(mp4, picture, 5, "mp4v")
    write_video(avi, picture, 4, "MJPG")
    out = tmp_path / "out"
    code, stdout, _ = run_annotate([mp4, avi, "--out", out, "--every", "2", "--no-cascade"],
                                   capsys)
    assert code == 0
    rows = read_rows(out)
    frames = rows.groupby("file")["frame"].apply(lambda f: sorted(set(f))).to_dict()
    assert frames == {str(mp4): [0, 2, 4], str(avi): [0, 2]}
    assert (rows.groupby(["file", "frame"]).size() == 3).all()
    for name, count in (("clip_annotated.mp4", 5), ("clip_annotated.avi", 4)):
        capture = cv2.VideoCapture(str(out / name))
        read = 0
        while capture.read()[0]:
            read += 1
        assert read == count, name
    assert "15 faces from 0 photos and 9 video frames" in stdout


def test_a_picture_without_a_face_gives_no_row_and_says_so(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "wall.png"), scene(np.zeros((1, 1, 3), np.uint8), [], 200, 300))
    (folder / "astronaut.png").write_bytes(astronaut_path().read_bytes())
    out = tmp_path / "out"
    code, stdout, _ = run_annotate([folder, "--out", out, "--no-cascade"], capsys)
    assert code == 0
    assert f"{folder / 'wall.png'}: no face found" in stdout
    assert read_rows(out)["file"].tolist() == [str(folder / "astronaut.png")]
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_annotated.png", "faces.csv"]


def bad_input(tmp_path, problem):
    """The arguments (before --out) that make the given problem."""
    if problem == "missing":
        return [tmp_path / "none.jpg"]
    if problem == "not_an_image":
        (tmp_path / "notes.jpg").write_text("not a picture")
        return [tmp_path / "notes.jpg"]
    if problem == "unknown_kind":
        (tmp_path / "notes.txt").write_text("text")
        return [tmp_path / "notes.txt"]
    if problem == "broken_video":
        (tmp_path / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + bytes(200))
        return [tmp_path / "clip.mp4"]
    if problem == "empty_folder":
        (tmp_path / "photos").mkdir()
        return [tmp_path / "photos"]
    if problem == "out_is_a_file":
        (tmp_path / "out").write_text("taken")
        return [astronaut_path()]
    if problem == "missing_model":
        return [astronaut_path(), "--stage1", tmp_path / "none.h5"]
    if problem == "damaged_second_photo":  # found only while annotating: nothing is kept
        (tmp_path / "damaged.png").write_bytes(astronaut_path().read_bytes()[:40])
        return [astronaut_path(), tmp_path / "damaged.png", "--no-cascade"]
    raise ValueError(problem)


@pytest.mark.parametrize("problem,message", [
    ("missing", "none.jpg: file not found"),
    ("not_an_image", "notes.jpg: expected a JPEG, PNG, BMP or WebP image"),
    ("unknown_kind", "notes.txt: expected a photo"),
    ("broken_video", "clip.mp4: expected a video OpenCV can play"),
    ("empty_folder", "photos: expected photos"),
    ("out_is_a_file", "out: expected a folder for the annotated files (--out), found a file"),
    ("missing_model", "none.h5: model file not found"),
    ("damaged_second_photo", "damaged.png: expected a JPEG, PNG, BMP or WebP image, cannot "
                             "decode it"),
])
def test_bad_input_gives_one_error_line_exit_2_and_no_output(tmp_path, capsys, problem,
                                                             message):
    args = bad_input(tmp_path, problem)
    code, stdout, stderr = run_annotate([*args, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr
    if problem != "out_is_a_file":
        assert not (tmp_path / "out").exists()
    assert no_staging_left(tmp_path)


def test_a_camera_that_cannot_be_opened_gives_one_line_exit_2(tmp_path):
    # A real process: OpenCV's own warnings would go straight to file descriptor 2.
    done = subprocess.run([sys.executable, str(ROOT / "annotate.py"), "--camera", "99",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("error: --camera 99: cannot open camera 99 (no such device, or no "
                           "access to it)\n")
    assert not (tmp_path / "out").exists()
