"""Make the LiteRT copy (MODEL.tflite) of trained models that have none or a stale one.

Usage:
    python3 export_tflite.py models/cnn.h5 models/cnn_specific_0_2_4_6.h5 models/dnn.h5
    python3 export_tflite.py --help      # every option

The command itself is ferkit/app/export_tflite.py; this file keeps `python3 export_tflite.py` working.
"""
import sys

from ferkit.app.cli import run
from ferkit.app.export_tflite import main

if __name__ == "__main__":
    sys.exit(run(main))
