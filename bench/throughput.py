"""Throughput of training and prediction for the stage-1 CNN, on random 48x48 faces.

Usage:
    python3 bench/throughput.py                      # or: python3 -m bench
    python3 bench/throughput.py --predict-file ../shared/data/fer2013/test.csv.gz \
        --parse-file ../shared/data/fer2013/train.csv.gz
    python3 bench/throughput.py --train-images 32 --batch-size 16 --predict-images 40 \
        --repeats 2                                  # a quick check that it works

Measures, on the same random data (one seed):
  1. baseline: the CNN compiled in float32 by plain Keras, ``model.fit`` on numpy arrays,
     no augmentation;
  2. toolkit: the training step exactly as cnn_train.py runs it (its defaults, thread
     settings, ``make_dataset`` with augmentation, ``--precision auto``, the model built and
     compiled by ``fer.training.build_for_training``);
  3. predict.py's cascade at steady state, without and with flip TTA (fer.inference), with
     untrained models unless --stage1/--stage2 name trained ones; stage 1 alone as well;
and, when asked, predict.py end to end on a file (process start to file written) and
``load_faces`` on a CSV. Each part runs in its own Python process, so that TensorFlow's
thread pools and Keras' dtype policy start fresh for each, and each reports its own peak
memory (ru_maxrss). Warm-up runs (tracing, first epoch) are excluded; every figure is the
median of --repeats timed runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPECIALIST_CLASSES = [0, 2, 4, 6]
# Share of FER2013's PublicTest faces whose true class is Angry, Fear, Sad or Neutral
# (467 + 496 + 653 + 607 of 3,589): what a trained stage 1 hands to the specialist, roughly.
# Untrained models hand off an arbitrary share (often all or none), so they use this one.
TYPICAL_HANDOFF = 0.62
RESULT_TAG = "BENCH-RESULT "


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--train-images", type=int, default=512,
                        help="random images per training epoch")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="training batch size (baseline and toolkit alike)")
    parser.add_argument("--predict-images", type=int, default=1024,
                        help="random images per timed cascade run")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per figure (after one warm-up run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data")
    parser.add_argument("--stage1", default=None,
                        help="trained 7-class model (default: an untrained CNN)")
    parser.add_argument("--stage2", default=None,
                        help="trained specialist (default: an untrained CNN on classes "
                             f"{'_'.join(map(str, SPECIALIST_CLASSES))})")
    parser.add_argument("--handoff-share", type=float, default=None,
                        help="share of faces handed to the specialist (default: what "
                             f"stage 1 decides when trained, else {TYPICAL_HANDOFF})")
    parser.add_argument("--predict-file", default=None,
                        help="also time predict.py end to end on this file (the models "
                             "above, or untrained ones saved to a temporary folder)")
    parser.add_argument("--parse-file", default=None,
                        help="also time load_faces on this CSV")
    parser.add_argument("--parts", default="baseline,toolkit,predict",
                        help="comma-separated parts to run: baseline, toolkit, predict")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("train_images", "batch_size", "predict_images", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, "
                         f"found {getattr(args, name)}")
    if args.handoff_share is not None and not 0 <= args.handoff_share <= 1:
        parser.error(f"--handoff-share: expected a share 0-1, found {args.handoff_share}")
    unknown = set(args.parts.split(",")) - {"baseline", "toolkit", "predict"}
    if unknown:
        parser.error(f"--parts: expected baseline, toolkit or predict, found {sorted(unknown)}")
    return args


# --- workers: each runs in its own process -------------------------------------------------

def random_faces(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def epoch_rates(model, fit_args: dict, images_per_epoch: int, repeats: int) -> list[float]:
    """Images/s of each epoch of one model.fit of 1 + repeats epochs, the first dropped."""
    from fer.backend import keras

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(**fit_args, epochs=1 + repeats, verbose=0, callbacks=[EpochTimer()])
    return [images_per_epoch / t for t in times[1:]]


def work_baseline(args) -> dict:
    """Plain Keras: default threads, float32, model.fit on numpy arrays, no augmentation."""
    import numpy as np
    from fer.backend import keras
    from fer.models import build_model

    import cnn_train

    defaults = cnn_train.parse_args([])
    images, labels = random_faces(args.train_images, args.seed)
    model = build_model("cnn", 7, conv_dropout=defaults.conv_dropout,
                        dense_dropout=defaults.dense_dropout)
    model.compile(optimizer=keras.optimizers.Adam(defaults.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = images[..., None].astype(np.float32)
    rates = epoch_rates(model, dict(x=x, y=labels, batch_size=args.batch_size, shuffle=True),
                        len(images), args.repeats)
    return {"rates": rates, "precision": "float32"}


def work_toolkit(args) -> dict:
    """cnn_train.py's training step: its defaults, threads, pipeline, precision, compile."""
    from fer.backend import keras
    from fer.training import build_for_training, configure_threads, make_dataset

    import cnn_train

    run = cnn_train.parse_args(["--batch-size", str(args.batch_size)])
    configure_threads()
    keras.utils.set_random_seed(run.seed)
    images, labels = random_faces(args.train_images, args.seed)
    data = make_dataset(images, labels, run.batch_size, augment=run.augment, shuffle=True,
                        seed=run.seed)
    model, _, policy, _ = build_for_training(
        "cnn", list(range(7)),
        {"conv_dropout": run.conv_dropout, "dense_dropout": run.dense_dropout},
        run.lr, run.precision)
    rates = epoch_rates(model, dict(x=data, shuffle=False), len(images), args.repeats)
    return {"rates": rates, "precision": policy, "augment": run.augment}


def work_predict(args) -> dict:
    """predict.py's cascade at steady state (fer.inference), without and with TTA."""
    import numpy as np
    from fer.backend import keras
    from fer.inference import (handoff_threshold, load_specialist, load_stage1, predict_probs,
                               run_cascade)
    from fer.models import build_model
    from fer.training import configure_threads

    configure_threads()  # as predict.py does
    keras.utils.set_random_seed(args.seed)  # the same untrained weights in every run
    stage1 = load_stage1(args.stage1)[0] if args.stage1 else build_model("cnn", 7)
    if args.stage2:
        stage2, info = load_specialist(args.stage2)
        classes = info["classes"]
    else:  # an untrained specialist has no tuned threshold: it is always handed the face
        stage2, classes = build_model("cnn", len(SPECIALIST_CLASSES)), SPECIALIST_CLASSES
        info = {}
    handoff_below = {tta: handoff_threshold(None, info, tta) for tta in (False, True)}
    images, _ = random_faces(args.predict_images, args.seed + 1)
    share = args.handoff_share
    if share is None and not (args.stage1 and args.stage2):
        share = TYPICAL_HANDOFF
    forced = None
    if share is not None:
        forced = np.zeros(len(images), dtype=bool)
        forced[np.random.default_rng(args.seed).permutation(len(images))[
            :round(share * len(images))]] = True

    handed = []

    def cascade(tta):  # the lines of predict.py's main between loading and writing
        probs1 = predict_probs(stage1, images, tta=tta)
        labels, handoff = run_cascade(probs1, images, stage2, classes, handoff_below[tta],
                                      lambda model, x: predict_probs(model, x, tta=tta), forced)
        handed.append(float(handoff.mean()))
        return labels

    def stage1_alone(tta):
        return predict_probs(stage1, images, tta=tta).argmax(axis=1)

    def rates(run, tta):
        run(tta)  # warm-up: tracing, oneDNN primitives for these batch shapes
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(tta)
            times.append(time.perf_counter() - start)
        return [len(images) / t for t in times]

    result = {"cascade": rates(cascade, False), "cascade_tta": rates(cascade, True),
              "stage1": rates(stage1_alone, False)}
    result["handoff_share"] = statistics.median(handed)
    result["models"] = "trained" if args.stage1 and args.stage2 else "untrained"
    return result


def work_parse(args) -> dict:
    from fer.data import load_faces

    times = []
    for _ in range(min(args.repeats, 3)):
        start = time.perf_counter()
        faces = load_faces(args.parse_file)
        times.append(time.perf_counter() - start)
    return {"seconds": times, "rows": len(faces)}


WORKERS = {"baseline": work_baseline, "toolkit": work_toolkit, "predict": work_predict,
           "parse": work_parse}


def run_worker(part: str, argv: list[str]) -> dict:
    """Run one part in a fresh Python process; its last tagged line is the result."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", part]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"benchmark part {part!r} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_TAG):])


def time_predict_script(args) -> dict:
    """predict.py end to end on --predict-file: wall time from process start to exit (the
    output file is written just before the exit)."""
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        stage1, stage2 = args.stage1, args.stage2
        if not (stage1 and stage2):
            stage1, stage2 = save_untrained_models(Path(tmp))
        out = Path(tmp) / "predictions.csv"
        results = {}
        for tta in (False, True):
            command = [sys.executable, str(ROOT / "predict.py"), args.predict_file, str(out),
                       "--stage1", str(stage1), "--stage2", str(stage2)] + (["--tta"] * tta)
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(f"predict.py failed (exit {done.returncode}): "
                                   f"{done.stderr.strip().splitlines()[-1:]}")
            rows = sum(1 for _ in out.open()) - 1
            out.unlink()
            results["tta" if tta else "plain"] = {"seconds": seconds, "rows": rows,
                                                  "report": done.stdout.strip()}
        return results


def save_untrained_models(folder: Path):
    """Untrained stage 1 and specialist with sidecars, saved by a helper process."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from fer.backend import keras; keras.utils.set_random_seed(0)\n"
        "from fer.models import build_model, save_model\n"
        "for name, classes in (('stage1', list(range(7))), ('stage2', "
        f"{SPECIALIST_CLASSES!r})):\n"
        "    save_model(build_model('cnn', len(classes)), f'{sys.argv[2]}/{name}.h5',\n"
        "               {'architecture': 'cnn', 'classes': classes, 'build': {}})\n")
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder)], check=True,
                   capture_output=True)
    return folder / "stage1.h5", folder / "stage2.h5"


# --- the report ----------------------------------------------------------------------------

def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        simd = ("AVX512-BF16" if "avx512_bf16" in flags else "AVX512" if "avx512f" in flags
                else "AVX2, no AVX512" if "avx2" in flags else "no AVX2")
    except OSError:
        simd = "unknown SIMD"
    return f"{name}, {os.cpu_count()} cores, {simd}"


def fmt(rates) -> str:
    values = ", ".join(f"{r:.0f}" for r in rates)
    return (f"{statistics.median(rates):7.1f} images/s median, best {max(rates):.0f} "
            f"(runs: {values})")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        import numpy  # noqa: F401  (so that the peak memory counts the same libraries)

        result = WORKERS[args.worker](args)
        result["peak_mb"] = peak_memory_mb()
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0

    parts = args.parts.split(",")
    print(f"machine: {machine()}; Python {platform.python_version()}")
    print(f"data: random 48x48 faces, seed {args.seed}; training {args.train_images} images "
          f"per epoch, batch {args.batch_size}; prediction {args.predict_images} images; "
          f"median of {args.repeats} timed runs after a warm-up", flush=True)
    results = {}
    for part in parts:
        results[part] = run_worker(part, argv)
        r = results[part]
        if part == "baseline":
            print(f"1. baseline  plain Keras model.fit, numpy, float32, no augmentation: "
                  f"{fmt(r['rates'])}; peak {r['peak_mb']:.0f} MB", flush=True)
        elif part == "toolkit":
            print(f"2. toolkit   cnn_train.py's step: tf.data, augmentation "
                  f"{'on' if r['augment'] else 'off'}, precision {r['precision']}: "
                  f"{fmt(r['rates'])}; peak {r['peak_mb']:.0f} MB", flush=True)
        else:
            print(f"3. predict   cascade ({r['models']} models, specialist on "
                  f"{r['handoff_share']:.0%} of faces), peak {r['peak_mb']:.0f} MB", flush=True)
            print(f"     cascade          {fmt(r['cascade'])}")
            print(f"     cascade + TTA    {fmt(r['cascade_tta'])}")
            print(f"     stage 1 alone    {fmt(r['stage1'])}", flush=True)
    if "baseline" in results and "toolkit" in results:
        ratio = (statistics.median(results["toolkit"]["rates"])
                 / statistics.median(results["baseline"]["rates"]))
        best = max(results["toolkit"]["rates"]) / max(results["baseline"]["rates"])
        print(f"ratio toolkit / baseline: {ratio:.2f} (medians), {best:.2f} (best runs)")
    if args.predict_file:
        timed = time_predict_script(args)
        for key, label in (("plain", "predict.py"), ("tta", "predict.py --tta")):
            t = timed[key]
            print(f"{label} end to end on {args.predict_file} ({t['rows']} rows): "
                  f"{t['seconds']:.2f} s; it reported: {t['report']}", flush=True)
    if args.parse_file:
        r = run_worker("parse", argv)
        print(f"load_faces {args.parse_file} ({r['rows']} rows): "
              f"{statistics.median(r['seconds']):.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in r['seconds'])}); peak {r['peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
