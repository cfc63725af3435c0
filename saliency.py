"""Where in the face the model looks: saliency, SmoothGrad and Grad-CAM maps.

Usage:
    python3 saliency.py
    python3 saliency.py --help      # every option

The command itself is ferkit/app/saliency.py; this file keeps `python3 saliency.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.saliency import main

if __name__ == "__main__":
    sys.exit(run(main))
