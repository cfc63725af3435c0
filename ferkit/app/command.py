"""The `ferkit` command: one subcommand for each script's job, each the script itself.

Usage:
    ferkit --help                      # the subcommands, one line each
    ferkit predict test.csv out.csv    # = python3 predict.py test.csv out.csv
    ferkit annotate photo.jpg          # = python3 annotate.py photo.jpg
    ferkit COMMAND --help              # its options: the same parser as its script's

`python -m ferkit` is the same command. A subcommand runs its script's main with the rest
of the command line: the same options, outputs and exit codes (bad input: one line, 2).
"""
import argparse
import importlib
import sys

from ferkit.app import cli

# Subcommand -> its module in ferkit.app (and the top-level script of the same name.py).
COMMANDS = {
    "predict": "predict",
    "annotate": "annotate",
    "serve": "serve",
    "train": "cnn_train",
    "train-specialist": "cnn_train_mod",
    "train-dnn": "dnn_train",
    "average": "average_weights",
    "export": "export_tflite",
    "calibrate": "calibrate",
    "confusion": "confusion",
    "saliency": "saliency",
    "filters": "filter_vis",
}


def command_module(name: str):
    return importlib.import_module(f"ferkit.app.{COMMANDS[name]}")


def parser() -> argparse.ArgumentParser:
    """The top-level parser: its help lists every subcommand with its script's summary."""
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {cli.summary(command_module(name).__doc__)}"
                        for name in COMMANDS)
    top = argparse.ArgumentParser(
        prog="ferkit", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Facial expression recognition on FER2013-style faces: the toolkit's "
                    "commands.",
        epilog=f"commands:\n{listing}\n\n'ferkit COMMAND --help' lists a command's options.")
    top.add_argument("command", metavar="COMMAND", help="one of the commands below")
    top.add_argument("options", nargs="*", metavar="OPTION",
                     help="the command's options and arguments")
    top.add_argument("--version", action="version", version=f"ferkit {version()}")
    return top


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("ferkit")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "(not installed)"


def main(argv=None) -> int:
    """Run ``ferkit ARGV``: the subcommand argv[0] with the rest of argv."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):
        parser().parse_args(argv or ["--help"])  # prints and exits
    name, options = argv[0], argv[1:]
    if name not in COMMANDS:
        parser().error(f"unknown command {name!r}: expected one of {', '.join(COMMANDS)}")
    # Its parser names the program as it was typed: "usage: ferkit predict ..."; restored
    # after, so that a caller in the same process (a test, a notebook) keeps its own.
    argv_before, sys.argv = sys.argv, [f"ferkit {name}", *options]
    try:
        return cli.run(command_module(name).main, options)
    finally:
        sys.argv = argv_before


if __name__ == "__main__":
    sys.exit(main())
