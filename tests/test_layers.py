"""The library core never names a script or a flag in what it says: its messages name their
parameters (``{name}``, InputError) and what would make a missing file (InputError.makes),
and the application layer (ferkit.app.cli) turns them into flags and commands."""
import ast
import re
from pathlib import Path

import pytest

from ferkit.app import cli
from ferkit.errors import DataError, ParameterError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.name for path in ROOT.glob("*.py"))
NAMES_APPLICATION = re.compile(r"--[a-z]|python3 |\b(" + "|".join(map(re.escape, SCRIPTS))
                               + r")\b")
# Strings that edit a run's recorded command line (state.json's "command"), which is the
# command a user typed: the run's own data, not the library's words.
RECORDED_COMMAND_EDITS = {("runstate.py", '"--epochs"'),
                          ("training.py", '"--resume"'), ("training.py", '"--out"')}


def docstrings(tree) -> set[int]:
    """The ids of the docstring nodes of a module and its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def application_words(source: str, module: str) -> list[str]:
    """'module:line: text' for each string literal (or f-string part) outside docstrings
    that names a top-level script, ``python3 `` or a flag."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in skip and NAMES_APPLICATION.search(node.value)
                and (module, repr(node.value).replace("'", '"')) not in RECORDED_COMMAND_EDITS):
            found.append(f"{module}:{node.lineno}: {node.value!r}")
    return found


def test_the_core_names_no_script_and_no_flag():
    found = [line for path in sorted((ROOT / "ferkit").glob("*.py"))
             for line in application_words(path.read_text(), path.name)]
    assert found == []


def test_the_check_finds_a_flag_a_script_and_an_f_string_part():
    source = ('"""Docstrings may say --usage and cnn_train.py."""\n'
              'hint = "make it with: python3 cnn_train.py"\n'
              'why = f"{x} (--usage to pick another split)"\n')
    assert [line.split(":")[1] for line in application_words(source, "m.py")] == ["2", "3"]


def test_a_missing_model_reads_in_python_words_and_as_a_command_on_the_command_line(tmp_path):
    from ferkit import paths
    with pytest.raises(DataError) as raised:
        paths.model_file(tmp_path / "m.h5", ("specialist", "0_2"))
    assert str(raised.value) == f"{tmp_path / 'm.h5'}: model file not found"
    assert cli.error_line(raised.value) == (f"{tmp_path / 'm.h5'}: model file not found; "
                                            f"make it with: python3 cnn_train_mod.py --specific 0_2")


def test_the_recognizer_names_its_parameter(tmp_path):
    from ferkit import Recognizer
    with pytest.raises(ParameterError) as raised:
        Recognizer(stage1=tmp_path / "none.h5")
    assert str(raised.value) == f"stage1: {tmp_path / 'none.h5'}: model file not found"
    assert cli.error_line(raised.value) == (f"--stage1: {tmp_path / 'none.h5'}: model file not "
                                            f"found; make it with: python3 cnn_train.py")


def test_the_runtime_line_names_the_parameter_in_each_layers_words():
    from ferkit.inference import runtime_line
    assert runtime_line("keras", "{runtime} keras") == "runtime: Keras (runtime keras)"
    assert runtime_line("keras", "{runtime} keras", cli.flag) == "runtime: Keras (--runtime keras)"
