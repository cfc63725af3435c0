"""Prediction: class probabilities of a model, flip test-time augmentation, and the cascade.

The cascade rule is a pure function of two probability arrays and the specialist's class
subset, so it can be tested without any model. A model is either a Keras model or its
LiteRT copy (ferkit.litert.LiteRTModel); both run through predict_probs, so TTA, the hand-off
rule and the specialist's subset are the same code on both runtimes, and the LiteRT path
never imports TensorFlow.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ferkit import MODELS
from ferkit.arrays import check_faces
from ferkit.calibration import Calibration
from ferkit.errors import DataError, ParameterError
from ferkit.record import read_record
from ferkit.labels import CLASS_NAMES, EMOTIONS
from ferkit.progress import progress_bar
from ferkit.litert import LiteRTModel, file_sha256, load_litert, staleness

DEFAULT_STAGE1 = MODELS / "cnn.h5"
DEFAULT_STAGE2 = MODELS / "cnn_specific_0_2_4_6.h5"

PREDICT_BATCH = 256  # large enough to keep both cores busy, small enough for any laptop
# runtime: auto = LiteRT (float32) when every model needed has a fresh .tflite, else
# Keras; litert-int8 runs the int8 copies, only when asked (their labels may differ).
RUNTIMES = ("auto", "litert", "litert-int8", "keras")
RUNTIME_NAMES = {"litert": "LiteRT", "litert-int8": "LiteRT int8", "keras": "Keras"}
LITERT_VARIANTS = {"litert": "float32", "litert-int8": "int8"}  # ferkit.litert.VARIANTS

# Hand-off thresholds tried when tuning the cascade: 0 never hands over (no softmax top is
# below 1/7), 1 always does; steps of 0.05 between, finer would only fit the noise of a
# few thousand validation faces.
HANDOFF_GRID = tuple([0.0] + [round(0.3 + 0.05 * i, 2) for i in range(14)] + [1.0])

logger = logging.getLogger(__name__)


def predict_probs(model, images: np.ndarray, tta: bool = False,
                  batch_size: int = PREDICT_BATCH, progress: str | None = None) -> np.ndarray:
    """uint8/float pixels 0-255 (N, 48, 48) or one face (48, 48) -> float32 (N, K)
    softmax of ``model`` (Keras or LiteRT); ``images`` checked by ferkit.arrays.check_faces.

    With ``tta`` the softmax of each image and of its mirror image are averaged. With
    ``progress`` (what is predicted, say the model's file name) a line ``progress: N
    faces`` and a progress bar are printed.
    """
    x = check_faces(images, "images")[..., None]
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    forward = forward_function(model)
    bar = None
    if progress is not None:
        print(f"{progress}: {len(x)} faces")
        bar = progress_bar(len(x), "face")
    outputs = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if tta:  # each image and its mirror in one forward pass: one call, twice the batch
            n = len(batch)
            probs = forward(np.concatenate([batch, batch[:, :, ::-1]]))
            outputs.append((probs[:n] + probs[n:]) / 2)
        else:
            outputs.append(forward(batch))
        if bar is not None:
            bar.add(len(batch))
    return np.concatenate(outputs).astype(np.float32)


def forward_function(model):
    """float32 (n, 48, 48, 1) numpy -> (n, K) numpy softmax of ``model``: a LiteRT model
    is its own; a Keras model gets a traced inference function, cached on the model
    (model.predict re-enters Keras' epoch machinery for every call, which costs more than
    the forward pass on small sets)."""
    if isinstance(model, LiteRTModel):
        return model
    forward = getattr(model, "_fer_forward", None)
    if forward is None:
        from ferkit.backend import tf  # only for a Keras model: the LiteRT path never loads it

        traced = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

        def forward(batch):
            return traced(tf.constant(batch)).numpy()
        model._fer_forward = forward
    return forward


def hand_over(stage1_probs: np.ndarray, stage2_probs: np.ndarray, classes,
              handoff_below: float = 1.0) -> Prediction:
    """The cascade's rule, a pure function of probabilities: the Prediction that stage 1's
    (N, 7) ``stage1_probs`` and the specialist's (N, K) ``stage2_probs`` (output j is class
    ``classes[j]``) make. Where stage 1's top class is one of ``classes`` and its confidence
    is at most ``handoff_below`` (handoff_mask), the specialist's top class among its own
    replaces it and the probabilities are cascade_probs'; elsewhere stage 1's stand (and
    stage2_probs is not read there). Cascade.predict runs the models through this same rule,
    the specialist only on the faces handed to it."""
    stage1_probs, stage2_probs = np.asarray(stage1_probs), np.asarray(stage2_probs)
    classes = np.asarray(classes)
    if stage2_probs.shape != (len(stage1_probs), len(classes)):
        raise ValueError(f"stage2_probs: expected shape {(len(stage1_probs), len(classes))}, "
                         f"found {stage2_probs.shape}")
    handoff = handoff_mask(stage1_probs, classes, handoff_below)
    return combine(stage1_probs, stage2_probs[handoff], classes, handoff)


def combine(stage1_probs: np.ndarray, handed_probs: np.ndarray, classes,
            handoff: np.ndarray, shown=None) -> Prediction:
    """The Prediction of faces whose ``handoff`` ones the specialist decided: handed_probs
    (handoff.sum(), K) are its rows for those faces, stage1_probs (N, 7) stage 1's. The
    labels come from these; ``shown``: (stage 1's, the specialist's) probabilities to give
    instead (calibrated: Cascade.predict), default these."""
    stage1_probs = np.asarray(stage1_probs, dtype=np.float32)
    handoff = np.asarray(handoff, dtype=bool)
    labels = stage1_probs.argmax(axis=1)
    labels[handoff] = np.asarray(classes)[np.asarray(handed_probs).argmax(axis=1)]
    shown1, shown2 = shown or (stage1_probs, handed_probs)
    shown1 = np.asarray(shown1, dtype=np.float32)
    return Prediction(labels, cascade_probs(shown1, shown2, classes, handoff), shown1, handoff)


def cascade_probs(stage1_probs: np.ndarray, handed_probs: np.ndarray, classes,
                  handoff: np.ndarray) -> np.ndarray:
    """The cascade's class probabilities (N, 7), which go with its labels: stage 1's where
    it decided; where the specialist decided (``handoff``; handed_probs: its rows for those
    faces, (handoff.sum(), K)), stage 1's probability mass over the specialist's classes
    shared among them as the specialist says, the other classes keeping stage 1's. Each
    row still sums to 1. The label is the most probable of the specialist's classes; a
    class outside them may hold more where stage 1, unsure, gave it about as much as its
    own top class."""
    probs = np.array(stage1_probs, dtype=np.float32)
    classes = np.asarray(classes)
    mass = probs[handoff][:, classes].sum(axis=1, keepdims=True)
    rows = probs[handoff]
    rows[:, classes] = mass * np.asarray(handed_probs, dtype=np.float32)
    probs[handoff] = rows
    return probs


def handoff_mask(stage1_probs: np.ndarray, classes, handoff_below: float = 1.0) -> np.ndarray:
    """Which images the cascade hands to the specialist (so stage 2 runs only on those)."""
    stage1_probs = np.asarray(stage1_probs)
    return (np.isin(stage1_probs.argmax(axis=1), classes)
            & (stage1_probs.max(axis=1) <= handoff_below))


def best_handoff(stage1_probs: np.ndarray, stage2_probs: np.ndarray, classes, truth,
                 grid=HANDOFF_GRID) -> tuple[float, dict]:
    """The hand-off threshold of ``grid`` under which the cascade is most accurate on
    labelled faces, and {threshold: accuracy} for every one tried.

    Ties go to the lowest threshold, which hands the fewest faces to the specialist (so the
    cascade is faster and never worse than stage 1 alone on these faces: 0 is stage 1).
    stage2_probs must hold the specialist's output for every face.
    """
    truth = np.asarray(truth)
    accuracy = {float(t): float(np.mean(hand_over(stage1_probs, stage2_probs, classes, t).labels
                                        == truth)) for t in sorted(grid)}
    best = max(accuracy.values())
    return next(t for t, a in accuracy.items() if a == best), accuracy


def handoff_threshold(given, specialist_sidecar: dict, tta: bool = False) -> float:
    """The threshold to use: ``given`` (--handoff-below) if not None, else the one tuned
    into the specialist's sidecar for this kind of prediction (``handoff_below_tta`` with
    TTA, whose averaged probabilities are not the plain ones, so its best threshold can
    differ; ``handoff_below`` without, and with TTA for a sidecar tuned before TTA had its
    own), else 1.0 (always hand over)."""
    if given is not None:
        if not 0 <= given <= 1:
            raise ParameterError("handoff_below", f"expected a confidence between 0 and 1, "
                             f"found {given}")
        return float(given)
    key = "handoff_below_tta" if tta and "handoff_below_tta" in specialist_sidecar \
        else "handoff_below"
    threshold = specialist_sidecar.get(key, 1.0)
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise DataError(f"{key} in the specialist's sidecar: expected a confidence between "
                        f"0 and 1, found {threshold!r}")
    return float(threshold)


def stale_handoff(stage1_path, specialist_path, handoff_below=None) -> str | None:
    """One line of warning when the specialist's tuned hand-off threshold is used with
    another stage 1 than it was tuned against (its sidecar's ``stage1_sha256``, the SHA-256
    of that stage-1 .h5, differs from ``stage1_path``'s); None when it was tuned against
    this one, when its sidecar does not say, or when a threshold is given
    (``handoff_below``: the tuned one is not used). Retune it with
    ferkit.evaluation.record_handoff."""
    if handoff_below is not None:
        return None
    recorded = read_record(specialist_path, "specialist").get("stage1_sha256")
    if recorded is None or file_sha256(stage1_path) == recorded:
        return None
    return (f"{specialist_path}: its hand-off threshold was tuned for another stage 1 than "
            f"{stage1_path} (SHA-256 differs from its sidecar's stage1_sha256)")


def choose_runtime(requested: str, model_paths) -> tuple[str, str]:
    """(runtime, why): the runtime ("litert", "litert-int8" or "keras") that runs the
    models at ``model_paths`` and the reason, also logged (INFO) as runtime_line's line,
    which the scripts print. A reason that is the request itself names the parameter as
    ``{runtime}`` (runtime_line writes it in the caller's words, as InputError.render).

    auto takes LiteRT (float32) when every model has a fresh .tflite
    (ferkit.litert.staleness) and Keras otherwise, saying why; litert (litert-int8) makes a
    missing or stale .tflite (.int8.tflite) a ParameterError naming it; keras is Keras.
    The sidecars must exist (read_record's errors name the file)."""
    if requested not in RUNTIMES:
        raise ParameterError("runtime", f"expected one of {', '.join(RUNTIMES)}, found "
                         f"{requested!r}")
    runtime, why = "keras", "{runtime} keras"
    if requested != "keras":
        variant = LITERT_VARIANTS.get(requested, "float32")
        problems = [(path, problem) for path, problem in
                    ((path, staleness(path, read_record(path), variant)) for path in model_paths)
                    if problem]
        if requested != "auto" and problems:
            path, problem = problems[0]
            raise ParameterError("runtime", problem, requested, makes=("tflite", path, variant))
        if problems:
            why = problems[0][1]
        else:
            runtime = "litert" if requested == "auto" else requested
            why = ("{runtime} " + requested if requested != "auto"
                   else "every model has a .tflite made from its current .h5")
    logger.info(runtime_line(runtime, why))
    return runtime, why


def runtime_line(runtime: str, why: str, name=str) -> str:
    """The line the scripts print about the runtime: ``runtime: LiteRT (why)``, the
    parameter ``why`` names written ``name("runtime")`` (the command line: its flag)."""
    return f"runtime: {RUNTIME_NAMES[runtime]} ({why.replace('{runtime}', name('runtime'))})"


def load_predictor(path, runtime: str = "keras", kind: str = ""):
    """(model, sidecar) ready for predict_probs: the Keras model (runtime "keras") or its
    LiteRT copy (runtime "litert", or "litert-int8" for the int8 one: checked fresh,
    TensorFlow not imported). ``kind``: the model's, for a missing .h5 (read_record)."""
    if runtime in LITERT_VARIANTS:
        return load_litert(path, kind, LITERT_VARIANTS[runtime])
    if runtime != "keras":
        raise ValueError(f"runtime: expected one of {sorted(RUNTIME_NAMES)} (see "
                         f"choose_runtime), found {runtime!r}")
    from ferkit.models import load_model  # TensorFlow: only the Keras runtime loads it

    return load_model(path, kind)


def check_stage1(path, sidecar: dict) -> None:
    if sidecar["classes"] != list(range(7)):
        raise DataError(f"{path}: expected a 7-class stage-1 model, found classes "
                        f"{sidecar['classes']}", makes=("stage1",))


def check_specialist(path, sidecar: dict) -> None:
    classes = sidecar["classes"]
    if not (2 <= len(classes) < 7 and set(classes) <= set(range(7))):
        raise DataError(f"{path}: expected a specialist on 2-6 of the classes 0-6, found "
                        f"classes {classes}", makes=("specialist",))


def load_stage1(path, runtime: str = "keras"):
    """(model, sidecar) of a 7-class stage-1 model; a DataError naming the file, carrying
    "stage1" as what makes it, when it is missing or is not a 7-class model (checked on
    the sidecar, before loading anything)."""
    check_stage1(path, read_record(path, "stage1"))
    return load_predictor(path, runtime, "stage1")


def load_specialist(path, runtime: str = "keras"):
    """(model, sidecar) of a specialist; which classes it covers comes from its sidecar."""
    check_specialist(path, read_record(path, "specialist"))
    return load_predictor(path, runtime, "specialist")


# --- what the cascade says --------------------------------------------------------------------

# A face's result in every output (faces.csv's columns after the file and frame, the JSON
# API's keys): FaceResult's fields, the box as x y w h and each probability vector as one
# column per class (p_angry.. for the label's probabilities, stage1_p_angry.. for stage 1's).
CLASS_KEYS = tuple(name.lower() for name in CLASS_NAMES)
LABEL_PROBABILITY_FIELDS = tuple(f"p_{key}" for key in CLASS_KEYS)
STAGE1_PROBABILITY_FIELDS = tuple(f"stage1_p_{key}" for key in CLASS_KEYS)
BOX_FIELDS = ("x", "y", "w", "h")
FACE_FIELDS = ("label", "label_name", "handed_over") + LABEL_PROBABILITY_FIELDS \
    + STAGE1_PROBABILITY_FIELDS
RESULT_FIELDS = BOX_FIELDS + ("score",) + FACE_FIELDS
DECIMALS = 4  # of the probabilities written out (faces.csv, JSON)


@dataclasses.dataclass(frozen=True)
class FaceResult:
    """One face and what the cascade says of it: the toolkit's one face result, the same in
    Python (Recognizer.faces), faces.csv, the JSON API and the drawings.

    ``box``: (x, y, w, h) in the picture's pixels (None for a face given already cropped);
    ``score``: the detector's (Haar: windows merged into the box; MTCNN: its confidence
    0-1; None without a detector); ``label``: the cascade's class 0-6 (``label_name``:
    "Happy"); ``probabilities``: the seven probabilities that go with the label (stage 1's,
    or where the specialist decided, cascade_probs'); ``stage1_probabilities``: stage 1's
    softmax; ``handed_over``: whether the specialist decided the label. ``record()`` is the
    flat form faces.csv and the JSON API write, ``as_fer()`` the fer package's dict."""

    box: tuple[int, int, int, int] | None
    score: float | int | None
    label: int
    probabilities: tuple[float, ...]
    stage1_probabilities: tuple[float, ...]
    handed_over: bool

    @property
    def label_name(self) -> str:
        return CLASS_NAMES[self.label]

    @property
    def confidence(self) -> float:
        """The label's probability."""
        return self.probabilities[self.label]

    def record(self) -> dict:
        """RESULT_FIELDS -> values: the box's x y w h and the score (None without), the
        label, its name, handed_over, then one value per class of each probability vector,
        rounded to DECIMALS."""
        box = self.box if self.box is not None else (None,) * 4
        return dict(zip(RESULT_FIELDS, (
            *box, self.score, self.label, self.label_name, self.handed_over,
            *(round(p, DECIMALS) for p in self.probabilities),
            *(round(p, DECIMALS) for p in self.stage1_probabilities))))

    def as_fer(self) -> dict:
        """The face as the fer package's ``FER().detect_emotions`` gives one: ``{"box": (x,
        y, w, h), "emotions": {"angry": p, ..., "neutral": p}, "label": "happy",
        "handed_over": False}`` (the label's probabilities, names as ferkit.labels.EMOTIONS
        spells them)."""
        return {"box": self.box, "emotions": dict(zip(EMOTIONS, self.probabilities)),
                "label": EMOTIONS[self.label], "handed_over": self.handed_over}


def model_calibration(sidecar: dict, tta: bool = False) -> Calibration | None:
    """The calibration fitted for a model's own probabilities (plain, or flip TTA's) in its
    sidecar's ``calibration`` entry (ferkit.evaluation.fit_model_calibration); None when
    the sidecar has none (a model made before calibration: its softmax is used as it is)."""
    entry = sidecar.get("calibration")
    if entry is None:
        return None
    return _calibration(entry, "tta" if tta else "plain", "calibration")


def cascade_calibration(specialist_sidecar: dict, stage1_path, tta: bool = False
                        ) -> Calibration | None:
    """The calibration of the specialist's probabilities on the faces the cascade hands it,
    in its sidecar's ``cascade_calibration`` (ferkit.evaluation.fit_cascade_calibration),
    when it was fitted with this stage 1 (its SHA-256 is the entry's ``stage1_sha256``, as
    the hand-off threshold is tied to it); else None."""
    entry = specialist_sidecar.get("cascade_calibration")
    if entry is None or entry.get("stage1_sha256") != file_sha256(stage1_path):
        return None
    return _calibration(entry, "tta" if tta else "plain", "cascade_calibration")


def _calibration(entry, key: str, name: str) -> Calibration:
    try:
        return Calibration.from_dict(entry[key])
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{name} in the sidecar: expected {key!r} with a temperature, found "
                        f"{entry!r} ({error})") from None


def uncalibrated_notice(stage1_path, stage2_path=None, calibrations=()) -> str | None:
    """The one line saying which of a prediction's probabilities are the raw softmax (a
    sidecar without its calibration); None when all are calibrated (fit_model_calibration
    and fit_cascade_calibration, ferkit.evaluation, fit them). ``calibrations``: (stage 1's, the cascade's when stage2_path is given)."""
    missing = [f"{stage1_path} (no calibration in its sidecar)"] if calibrations[0] is None \
        else []
    if stage2_path is not None and calibrations[1] is None:
        missing.append(f"the cascade with {stage2_path} (no cascade_calibration for this "
                       f"stage 1 in its sidecar)")
    if not missing:
        return None
    return f"uncalibrated: {'; '.join(missing)}: the raw softmax is given"


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the cascade says of N faces, as arrays (FaceResult's vocabulary, one row a face).
    ``labels`` int (N,): its classes 0-6; ``probabilities`` float32 (N, 7): the distribution
    that goes with each label (stage 1's where stage 1 decided, the cascade's where the
    specialist did: cascade_probs), calibrated (Cascade) unless the Cascade was loaded with
    calibrated=False; ``stage1_probabilities`` (N, 7): stage 1's for every face (calibrated
    by its own calibration likewise); ``handed_over`` bool (N,): which faces the specialist
    decided; ``names``: each label's name. ``results(boxes, scores)``: one FaceResult a face."""

    labels: np.ndarray
    probabilities: np.ndarray
    stage1_probabilities: np.ndarray
    handed_over: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        """Each face's label as a name ("happy"), as ferkit.labels.EMOTIONS spells it."""
        return tuple(EMOTIONS[label] for label in self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def results(self, boxes=None, scores=None) -> tuple[FaceResult, ...]:
        """One FaceResult a face, with its box (x, y, w, h) and detector score where given."""
        n = len(self)
        boxes = [None] * n if boxes is None else [tuple(int(v) for v in box) for box in boxes]
        scores = [None] * n if scores is None else [_number(score) for score in scores]
        return tuple(FaceResult(box, score, int(label), tuple(map(float, probs)),
                                tuple(map(float, probs1)), bool(handed))
                     for box, score, label, probs, probs1, handed in zip(
                         boxes, scores, self.labels, self.probabilities,
                         self.stage1_probabilities, self.handed_over))


def _number(score):
    """A detector's score as a Python number: Haar's counts stay integers."""
    return int(score) if np.issubdtype(type(score), np.integer) else round(float(score), DECIMALS)


@dataclasses.dataclass
class Cascade:
    """The models and settings of one prediction job, loaded and checked once: stage 1, the
    specialist (None: stage 1 alone), the specialist's classes, the hand-off threshold,
    TTA, the runtime the models run on ("keras", "litert" or "litert-int8") and why it was
    chosen, and the calibrations applied to the probabilities it returns (None: the raw
    softmax). ``predict`` is the one way into the cascade: predict.py, annotate.py, serve.py,
    ferkit.Recognizer and the benchmarks all predict through it.

    Calibration is applied after the models, here, so it is the same on every runtime:
    stage 1's probabilities by its own calibration, the specialist's on the faces handed to
    it by the cascade's (fitted on such faces, with this stage 1), and the two combined by
    cascade_probs, so the cascade's probabilities are still stage 1's where it decided. The
    hand-off and the labels come from the raw softmax, on which the threshold was tuned, so
    calibrated or not the cascade gives the same labels."""

    stage1: object
    stage2: object | None = None
    classes: list = dataclasses.field(default_factory=list)
    handoff_below: float = 1.0
    tta: bool = False
    runtime: str = "keras"
    runtime_reason: str = ""
    stage1_calibration: Calibration | None = None
    cascade_calibration: Calibration | None = None
    calibration_notice: str | None = None

    @classmethod
    def load(cls, stage1_path, stage2_path=None, handoff_below=None, tta=False,
             runtime="auto", calibrated=True) -> Cascade:
        """Load stage 1 and, when ``stage2_path`` is given, the specialist, both through the
        runtime choose_runtime picks from ``runtime`` (auto, litert, litert-int8, keras;
        logged, and kept with the reason: runtime_line); the threshold is
        ``handoff_below`` or the one tuned into the specialist's sidecar
        (handoff_threshold). ``calibrated``: return calibrated probabilities (the
        calibrations in the sidecars, model_calibration and cascade_calibration); a sidecar
        without one gives the raw softmax, with uncalibrated_notice's line logged
        (WARNING) and kept as ``calibration_notice``. False: the raw softmax."""
        # Every sidecar checked before the runtime is chosen or a model loaded.
        check_stage1(stage1_path, read_record(stage1_path, "stage1"))
        paths = [stage1_path]
        if stage2_path is not None:
            check_specialist(stage2_path, read_record(stage2_path, "specialist"))
            paths.append(stage2_path)
        runtime, why = choose_runtime(runtime, paths)
        stage1, info1 = load_stage1(stage1_path, runtime)
        stage2, info = (None, {"classes": []}) if stage2_path is None \
            else load_specialist(stage2_path, runtime)
        calibrations, notice = (None, None), None
        if calibrated:
            calibrations = (model_calibration(info1, tta),
                            None if stage2_path is None
                            else cascade_calibration(info, stage1_path, tta))
            notice = uncalibrated_notice(stage1_path, stage2_path, calibrations)
            if notice:
                logger.warning(notice)
        threshold = 1.0 if stage2_path is None else handoff_threshold(handoff_below, info, tta)
        return cls(stage1, stage2, info["classes"], threshold, tta, runtime, why,
                   *calibrations, notice)

    def predict(self, faces, handoff=None, progress: tuple[str, str] | None = None
                ) -> Prediction:
        """uint8 or float pixels 0-255 (N, 48, 48) or (48, 48) (ferkit.arrays.check_faces)
        -> the Prediction of every face: stage 1 on every face, the specialist only on the
        faces handed to it (handoff_mask; ``handoff`` forces which, as the benchmark times a
        given share), combined by the cascade's rule (combine). ``progress``: what to call
        stage 1 and the specialist in a progress bar each (predict_probs), None: silent."""
        images = check_faces(faces)
        names = progress or (None, None)
        probs1 = predict_probs(self.stage1, images, tta=self.tta, progress=names[0])
        shown1 = calibrate(self.stage1_calibration, probs1)
        if self.stage2 is None:
            return Prediction(probs1.argmax(axis=1), shown1, shown1,
                              np.zeros(len(probs1), dtype=bool))
        if handoff is None:
            handoff = handoff_mask(probs1, self.classes, self.handoff_below)
        handed = predict_probs(self.stage2, images[handoff], tta=self.tta, progress=names[1])
        return combine(probs1, handed, self.classes, handoff,
                       (shown1, calibrate(self.cascade_calibration, handed)))


def calibrate(calibration: Calibration | None, probs: np.ndarray) -> np.ndarray:
    """``probs`` calibrated by ``calibration``; as they are where it is None."""
    return probs if calibration is None else calibration.apply(probs)
