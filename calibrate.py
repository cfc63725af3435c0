"""Calibrate models and the cascade: fit their temperatures on the validation split and write
them into the sidecars (the weights are not touched).

Usage:
    python3 calibrate.py
    python3 calibrate.py --help      # every option

The command itself is ferkit/app/calibrate.py; this file keeps `python3 calibrate.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.calibrate import main

if __name__ == "__main__":
    sys.exit(run(main))
