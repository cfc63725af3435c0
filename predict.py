"""Predict expressions with the two-stage cascade and write a Kaggle-style 'id,label' file.

Usage:
    python3 predict.py test.csv out.csv
    python3 predict.py --help      # every option

The command itself is ferkit/app/predict.py; this file keeps `python3 predict.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.predict import main

if __name__ == "__main__":
    sys.exit(run(main))
