"""Would a quantized LiteRT copy be worth shipping? Speed and validation accuracy of each.

Usage:
    python3 bench/litert_quantization.py                    # stage 1, models/cnn.h5
    python3 bench/litert_quantization.py --model models/dnn.h5 --repeats 5

Converts the model with TensorFlow's converter into: float32 (what export_tflite.py ships);
float16 weights; int8 weights with float activations (dynamic range); full int8 (weights
and activations, calibrated on --calibration-faces training faces of the model's recorded
split, float input and output); and bfloat16, which the converter accepts but ignores (the
table's tensor types show it stays float32). Each is run
by LiteRT (XNNPACK, every core) on the validation split recorded in the model's sidecar
(ferkit.evaluation.validation_faces): accuracy, agreement with float32, and images/s at
steady state (median of --repeats, variants interleaved so a busy spell of a shared
machine hits them alike). A variant is worth keeping only if it is faster than float32
(by --min-speedup) and loses at most --max-loss points of accuracy.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


from ferkit.app import cli
from ferkit.inference import DEFAULT_STAGE1
from ferkit.litert import CALIBRATION_FACES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_STAGE1),
                        help="trained model (.h5 with its sidecar, whose recorded training "
                             "data must be here)")
    parser.add_argument("--calibration-faces", type=int, default=CALIBRATION_FACES,
                        help="training faces that calibrate full int8's activation ranges "
                             "(as export_tflite.py --int8 draws them)")
    parser.add_argument("--timing-faces", type=int, default=1024,
                        help="validation faces per timed run")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per variant, after one warm-up")
    parser.add_argument("--max-loss", type=float, default=0.3,
                        help="accuracy points a variant may lose against float32 and still "
                             "be kept")
    parser.add_argument("--min-speedup", type=float, default=1.1,
                        help="how much faster than float32 a variant must be to count as "
                             "faster (a shared machine's timings vary by several percent)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the calibration faces' draw (export_tflite.py's)")
    args = parser.parse_args(argv)
    for name in ("calibration_faces", "timing_faces", "repeats"):
        if getattr(args, name) <= 0:
            raise cli.UsageError(f"--{name.replace('_', '-')}: expected a positive integer, "
                                 f"found {getattr(args, name)}")
    return args


def variants(calibration):
    """{name: converter settings} (each a function of the converter) for convert_to_tflite."""
    from ferkit.backend import tf
    from ferkit.litert import full_int8

    def float16(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    def bfloat16(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.bfloat16]

    def dynamic_int8(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

    return {"float32": None, "float16 weights": float16, "bfloat16": bfloat16,
            "int8 weights (dynamic range)": dynamic_int8,
            "full int8 (export_tflite.py --int8)": full_int8(calibration)}


def tensor_types(path) -> str:
    """The element types of a .tflite's tensors ("float32, int32"): whether the converter
    really made the variant asked for (it has no bfloat16 and quietly keeps float32)."""
    from ai_edge_litert.interpreter import Interpreter

    names = {str(detail["dtype"].__name__) for detail in
             Interpreter(model_path=str(path)).get_tensor_details()}
    return ", ".join(sorted(names))


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    from ferkit.evaluation import calibration_faces, recorded_data, split_rows, subset
    from ferkit.inference import predict_probs
    from ferkit.litert import LiteRTModel, convert_to_tflite
    from ferkit.models import load_model

    model, sidecar = load_model(args.model)
    faces = recorded_data(sidecar, args.model)
    val_rows = split_rows(sidecar, faces)[1]
    val = subset(faces, val_rows)
    position = {c: i for i, c in enumerate(sidecar["classes"])}
    truth = np.array([position.get(label, -1) for label in val.labels])
    # The faces export_tflite.py --int8 calibrates on, with the same count and seed.
    calibration = calibration_faces(sidecar, args.model, args.calibration_faces, args.seed)
    timing = val.images[:args.timing_faces]
    print(f"{args.model}: {len(val)} validation faces; full int8 calibrated on "
          f"{len(calibration)} training faces; {len(timing)} faces per timed run")

    runs = {}
    with tempfile.TemporaryDirectory(prefix="fer-quant-") as tmp:
        for name, settings in variants(calibration).items():
            try:
                flatbuffer = convert_to_tflite(model, settings)
            except Exception as err:  # the converter's refusal is the finding
                print(f"{name}: the converter refuses it ({str(err).splitlines()[0][:200]})")
                continue
            path = Path(tmp) / f"{len(runs)}.tflite"
            path.write_bytes(flatbuffer)
            runs[name] = {"model": LiteRTModel(path), "mb": len(flatbuffer) / 1e6, "rates": [],
                          "types": tensor_types(path)}
        for name, run in runs.items():
            run["probs"] = predict_probs(run["model"], val.images)
            predict_probs(run["model"], timing)  # warm-up
        for _ in range(args.repeats):
            for run in runs.values():
                start = time.perf_counter()
                predict_probs(run["model"], timing)
                run["rates"].append(len(timing) / (time.perf_counter() - start))

    reference = runs["float32"]
    base_accuracy = np.mean(reference["probs"].argmax(1) == truth)
    base_rate = statistics.median(reference["rates"])
    print("\n| variant | tensor types | size | validation accuracy | vs float32 | same label "
          "as float32 | images/s (median; runs) | speed vs float32 | keep? |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, run in runs.items():
        labels = run["probs"].argmax(1)
        accuracy = np.mean(labels == truth)
        loss = 100 * (base_accuracy - accuracy)
        rate = statistics.median(run["rates"])
        keep = ("reference" if run is reference
                else "no: the float32 model again" if run["types"] == reference["types"]
                else "yes" if rate >= args.min_speedup * base_rate and loss <= args.max_loss
                else "no")
        print(f"| {name} | {run['types']} | {run['mb']:.1f} MB | {accuracy:.4f} | "
              f"{-loss:+.2f} points | "
              f"{np.mean(labels == reference['probs'].argmax(1)):.2%} | {rate:.0f} ("
              f"{', '.join(f'{r:.0f}' for r in run['rates'])}) | {rate / base_rate:.2f}x | "
              f"{keep} |")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
