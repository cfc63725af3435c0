"""Train the specialist CNN on a subset of classes: the second stage of the cascade.

Usage:
    python3 cnn_train_mod.py --specific 0_2_4_6
    python3 cnn_train_mod.py --help      # every option

The command itself is ferkit/app/cnn_train_mod.py; this file keeps `python3 cnn_train_mod.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.cnn_train_mod import main

if __name__ == "__main__":
    sys.exit(run(main))
