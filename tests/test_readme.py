"""README stays true to the commands: every option it names exists in the parser of the
`ferkit` subcommand or script it gives it to (an option may be documented only in --help,
but README may not name one that does not exist), it shows every subcommand, it stays a
guide of at most 300 lines, and its set-up commands are the ones CI runs."""
import importlib
import re

import pytest

from conftest import ROOT
from ferkit.app.command import COMMANDS

README = (ROOT / "README.md").read_text()
MAX_README_LINES = 300  # the project's own limit for a user's guide
# Every script README may run as `python3 <path> ...`, and the module whose parse_args builds
# its parser. The one list of scripts: add a new script here (test_every_script_is_listed
# fails until it is). The `ferkit` subcommands are added below, from ferkit.app.command.
SCRIPTS = {
    "cnn_train.py": "ferkit.app.cnn_train",
    "cnn_train_mod.py": "ferkit.app.cnn_train_mod",
    "dnn_train.py": "ferkit.app.dnn_train",
    "average_weights.py": "ferkit.app.average_weights",
    "predict.py": "ferkit.app.predict",
    "confusion.py": "ferkit.app.confusion",
    "saliency.py": "ferkit.app.saliency",
    "filter_vis.py": "ferkit.app.filter_vis",
    "annotate.py": "ferkit.app.annotate",
    "export_tflite.py": "ferkit.app.export_tflite",
    "serve.py": "ferkit.app.serve",
    "calibrate.py": "ferkit.app.calibrate",
    "bench/throughput.py": "bench.throughput",
    "bench/results.py": "bench.results",
    "bench/framing.py": "bench.framing",
    "bench/compare_fer_package.py": "bench.compare_fer_package",
    "bench/annotate_speed.py": "bench.annotate_speed",
    "bench/serve_load.py": "bench.serve_load",
    "bench/pin_shipped_models.py": "bench.pin_shipped_models",
}
SCRIPTS.update({f"ferkit {name}": f"ferkit.app.{module}" for name, module in COMMANDS.items()})
SETUP_COMMANDS = ("python3 -m pip install -r requirements.txt -e .", "python3 -m pytest -q")

OPTION = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
OTHER_TOOLS_OPTIONS = {"--depth", "--no-deps"}  # git clone's and pip's, in README's install
COMMAND = re.compile(r"python3 (\S+\.py)\b|(?<![\w.-])(ferkit [a-z][\w-]*)")
# Where a command named inline or in a code block ends: the end of its code span, a shell
# comment, or the next command of a pipeline or list.
COMMAND_END = re.compile(r"`|\s#|;|&&|\|\|?")


class ParserBuilt(Exception):
    """Raised in place of parsing, carrying the parser a script built."""


def built_parser(module_name, monkeypatch):
    def capture(parser, args=None, namespace=None):
        raise ParserBuilt(parser)
    monkeypatch.setattr("argparse.ArgumentParser.parse_args", capture)
    with pytest.raises(ParserBuilt) as built:
        importlib.import_module(module_name).parse_args([])
    return built.value.args[0]


@pytest.fixture(scope="module")
def options_by_script():
    """{script path: the set of its --options}, from the parsers the scripts build."""
    options = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for script, module_name in SCRIPTS.items():
            parser = built_parser(module_name, monkeypatch)
            options[script] = {s for action in parser._actions for s in action.option_strings
                               if s.startswith("--")}
    return options


def readme_commands(text):
    """(script, [--options]) for every `python3 SCRIPT.py ...` and `ferkit COMMAND ...` in
    the text, inline or in a code block (a backslash continues a line)."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        for match in COMMAND.finditer(line):
            arguments = COMMAND_END.split(line[match.end():], maxsplit=1)[0]
            commands.append((match.group(1) or match.group(2), OPTION.findall(arguments)))
    return commands


def shown(script) -> str:
    return script if script.startswith("ferkit ") else f"python3 {script}"


def misnamed_options(text, options_by_script):
    """What the text names that no parser has: one line per problem, empty when all is well."""
    problems = []
    for script, options in readme_commands(text):
        if script not in options_by_script:
            problems.append(f"`{shown(script)}`: not a script tests/test_readme.py knows "
                            f"(SCRIPTS)")
            continue
        problems += [f"`{shown(script)}`: no option {option}"
                     for option in options if option not in options_by_script[script]]
    every_option = set().union(*options_by_script.values())
    problems += [f"{option}: no script has it"
                 for option in sorted(set(OPTION.findall(text)) - every_option
                                      - OTHER_TOOLS_OPTIONS)]
    return problems


def test_every_option_readme_names_exists(options_by_script):
    problems = misnamed_options(README, options_by_script)
    assert not problems, "README.md names what no script has:\n" + "\n".join(problems)


def test_readme_shows_every_ferkit_command():
    run = {script for script, _ in readme_commands(README)}
    missing = [command for command in SCRIPTS if command.startswith("ferkit ")
               and command not in run]
    assert not missing, f"README never shows how to run {missing}"


def test_an_option_no_script_has_is_caught(options_by_script):
    text = ("```\npython3 predict.py data/test.csv out.csv \\\n    --no-such-option\n```\n"
            "Inline, `python3 cnn_train.py --tta`, `ferkit train --tta` and `--no-such-option`"
            " in prose.\n")
    assert misnamed_options(text, options_by_script) == [
        "`python3 predict.py`: no option --no-such-option",
        "`python3 cnn_train.py`: no option --tta",
        "`ferkit train`: no option --tta",
        "--no-such-option: no script has it",
    ]
    assert misnamed_options("`python3 nowhere.py --tta`; `ferkit nowhere`", options_by_script) == [
        "`python3 nowhere.py`: not a script tests/test_readme.py knows (SCRIPTS)",
        "`ferkit nowhere`: not a script tests/test_readme.py knows (SCRIPTS)"]


def test_every_script_is_listed():
    scripts = {path.name for path in ROOT.glob("*.py")}
    assert scripts == {script for script in SCRIPTS if script.endswith(".py") and "/" not in script}


def test_readme_is_short():
    lines = len(README.splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines, at most {MAX_README_LINES}"


def without_quiet(command):
    """A command's words without -q, which only changes how much it prints."""
    return [word for word in command.split() if word != "-q"]


def test_ci_runs_readme_setup_commands():
    ci_commands = [without_quiet(line) for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in SETUP_COMMANDS:
        assert command in README
        assert without_quiet(command) in ci_commands, f".ci/run does not run {command!r}"
