"""The input pipeline of training (ferkit.pipeline): order and augmentation drawn from the
seed and the epoch alone, validation batches in the file's order, the faces a run trains
on."""
import numpy as np

from conftest import make_faces, write_csv
from ferkit.backend import tf
from ferkit.pipeline import augment_batch, make_dataset, prepare_data


def test_dataset_order_and_augmentation_come_from_seed_and_epoch_alone():
    images, labels = make_faces(40)

    def epoch_images(epoch, seed=3, augment=True):
        data = make_dataset(images, labels, 8, 7, augment=augment, seed=seed, epoch=epoch)
        return np.concatenate([x.numpy() for x, _ in data])

    np.testing.assert_array_equal(epoch_images(4), epoch_images(4))  # however often drawn
    assert not np.allclose(epoch_images(4), epoch_images(5))
    plain = epoch_images(2, augment=False)
    assert sorted(map(bytes, plain.astype(np.uint8))) == sorted(
        map(bytes, images[..., None].astype(np.uint8)))  # a permutation of the faces


def test_validation_dataset_keeps_the_order_with_one_hot_targets():
    images, labels = make_faces(10)
    batches = list(make_dataset(images, labels, 4, 7))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, _ = batches[0]
    assert x.shape == (4, 48, 48, 1) and x.dtype.name == "float32"
    np.testing.assert_array_equal(x.numpy()[..., 0], images[:4])
    targets = np.concatenate([y for _, y in batches])
    assert targets.shape == (10, 7) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets.argmax(axis=1), labels)


def test_augmentation_is_seeded_and_keeps_flat_images_flat():
    images = tf.constant(make_faces(4)[0][..., None], tf.float32)
    a = augment_batch(images, tf.constant([1, 2], tf.int64))
    assert a.shape == images.shape
    np.testing.assert_array_equal(a, augment_batch(images, tf.constant([1, 2], tf.int64)))
    assert not np.allclose(a, augment_batch(images, tf.constant([1, 3], tf.int64)))
    flat = tf.fill([3, 48, 48, 1], 90.0)
    np.testing.assert_allclose(augment_batch(flat, tf.constant([0, 0], tf.int64)), 90.0, atol=1e-3)


def test_prepare_data_splits_and_renumbers_the_chosen_classes(tmp_path):
    images, labels = make_faces(140)
    path = write_csv(tmp_path / "train.csv", "label,feature", zip(labels, images))
    faces = prepare_data(path, [4, 2], val_split=0.25, seed=1)
    assert faces.classes == [4, 2] and set(faces.train_labels) == {0, 1}
    assert len(faces.train_labels) + len(faces.val_labels) == 40
    assert np.bincount(faces.val_labels).tolist() == [5, 5]
    lines = faces.describe(path)
    assert lines[0].endswith("40 faces of 2 classes (30 training, 10 validation)")
    assert lines[1].split() == ["Sad", "15", "training", "5", "validation"]
