"""Train the plain DNN baseline (dense 512-512-512-256-7 on the flat pixels).

Usage:
    python3 dnn_train.py
    python3 dnn_train.py --help      # every option

The command itself is ferkit/app/dnn_train.py; this file keeps `python3 dnn_train.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.dnn_train import main

if __name__ == "__main__":
    sys.exit(run(main))
