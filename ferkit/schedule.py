"""The learning-rate schedule of a run: a first cosine phase, then short cosine warm
restarts ("cycles"), each ending at 1% of its peak; and how a run's total of epochs is laid
out into them."""
from __future__ import annotations

import dataclasses
import math

from ferkit.words import counted

FINAL_LR_SHARE = 0.01  # each cosine ends at 1% of its peak rate


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A first cosine phase of ``first_epochs`` epochs from ``lr``, then ``cycles`` warm
    restarts of ``cycle_epochs`` epochs each from ``cycle_lr``. Epochs are counted from 0
    over the whole run; the rate is constant within an epoch. ``cycles_left_out``: warm
    restarts the recipe asked for that the run's length had no room for (laid_out)."""

    first_epochs: int
    lr: float
    cycles: int = 0
    cycle_epochs: int = 1
    cycle_lr: float = 0.0
    cycles_left_out: int = 0

    @classmethod
    def laid_out(cls, epochs: int, lr: float, cycles: int, cycle_epochs: int,
                 cycle_lr: float) -> Schedule:
        """``epochs`` in all: the ``cycles`` warm restarts at the end, the first phase what
        remains. When the run is too short for them all, the last warm restarts are left
        out until the first phase has at least ``cycle_epochs`` epochs (so ``--epochs 2``
        is a first phase of 2 epochs and no warm restart). Nothing runs longer than
        ``epochs``."""
        room = max(0, (epochs - cycle_epochs) // cycle_epochs)
        kept = min(cycles, room)
        return cls(epochs - kept * cycle_epochs, lr, kept, cycle_epochs, cycle_lr,
                   cycles - kept)

    @classmethod
    def of(cls, recipe) -> Schedule:
        return cls.laid_out(recipe.epochs, recipe.lr, recipe.cycles, recipe.cycle_epochs,
                            recipe.cycle_lr)

    @classmethod
    def recorded(cls, sidecar: dict) -> Schedule | None:
        """The schedule a model's sidecar records, in either form: today's (``first_epochs``
        and the total ``epochs``), or the form before the total, whose ``epochs`` was the
        first phase (the shipped models trained before it). None for a model not trained
        by a trainer (an average)."""
        record = sidecar.get("schedule")
        if not record:
            return None
        first = record.get("first_epochs", record["epochs"])
        return cls(first, record["lr"], record["cycles"], record["cycle_epochs"],
                   record["cycle_lr"], record.get("cycles_left_out", 0))

    @property
    def total(self) -> int:
        return self.first_epochs + self.cycles * self.cycle_epochs

    def record(self) -> dict:
        """The sidecar's ``schedule``: the total and its layout."""
        return {"epochs": self.total, **dataclasses.asdict(self)}

    def position(self, epoch: int) -> tuple[int, int, int]:
        """(cycle, epoch within it, its length): cycle 0 is the first phase."""
        if epoch < self.first_epochs:
            return 0, epoch, self.first_epochs
        cycle, within = divmod(epoch - self.first_epochs, self.cycle_epochs)
        return cycle + 1, within, self.cycle_epochs

    def learning_rate(self, epoch: int) -> float:
        cycle, within, length = self.position(epoch)
        peak = self.lr if cycle == 0 else self.cycle_lr
        progress = within / max(length - 1, 1)
        return peak * (FINAL_LR_SHARE
                       + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * progress)))

    def ends_cycle(self, epoch: int) -> bool:
        """Whether ``epoch`` is the last of a warm-restart cycle (not of the first phase)."""
        cycle, within, length = self.position(epoch)
        return cycle > 0 and within == length - 1

    def describe(self, epoch: int) -> str:
        cycle, within, length = self.position(epoch)
        where = (f"phase 1 epoch {within + 1}/{length}" if cycle == 0 else
                 f"cycle {cycle}/{self.cycles} epoch {within + 1}/{length}")
        return f"epoch {epoch + 1}/{self.total} ({where})"

    def layout(self) -> str:
        """'120 epochs: a first phase of 60, then 10 warm restarts of 6'."""
        restarts = (f", then {counted(self.cycles, 'warm restart')} of "
                    f"{self.cycle_epochs}" if self.cycles else ", no warm restarts")
        return (f"{counted(self.total, 'epoch')}: a first phase of "
                f"{self.first_epochs}{restarts}")

    def left_out(self, average: str) -> str | None:
        """One line on what the recipe asked for and this run leaves out, None if nothing."""
        if not self.cycles_left_out:
            return None
        asked = self.cycles + self.cycles_left_out
        what = "the mean of their ends" if average == "swa" else "Adam's moving average"
        if self.cycles:
            return (f"left out: {self.cycles_left_out} of the recipe's "
                    f"{counted(asked, 'warm restart')} (no room in "
                    f"{counted(self.total, 'epoch')})")
        return (f"left out: the recipe's {counted(asked, 'warm restart')} of "
                f"{counted(self.cycle_epochs, 'epoch')} and {what} as the final weights (no "
                f"room in {counted(self.total, 'epoch')}; the model is the best epoch)")
