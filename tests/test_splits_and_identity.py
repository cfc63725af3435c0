"""Kaggle's three-split fer2013.csv: trainers read its Training rows, scorers ask which
split; and the identity of a training file's faces, the same in every format."""
import re

import numpy as np
import pytest

from conftest import make_faces, pixels, write_csv
from ferkit.app import average_weights
from ferkit.app import dnn_train
from ferkit.app import predict
from ferkit.app import cli
from ferkit.data import (DataError, faces_identity, labelled_file, load_faces,
                      load_training_faces)

USAGES = ["Training"] * 14 + ["PublicTest"] * 7 + ["PrivateTest"] * 7


@pytest.fixture
def fer2013(tmp_path):
    """A generated fer2013.csv of three splits, interleaved: 14 Training rows, 7 and 7."""
    # Two faces of each class among the Training rows, so they split by class.
    (train_images, train_labels), (test_images, test_labels) = make_faces(14, 3), make_faces(14, 4)
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels])
    order = np.random.default_rng(0).permutation(len(USAGES))
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "".join(
        f"{labels[i]},{pixels(images[i])},{USAGES[i]}\n" for i in order))
    training = [i for i in order if USAGES[i] == "Training"]   # in file order
    return {"path": path, "images": images, "labels": labels, "training": training}


def test_trainers_read_only_the_training_rows_and_say_so(fer2013, capsys):
    faces = load_training_faces(fer2013["path"])
    np.testing.assert_array_equal(faces.images, fer2013["images"][fer2013["training"]])
    np.testing.assert_array_equal(faces.labels, fer2013["labels"][fer2013["training"]])
    assert capsys.readouterr().out == (f"data: {fer2013['path']}: 14 Training rows of 28 "
                                       f"(also in the file: PublicTest 7, PrivateTest 7)\n")
    assert len(load_training_faces(fer2013["path"], usage="PublicTest")) == 7
    assert capsys.readouterr().out == f"data: {fer2013['path']}: 7 PublicTest rows of 28\n"


@pytest.mark.usefixtures("no_tflite_export")
@pytest.mark.slow
def test_a_trainer_trains_and_validates_on_the_training_rows_only(fer2013, tmp_path, capsys):
    from ferkit.record import read_record

    out = tmp_path / "dnn.h5"
    dnn_train.main(["--data", str(fer2013["path"]), "--out", str(out), "--epochs", "1",
                    "--batch-size", "8", "--val-split", "0.5", "--precision", "float32",
                    "--no-augment"])
    printed = capsys.readouterr().out
    assert "14 Training rows of 28 (also in the file: PublicTest 7, PrivateTest 7)" in printed
    assert f"data: {fer2013['path']}: 14 faces of 7 classes (7 training, 7 validation)" \
        in printed
    sidecar = read_record(out)
    assert sidecar["usage"] is None  # read again the same way: Training rows
    # The sidecar names the faces trained on by their identity (as the shipped models'
    # name FER2013's train.csv.gz): the Training rows', not the whole file's.
    assert sidecar["data_identity"] == faces_identity(load_training_faces(fer2013["path"]))
    assert sidecar["data_identity"] != faces_identity(load_faces(fer2013["path"]))


def test_scorers_refuse_a_file_of_several_splits_without_usage(fer2013, tmp_path, capsys):
    message = (f"{fer2013['path']}: holds 3 splits (Training 14, PublicTest 7, PrivateTest 7); "
               f"pass --usage to pick the one to use")
    # The library names its parameter; the command line shows it as the flag.
    with pytest.raises(DataError, match=re.escape(message.replace("--usage", "usage"))):
        labelled_file(fer2013["path"])
    public = labelled_file(fer2013["path"], usage="PublicTest")
    assert len(public) == 7
    # predict.py stops on it with one line, before loading any model.
    model = tmp_path / "m.h5"
    model.write_bytes(b"")
    model.with_suffix(".json").write_text("{}")
    assert cli.run(predict.main, [str(fer2013["path"]), str(tmp_path / "o.csv"),
                                  "--stage1", str(model), "--stage2", str(model)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    # A file of one split is no mix: scored as it is.
    assert len(labelled_file(write_csv(tmp_path / "t.csv", "label,feature",
                                       zip(fer2013["labels"], fer2013["images"])))) == 28


def test_identity_is_the_same_for_the_same_faces_in_every_format(fer2013, tmp_path):
    images = fer2013["images"][fer2013["training"]]
    labels = fer2013["labels"][fer2013["training"]]
    csv = write_csv(tmp_path / "train.csv", "label,feature", zip(labels, images))
    gz = write_csv(tmp_path / "train.csv.gz", "label,feature", zip(labels, images))
    identities = {faces_identity(load_training_faces(path))
                  for path in (csv, gz, fer2013["path"])}
    assert len(identities) == 1


def test_identity_differs_between_files_of_other_faces(tmp_path):
    images, labels = make_faces(14)
    base = faces_identity(load_faces(write_csv(tmp_path / "a.csv", "label,feature",
                                               zip(labels, images))))
    other_images, _ = make_faces(14, seed=9)
    relabelled = labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 7
    others = [(other_images, labels), (images, relabelled), (images[:-1], labels[:-1])]
    for i, (other_images, other_labels) in enumerate(others):
        path = write_csv(tmp_path / f"b{i}.csv", "label,feature", zip(other_labels, other_images))
        assert faces_identity(load_faces(path)) != base


def test_averaging_compares_the_sources_data_by_identity():
    common = {"architecture": "cnn", "classes": list(range(7)), "seed": 42, "val_split": 0.1,
              "usage": None, "data_identity": "abc"}
    # The same faces in two files (say train.csv and train.csv.gz) are the same data ...
    average_weights.check_sources(["a.h5", "b.h5"], [{**common, "data": "data/train.csv"},
                                                     {**common, "data": "data/train.csv.gz"}])
    # ... and two files of other faces are not, whatever their names.
    with pytest.raises(DataError, match="b.h5: expected the data_identity of a.h5, 'abc', "
                                        "found 'xyz'"):
        average_weights.check_sources(["a.h5", "b.h5"], [
            {**common, "data": "data/train.csv"},
            {**common, "data": "data/train.csv", "data_identity": "xyz"}])



def test_int8_calibration_faces_are_training_faces_of_the_recorded_split_only(fer2013,
                                                                             tmp_path):
    """export_tflite --int8's calibration faces come through the data-identity path every
    tool uses (evaluation.recorded_data): the model's training split of its Training rows,
    never a validation, PublicTest or PrivateTest face; another file is refused."""
    from ferkit.evaluation import calibration_faces, split_rows

    faces = load_training_faces(fer2013["path"])
    sidecar = {"classes": list(range(7)), "seed": 42, "val_split": 0.5, "usage": None,
               "data": str(fer2013["path"]), "data_identity": faces_identity(faces)}
    drawn = calibration_faces(sidecar, tmp_path / "m.h5", 100, seed=1)
    train_rows, val_rows = split_rows(sidecar, faces)
    assert len(drawn) == len(train_rows) < 14  # every training face, no other
    as_bytes = {face.tobytes() for face in faces.images[train_rows]}
    assert {face.tobytes() for face in drawn} == as_bytes
    assert len(calibration_faces(sidecar, tmp_path / "m.h5", 3, seed=1)) == 3
    other = write_csv(tmp_path / "other.csv", "label,feature", zip(*make_faces(14, 9)[::-1]))
    with pytest.raises(DataError, match="holds other faces"):
        calibration_faces(sidecar, tmp_path / "m.h5", 3, train_data=other)
