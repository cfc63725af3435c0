"""Progress bars: redrawn in place on a terminal, one line in a log file."""
import sys

import pytest

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


def run_epoch(display, clock, steps, seconds_per_batch, validation_s=0.0, saving_s=0.0):
    began = clock.now
    display.epoch_begin("epoch 1/120 (phase 1 epoch 1/60)")
    for batch in range(steps):
        clock.now += seconds_per_batch
        display.batch_end(batch, {"loss": 1.5, "accuracy": 0.25})
    display.test_begin()
    clock.now += validation_s
    display.test_end()
    display.epoch_end(0, {})
    clock.now += saving_s
    display.epoch_timed(clock.now - began, ended_cycle=False)


def run_clock(clock, epochs, steps, val_faces=0, finish_faces=0, spent=0.0, **work):
    work = progress.RunWork(epochs=epochs, steps=steps, batch_size=32, val_faces=val_faces,
                            finish_faces=finish_faces, **work)
    return progress.RunClock(work, clock=clock, spent=spent)


def test_epoch_progress_redraws_in_place_and_estimates_the_command_on_a_terminal():
    clock, stream = Clock(), Stream()
    run = run_clock(clock, epochs=120, steps=50, finish_fixed_s=0, spent=0)
    display = progress.EpochProgress(run, terminal=True, stream=stream, clock=clock)
    run_epoch(display, clock, 50, 0.5)
    frames = stream.text.split("\r")
    assert "epoch 1/120 (phase 1 epoch 1/60): 1/50 batches, loss 1.5000, accuracy 0.2500, 0 s" \
        in frames[1]
    # The time left, in the epoch and in the command: 48 batches of 0.5 s after the second.
    assert any(frame.startswith("epoch 1/120 (phase 1 epoch 1/60): 2/50 batches, loss 1.5000, "
                                "accuracy 0.2500, 1 s, 24 s left in the epoch")
               for frame in frames)
    assert any("50/50 batches" in frame and "0 s left in the epoch" in frame for frame in frames)
    # One line, after batches 2-11 were timed: 0.5 s a batch x 50 batches x 120 epochs, plus
    # one saving second an epoch until one is timed.
    lines = [line for line in stream.text.split("\n")[:-1]]
    assert len(lines) == 1 and "estimated time: about 52 min for the whole command: 120 " \
        "epochs of 50 batches 52 min (0.50 s a batch, timed over batches 2-11)" in lines[0]
    assert stream.text.endswith("\r")  # the bar cleared: the epoch's own line comes next
    run_epoch(display, clock, 50, 0.5)
    assert stream.text.count("estimated time") == 1


def test_epoch_progress_in_a_log_is_the_estimate_alone():
    clock, stream = Clock(), Stream()
    run = run_clock(clock, epochs=2, steps=3, finish_fixed_s=0, spent=0)
    display = progress.EpochProgress(run, terminal=False, stream=stream, clock=clock)
    run_epoch(display, clock, 3, 20.0)  # too few batches to time apart: the whole epoch
    assert stream.text.startswith("estimated time: about 2 min for the whole command: 2 "
                                  "epochs of 3 batches 2 min (20.00 s a batch, timed over the "
                                  "first epoch)")
    assert stream.text.count("\n") == 1


def test_the_first_estimate_covers_loading_validation_cycle_ends_and_the_end():
    clock, stream = Clock(), Stream()
    clock.now = 100.0
    # 40 s spent before the first epoch; 2 epochs of 20 batches of 32 faces at 1 s a
    # batch; 320 validation faces an epoch; one cycle end and the end scoring 640 and
    # 1,600 faces; 12 s of saving and export.
    run = run_clock(clock, epochs=2, steps=20, val_faces=320, finish_faces=1600,
                    cycle_end_faces=(640,), finish_fixed_s=12.0, spent=40.0)
    display = progress.EpochProgress(run, terminal=False, stream=stream, clock=clock)
    run_epoch(display, clock, 20, 1.0, validation_s=3.7, saving_s=1.0)
    # A face's forward pass modelled as FORWARD_SHARE of its training step until timed.
    face = progress.FORWARD_SHARE / 32
    expected = 40 + 2 * (20 * 1.0 + 1.0) + (2 * 320 + 640 + 1600) * face + 12.0
    assert run.first_estimate == pytest.approx(expected)
    assert "spent starting and loading" in stream.text and "40 s spent" in stream.text


def test_the_time_left_is_measured_each_epoch_and_reaches_zero_only_at_the_end():
    clock = Clock()
    run = run_clock(clock, epochs=3, steps=10, val_faces=100, finish_faces=300,
                    finish_fixed_s=5.0)
    display = progress.EpochProgress(run, terminal=False, stream=Stream(), clock=clock)
    lefts = []
    for _ in range(3):
        run_epoch(display, clock, 10, 2.0, validation_s=4.0, saving_s=2.0)
        lefts.append(run.left())
    # Each epoch: 20 s of batches, 4 of validation (0.04 s a face), 2 of saving.
    assert lefts == pytest.approx([2 * 26 + 300 * 0.04 + 5, 26 + 17, 17])
    assert min(lefts) > 0  # after the last epoch the end's work is still to come


def test_durations_under_a_minute_and_a_half_are_in_seconds():
    assert [progress.format_duration(s) for s in (0, 40, 89, 91, 3600 + 300)] == [
        "0 s", "40 s", "89 s", "2 min", "1 h 05 min"]


# A small training run with stdout on a pseudo-terminal, then on a log file, in this
# process: only sys.stdout changes between the two (a fresh Python would spend seconds
# importing TensorFlow again; the LiteRT export is skipped: seconds, and tested elsewhere).
@pytest.mark.slow
def test_training_shows_progress_inside_an_epoch_on_a_terminal_not_in_a_log(
        train_csv, tmp_path, no_tflite_export):
    import contextlib
    import os
    import pty
    import threading

    from ferkit.app import cli
    from ferkit.app import dnn_train

    argv = ["--data", str(train_csv), "--epochs", "2", "--batch-size", "8",
            "--precision", "float32"]
    leader, follower = pty.openpty()
    chunks = []

    def drain():  # read the terminal as it is written, so that the writer never blocks
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    reader = threading.Thread(target=drain)
    reader.start()
    with open(follower, "w") as tty, contextlib.redirect_stdout(tty):
        assert tty.isatty()
        code = cli.run(dnn_train.main, [*argv, "--out", str(tmp_path / "tty.h5")])
    reader.join(timeout=60)
    os.close(leader)
    assert code == 0
    with open(tmp_path / "log.txt", "w") as log, contextlib.redirect_stdout(log):
        assert cli.run(dnn_train.main, [*argv, "--out", str(tmp_path / "log.h5")]) == 0
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
