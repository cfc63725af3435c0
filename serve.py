"""See the models work: a local web page for photos and the webcam, and a JSON API.

Usage:
    python3 serve.py
    python3 serve.py --help      # every option

The command itself is ferkit/app/serve.py; this file keeps `python3 serve.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.serve import main

if __name__ == "__main__":
    sys.exit(run(main))
