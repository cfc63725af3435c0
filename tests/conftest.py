"""Shared test helpers: small generated faces with a learnable class signal, written in
every accepted format. No real FER2013 data is ever written by the tests."""
import contextlib
import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where the real FER2013 is looked for: data/, where README tells users to put it (each
# file plain or gzipped), then beside the checkout, where CI has it.
FER2013_FOLDERS = [ROOT / "data", ROOT.parent / "shared" / "data" / "fer2013"]


def fer2013_file(name):
    """The real FER2013's file ``name`` ("test.csv.gz"), plain or gzipped, from the first
    of FER2013_FOLDERS that holds it; None when none does."""
    plain = name[:-3] if name.endswith(".gz") else name
    for folder in FER2013_FOLDERS:
        for candidate in (folder / name, folder / plain, folder / (plain + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def fer2013_files(*names):
    """The paths of the named files of the real FER2013 (fer2013_file); when any is
    absent, the test is skipped with a reason naming every one missing and where it was
    looked for."""
    paths = [fer2013_file(name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        folders = " or ".join(str(folder) for folder in FER2013_FOLDERS)
        pytest.skip(f"real FER2013 not here: {', '.join(missing)} not found in {folders}")
    return paths


def open_text(path):
    """A text file, gzipped or not (the real data may be either)."""
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


def make_faces(n: int, seed: int = 0, classes=range(7)):
    """(images uint8 (n, 48, 48), labels (n,)): noise, plus a bright bar whose row
    (6 pixels apart per class) gives the class away: easy for a CNN, hard for chance."""
    rng = np.random.default_rng(seed)
    classes = np.asarray(list(classes))
    labels = classes[np.arange(n) % len(classes)]
    rng.shuffle(labels)
    images = rng.integers(0, 100, size=(n, 48, 48))
    for image, label in zip(images, labels):
        image[3 + 6 * label: 6 + 6 * label, 8:40] = 255
    return images.astype(np.uint8), labels


def pixels(image) -> str:
    return " ".join(map(str, np.asarray(image).ravel()))


def write_csv(path, header, rows):
    """rows: (first column, image or pixel string); gzip when the name ends with .gz."""
    text = header + "\n" + "".join(
        f"{key},{image if isinstance(image, str) else pixels(image)}\n" for key, image in rows)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as f:
        f.write(text)
    return path



def astronaut_test_files(folder, copies: int):
    """(faces file 'id,feature', answers 'id,label') of the astronaut's face and its mirror,
    ``copies`` times each, all labelled Happy: a labelled test set without FER2013, drawn
    by bench/pin_shipped_models.py."""
    from bench.pin_shipped_models import pinned_faces

    names, faces = pinned_faces()
    faces = faces[[names.index("astronaut"), names.index("astronaut mirrored")] * copies]
    data = write_csv(Path(folder) / "faces.csv", "id,feature",
                     ((f"f{i}", face) for i, face in enumerate(faces)))
    answers = Path(folder) / "answers.csv"
    answers.write_text("id,label\n" + "".join(f"f{i},3\n" for i in range(len(faces))))
    return data, answers

# Fixtures that train models or start processes: every test using one is slow (marked by
# pytest_collection_modifyitems), wherever it is.
SLOW_FIXTURES = {"analysis_models"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def imports_left_as_found():
    """No test changes, for the tests after it, where modules are imported from or which
    module object a name stands for (monkeypatching sys.path or sys.modules without undoing
    it): each would run against other code than the one it names."""
    path, modules = list(sys.path), dict(sys.modules)
    yield
    assert sys.path == path, f"sys.path changed: {sorted(set(sys.path) ^ set(path))}"
    replaced = sorted(name for name, module in modules.items()
                      if sys.modules.get(name, module) is not module or name not in sys.modules)
    assert not replaced, f"sys.modules: entries replaced or removed: {replaced[:10]}"


@contextlib.contextmanager
def op_determinism():
    """TensorFlow's deterministic kernels, for a seeded run whose outcome a test puts a
    threshold on (the same numbers on every run, not only most runs); the setting the
    session had is restored after, so the other tests run as users do."""
    from ferkit.backend import tf
    from tensorflow.python.framework import config  # is_/disable_ are not exported

    was = config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


@pytest.fixture
def train_csv(tmp_path):
    images, labels = make_faces(70)
    return write_csv(tmp_path / "train.csv", "label,feature", zip(labels, images))


@pytest.fixture
def test_csv(tmp_path):
    images, _ = make_faces(30, seed=1)
    return write_csv(tmp_path / "test.csv", "id,feature",
                     ((f"img{i}", image) for i, image in enumerate(images)))


@pytest.fixture
def no_tflite_export(monkeypatch):
    """Trainers skip their LiteRT copy (TensorFlow's converter takes seconds a model), for
    tests about other things; the recipe's fixture in test_training.py keeps it and checks
    it."""
    import ferkit.training

    monkeypatch.setattr(ferkit.training, "export_tflite", lambda out: None)


@pytest.fixture(scope="session")
def analysis_models(tmp_path_factory):
    """Stage 1 and the 0_2_4_6 specialist trained for one epoch by the real trainers (so
    their sidecars are the real thing) on the same 140 faces, the splits ferkit.data drew
    for each, and a labelled 'id,feature' file of 21 other faces with its answers; trained
    once for the analysis scripts' tests."""
    from ferkit.app import cnn_train
    from ferkit.app import cnn_train_mod
    import ferkit.data
    import ferkit.training

    training = ["--epochs", "1", "--cycles", "0", "--batch-size", "32", "--val-split", "0.25",
                "--precision", "float32", "--no-augment"]
    root = tmp_path_factory.mktemp("analysis")
    images, labels = make_faces(140)
    data = write_csv(root / "train.csv", "label,feature", zip(labels, images))
    splits = []

    def recording_split(*args):
        splits.append(stratified_split(*args))
        return splits[-1]

    stratified_split = ferkit.data.stratified_split
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ferkit.data, "stratified_split", recording_split)
        patch.setattr(ferkit.training, "export_tflite", lambda out: None)  # Keras is enough here
        cnn_train.main(["--data", str(data), "--out", str(root / "cnn.h5"), *training])
        cnn_train_mod.main(["--data", str(data), "--out", str(root / "special.h5"),
                            "--specific", "0_2_4_6", "--init-from", "none", *training])
    test_images, test_labels = make_faces(21, seed=5)
    test = write_csv(root / "test.csv", "id,feature",
                     ((f"face{i}", image) for i, image in enumerate(test_images)))
    answers = root / "answers.csv"
    answers.write_text("id,label\n" + "".join(f"face{i},{label}\n"
                                              for i, label in enumerate(test_labels)))
    return {"root": root, "data": data, "stage1": str(root / "cnn.h5"),
            "stage2": str(root / "special.h5"), "splits": splits, "test": str(test),
            "answers": str(answers)}
