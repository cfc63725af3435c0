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
    """A Bar over ``total`` units, shown as progress_verbosity() says."""
    return Bar(total, unit, progress_verbosity() if show else 0)


class Bar:
    """A progress bar with the calls of Keras' Progbar that the toolkit makes (``add``,
    ``update``, ``target``), without importing Keras: a LiteRT prediction never loads
    TensorFlow (its import, seconds long, was the cost of annotate.py's first video).
    ``target`` None: the count alone. verbose 1: redrawn in place; 2: one line when done;
    0: silent."""

    REDRAW_S = 0.05
    WIDTH = 30

    def __init__(self, target, unit: str = "step", verbose: int = 1, stream=None):
        self.target, self.unit, self.verbose = target, unit, verbose
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.current, self.drawn_at, self.done, self.width = 0, None, False, 0

    def add(self, n: int) -> None:
        self.update(self.current + n)

    def update(self, current: int, finalize: bool | None = None) -> None:
        self.current = current
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        now = time.monotonic()
        if self.verbose == 1 and (finalize or self.drawn_at is None
                                  or now - self.drawn_at >= self.REDRAW_S):
            line = self._line(now)
            # Padded to the longest line drawn, so a shorter one leaves no tail behind.
            self.width = max(self.width, len(line))
            self.stream.write("\r" + line.ljust(self.width) + ("\n" if finalize else ""))
            self.stream.flush()
            self.drawn_at = now
        elif self.verbose == 2 and finalize and not self.done:
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()
        self.done = self.done or finalize

    def _line(self, now: float) -> str:
        seconds = now - self.started
        each = f"{1000 * seconds / self.current:.0f}ms/{self.unit}" if self.current else ""
        if self.target:
            filled = min(self.WIDTH, self.WIDTH * self.current // self.target)
            bar = "[" + "=" * filled + "." * (self.WIDTH - filled) + "]"
            return f"{self.current}/{self.target} {bar} {seconds:.0f}s {each}"
        return f"{self.current} {self.unit}s {seconds:.0f}s {each}"


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
