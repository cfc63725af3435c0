"""Scoring on a labelled set: which set, predictions with a progress bar, confusion counts,
per-class metrics and the most confused pairs.

Class ids are the dataset's (0 Angry .. 6 Neutral) everywhere; a confusion matrix's rows
(true) and columns (predicted) follow an explicit ``classes`` list, so a specialist's
matrix covers only its own classes.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ferkit import data as fer_data
from ferkit import resolve_recorded
from ferkit.data import (DataError, Faces, face_ids, faces_identity, labelled_file,
                      load_training_faces, train_val_rows)
from ferkit.labels import NUM_CLASSES
from ferkit.progress import progress_bar

PROGRESS_CHUNK = 512  # images per progress-bar step: a few tenths of a second on a laptop


# --- which faces ---------------------------------------------------------------------------

def recorded_data(sidecar: dict, model_path, train_data=None,
                  option: str = "--train-data") -> Faces:
    """The labelled faces a model was trained on, read as its trainer read them
    (load_training_faces, the recorded usage), to rebuild its split from.

    From ``train_data`` when given (the ``option`` the user passed), else from the file
    the sidecar records (``data``, relative to the model's folder), else from README's data
    location (data/train.csv or data/train.csv.gz). A file is used only when it holds the
    faces the sidecar's ``data_identity`` names (ferkit.data.faces_identity); a sidecar
    without one accepts the given or recorded file as before, but never README's location,
    which it cannot check. Otherwise one DataError line says what to pass.
    """
    identity = sidecar.get("data_identity")
    recorded = sidecar.get("data")
    if train_data is not None:
        candidates = [Path(train_data)]
    else:
        candidates = [resolve_recorded(recorded, model_path)] if recorded else []
        if identity is not None:
            candidates += fer_data.readme_training_files()
        candidates = [path for path in dict.fromkeys(candidates) if path.exists()]
    for path in candidates:
        faces = _load_training(path, sidecar.get("usage"))
        if identity is None or _identity(path, sidecar.get("usage")) == identity:
            return faces
    raise DataError(_no_training_data(model_path, recorded, identity, train_data, option,
                                      candidates))


def _no_training_data(model_path, recorded, identity, train_data, option, tried) -> str:
    """The one line saying why no file rebuilds a model's split, and what to pass."""
    advice = (f"pass {option} FILE, the file it was trained on, to rebuild its validation "
              f"split")
    if train_data is not None:
        return (f"{option} {train_data}: holds other faces than {model_path} was trained on "
                f"(not the data_identity in its sidecar); {advice}")
    reasons = []
    if recorded is None:
        reasons.append("its sidecar records no training data")
    elif resolve_recorded(recorded, model_path) not in tried:
        reasons.append(f"its training data {recorded} (recorded in the sidecar) is not here")
    reasons += [f"{path} holds other faces (not the sidecar's data_identity)" for path in tried]
    readme = fer_data.readme_training_files()
    where = " or ".join(map(str, readme))
    if identity is None:
        reasons.append(f"a file at {where} is not used: the sidecar has no data_identity "
                       f"to check it by")
    elif not set(readme) & set(tried):
        reasons.append(f"nothing at {where}")
    return f"{model_path}: cannot rebuild its validation split: {'; '.join(reasons)}; {advice}"


def validation_faces(sidecar: dict, model_path, train_data=None) -> Faces:
    """The validation split a model's sidecar records, rebuilt from its training data
    (recorded_data)."""
    faces = recorded_data(sidecar, model_path, train_data)
    return subset(faces, split_rows(sidecar, faces)[1])


@functools.lru_cache(maxsize=2)
def _load_training(path, usage) -> Faces:
    # Cached: stage 1 and the specialist usually record the same file (callers never
    # modify the Faces they get).
    return load_training_faces(path, usage)


@functools.lru_cache(maxsize=2)
def _identity(path, usage) -> str:
    return faces_identity(_load_training(path, usage))


def split_rows(sidecar: dict, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of ``faces`` (the model's recorded data), rebuilt
    by the function ferkit.training.train split them with, from the recorded seed and share."""
    return train_val_rows(faces.labels, sidecar["classes"], sidecar["val_split"],
                          sidecar["seed"])


def training_ids(sidecar: dict, model_path, train_data=None) -> np.ndarray:
    """The ids (row numbers where the file has none) of the faces a model trained on."""
    faces = recorded_data(sidecar, model_path, train_data)
    return face_ids(faces)[split_rows(sidecar, faces)[0]]


def same_training_data(sidecar: dict, other: dict) -> bool:
    """Whether two models were trained on the same faces: by their data identities when
    both sidecars record one (the same faces in two formats are the same data), else by
    the recorded file (as recorded) and usage."""
    if sidecar.get("data_identity") and other.get("data_identity"):
        return sidecar["data_identity"] == other["data_identity"]

    return (sidecar.get("data"), sidecar.get("usage")) == (other.get("data"), other.get("usage"))


def seen_in_training(faces: Faces, faces_sidecar: dict, sidecar: dict, model_path,
                     train_data=None) -> np.ndarray:
    """Which of ``faces`` (drawn from the data ``faces_sidecar`` records) the model at
    ``model_path`` (``sidecar``) trained on; none when it trained on other data."""
    if not same_training_data(sidecar, faces_sidecar):
        return np.zeros(len(faces), dtype=bool)
    return np.isin(faces.ids, training_ids(sidecar, model_path, train_data))


def subset(faces: Faces, rows) -> Faces:
    """The given rows of faces, with ids (row numbers where the file has none)."""
    labels = faces.labels[rows] if faces.labels is not None else None
    return Faces(faces.images[rows], labels, face_ids(faces)[rows])


def faces_for(args, model_path, sidecar: dict, require_labels=True) -> Faces:
    """The faces a script works on: --data (with --usage, --labels) when given, else the
    validation split recorded in the model's sidecar (rebuilt from --train-data, or the
    file recorded_data finds), so no training image is used."""
    if args.data is not None:
        return labelled_file(args.data, args.usage, args.labels, require_labels)
    return validation_faces(sidecar, model_path, args.train_data)


def keep_classes(faces: Faces, classes) -> Faces:
    """Only the faces whose label is one of ``classes`` (a specialist scores only those)."""
    keep = np.isin(faces.labels, classes)
    if not keep.any():
        raise DataError(f"no labelled face of the classes {list(classes)} to score")
    return subset(faces, np.flatnonzero(keep))


# --- predictions ----------------------------------------------------------------------------

def predict_with_progress(model, images, tta=False, what="predicting") -> np.ndarray:
    """ferkit.inference.predict_probs in chunks, with a progress bar: (N, K) float32 (a Keras
    model or its LiteRT copy, ferkit.inference.load_predictor)."""
    from ferkit.inference import predict_probs

    print(f"{what}: {len(images)} faces")
    bar = progress_bar(len(images), "face")
    probs = []
    for start in range(0, len(images), PROGRESS_CHUNK):
        probs.append(predict_probs(model, images[start:start + PROGRESS_CHUNK], tta=tta))
        bar.add(len(probs[-1]))
    return np.concatenate(probs) if probs else np.zeros((0, model.output_shape[-1]), np.float32)


def tune_handoff(stage1_path, specialist_path, train_data=None) -> tuple[dict, int]:
    """Tune the specialist's hand-off threshold against stage 1 on stage 1's validation
    split (all seven classes, as the cascade meets them), leaving out any face the
    specialist trained on; once on plain probabilities and once on flip-TTA ones, as
    predict.py --tta makes them. Returns ({tta: (threshold, {threshold: cascade accuracy})}
    for tta False and True, faces used); see ferkit.inference.best_handoff. ``train_data``:
    stage 1's training file when the one its sidecar records is not here (recorded_data)."""
    from ferkit.inference import best_handoff, load_specialist, load_stage1

    stage1, info1 = load_stage1(stage1_path)
    stage2, info2 = load_specialist(specialist_path)
    faces = validation_faces(info1, stage1_path, train_data)
    faces = subset(faces, np.flatnonzero(~seen_in_training(faces, info1, info2,
                                                           specialist_path, train_data)))
    if len(faces) == 0:
        raise DataError(f"{stage1_path}: no validation face the specialist did not train on "
                        f"to tune the hand-off threshold with")
    tuned = {}
    for tta in (False, True):
        suffix = " + flip TTA" if tta else ""
        probs1 = predict_with_progress(stage1, faces.images, tta, Path(stage1_path).name + suffix)
        probs2 = predict_with_progress(stage2, faces.images, tta,
                                       Path(specialist_path).name + suffix)
        tuned[tta] = best_handoff(probs1, probs2, info2["classes"], faces.labels)
    return tuned, len(faces)


# --- counts and metrics ---------------------------------------------------------------------

def confusion_counts(truth, predicted, classes) -> np.ndarray:
    """(K, K) int64: rows true class, columns predicted, both in the order of ``classes``
    (class ids 0-6)."""
    classes = np.asarray(classes)
    position = np.full(NUM_CLASSES, -1)
    position[classes] = np.arange(len(classes))
    truth, predicted = position[np.asarray(truth)], position[np.asarray(predicted)]
    if (truth < 0).any() or (predicted < 0).any():
        raise ValueError(f"confusion_counts: labels outside the classes {classes.tolist()}")
    k = len(classes)
    return np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)


def row_shares(counts) -> np.ndarray:
    """Each row divided by its total (a class without faces stays all zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def class_metrics(counts) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support of a confusion
    matrix; a ratio with nothing to divide by is 0 (scikit-learn's zero_division=0)."""
    counts = np.asarray(counts, dtype=np.float64)
    hits = np.diag(counts)
    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
    precision, recall = ratio(hits, counts.sum(axis=0)), ratio(hits, counts.sum(axis=1))
    f1 = ratio(2 * precision * recall, precision + recall)
    return {"accuracy": hits.sum() / max(counts.sum(), 1), "macro_f1": f1.mean(),
            "precision": precision, "recall": recall, "f1": f1,
            "support": counts.sum(axis=1).astype(np.int64)}


def most_confused(counts, top: int = 5) -> list[tuple[int, int, int, float]]:
    """The ``top`` off-diagonal cells by share of the true class (then by count):
    [(true position, predicted position, count, share)], positions in the matrix order."""
    counts = np.asarray(counts)
    shares = row_shares(counts)
    cells = [(t, p) for t in range(len(counts)) for p in range(len(counts))
             if t != p and counts[t, p] > 0]
    cells.sort(key=lambda cell: (-shares[cell], -counts[cell]))
    return [(t, p, int(counts[t, p]), float(shares[t, p])) for t, p in cells[:top]]


# --- calibration ----------------------------------------------------------------------------

def calibration_entry(probabilities, truth, seed: int, faces: dict) -> dict:
    """A sidecar's calibration entry: {"plain": ..., "tta": ..., "faces": ``faces``}, each
    mode's ferkit.calibration.choose_calibration record (the method kept, its values, the
    richer method's comparison, ECE, NLL and Brier before and after) fitted on
    ``probabilities(tta)`` -> (N, K) against ``truth`` (N,) positions 0..K-1."""
    from ferkit.calibration import choose_calibration

    entry = {key: choose_calibration(probabilities(tta), truth, seed)[1]
             for tta, key in ((False, "plain"), (True, "tta"))}
    entry["faces"] = faces
    return entry


def split_record(sidecar: dict, count: int, what: str = "validation split") -> dict:
    """Which faces a calibration was fitted on: ``what``, and the data identity, classes,
    seed and share that rebuild the split (split_rows), with its face count."""
    return {"split": what, "data_identity": sidecar.get("data_identity"),
            "classes": list(sidecar["classes"]), "seed": sidecar["seed"],
            "val_split": sidecar["val_split"], "count": int(count)}


def fit_model_calibration(model_path, train_data=None, runtime: str = "keras") -> dict:
    """A model's calibration entry (calibration_entry), fitted on its own validation split
    (its classes only), on plain and on flip-TTA probabilities: the sidecar's
    ``calibration``, which ferkit.inference.model_calibration reads."""
    from ferkit.inference import load_predictor

    model, sidecar = load_predictor(model_path, runtime)
    faces = keep_classes(validation_faces(sidecar, model_path, train_data), sidecar["classes"])
    truth = np.searchsorted(sidecar["classes"], faces.labels)  # positions in its outputs
    name = Path(model_path).name
    return calibration_entry(
        lambda tta: predict_with_progress(model, faces.images, tta,
                                          name + (" + flip TTA" if tta else "")),
        truth, sidecar["seed"], split_record(sidecar, len(faces)))


def fit_cascade_calibration(stage1_path, specialist_path, train_data=None,
                            runtime: str = "keras") -> dict:
    """The cascade's calibration entry: the specialist's probabilities on the faces the
    cascade hands it (with its tuned thresholds), calibrated on those of stage 1's
    validation split, less any face the specialist trained on (the faces tune_handoff
    uses), whose truth is one of its classes (only those move the cascade's NLL), plain and
    flip TTA. ``before`` and ``after`` are the whole cascade's ECE, NLL and Brier on all
    those faces, raw against calibrated (stage 1 by its sidecar's calibration, the faces it
    hands over by this one: ferkit.inference.Cascade.predict_all); ``handed_before`` and
    ``handed_after`` the specialist's on the faces fitted. The specialist's sidecar keeps
    it as ``cascade_calibration``, tied to this stage 1 by ``stage1_sha256`` (as the
    hand-off is)."""
    from ferkit.calibration import Calibration, choose_calibration
    from ferkit.files import read_sidecar
    from ferkit.inference import (Cascade, calibrate, cascade_probs, handoff_mask,
                                  model_calibration)
    from ferkit.litert import file_sha256

    info1, info2 = read_sidecar(stage1_path), read_sidecar(specialist_path)
    faces = validation_faces(info1, stage1_path, train_data)
    faces = subset(faces, np.flatnonzero(~seen_in_training(faces, info1, info2,
                                                           specialist_path, train_data)))
    classes = info2["classes"]
    entry = {}
    for tta, key in ((False, "plain"), (True, "tta")):
        cascade = Cascade.load(stage1_path, specialist_path, tta=tta, runtime=runtime,
                               calibrated=False)
        suffix = " + flip TTA" if tta else ""
        probs1 = predict_with_progress(cascade.stage1, faces.images, tta,
                                       Path(stage1_path).name + suffix)
        handoff = handoff_mask(probs1, classes, cascade.handoff_below)
        handed = predict_with_progress(cascade.stage2, faces.images[handoff], tta,
                                       f"{Path(specialist_path).name}{suffix} (handed off)")
        truth = faces.labels[handoff]
        inside = np.isin(truth, classes)
        if inside.any():
            kept, record = choose_calibration(handed[inside],
                                              np.searchsorted(classes, truth[inside]),
                                              info1["seed"])
        else:  # nothing to fit on: the specialist's softmax stands
            kept, record = Calibration(1.0), Calibration(1.0).to_dict()
        shown1 = calibrate(model_calibration(info1, tta), probs1)
        entry[key] = {
            **record, "handoff_below": cascade.handoff_below, "handed_faces": int(inside.sum()),
            "handed_before": record.get("before"), "handed_after": record.get("after"),
            "before": _rounded_scores(cascade_probs(probs1, handed, classes, handoff),
                                      faces.labels),
            "after": _rounded_scores(cascade_probs(shown1, kept.apply(handed), classes,
                                                   handoff), faces.labels)}
    entry["faces"] = split_record(info1, len(faces), "validation split of stage 1, less the "
                                                     "specialist's training faces")
    entry["stage1_sha256"] = file_sha256(stage1_path)
    return entry


def _rounded_scores(probs, truth) -> dict:
    from ferkit.calibration import scores

    return {key: round(value, 6) for key, value in scores(probs, truth).items()}


def record_calibration(model_path, entry: dict, key: str = "calibration") -> None:
    """Write a calibration ``entry`` into the sidecar of ``model_path`` under ``key``
    ("calibration", or the specialist's "cascade_calibration"); the weights are untouched."""
    from ferkit.files import read_sidecar, write_sidecar

    sidecar = read_sidecar(model_path)
    sidecar[key] = entry
    write_sidecar(model_path, sidecar)
