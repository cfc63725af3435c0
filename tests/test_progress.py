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
