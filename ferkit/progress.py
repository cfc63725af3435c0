"""Progress display for long work (training epochs, prediction, BatchNorm passes): a bar
redrawn in place on a terminal, one line once done in a log file."""
from __future__ import annotations

import sys
import time


def progress_verbosity() -> int:
    """Keras' ``verbose`` for a progress display: 1 (redrawn in place) on a terminal, 2 (one
    line per bar or epoch, once done) when stdout is a log file (``nohup ... > log``), where
    redrawing would fill the log with a frame per update."""
    return 1 if sys.stdout.isatty() else 2


def progress_bar(total: int, unit: str, show: bool = True):
    """A keras Progbar over ``total`` units, shown as progress_verbosity() says."""
    from ferkit.backend import keras

    return keras.utils.Progbar(total, unit_name=unit,
                               verbose=progress_verbosity() if show else 0)


def format_duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class EpochProgress:
    """What a training run shows while an epoch runs: on a terminal, a line redrawn in place
    (batches done, loss, accuracy, seconds), cleared when the epoch ends so that the
    epoch's own line replaces it; in a log file, nothing. In the first epoch, on both, one
    line with the estimated time of the ``epochs`` epochs left, once ``TIMED_BATCHES``
    batches after the first (which traces the graph) are timed, or at the epoch's end when
    it has fewer. Its ``batch_end`` and ``epoch_end`` are Keras callback hooks."""

    TIMED_BATCHES = 10
    REDRAW_S = 0.2  # at most five redraws a second

    def __init__(self, steps: int, epochs: int, terminal: bool | None = None,
                 stream=None, clock=time.monotonic):
        self.steps, self.epochs = steps, epochs
        self.stream = stream or sys.stdout
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.clock = clock
        self.estimated = False
        self.title, self.width, self.drawn_at = "", 0, None
        self.began = self.first_batch_end = None

    def epoch_begin(self, title: str) -> None:
        self.title, self.began, self.first_batch_end, self.drawn_at = title, self.clock(), None, None

    def batch_end(self, batch: int, logs=None) -> None:
        now = self.clock()
        if batch == 0:
            self.first_batch_end = now
        elif not self.estimated and batch >= self.TIMED_BATCHES:
            self.estimate((now - self.first_batch_end) / batch, f"batches 2-{batch + 1}")
        if self.terminal and (self.drawn_at is None or now - self.drawn_at >= self.REDRAW_S
                              or batch + 1 == self.steps):
            self.draw(batch + 1, logs or {}, now)

    def epoch_end(self, *_) -> None:
        self.clear()
        if not self.estimated:
            elapsed = self.clock() - self.began
            self.estimate(elapsed / self.steps, "the first epoch")

    def estimate(self, seconds_per_batch: float, timed: str) -> None:
        """One line: the run's epochs left and their estimated time."""
        self.estimated = True
        total = seconds_per_batch * self.steps * self.epochs
        self.clear()
        self.write(f"estimated time: about {format_duration(total)} for {self.epochs} "
                   f"epoch{'s' * (self.epochs != 1)} of {self.steps} batches "
                   f"({seconds_per_batch:.2f} s a batch, timed over {timed})\n")

    def draw(self, done: int, logs: dict, now: float) -> None:
        numbers = "".join(f", {key} {logs[key]:.4f}" for key in ("loss", "accuracy")
                          if key in logs)
        text = f"{self.title}: {done}/{self.steps} batches{numbers}, {now - self.began:.0f} s"
        self.write("\r" + text.ljust(self.width))
        self.width, self.drawn_at = len(text), now

    def clear(self) -> None:
        if self.terminal and self.width:
            self.write("\r" + " " * self.width + "\r")
            self.width = 0

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
