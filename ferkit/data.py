"""Loading faces: one loader for every script.

Accepted inputs (``.gz`` files are read as they are):
  * course CSV, training:  ``label,feature``   (feature = 2,304 space-separated pixels 0-255)
  * course CSV, test:      ``id,feature``
  * Kaggle's ``fer2013.csv``: ``emotion,pixels,Usage`` (pick a split with ``usage=``;
    trainers read its Training rows by default, scorers refuse a file of several splits)
  * an image folder ``ROOT/<class>/*.{jpg,jpeg,png}`` with class folders angry, disgust,
    fear, happy, sad, surprise, neutral (any case); any size or colour becomes 48x48 grey.

Every problem with the input raises :class:`DataError`, whose message is one line naming
the file, the line number and what was expected and found.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from pathlib import Path

import numpy as np

from ferkit import DataError, ParameterError, paths
from ferkit.labels import CLASS_NAMES, NUM_CLASSES

# pandas is imported inside the functions that parse a CSV, not here: a script that stops
# on a bad path (check_data_path) then fails without waiting for its import (~0.5 s).

IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 2,304
USAGES = ("Training", "PublicTest", "PrivateTest")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DEFAULT_TRAIN = Path("data") / "train.csv"   # README's data location, in the current folder
DEFAULT_TEST = Path("data") / "test.csv"
TRAINING_USAGE = "Training"  # the rows of fer2013.csv a trainer reads unless told otherwise

WHERE_TO_GET = (
    "get FER2013 from https://www.kaggle.com/c/challenges-in-representation-learning-facial-"
    "expression-recognition-challenge (see data/README.md); accepted: a CSV 'label,feature' "
    "(training) or 'id,feature' (test), Kaggle's fer2013.csv (one split at a time), or an "
    "image folder ROOT/<class>/*.png|jpg; .gz files are read as they are"
)


@dataclasses.dataclass
class Faces:
    """Images as uint8 (N, 48, 48); labels int64 (N,) or None; ids (N,) or None.
    ``splits``: for a file with a Usage column (Kaggle's fer2013.csv), its rows per split,
    {usage: count} over the whole file (whichever rows were read); else None."""

    images: np.ndarray
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    splits: dict | None = None

    def __len__(self) -> int:
        return len(self.images)


def load_faces(path, usage: str | None = None, require_labels: bool = False,
               several_splits: str = "all") -> Faces:
    """Load any accepted format from ``path``; see the module docstring.

    ``usage`` picks a split of Kaggle's fer2013.csv (required to be one of USAGES when given).
    ``require_labels`` turns an unlabelled file into a DataError (trainers need labels).
    ``several_splits``: what to read, when ``usage`` is None, of a file whose Usage column
    holds more than one split: "all" its rows, TRAINING_USAGE's only (trainers:
    load_training_faces), or "refuse" (a DataError asking for ``usage``: a score or a
    prediction file must not mix splits; labelled_file).
    """
    path = check_data_path(path)
    if usage is not None and usage not in USAGES:
        raise ParameterError("usage", f"expected one of {', '.join(USAGES)}, found {usage!r}")
    if several_splits not in ("all", "refuse", TRAINING_USAGE):
        raise ValueError(f"several_splits: expected 'all', 'refuse' or {TRAINING_USAGE!r}, "
                         f"found {several_splits!r}")
    faces = _load_folder(path) if path.is_dir() else _load_csv(path, usage, several_splits)
    if require_labels and faces.labels is None:
        raise DataError(f"{path}: expected labelled data (a 'label' or 'emotion' column, "
                        f"or an image folder), found only ids")
    return faces


def check_data_path(path) -> Path:
    """A faces file or image folder that exists and can be read (ferkit.paths.input_data);
    missing at README's default places, the message says where to get FER2013."""
    path = Path(path)
    default = not path.exists() and path.resolve() in (DEFAULT_TRAIN.resolve(),
                                                        DEFAULT_TEST.resolve())
    return paths.input_data(path, WHERE_TO_GET if default else "")


def load_training_faces(path, usage: str | None = None) -> Faces:
    """Labelled faces for a trainer (and for rebuilding a trained model's split, which
    must read the same rows): of a file with a Usage column (Kaggle's fer2013.csv), only
    its Training rows unless ``usage`` names another split, and one line printed saying
    which rows were read, so PublicTest and PrivateTest faces never slip into training."""
    faces = load_faces(path, usage, require_labels=True, several_splits=TRAINING_USAGE)
    if faces.splits is not None:
        read = usage or (TRAINING_USAGE if len(faces.splits) > 1 else next(iter(faces.splits)))
        # The other splits by name and count, never a flag: the caller's layer says how to pick one.
        others = ", ".join(f"{split} {count:,}" for split, count in faces.splits.items()
                           if split != read)
        print(f"data: {path}: {len(faces):,} {read} rows of {sum(faces.splits.values()):,}"
              + (f" (also in the file: {others})" if usage is None and others else ""))
    return faces


def readme_training_files() -> list[Path]:
    """Where README tells the user to put the training file: data/train.csv, or the same
    gzipped (read at call time, so a test can move DEFAULT_TRAIN)."""
    return [DEFAULT_TRAIN, DEFAULT_TRAIN.with_name(DEFAULT_TRAIN.name + ".gz")]


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: expected a UTF-8 text CSV, found binary data") from None


def _load_csv(path: Path, usage: str | None, several_splits: str = "all") -> Faces:
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected a header 'label,feature' or "
                        f"'id,feature' and one row per face")
    header = [c.strip() for c in text.split("\n", 1)[0].strip().split(",")]
    kaggle = header[:2] == ["emotion", "pixels"]
    if header == ["label", "feature"] or header == ["id", "feature"]:
        key_column, pixel_column = header
    elif kaggle and (len(header) == 2 or header[2:] == ["Usage"]):
        key_column, pixel_column = "emotion", "pixels"
    else:
        raise DataError(f"{path}: line 1: expected a header 'label,feature', 'id,feature' or "
                        f"'emotion,pixels,Usage', found {','.join(header)!r}")
    if usage is not None and not (kaggle and "Usage" in header):
        raise ParameterError("usage", f"expected Kaggle's fer2013.csv with a 'Usage' column, "
                                      f"found {path} with header {','.join(header)!r}", usage)

    import pandas as pd

    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: malformed CSV ({str(err).strip().splitlines()[-1]})") from None
    # File line of each row: the header is line 1. Blank lines are skipped by pandas and
    # are rare enough in these files that we do not track them.
    line_numbers = np.arange(len(table)) + 2
    splits = None
    if "Usage" in table.columns:
        counted = table["Usage"].value_counts(sort=False).items()
        rank = {name: i for i, name in enumerate(USAGES)}  # Kaggle's splits first, in order
        splits = {str(k): int(v) for k, v in sorted(counted, key=lambda kv: rank.get(kv[0], 3))}
        if usage is None and len(splits) > 1:
            counts = ", ".join(f"{name} {count:,}" for name, count in splits.items())
            if several_splits == "refuse":
                raise DataError(f"{path}: holds {len(splits)} splits ({counts}); pass {{usage}} "
                                f"to pick the one to use", ("usage",))
            if several_splits == TRAINING_USAGE:
                usage = TRAINING_USAGE
                if usage not in splits:
                    raise DataError(f"{path}: expected {TRAINING_USAGE} rows, found only "
                                    f"{counts}; pass {{usage}} to pick a split", ("usage",))
    if usage is not None:
        keep = (table["Usage"] == usage).to_numpy()
        table, line_numbers = table[keep], line_numbers[keep]
        if len(table) == 0:
            raise DataError(f"{path}: no rows with Usage {usage!r}")
    if len(table) == 0:
        raise DataError(f"{path}: expected at least one row after the header, found none")

    images = parse_pixels(table[pixel_column].to_numpy(), path, line_numbers)
    keys = table[key_column].to_numpy()
    if key_column == "id":
        ids = keys.astype(str)
        _check_unique_ids(ids, path, line_numbers)
        return Faces(images, None, ids, splits)
    return Faces(images, _parse_labels(keys, path, line_numbers, key_column), splits=splits)


def parse_pixels(features: np.ndarray, path, line_numbers: np.ndarray) -> np.ndarray:
    """Space-separated pixel strings (N,) -> uint8 images (N, 48, 48), vectorized.

    The common case (plain integers 0-255 separated by single spaces) is parsed at byte
    level with numpy (``_parse_plain_rows``): ~5 s for FER2013's 66 million pixels, where
    np.fromstring takes 14 s. Anything else (extra spaces, decimals, signs, letters, wrong
    counts, values over 255) goes row by row, which either parses it or names the first
    bad line.
    """
    features = features.tolist()
    fast = _parse_plain_rows(features)
    if fast is not None:
        return fast.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    values = _parse_rows_slowly(features, path, line_numbers)
    out_of_range = ~((values >= 0) & (values <= 255))  # also catches NaN
    if out_of_range.any():
        row, col = np.argwhere(out_of_range)[0]
        raise DataError(f"{path}: line {line_numbers[row]}: expected pixel values 0-255, "
                        f"found {features[row].split()[col]!r} at pixel {col + 1}")
    return np.rint(values).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


_DIGIT_VALUE = np.zeros(256, dtype=np.uint16)  # '0'-'9' -> 0-9, anything else -> 0
_DIGIT_VALUE[ord("0"):ord("9") + 1] = np.arange(10)
_FAST_CHUNK_ROWS = 512  # ~2 MB of text per chunk: the byte arrays stay in the CPU caches


def _parse_plain_rows(features: list) -> np.ndarray | None:
    """The common case, fast: every row exactly NUM_PIXELS integers 0-255 of 1-3 digits
    separated by single spaces. Returns uint8 (N, NUM_PIXELS), or None when any row is not
    like that (the caller's general path then parses it or names the bad line).

    Works on chunks of rows so that the byte-level arrays stay small: each chunk's rows are
    joined by single spaces, so row i's tokens end at the spaces i*NUM_PIXELS+0..NUM_PIXELS-1.
    """
    out = np.empty((len(features), NUM_PIXELS), dtype=np.uint8)
    for first in range(0, len(features), _FAST_CHUNK_ROWS):
        rows = features[first:first + _FAST_CHUNK_ROWS]
        try:
            # Two leading spaces: the look-back of a token's first digits never wraps around.
            text = ("  " + " ".join(rows)).encode("ascii")
        except (UnicodeEncodeError, TypeError):
            return None
        data = np.frombuffer(text, dtype=np.uint8)
        counts = np.bincount(data, minlength=256)
        if counts[ord("0"):ord("9") + 1].sum() + counts[ord(" ")] != len(data):
            return None
        spaces = np.flatnonzero(data == ord(" "))[1:]  # the separator before each token
        n = len(rows)
        if len(spaces) != n * NUM_PIXELS:
            return None
        # Row r starts right after the space that joined it: that space must be token
        # r * NUM_PIXELS's separator, else some row has more or fewer tokens than it should.
        row_starts = 2 + np.cumsum([0] + [len(r) + 1 for r in rows[:-1]])
        if not np.array_equal(spaces[::NUM_PIXELS] + 1, row_starts):
            return None
        ends = np.append(spaces[1:], len(data))  # one past each token's last digit
        lengths = ends - spaces - 1
        if lengths.min() < 1 or lengths.max() > 3:
            return None
        digits = _DIGIT_VALUE[data]  # separators read as 0
        values = digits[ends - 1] + 10 * digits[ends - 2]  # a 1-digit token's ends-2 is its separator
        values += 100 * digits[ends - 3] * (lengths == 3)
        if values.max() > 255:
            return None
        out[first:first + n] = values.reshape(n, NUM_PIXELS)
    return out



def _check_counts(counts, path, line_numbers):
    bad = np.flatnonzero(counts != NUM_PIXELS)
    if len(bad):
        raise DataError(f"{path}: line {line_numbers[bad[0]]}: expected {NUM_PIXELS} pixels, "
                        f"found {counts[bad[0]]}")


def _parse_rows_slowly(features, path, line_numbers) -> np.ndarray:
    _check_counts(np.array([len(f.split()) for f in features]), path, line_numbers)
    rows = []
    for i, feature in enumerate(features):
        try:
            rows.append(np.array(feature.split(), dtype=np.float64))
        except ValueError:
            token = next(t for t in feature.split() if not _is_number(t))
            col = feature.split().index(token)
            raise DataError(f"{path}: line {line_numbers[i]}: expected numeric pixels, "
                            f"found {token!r} at pixel {col + 1}") from None
    return np.stack(rows)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _parse_labels(keys, path, line_numbers, column) -> np.ndarray:
    import pandas as pd

    labels = pd.to_numeric(pd.Series(keys), errors="coerce").to_numpy()
    bad = np.flatnonzero(~np.isin(labels, np.arange(NUM_CLASSES)))
    if len(bad):
        i = bad[0]
        raise DataError(f"{path}: line {line_numbers[i]}: expected a {column} 0-6, "
                        f"found {keys[i]!r}")
    return labels.astype(np.int64)


def _check_unique_ids(ids, path, line_numbers):
    import pandas as pd

    duplicated = pd.Series(ids).duplicated().to_numpy()
    if duplicated.any():
        i = np.flatnonzero(duplicated)[0]
        first = np.flatnonzero(ids == ids[i])[0]
        raise DataError(f"{path}: line {line_numbers[i]}: expected unique ids, found id "
                        f"{str(ids[i])!r} again (first on line {line_numbers[first]})")


def _load_folder(root: Path) -> Faces:
    from PIL import Image, UnidentifiedImageError

    folders = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    unknown = sorted(set(folders) - {n.lower() for n in CLASS_NAMES})
    if unknown or not folders:
        raise DataError(f"{root}: expected class folders named "
                        f"{', '.join(n.lower() for n in CLASS_NAMES)}, found "
                        f"{', '.join(unknown) if unknown else 'none'}")
    images, labels, ids = [], [], []
    for label, name in enumerate(CLASS_NAMES):
        folder = folders.get(name.lower())
        if folder is None:
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    grey = img.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            except (UnidentifiedImageError, OSError) as err:
                raise DataError(f"{file}: expected a JPEG or PNG image, cannot read it "
                                f"({err.__class__.__name__})") from None
            images.append(np.asarray(grey, dtype=np.uint8))
            labels.append(label)
            ids.append(f"{folder.name}/{file.name}")
    if not images:
        raise DataError(f"{root}: expected .jpg or .png images in the class folders, found none")
    return Faces(np.stack(images), np.array(labels, dtype=np.int64), np.array(ids))


def load_id_labels(path) -> dict[str, int]:
    """Read an ``id,label`` answer file into {id: label}."""
    path = paths.input_file(path)
    text = _read_text(path)
    header = text.split("\n", 1)[0].strip()
    if header != "id,label":
        raise DataError(f"{path}: line 1: expected header 'id,label', found {header!r}")
    import pandas as pd

    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    lines = np.arange(len(table)) + 2
    ids = table["id"].to_numpy().astype(str)
    _check_unique_ids(ids, path, lines)
    labels = _parse_labels(table["label"].to_numpy(), path, lines, "label")
    return dict(zip(ids, labels.tolist()))


# --- labelled files and the train/validation split -------------------------------------

def faces_identity(faces: Faces) -> str:
    """SHA-256 of the labels and pixels, in order: the same faces give the same identity
    whatever the file's format (course CSV, .gz, fer2013.csv's Training rows, ...), so a
    sidecar can tell whether a file holds the faces its model's split was drawn from."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(faces.labels, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(faces.images, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def face_ids(faces: Faces) -> np.ndarray:
    """The file's ids, or the row numbers (0-based, as strings) of files without ids."""
    return faces.ids if faces.ids is not None else np.arange(len(faces)).astype(str)


def labelled_file(data, usage=None, labels_path=None, require_labels=True) -> Faces:
    """A file of faces to score or predict (``data``), labelled by
    its own column or by an 'id,label' file; ids are always set (row numbers where the
    file has none). A file of several splits needs ``usage``: its scores would mix them."""
    faces = load_faces(data, usage=usage, several_splits="refuse")
    faces = Faces(faces.images, faces.labels, face_ids(faces), faces.splits)
    if labels_path is not None:
        answers = load_id_labels(labels_path)
        missing = [i for i in faces.ids if i not in answers]
        if missing:
            raise DataError(f"{labels_path}: expected a label for every id of {data}, found "
                            f"none for id {missing[0]!r} ({len(missing)} missing)")
        faces.labels = np.array([answers[i] for i in faces.ids], dtype=np.int64)
    if require_labels and faces.labels is None:
        raise DataError(f"{data}: expected labelled faces ('label,feature', fer2013.csv, an "
                        f"image folder), or 'id,feature' with {{labels_path}} ANSWERS.csv",
                        ("labels_path",))
    return faces


def stratified_split(labels: np.ndarray, val_split: float, seed: int):
    """Shuffled, class-stratified (train_indices, val_indices): never the tail of the file."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_split < 1:
        raise ParameterError("val_split", f"expected a share between 0 and 1, found {val_split}")
    indices = np.arange(len(labels))
    try:
        return train_test_split(indices, test_size=val_split, random_state=seed,
                                stratify=labels, shuffle=True)
    except ValueError as err:
        raise ParameterError("val_split", f"cannot split {len(labels)} images by class ({err})",
                             val_split) from None


def train_val_rows(labels, classes, val_split: float, seed: int):
    """(training rows, validation rows) of a labelled set, for a model of ``classes``.

    The stratified split is drawn over all seven classes first and only then narrowed to
    ``classes``, so a specialist trained on the same data with the same seed and share
    never trains on a face that stage 1 holds out: the cascade can be scored on stage 1's
    validation split.
    """
    train, val = stratified_split(labels, val_split, seed)
    keep = np.isin(labels, classes)
    return train[keep[train]], val[keep[val]]


def select_classes(images, labels, classes):
    """Keep only the given classes and renumber them 0..K-1 in the given order."""
    keep = np.isin(labels, classes)
    remap = np.full(len(CLASS_NAMES), -1)
    remap[classes] = np.arange(len(classes))
    return images[keep], remap[labels[keep]]
