"""The three trainers' recipes as frozen dataclasses: what ``ferkit.training.train`` runs,
and the defaults the trainers' command lines show (their options are these fields).

A run lasts ``epochs`` epochs in all, as in Keras' ``fit``. Inside it, ``cycles`` warm
restarts of ``cycle_epochs`` epochs each come last; the first cosine phase is what
remains (``ferkit.schedule.Schedule.laid_out`` says how a run too short for all the warm
restarts drops them). Each value is checked when the recipe is made, before any work
(this module imports neither TensorFlow nor the data stack).
"""
from __future__ import annotations

import dataclasses

from ferkit import MODELS
from ferkit.errors import ParameterError
from ferkit.labels import NUM_CLASSES

# The final weights of a run with warm restarts: the mean of the cycle ends (swa), or
# Adam's moving average of the weights over the whole run (ema).
AVERAGES = ("swa", "ema")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

# Adam at 1e-3 leaves these networks predicting the majority class on FER2013; 3e-4 learns.
DEFAULT_LR = 3e-4
# Starting from trained weights, half the rate: a full one first unlearns what they know,
# a much smaller one leaves a specialist a copy of stage 1 (RESULTS.md).
FINE_TUNE_LR = 1.5e-4


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """What every trainer shares: the schedule, the final average, the loss, the data
    stream and the split. Subclasses give each trainer's defaults and its own fields."""

    epochs: int                  # the whole run
    lr: float = DEFAULT_LR       # peak of the first cosine phase
    cycles: int = 0              # warm restarts, at the end of the run
    cycle_epochs: int = 1        # epochs of each warm restart
    cycle_lr: float = FINE_TUNE_LR  # peak of each warm restart
    average: str = "swa"         # final weights of a run with warm restarts (AVERAGES)
    ema_momentum: float = 0.999  # of Adam's moving average, per step
    label_smoothing: float = 0.0
    augment: bool = False
    batch_size: int = 128
    val_split: float = 0.1
    seed: int = 42
    precision: str = "auto"      # PRECISIONS

    architecture = "cnn"         # (class attributes, not fields)

    def __post_init__(self):
        check_recipe(self)

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(range(NUM_CLASSES))

    @property
    def build_options(self) -> dict:
        """The model builder's keyword options (ferkit.models.build_model)."""
        return {"dense_dropout": self.dense_dropout}

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stage1Recipe(Recipe):
    """Stage 1, the 7-class CNN (cnn_train.py): a long first cosine phase, then short warm
    restarts, Adam's moving average of the weights kept (on validation it beat the mean of
    the cycle ends at the end of the run); less dropout than a plain run and label
    smoothing, because the averaged weights no longer underfit and FER2013's labels are
    noisy. 120 epochs: 60 + 10 x 6."""

    epochs: int = 120
    cycles: int = 10
    cycle_epochs: int = 6
    average: str = "ema"
    label_smoothing: float = 0.1
    augment: bool = True
    conv_dropout: float = 0.05
    dense_dropout: float = 0.1
    bn_momentum: float = 0.99
    recalibrate_bn: bool = True       # re-estimate BatchNorm on the plain training faces
    init_from: str | None = None      # a trained 7-class CNN to start from (a warm restart)

    @property
    def build_options(self) -> dict:
        return {"conv_dropout": self.conv_dropout, "dense_dropout": self.dense_dropout,
                "bn_momentum": self.bn_momentum}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpecialistRecipe(Stage1Recipe):
    """The specialist (cnn_train_mod.py), grown from stage 1 (``init_from``): a short first
    phase at the fine-tuning rate, then short warm restarts, whose ends' mean beat Adam's
    moving average on validation. 18 epochs: 6 + 4 x 3. From scratch (``from_scratch``)
    it takes stage 1's first phase and rate before the same warm restarts.

    Training ends by tuning the cascade's hand-off against ``stage1`` (default: the
    ``init_from`` model) on its validation split, recorded in the specialist's record
    (ferkit.evaluation.record_handoff); with neither, nothing is tuned and the cascade
    hands over every face stage 1 puts in the specialist's classes."""

    specific: tuple[int, ...] = (0, 2, 4, 6)  # its classes, in output order
    stage1: str | None = None  # the 7-class CNN to tune the hand-off against
    epochs: int = 18
    lr: float = FINE_TUNE_LR
    cycles: int = 4
    cycle_epochs: int = 3
    average: str = "swa"
    init_from: str | None = str(MODELS / "cnn.h5")

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(self.specific)

    @property
    def handoff_stage1(self) -> str | None:
        """The stage 1 the hand-off is tuned against (None: not tuned)."""
        return self.stage1 or self.init_from

    @classmethod
    def from_scratch(cls, **fields) -> SpecialistRecipe:
        """The recipe without a stage 1 to grow from: stage 1's first phase (60 epochs from
        3e-4), then the specialist's warm restarts: 72 epochs."""
        return cls(**{**SPECIALIST_FROM_SCRATCH, "init_from": None, **fields})


@dataclasses.dataclass(frozen=True, kw_only=True)
class DnnRecipe(Recipe):
    """The DNN baseline (dnn_train.py): one cosine of 40 epochs, the best epoch kept;
    augmentation only slows what it can learn."""

    epochs: int = 40
    dense_dropout: float = 0.3

    architecture = "dnn"


SPECIALIST_FROM_SCRATCH = {"epochs": 60 + 4 * 3, "lr": DEFAULT_LR}
RECIPES = {"Stage1Recipe": Stage1Recipe, "SpecialistRecipe": SpecialistRecipe,
           "DnnRecipe": DnnRecipe}


def recipe_fields(recipe_class) -> dict:
    """{field name: default} of a recipe class."""
    return {f.name: f.default for f in dataclasses.fields(recipe_class)}


def recipe_record(recipe: Recipe) -> dict:
    """The recipe as JSON: its class name and its fields (a run's state, a sidecar)."""
    return {"kind": type(recipe).__name__, **dataclasses.asdict(recipe)}


def recipe_from_record(record: dict) -> Recipe:
    """recipe_record's inverse; fields the class does not have are ignored."""
    cls = RECIPES[record["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {key: value for key, value in record.items() if key in names}
    if "specific" in fields:
        fields["specific"] = tuple(fields["specific"])
    return cls(**fields)


# --- the checks ------------------------------------------------------------------------------

def check_recipe(recipe: Recipe) -> None:
    """Every value of ``recipe`` in its range, else a ParameterError naming the field."""
    for name in ("epochs", "batch_size", "cycle_epochs"):
        _require(recipe, name, lambda v: isinstance(v, int) and v > 0, "a positive integer")
    _require(recipe, "cycles", lambda v: isinstance(v, int) and v >= 0,
             "0 or more warm restarts")
    for name in ("lr", "cycle_lr"):
        _require(recipe, name, lambda v: v > 0, "a positive learning rate")
    _require(recipe, "label_smoothing", lambda v: 0 <= v < 1,
             "a share from 0 up to (not including) 1")
    _require(recipe, "ema_momentum", lambda v: 0 < v < 1, "a momentum between 0 and 1")
    _require(recipe, "val_split", lambda v: 0 < v < 1, "a share between 0 and 1")
    _require(recipe, "average", lambda v: v in AVERAGES, "one of " + ", ".join(AVERAGES))
    _require(recipe, "precision", lambda v: v in PRECISIONS, "one of " + ", ".join(PRECISIONS))
    for name in ("conv_dropout", "dense_dropout"):
        if hasattr(recipe, name):
            _require(recipe, name, lambda v: 0 <= v < 1, "a dropout rate from 0 up to 1")
    if hasattr(recipe, "bn_momentum"):
        _require(recipe, "bn_momentum", lambda v: 0 < v < 1, "a momentum between 0 and 1")
    if hasattr(recipe, "specific"):
        classes = list(recipe.specific)
        _require(recipe, "specific", lambda v: len(classes) >= 2 and len(set(classes)) ==
                 len(classes) and all(c in range(NUM_CLASSES) for c in classes),
                 "at least two distinct classes 0-6")


def _require(recipe, name: str, holds, expected: str) -> None:
    value = getattr(recipe, name)
    try:
        good = holds(value)
    except TypeError:
        good = False
    if not good:
        raise ParameterError(name, f"expected {expected}, found {value}")
