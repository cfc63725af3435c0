"""Calibration: probabilities that mean what they say, and the measures that show it.

A model's softmax p (N, K) is calibrated by temperature scaling (Guo et al. 2017): its
logits, recovered as log p (the softmax of log p + c is p for any per-row c), are divided
by a temperature T fitted on labelled validation faces by minimizing the negative
log-likelihood, then put through the softmax again. T > 1 softens an over-confident model,
T < 1 sharpens an under-confident one. One positive temperature per row keeps each row's
order of classes, so a calibrated model gives the same labels.

The richer method tried is one temperature per predicted class (the row's top class picks
its temperature): it also keeps every label. It is kept only where it wins on validation
by more than noise (choose_calibration: cross-fitted on two halves, a paired bootstrap of
the per-face NLL gain whose 95% lower bound must be above 0).

Measures, on probabilities (N, K) and true positions 0..K-1 (N,): expected calibration
error over 15 equal-width confidence bins (reliability, ece), NLL (scikit-learn's log_loss)
and the multi-class Brier score (the mean over faces of the squared distance to the
one-hot truth, 0 to 2). Arrays in, arrays out; nothing here
loads a model.
"""
from __future__ import annotations

import dataclasses

import numpy as np

ECE_BINS = 15  # Guo et al.'s count: fine enough to see the shape, ~200 faces a bin here
# log T searched in [-3, 3] (T from 0.05 to 20): far beyond any softmax seen in practice.
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)
PROBABILITY_FLOOR = 1e-12  # log 0 guarded: a float32 softmax can underflow to 0
# A predicted class with fewer validation faces than this keeps the single temperature
# under the per-class method: a temperature fitted on a few dozen faces fits their noise.
MIN_CLASS_FACES = 50
BOOTSTRAP_ROUNDS = 1000
METHODS = ("temperature", "class_temperatures")


# --- measures --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Reliability:
    """The reliability diagram's numbers: for each of ``len(counts)`` equal-width bins of
    confidence (the top probability) over [0, 1], ``edges`` (bins + 1,), the faces in it
    ``counts``, their mean ``confidence`` and ``accuracy`` (share whose top class is the
    truth; 0 for an empty bin)."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def share(self) -> np.ndarray:
        """The share of all faces in each bin."""
        return self.counts / max(self.counts.sum(), 1)

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of share x |accuracy - confidence|."""
        return float(np.sum(self.share * np.abs(self.accuracy - self.confidence)))


def check_scored(probs, truth) -> tuple[np.ndarray, np.ndarray]:
    """(float64 (N, K), int (N,)) or a ValueError saying what was expected. Each row is
    divided by its sum: a float32 softmax sums to 1 only to ~1e-7."""
    probs, truth = np.asarray(probs, dtype=np.float64), np.asarray(truth)
    if probs.ndim != 2 or probs.shape[1] < 2 or len(probs) == 0:
        raise ValueError(f"probs: expected an (N, K) array with N >= 1, K >= 2, found shape "
                         f"{probs.shape}")
    if truth.shape != (len(probs),) or not np.issubdtype(truth.dtype, np.integer) \
            or truth.min() < 0 or truth.max() >= probs.shape[1]:
        raise ValueError(f"truth: expected {len(probs)} integer positions 0..{probs.shape[1] - 1}"
                         f", found shape {truth.shape}, dtype {truth.dtype}")
    return probs / probs.sum(axis=1, keepdims=True), truth


def reliability(probs, truth, bins: int = ECE_BINS) -> Reliability:
    """The reliability bins of probabilities (N, K) against true positions (N,). A face
    whose confidence is exactly on an inner edge goes to the bin above it; confidence 1 to
    the last bin."""
    probs, truth = check_scored(probs, truth)
    confidence = probs.max(axis=1)
    right = (probs.argmax(axis=1) == truth).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    def mean(values):
        return np.divide(np.bincount(which, values, minlength=bins), counts,
                         out=np.zeros(bins), where=counts > 0)
    return Reliability(edges, counts, mean(confidence), mean(right))


def ece(probs, truth, bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width confidence bins."""
    return reliability(probs, truth, bins).ece


def nll(probs, truth) -> float:
    """Mean negative log-likelihood of the truth (natural log)."""
    probs, truth = check_scored(probs, truth)
    from sklearn.metrics import log_loss  # scikit-learn takes seconds to import: only when scored

    return float(log_loss(truth, probs, labels=np.arange(probs.shape[1])))


def brier(probs, truth) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot truth, 0 to 2. Summed
    here rather than by scikit-learn's brier_score_loss, which scores a two-column array as
    a binary problem (half this), so a two-class specialist would not compare."""
    probs, truth = check_scored(probs, truth)
    return float(np.mean(np.sum((probs - np.eye(probs.shape[1])[truth]) ** 2, axis=1)))


def scores(probs, truth) -> dict:
    """{"ece", "nll", "brier", "accuracy", "confidence"} of probabilities against truth, as
    plain floats (a sidecar or a results table takes them as they are)."""
    probs, truth = check_scored(probs, truth)
    return {"ece": ece(probs, truth), "nll": nll(probs, truth), "brier": brier(probs, truth),
            "accuracy": float(np.mean(probs.argmax(axis=1) == truth)),
            "confidence": float(probs.max(axis=1).mean())}


# --- temperature scaling ---------------------------------------------------------------------

def logits(probs) -> np.ndarray:
    """float64 log-probabilities (N, K): logits up to a per-row constant."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), PROBABILITY_FLOOR, None))


def softmax(z) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def scale(probs, temperature) -> np.ndarray:
    """float32 (N, K): softmax(log p / T). ``temperature``: one positive number, or one per
    row (N,)."""
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"temperature: expected positive numbers, found {temperature!r}")
    z = logits(probs)
    return softmax(z / (t[:, None] if t.ndim else t)).astype(np.float32)


def _nll_at(z: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    scaled = z / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(z)), truth]))


def fit_temperature(probs, truth) -> float:
    """The temperature that minimizes the NLL of softmax(log p / T) on these faces (a
    bounded 1-D search on log T; the NLL is convex in 1/T)."""
    from scipy.optimize import minimize_scalar  # only when fitting: predicting never needs SciPy

    probs, truth = check_scored(probs, truth)
    z = logits(probs)
    found = minimize_scalar(lambda log_t: _nll_at(z, truth, np.exp(log_t)),
                            bounds=LOG_TEMPERATURE_BOUNDS, method="bounded",
                            options={"xatol": 1e-6})
    return float(np.exp(found.x))


def fit_class_temperatures(probs, truth, min_faces: int = MIN_CLASS_FACES) -> np.ndarray:
    """(K,) temperatures, one per predicted class, each fitted on the faces whose top class
    it is; a class predicted for fewer than ``min_faces`` faces gets the single one."""
    probs, truth = check_scored(probs, truth)
    single = fit_temperature(probs, truth)
    predicted = probs.argmax(axis=1)
    temperatures = np.full(probs.shape[1], single)
    for k in range(probs.shape[1]):
        rows = predicted == k
        if rows.sum() >= min_faces:
            temperatures[k] = fit_temperature(probs[rows], truth[rows])
    return temperatures


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted calibration: ``method`` "temperature" (one ``temperature``) or
    "class_temperatures" (``class_temperatures``, one per predicted class, K of them;
    ``temperature`` then the single one fitted beside them). apply() keeps every label."""

    temperature: float
    method: str = "temperature"
    class_temperatures: tuple | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}, found "
                             f"{self.method!r}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature: expected a positive number, found "
                             f"{self.temperature!r}")
        if (self.method == "class_temperatures") != (self.class_temperatures is not None):
            raise ValueError(f"class_temperatures: expected them with the method "
                             f"class_temperatures only, found {self.class_temperatures!r} "
                             f"with {self.method!r}")

    def apply(self, probs) -> np.ndarray:
        """float32 (N, K) calibrated probabilities; each row sums to 1, its order kept."""
        probs = np.asarray(probs)
        if len(probs) == 0:
            return probs.astype(np.float32)
        if self.method == "temperature":
            return scale(probs, self.temperature)
        temperatures = np.asarray(self.class_temperatures)
        if probs.shape[1] != len(temperatures):
            raise ValueError(f"probs: expected {len(temperatures)} classes (as calibrated), "
                             f"found {probs.shape[1]}")
        return scale(probs, temperatures[probs.argmax(axis=1)])

    def to_dict(self) -> dict:
        found = {"method": self.method, "temperature": round(self.temperature, 6)}
        if self.class_temperatures is not None:
            found["class_temperatures"] = [round(float(t), 6) for t in self.class_temperatures]
        return found

    @classmethod
    def from_dict(cls, record: dict) -> Calibration:
        """From to_dict's form (a sidecar's); a ValueError names what is wrong."""
        if not isinstance(record, dict) or not isinstance(record.get("temperature"),
                                                          (int, float)):
            raise ValueError(f"calibration: expected {{'method', 'temperature', ...}}, found "
                             f"{record!r}")
        classes = record.get("class_temperatures")
        return cls(float(record["temperature"]), record.get("method", "temperature"),
                   None if classes is None else tuple(float(t) for t in classes))


def fit(probs, truth, method: str = "temperature") -> Calibration:
    """The Calibration of ``method`` fitted on these faces."""
    single = fit_temperature(probs, truth)
    if method == "temperature":
        return Calibration(single)
    if method == "class_temperatures":
        return Calibration(single, method,
                           tuple(float(t) for t in fit_class_temperatures(probs, truth)))
    raise ValueError(f"method: expected one of {', '.join(METHODS)}, found {method!r}")


def _face_nll(probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(truth)), truth], PROBABILITY_FLOOR, None))


def richer_gain(probs, truth, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> dict:
    """How much the per-class temperatures lower the NLL below the single temperature's on
    faces neither was fitted on: the faces split at random into two halves, each method
    fitted on one half and scored on the other, both ways; the per-face NLL differences
    (single - per-class) bootstrapped ``rounds`` times. {"gain": mean, "low", "high": its
    95% interval, "faces"}."""
    probs, truth = check_scored(probs, truth)
    if len(probs) < 4:  # no two halves to fit and score on: no evidence of a win
        return {"gain": 0.0, "low": 0.0, "high": 0.0, "faces": int(len(probs))}
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(probs)) % 2 == 0
    gain = np.zeros(len(probs))
    for fitted, scored in ((half, ~half), (~half, half)):
        single = fit(probs[fitted], truth[fitted], "temperature")
        richer = fit(probs[fitted], truth[fitted], "class_temperatures")
        gain[scored] = (_face_nll(single.apply(probs[scored]), truth[scored])
                        - _face_nll(richer.apply(probs[scored]), truth[scored]))
    means = gain[rng.integers(0, len(gain), (rounds, len(gain)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"gain": float(gain.mean()), "low": float(low), "high": float(high),
            "faces": int(len(gain))}


def choose_calibration(probs, truth, seed: int = 0) -> tuple[Calibration, dict]:
    """(the calibration kept, its record): temperature scaling, or the per-class
    temperatures where richer_gain's 95% lower bound is above 0 (a win beyond noise); the
    record says both methods' comparison and ECE, NLL and Brier before and after on these
    faces (which the caller names)."""
    probs, truth = check_scored(probs, truth)
    comparison = richer_gain(probs, truth, seed)
    kept = fit(probs, truth, "class_temperatures" if comparison["low"] > 0 else "temperature")
    record = {**kept.to_dict(),
              "class_temperatures_tried": {**{k: round(v, 6) for k, v in comparison.items()
                                              if k != "faces"},
                                           "kept": kept.method == "class_temperatures"},
              "before": _rounded(scores(probs, truth)),
              "after": _rounded(scores(kept.apply(probs), truth))}
    return kept, record


def _rounded(values: dict) -> dict:
    return {key: round(value, 6) for key, value in values.items()}
