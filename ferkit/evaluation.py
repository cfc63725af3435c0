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
from ferkit import recorded_path, resolve_recorded
from ferkit.data import (DataError, Faces, face_ids, faces_identity, labelled_file,
                      load_training_faces, train_val_rows)

# --- which faces ---------------------------------------------------------------------------

def recorded_data(sidecar: dict, model_path, train_data=None,
                  parameter: str = "train_data") -> Faces:
    """The labelled faces a model was trained on, read as its trainer read them
    (load_training_faces, the recorded usage), to rebuild its split from.

    From ``train_data`` when given (``parameter``: the caller's name for it, which the
    error names), else from the file
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
    raise DataError(_no_training_data(model_path, recorded, identity, train_data, parameter,
                                      candidates), parameters=(parameter,))


def _no_training_data(model_path, recorded, identity, train_data, parameter, tried) -> str:
    """The one line saying why no file rebuilds a model's split, and what to pass (naming
    ``parameter``, which the command line shows as its flag)."""
    advice = (f"pass {{{parameter}}} FILE, the file it was trained on, to rebuild its "
              f"validation split")
    if train_data is not None:
        return (f"{{{parameter}}} {train_data}: holds other faces than {model_path} was trained "
                f"on (not the data_identity in its sidecar); {advice}")
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


def calibration_faces(sidecar: dict, model_path, count: int, seed: int = 0,
                      train_data=None, parameter: str = "train_data") -> np.ndarray:
    """``count`` training faces (uint8 (N, 48, 48)) of the model's own classes, drawn with
    ``seed`` from its recorded training split (recorded_data: the file its data_identity
    names, or ``train_data`` when it holds those faces; never its validation faces, nor
    another split of Kaggle's fer2013.csv than the one it trained on): the int8 copy's
    calibration faces (ferkit.litert.export_tflite). ``parameter``: the caller's name for
    ``train_data`` (recorded_data)."""
    faces = recorded_data(sidecar, model_path, train_data, parameter)
    train_rows = split_rows(sidecar, faces)[0]
    train_rows = train_rows[np.isin(faces.labels[train_rows], sidecar["classes"])]
    rows = np.random.default_rng(seed).choice(train_rows, min(count, len(train_rows)),
                                              replace=False)
    return faces.images[rows]


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


def faces_for(model_path, sidecar: dict, data=None, usage: str | None = None, labels=None,
              train_data=None, require_labels: bool = True) -> Faces:
    """The faces a tool works on: the file ``data`` (with ``usage`` for Kaggle's fer2013.csv
    and the answers file ``labels`` for an 'id,feature' one) when given, else the validation
    split recorded in the model's sidecar (rebuilt from ``train_data``, or the file
    recorded_data finds), so no training image is used."""
    if data is not None:
        return labelled_file(data, usage, labels, require_labels)
    return validation_faces(sidecar, model_path, train_data)


def keep_classes(faces: Faces, classes) -> Faces:
    """Only the faces whose label is one of ``classes`` (a specialist scores only those)."""
    keep = np.isin(faces.labels, classes)
    if not keep.any():
        raise DataError(f"no labelled face of the classes {list(classes)} to score")
    return subset(faces, np.flatnonzero(keep))


# --- predictions ----------------------------------------------------------------------------

def tune_handoff(stage1_path, specialist_path, train_data=None) -> tuple[dict, int]:
    """Tune the specialist's hand-off threshold against stage 1 on stage 1's validation
    split (all seven classes, as the cascade meets them), leaving out any face the
    specialist trained on; once on plain probabilities and once on flip-TTA ones, as
    predict.py --tta makes them. Returns ({tta: (threshold, {threshold: cascade accuracy})}
    for tta False and True, faces used); see ferkit.inference.best_handoff. ``train_data``:
    stage 1's training file when the one its sidecar records is not here (recorded_data)."""
    from ferkit.inference import best_handoff, load_specialist, load_stage1, predict_probs

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
        probs1 = predict_probs(stage1, faces.images, tta, progress=Path(stage1_path).name + suffix)
        probs2 = predict_probs(stage2, faces.images, tta,
                               progress=Path(specialist_path).name + suffix)
        tuned[tta] = best_handoff(probs1, probs2, info2["classes"], faces.labels)
    return tuned, len(faces)


def record_handoff(stage1_path, specialist_path, train_data=None, say=print):
    """Tune the specialist's hand-off thresholds against stage 1 (tune_handoff: without and
    with flip TTA) and record them in its record with which stage 1 they were tuned against
    (its path, and the SHA-256 of its .h5: a cascade with another stage 1 can then tell),
    then fit the cascade's calibration again (fit_cascade_calibration: its probabilities
    changed with the thresholds); ``say`` gets the table of cascade accuracy by threshold.
    Returns the new record."""
    from ferkit.litert import file_sha256
    from ferkit.record import read_record, write_record

    tuned, n_faces = tune_handoff(stage1_path, specialist_path, train_data)
    (threshold, accuracy), (threshold_tta, accuracy_tta) = tuned[False], tuned[True]
    say(f"cascade accuracy on {n_faces} validation faces of {stage1_path}, by hand-off "
        f"threshold:")
    say("  threshold  plain    flip TTA")
    for t in accuracy:
        what = {0.0: " (stage 1 alone)", 1.0: " (always hand over)"}.get(t, "")
        say(f"  {t:4.2f}       {accuracy[t]:.4f}{'*' if t == threshold else ' '}  "
            f"{accuracy_tta[t]:.4f}{'*' if t == threshold_tta else ' '}{what}")
    record = read_record(specialist_path).replace(
        handoff_below=threshold, handoff_below_tta=threshold_tta,
        stage1=recorded_path(stage1_path, specialist_path),
        stage1_sha256=file_sha256(stage1_path),
        handoff_tuning={"stage1": recorded_path(stage1_path, specialist_path), "faces": n_faces,
                        "accuracy": accuracy, "accuracy_tta": accuracy_tta})
    write_record(specialist_path, record)
    say(f"hand-off thresholds {threshold:g} (plain), {threshold_tta:g} (flip TTA; * = "
        f"chosen) recorded in {Path(specialist_path).with_suffix('.json')}")
    # The cascade's probabilities changed with its thresholds: calibrate them again.
    entry = fit_cascade_calibration(stage1_path, specialist_path, train_data)
    record_calibration(specialist_path, entry, "cascade_calibration")
    say(f"cascade calibration recorded: validation ECE {entry['plain']['before']['ece']:.2%} "
        f"-> {entry['plain']['after']['ece']:.2%} ({entry['tta']['before']['ece']:.2%} -> "
        f"{entry['tta']['after']['ece']:.2%} with flip TTA)")
    return read_record(specialist_path)


# --- counts and metrics ---------------------------------------------------------------------

def confusion_counts(truth, predicted, classes) -> np.ndarray:
    """(K, K) int64: rows true class, columns predicted, both in the order of ``classes``
    (class ids 0-6); scikit-learn's confusion_matrix, which would silently drop a label
    outside ``classes``: that is a ValueError here."""
    from sklearn.metrics import confusion_matrix

    classes = list(np.asarray(classes).tolist())
    outside = set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist())
    if not outside <= set(classes):
        raise ValueError(f"confusion_counts: labels outside the classes {classes}")
    return confusion_matrix(truth, predicted, labels=classes).astype(np.int64)


def row_shares(counts) -> np.ndarray:
    """Each row divided by its total (a class without faces stays all zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def class_metrics(truth, predicted, classes) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support (in the order of
    ``classes``), by scikit-learn; a ratio with nothing to divide by is 0 (zero_division=0)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    classes = list(np.asarray(classes).tolist())
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0)
    return {"accuracy": accuracy_score(truth, predicted) if len(truth) else 0.0,
            "macro_f1": f1.mean(), "precision": precision, "recall": recall, "f1": f1,
            "support": support.astype(np.int64)}


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
    from ferkit.inference import load_predictor, predict_probs

    model, sidecar = load_predictor(model_path, runtime)
    faces = keep_classes(validation_faces(sidecar, model_path, train_data), sidecar["classes"])
    truth = np.searchsorted(sidecar["classes"], faces.labels)  # positions in its outputs
    name = Path(model_path).name
    return calibration_entry(
        lambda tta: predict_probs(model, faces.images, tta,
                                  progress=name + (" + flip TTA" if tta else "")),
        truth, sidecar["seed"], split_record(sidecar, len(faces)))


def fit_cascade_calibration(stage1_path, specialist_path, train_data=None,
                            runtime: str = "keras") -> dict:
    """The cascade's calibration entry: the specialist's probabilities on the faces the
    cascade hands it (with its tuned thresholds), calibrated on those of stage 1's
    validation split, less any face the specialist trained on (the faces tune_handoff
    uses), whose truth is one of its classes (only those move the cascade's NLL), plain and
    flip TTA. ``before`` and ``after`` are the whole cascade's ECE, NLL and Brier on all
    those faces, raw against calibrated (stage 1 by its sidecar's calibration, the faces it
    hands over by this one: ferkit.inference.Cascade.predict); ``handed_before`` and
    ``handed_after`` the specialist's on the faces fitted. The specialist's sidecar keeps
    it as ``cascade_calibration``, tied to this stage 1 by ``stage1_sha256`` (as the
    hand-off is)."""
    from ferkit.calibration import Calibration, choose_calibration
    from ferkit.inference import (Cascade, calibrate, cascade_probs, handoff_mask,
                                  model_calibration, predict_probs)
    from ferkit.litert import file_sha256
    from ferkit.record import read_record

    info1, info2 = read_record(stage1_path), read_record(specialist_path)
    faces = validation_faces(info1, stage1_path, train_data)
    faces = subset(faces, np.flatnonzero(~seen_in_training(faces, info1, info2,
                                                           specialist_path, train_data)))
    classes = info2["classes"]
    entry = {}
    for tta, key in ((False, "plain"), (True, "tta")):
        cascade = Cascade.load(stage1_path, specialist_path, tta=tta, runtime=runtime,
                               calibrated=False)
        suffix = " + flip TTA" if tta else ""
        probs1 = predict_probs(cascade.stage1, faces.images, tta,
                               progress=Path(stage1_path).name + suffix)
        handoff = handoff_mask(probs1, classes, cascade.handoff_below)
        handed = predict_probs(cascade.stage2, faces.images[handoff], tta,
                               progress=f"{Path(specialist_path).name}{suffix} (handed off)")
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
    from ferkit.record import read_record, write_record

    write_record(model_path, read_record(model_path).replace(**{key: entry}))
