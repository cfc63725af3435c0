"""Train the stage-1 CNN on all seven classes: the whole recipe in one command.

Usage:
    python3 cnn_train.py
    python3 cnn_train.py --help      # every option

The command itself is ferkit/app/cnn_train.py; this file keeps `python3 cnn_train.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.cnn_train import main

if __name__ == "__main__":
    sys.exit(run(main))
