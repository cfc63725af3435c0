"""Average trained models' weights and re-estimate BatchNorm: a better model without training.

Usage:
    python3 average_weights.py models/cnn_cycle2.h5 models/cnn_cycle3.h5 --out models/cnn.h5
    python3 average_weights.py --help      # every option

The command itself is ferkit/app/average_weights.py; this file keeps `python3 average_weights.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.average_weights import main

if __name__ == "__main__":
    sys.exit(run(main))
