"""Progress bars: redrawn in place on a terminal, one line in a log file."""
import sys

from ferkit import progress


def advance(bar, steps, size):
    for _ in range(steps):
        bar.add(size)


def test_progress_bar_writes_one_clean_line_to_a_log(capsys):
    # Under capsys stdout is not a terminal, as with `nohup ... > log`.
    advance(progress.progress_bar(10, "face"), 5, 2)
    out = capsys.readouterr().out
    assert out.startswith("10/10") and out.count("\n") == 1 and "face" in out
    assert not any(code in out for code in ("\r", "\b", "\x1b"))


def test_progress_bar_redraws_in_place_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    advance(progress.progress_bar(10, "face"), 5, 2)
    out = capsys.readouterr().out
    # Progbar throttles redraws (one per 0.05 s), so a fast loop shows its first and last.
    assert out.count("\r") >= 2 and out.rstrip("\n").count("\n") == 0 and "10/10" in out


def test_hidden_progress_bar_writes_nothing(capsys):
    advance(progress.progress_bar(10, "face", show=False), 5, 2)
    assert capsys.readouterr().out == ""


# --- inside a training epoch ----------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Stream:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def run_epoch(display, clock, steps, seconds_per_batch):
    display.epoch_begin("epoch 1/120 (phase 1 epoch 1/60)")
    for batch in range(steps):
        clock.now += seconds_per_batch
        display.batch_end(batch, {"loss": 1.5, "accuracy": 0.25})
    display.epoch_end(0, {})


def test_epoch_progress_redraws_in_place_and_estimates_the_run_on_a_terminal():
    clock, stream = Clock(), Stream()
    display = progress.EpochProgress(steps=50, epochs=120, terminal=True, stream=stream,
                                     clock=clock)
    run_epoch(display, clock, 50, 0.5)
    frames = stream.text.split("\r")
    assert "epoch 1/120 (phase 1 epoch 1/60): 1/50 batches, loss 1.5000, accuracy 0.2500, 0 s" \
        in frames[1]
    assert any("50/50 batches" in frame for frame in frames)
    # One line, after batches 2-11 were timed: 0.5 s a batch x 50 batches x 120 epochs.
    lines = [line for line in stream.text.split("\n")[:-1]]
    assert len(lines) == 1 and lines[0].endswith(
        "estimated time: about 50 min for 120 epochs of 50 batches (0.50 s a batch, timed "
        "over batches 2-11)")
    assert stream.text.endswith("\r")  # the bar cleared: the epoch's own line comes next
    run_epoch(display, clock, 50, 0.5)
    assert stream.text.count("estimated time") == 1


def test_epoch_progress_in_a_log_is_the_estimate_alone():
    clock, stream = Clock(), Stream()
    display = progress.EpochProgress(steps=3, epochs=2, terminal=False, stream=stream,
                                     clock=clock)
    run_epoch(display, clock, 3, 20.0)  # too few batches to time apart: the whole epoch
    assert stream.text == ("estimated time: about 2 min for 2 epochs of 3 batches (20.00 s a "
                           "batch, timed over the first epoch)\n")


# A small training run with stdout on a pseudo-terminal, then on a log file, in one fresh
# Python (its LiteRT export skipped: seconds, and tested elsewhere).
TRAIN_TWICE = r"""
import contextlib, sys
from ferkit.app import dnn_train
import ferkit.training
from ferkit.app import cli
ferkit.training.export_tflite = lambda out: None
data, folder = sys.argv[1], sys.argv[2]
argv = ["--data", data, "--epochs", "2", "--batch-size", "8", "--precision", "float32"]
assert cli.run(dnn_train.main, [*argv, "--out", folder + "/tty.h5"]) == 0
with open(folder + "/log.txt", "w") as log, contextlib.redirect_stdout(log):
    assert cli.run(dnn_train.main, [*argv, "--out", folder + "/log.h5"]) == 0
"""


def test_training_shows_progress_inside_an_epoch_on_a_terminal_not_in_a_log(train_csv,
                                                                            tmp_path):
    import os
    import pty
    import subprocess

    from conftest import ROOT

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", TRAIN_TWICE, str(train_csv),
                                str(tmp_path)], cwd=ROOT, stdout=follower,
                               stderr=subprocess.DEVNULL, env={**os.environ,
                                                               "TF_CPP_MIN_LOG_LEVEL": "3"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0
    terminal = b"".join(chunks).decode()
    # 70 faces, 63 for training: 8 batches of 8, redrawn in place; then the epoch's line.
    assert "\repoch 1/2 (phase 1 epoch 1/2): 1/8 batches, loss" in terminal
    assert "epoch 2/2 (phase 1 epoch 2/2): 8/8 batches" in terminal
    assert terminal.count("estimated time: about") == 1
    log = (tmp_path / "log.txt").read_text()
    assert "\r" not in log and "batches, loss" not in log
    assert log.count("estimated time: about") == 1
    epoch_lines = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert [line[:9] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]
