"""Progress display for long work (training epochs, prediction, BatchNorm passes): a bar
redrawn in place on a terminal, one line once done in a log file."""
from __future__ import annotations

import dataclasses
import os
import sys
import time

from ferkit.words import counted


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
    """'40 s' under a minute and a half, '3 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def command_seconds() -> float:
    """Seconds since this process started (Linux's /proc), so that an estimate of a command
    counts its imports and loading; 0 where the process start cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


# A face's forward pass (validation, BatchNorm statistics, flip TTA) against its share of a
# training step (forward, backward, Adam, augmentation): stage 1 in float32 scores ~790 faces/s
# where it trains ~290 on 2 AMD AVX512-BF16 cores (../shared/notes). Used until the first
# validation is timed.
FORWARD_SHARE = 0.37
# What a run's end costs beyond its forward passes: float32 copies built and traced, the
# model saved, the LiteRT export, the history and curves written (timed at 9-12 s on 2 AMD
# AVX512-BF16 cores, with 140 faces, so that the forward passes cost nothing).
FINISH_FIXED_S = 12.0
# An epoch's cost beyond its batches and its validation (its state and best weights saved),
# until the first epoch is timed.
EPOCH_EXTRA_S = 1.0


@dataclasses.dataclass(frozen=True)
class RunWork:
    """What a training command has left when its first epoch starts, in the units RunClock
    times: training batches, forward passes over faces, fixed costs."""

    epochs: int                  # epochs left
    steps: int                   # training batches an epoch
    batch_size: int
    val_faces: int               # scored after every epoch
    cycle_end_faces: tuple = ()  # forward passes at each cycle end left (BatchNorm + validation)
    finish_faces: int = 0        # forward passes after the last epoch
    finish_fixed_s: float = FINISH_FIXED_S


class RunClock:
    """The time of a whole training command: spent since the process started (imports,
    loading the faces, building the model) plus a model of what is left: the epochs
    (batches timed, validation timed once an epoch has run, modelled from the batches
    before), the cycle ends' and the run's end's forward passes, and its fixed costs. Each
    measured epoch updates the model, so the time left reaches zero only at the end."""

    def __init__(self, work: RunWork, clock=time.monotonic, spent: float | None = None):
        self.work, self.clock = work, clock
        self.started = clock() - (command_seconds() if spent is None else spent)
        self.batch_s = self.face_s = None
        self.extra_s = EPOCH_EXTRA_S
        self.epochs_done = self.cycle_ends_done = 0
        self.first_estimate = None
        self.loading_s = self.spent()  # made as the first epoch starts

    def spent(self) -> float:
        return self.clock() - self.started

    def forward_s(self) -> float:
        """Seconds of one face's forward pass: timed on validation, else modelled."""
        if self.face_s is not None:
            return self.face_s
        if self.batch_s is None:  # no epoch left to time (a run stopped while finishing)
            return 0.0
        return FORWARD_SHARE * self.batch_s / self.work.batch_size

    def epoch_s(self) -> float:
        w = self.work
        return w.steps * self.batch_s + w.val_faces * self.forward_s() + self.extra_s

    def left(self, batches_left: int | None = None) -> float:
        """Seconds left to the command's end; ``batches_left``: inside an epoch, its
        training batches still to run (its validation and saving follow)."""
        w, face = self.work, self.forward_s()
        epochs_after = w.epochs - self.epochs_done - (batches_left is not None)
        if self.batch_s is None:
            return w.finish_faces * face + w.finish_fixed_s
        current = (0.0 if batches_left is None else
                   batches_left * self.batch_s + w.val_faces * face + self.extra_s)
        cycle_ends = sum(w.cycle_end_faces[self.cycle_ends_done:]) * face
        return (current + epochs_after * self.epoch_s() + cycle_ends
                + w.finish_faces * face + w.finish_fixed_s)

    def timed_batches(self, seconds_per_batch: float, batches_left: int) -> float:
        """The first estimate, from the first batches' time (``batches_left`` of the first
        epoch still to run): the whole command's seconds."""
        self.batch_s = seconds_per_batch
        self.first_estimate = self.spent() + self.left(batches_left)
        return self.first_estimate

    def epoch_timed(self, train_s: float, val_s: float, total_s: float,
                    ended_cycle: bool) -> None:
        """An epoch done: its batches' seconds, its validation's, all of it (cycle-end work
        included when ``ended_cycle``)."""
        w = self.work
        self.epochs_done += 1
        self.batch_s = train_s / w.steps
        if w.val_faces and val_s > 0:
            self.face_s = val_s / w.val_faces
        if ended_cycle:
            self.cycle_ends_done += 1
        else:
            self.extra_s = max(0.0, total_s - train_s - val_s)

    def describe_first(self, timed: str) -> str:
        """The first estimate's line: the whole command and its parts."""
        w, face = self.work, self.forward_s()
        epochs = w.epochs * (w.steps * self.batch_s + self.extra_s)
        validation = w.epochs * w.val_faces * face
        ending = (sum(w.cycle_end_faces) + w.finish_faces) * face + w.finish_fixed_s
        return (f"estimated time: about {format_duration(self.first_estimate)} for the whole "
                f"command: {counted(w.epochs, 'epoch')} of {counted(w.steps, 'batch', 'batches')} "
                f"{format_duration(epochs)} ({self.batch_s:.2f} s a batch, timed over "
                f"{timed}), validation {format_duration(validation)}, cycle ends and the "
                f"final model (BatchNorm re-estimation, validation, LiteRT export) "
                f"{format_duration(ending)}, {format_duration(self.loading_s)} spent starting "
                f"and loading")


class EpochProgress:
    """What a training run shows while an epoch runs: on a terminal, a line redrawn in place
    (batches done, loss, accuracy, seconds spent and left in the epoch), cleared when the
    epoch ends so that the epoch's own line replaces it; in a log file, nothing. In the first
    epoch, on both, one line with the estimated time of the whole command (``run``, a
    RunClock), once ``TIMED_BATCHES`` batches after the first (which traces the graph) are
    timed, or at the epoch's end when it has fewer. Its ``batch_end``, ``test_begin``,
    ``test_end`` and ``epoch_end`` are Keras callback hooks; the epoch's timing goes to
    ``run``."""

    TIMED_BATCHES = 10
    REDRAW_S = 0.2  # at most five redraws a second

    def __init__(self, run: RunClock, terminal: bool | None = None, stream=None,
                 clock=time.monotonic):
        self.run, self.steps = run, run.work.steps
        self.stream = stream or sys.stdout
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.clock = clock
        self.estimated = False
        self.title, self.width, self.drawn_at = "", 0, None
        self.began = self.first_batch_end = self.train_end = self.test_began = None
        self.val_s = 0.0

    def epoch_begin(self, title: str) -> None:
        self.title, self.began, self.drawn_at = title, self.clock(), None
        self.first_batch_end = self.train_end = self.test_began = None
        self.val_s = 0.0

    def batch_end(self, batch: int, logs=None) -> None:
        now = self.clock()
        self.train_end = now
        if batch == 0:
            self.first_batch_end = now
        elif not self.estimated and batch >= self.TIMED_BATCHES:
            self.estimate((now - self.first_batch_end) / batch, f"batches 2-{batch + 1}",
                          self.steps - batch - 1)
        if self.terminal and (self.drawn_at is None or now - self.drawn_at >= self.REDRAW_S
                              or batch + 1 == self.steps):
            self.draw(batch + 1, logs or {}, now)

    def test_begin(self, logs=None) -> None:
        self.test_began = self.clock()

    def test_end(self, logs=None) -> None:
        self.val_s = self.clock() - self.test_began

    def epoch_end(self, *_) -> None:
        self.clear()
        if not self.estimated:
            elapsed = self.clock() - self.began
            self.estimate(elapsed / self.steps, "the first epoch", 0)

    def epoch_timed(self, total_s: float, ended_cycle: bool) -> None:
        """After the epoch's own work (saving, a cycle end): its timing to the run's clock.
        Batches after the first are timed apart from the first, which traces the graph."""
        train_end = self.train_end if self.train_end is not None else self.clock()
        if self.first_batch_end is not None and self.steps > 1:
            train_s = (train_end - self.first_batch_end) * self.steps / (self.steps - 1)
        else:
            train_s = train_end - self.began
        self.run.epoch_timed(train_s, self.val_s, total_s, ended_cycle)

    def estimate(self, seconds_per_batch: float, timed: str, batches_left: int) -> None:
        """One line: the whole command's estimated time and its parts."""
        self.estimated = True
        self.run.timed_batches(seconds_per_batch, batches_left)
        self.clear()
        self.write(self.run.describe_first(timed) + "\n")

    def draw(self, done: int, logs: dict, now: float) -> None:
        numbers = "".join(f", {key} {logs[key]:.4f}" for key in ("loss", "accuracy")
                          if key in logs)
        left = ""
        if done > 1:
            per_batch = (now - self.first_batch_end) / (done - 1)
            left = f", {format_duration(per_batch * (self.steps - done))} left in the epoch"
            if self.run.batch_s is not None:
                left += f", {format_duration(self.run.left(self.steps - done))} in the command"
        text = (f"{self.title}: {done}/{self.steps} batches{numbers}, "
                f"{now - self.began:.0f} s{left}")
        self.write("\r" + text.ljust(self.width))
        self.width, self.drawn_at = len(text), now

    def clear(self) -> None:
        if self.terminal and self.width:
            self.write("\r" + " " * self.width + "\r")
            self.width = 0

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
