"""Confusion matrices of stage 1 alone and of the cascade, with per-class metrics.

Usage:
    python3 confusion.py
    python3 confusion.py --help      # every option

The command itself is ferkit/app/confusion.py; this file keeps `python3 confusion.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.confusion import main

if __name__ == "__main__":
    sys.exit(run(main))
