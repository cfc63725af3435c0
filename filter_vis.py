"""What the filters respond to: gradient-ascent images, class images and activation maps.

Usage:
    python3 filter_vis.py
    python3 filter_vis.py --help      # every option

The command itself is ferkit/app/filter_vis.py; this file keeps `python3 filter_vis.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.filter_vis import main

if __name__ == "__main__":
    sys.exit(run(main))
