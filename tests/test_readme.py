"""README stays true: every option of every script is documented, and the set-up
commands it gives are the ones CI runs."""
import importlib

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
SCRIPTS = ["cnn_train", "cnn_train_mod", "dnn_train", "average_weights", "predict", "confusion",
           "saliency", "filter_vis"]


class ParserBuilt(Exception):
    """Raised in place of parsing, carrying the parser a script built."""


def built_parser(module, monkeypatch):
    def capture(parser, argv=None):
        raise ParserBuilt(parser)
    monkeypatch.setattr("argparse.ArgumentParser.parse_args", capture)
    with pytest.raises(ParserBuilt) as built:
        module.parse_args([])
    return built.value.args[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_is_in_readme(script, monkeypatch):
    parser = built_parser(importlib.import_module(script), monkeypatch)
    options = [s for action in parser._actions for s in action.option_strings
               if s.startswith("--") and s != "--help"]
    missing = [o for o in options if f"`{o}" not in README]
    assert not missing, f"{script}.py options missing from README: {missing}"


def test_ci_runs_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("python3 -m pip install -r requirements.txt", "python3 -m pytest -q"):
        assert command in README
    assert "pip install -q -r requirements.txt" in ci and "python3 -m pytest -q" in ci
