"""Find every face in photos and videos, read its expression, draw it and list it.

Usage:
    python3 annotate.py photo.jpg --out runs/annotated/
    python3 annotate.py --help      # every option

The command itself is ferkit/app/annotate.py; this file keeps `python3 annotate.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.annotate import main

if __name__ == "__main__":
    sys.exit(run(main))
