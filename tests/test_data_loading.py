"""The one loader: every accepted format, and one clear error for every kind of bad input."""
import numpy as np
import pytest
from PIL import Image

from conftest import fer2013_files, make_faces, pixels, write_csv
from ferkit.data import DataError, load_faces, load_id_labels
from ferkit.errors import ParameterError

GOOD = pixels(np.full(2304, 7))


def test_course_training_csv_gives_images_and_labels(train_csv):
    faces = load_faces(train_csv)
    images, labels = make_faces(70)
    assert faces.images.shape == (70, 48, 48) and faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.images, images)
    np.testing.assert_array_equal(faces.labels, labels)
    assert faces.ids is None


def test_course_test_csv_keeps_ids_as_given(test_csv):
    faces = load_faces(test_csv)
    assert faces.labels is None
    assert faces.ids.tolist() == [f"img{i}" for i in range(30)]


def test_gzip_reads_the_same_as_plain(tmp_path, train_csv):
    images, labels = make_faces(70)
    gz = write_csv(tmp_path / "train.csv.gz", "label,feature", zip(labels, images))
    np.testing.assert_array_equal(load_faces(gz).images, load_faces(train_csv).images)


def test_kaggle_csv_selects_usage(tmp_path):
    images, labels = make_faces(9)
    usages = ["Training"] * 5 + ["PublicTest"] * 3 + ["PrivateTest"]
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "".join(
        f"{label},{pixels(image)},{usage}\n" for label, image, usage in zip(labels, images, usages)))
    assert len(load_faces(path)) == 9
    public = load_faces(path, usage="PublicTest")
    np.testing.assert_array_equal(public.labels, labels[5:8])
    np.testing.assert_array_equal(public.images, images[5:8])


def test_image_folder_any_case_size_and_colour(tmp_path):
    (tmp_path / "Happy").mkdir()
    (tmp_path / "sad").mkdir()
    Image.new("RGB", (96, 96), (200, 200, 200)).save(tmp_path / "Happy" / "a.png")
    Image.new("L", (30, 60), 50).save(tmp_path / "sad" / "b.jpg")
    (tmp_path / "sad" / "notes.txt").write_text("not an image")
    faces = load_faces(tmp_path)
    assert faces.images.shape == (2, 48, 48)
    assert faces.labels.tolist() == [3, 4]
    assert faces.ids.tolist() == ["Happy/a.png", "sad/b.jpg"]
    assert abs(int(faces.images[0].mean()) - 200) <= 1 and abs(int(faces.images[1].mean()) - 50) <= 2


@pytest.mark.parametrize("header,rows,message", [
    ("label,feature", [(0, GOOD), (1, " ".join(["1"] * 2303))], "line 3: expected 2304 pixels, found 2303"),
    ("label,feature", [(0, GOOD), (1, GOOD + " 4")], "line 3: expected 2304 pixels, found 2305"),
    ("label,feature", [(0, GOOD.replace("7", "x", 1))], "line 2: expected numeric pixels, found 'x' at pixel 1"),
    ("label,feature", [(0, GOOD), (0, "300 " + GOOD[2:])], "line 3: expected pixel values 0-255, found '300' at pixel 1"),
    ("label,feature", [(0, "-1 " + GOOD[2:])], "line 2: expected pixel values 0-255, found '-1' at pixel 1"),
    ("label,feature", [(0, GOOD), (7, GOOD)], "line 3: expected a label 0-6, found '7'"),
    ("label,feature", [("happy", GOOD)], "line 2: expected a label 0-6, found 'happy'"),
    ("id,feature", [("a", GOOD), ("b", GOOD), ("a", GOOD)], "line 4: expected unique ids, found id 'a' again (first on line 2)"),
    ("name,pixels", [(0, GOOD)], "line 1: expected a header 'label,feature', 'id,feature' or 'emotion,pixels,Usage', found 'name,pixels'"),
    ("label,feature", [], "expected at least one row after the header, found none"),
])
def test_bad_rows_name_file_line_expected_and_found(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(DataError) as err:
        load_faces(path)
    assert str(err.value) == f"{path}: {message}"


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        load_faces(empty)
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_faces(tmp_path / "nope.csv")


def test_missing_default_file_says_where_to_get_fer2013(monkeypatch, tmp_path):
    import ferkit.data
    monkeypatch.setattr(ferkit.data, "DEFAULT_TRAIN", tmp_path / "train.csv")
    with pytest.raises(DataError, match="file not found; get FER2013 from .*kaggle.*accepted"):
        load_faces(tmp_path / "train.csv")


def test_usage_needs_kaggle_file_and_known_split(train_csv):
    with pytest.raises(ParameterError, match="usage Training: expected Kaggle's fer2013.csv"):
        load_faces(train_csv, usage="Training")
    with pytest.raises(ParameterError, match="usage: expected one of Training, PublicTest, PrivateTest"):
        load_faces(train_csv, usage="Validation")


def test_trainers_refuse_unlabelled_files(test_csv):
    with pytest.raises(DataError, match="expected labelled data"):
        load_faces(test_csv, require_labels=True)


def test_unknown_class_folder_is_named(tmp_path):
    (tmp_path / "contempt").mkdir()
    with pytest.raises(DataError, match="expected class folders named angry, .*found contempt"):
        load_faces(tmp_path)


def test_id_label_answers(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("id,label\na,3\nb,0\n")
    assert load_id_labels(path) == {"a": 3, "b": 0}
    path.write_text("id,label\na,3\nb,9\n")
    with pytest.raises(DataError, match="line 3: expected a label 0-6, found '9'"):
        load_id_labels(path)


def test_tests_on_the_real_data_skip_naming_each_file_missing(tmp_path, monkeypatch):
    import conftest

    # data/, where README tells users to put FER2013, first; then beside the checkout.
    assert conftest.FER2013_FOLDERS == [conftest.ROOT / "data",
                                        conftest.ROOT.parent / "shared" / "data" / "fer2013"]
    folders = [tmp_path / "data", tmp_path / "shared"]
    for folder in folders:
        folder.mkdir()
    monkeypatch.setattr(conftest, "FER2013_FOLDERS", folders)
    (tmp_path / "shared" / "test.csv.gz").write_bytes(b"")
    with pytest.raises(pytest.skip.Exception) as skipped:
        fer2013_files("train.csv.gz", "test.csv.gz", "test_labels.csv")
    assert str(skipped.value) == (f"real FER2013 not here: train.csv.gz, test_labels.csv not "
                                  f"found in {folders[0]} or {folders[1]}")
    assert fer2013_files("test.csv.gz") == [tmp_path / "shared" / "test.csv.gz"]
    # data/, where README tells users to put it, comes first, its files plain or gzipped.
    (tmp_path / "data" / "test.csv").write_text("")
    (tmp_path / "data" / "test_labels.csv").write_text("")
    assert fer2013_files("test.csv.gz", "test_labels.csv") == [
        tmp_path / "data" / "test.csv", tmp_path / "data" / "test_labels.csv"]


def test_op_determinism_is_on_inside_its_block_only():
    from conftest import op_determinism
    from tensorflow.python.framework import config

    assert not config.is_op_determinism_enabled()  # no test before this one left it on
    with op_determinism():
        assert config.is_op_determinism_enabled()
    assert not config.is_op_determinism_enabled()


@pytest.mark.slow
def test_real_fer2013_loads_with_known_shapes_and_counts():
    import json
    from ferkit import MODELS
    from ferkit.data import faces_identity

    train_path, test_path, answers_path = fer2013_files("train.csv.gz", "test.csv.gz",
                                                        "test_labels.csv")

    train = load_faces(train_path)
    assert train.images.shape == (28709, 48, 48)
    assert np.bincount(train.labels).tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    # The shipped models were trained on it: their sidecars name these faces.
    for name in ("cnn", "cnn_specific_0_2_4_6", "dnn"):
        sidecar = json.loads((MODELS / f"{name}.json").read_text())
        assert sidecar["data_identity"] == faces_identity(train), name
    test = load_faces(test_path)
    assert test.images.shape == (3589, 48, 48) and test.labels is None
    answers = load_id_labels(answers_path)
    assert sorted(answers) == sorted(test.ids.tolist())
