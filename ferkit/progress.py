"""Progress display for long work (training epochs, prediction, BatchNorm passes): a bar
redrawn in place on a terminal, one line once done in a log file."""
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
