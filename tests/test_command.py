"""The `ferkit` command (ferkit.app.command): one subcommand per script, each with its
script's parser, options and outputs; `ferkit --help` lists them; bad input is one line."""
import subprocess
import sys

import pytest

from conftest import ROOT
from ferkit.app import cli
from ferkit.app.command import COMMANDS, main


def test_every_script_has_a_subcommand():
    scripts = {path.stem for path in ROOT.glob("*.py")}
    assert set(COMMANDS.values()) == scripts


def test_help_lists_every_command_with_its_scripts_summary(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in listing
    assert "Predict expressions with the two-stage cascade" in listing


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_subcommands_help_is_its_scripts_help(name, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    command_help = capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", [f"{COMMANDS[name]}.py"])
    with pytest.raises(SystemExit):
        __import__(f"ferkit.app.{COMMANDS[name]}", fromlist=["main"]).main(["--help"])
    script_help = capsys.readouterr().out
    assert command_help.startswith(f"usage: ferkit {name} ")
    assert command_help.replace(f"ferkit {name}", "PROG").split() == \
        script_help.replace(f"{COMMANDS[name]}.py", "PROG").split()


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        main(["prdict"])
    assert done.value.code == 2
    assert "unknown command 'prdict'" in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # main names the program in sys.argv
    assert main(["predict", str(tmp_path / "missing.csv"), str(tmp_path / "out.csv")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing.csv'}: file not found\n"
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_python_dash_m_ferkit_is_the_command():
    done = subprocess.run([sys.executable, "-m", "ferkit", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "train-specialist" in done.stdout


def test_a_trainer_records_the_command_as_it_was_typed(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ferkit train"])
    assert cli.command_line("cnn_train.py", ["--epochs", "2"]) == "ferkit train --epochs 2"
    monkeypatch.setattr(sys, "argv", ["/checkout/cnn_train.py"])
    assert cli.command_line("cnn_train.py", ["--epochs", "2"]) == \
        "python3 cnn_train.py --epochs 2"
