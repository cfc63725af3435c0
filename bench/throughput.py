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
     compiled by ``ferkit.training.build_for_training``);
  3. predict.py's cascade at steady state, without and with flip TTA (ferkit.inference.Cascade),
     with untrained models unless --stage1/--stage2 name trained ones; stage 1 alone as
     well; once per runtime of --runtimes (Keras, LiteRT), side by side, each with the
     share of the CPU's float32 peak it reaches (cpu_peak_flops);
and, when asked, predict.py end to end on a file (process start to exit, the output file
written just before), each runtime --e2e-repeats times with its peak memory, the outputs
of the runtimes compared byte for byte; and ``load_faces`` on a CSV. Each part runs in
its own Python process, so that TensorFlow's thread pools and Keras' dtype policy start
fresh for each (and the LiteRT part never imports TensorFlow), and each reports its own
peak memory (ru_maxrss). Warm-up runs (tracing, first epoch) are excluded; every figure is
the median of --repeats timed runs.
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

SPECIALIST_CLASSES = [0, 2, 4, 6]
# Share of FER2013's PublicTest faces whose true class is Angry, Fear, Sad or Neutral
# (467 + 496 + 653 + 607 of 3,589): what a trained stage 1 hands to the specialist, roughly.
# Untrained models hand off an arbitrary share (often all or none), so they use this one.
TYPICAL_HANDOFF = 0.62
RESULT_TAG = "BENCH-RESULT "
RUNTIME_LABELS = {"keras": "Keras", "litert": "LiteRT", "litert-int8": "LiteRT int8"}


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
    parser.add_argument("--runtimes", default="keras,litert",
                        help="comma-separated runtimes the predict part and predict.py are "
                             "timed on: keras, litert, litert-int8 (trained models need fresh "
                             "copies: export_tflite.py [--int8])")
    parser.add_argument("--e2e-repeats", type=int, default=3,
                        help="runs of predict.py end to end per runtime and TTA setting")
    parser.add_argument("--flops-per-cycle", type=float, default=None,
                        help="float32 FLOPs per cycle and core of this CPU (default: from "
                             "its flags, see flops_per_cycle)")
    parser.add_argument("--clock-ghz", type=float, default=None,
                        help="clock of the float32 peak (default: the highest 'cpu MHz' in "
                             "/proc/cpuinfo, which a virtual machine may report below the "
                             "boost clock the cores run at)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-runtime", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-untrained", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("train_images", "batch_size", "predict_images", "repeats", "e2e_repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, "
                         f"found {getattr(args, name)}")
    if args.handoff_share is not None and not 0 <= args.handoff_share <= 1:
        parser.error(f"--handoff-share: expected a share 0-1, found {args.handoff_share}")
    unknown = set(args.parts.split(",")) - {"baseline", "toolkit", "predict"}
    if unknown:
        parser.error(f"--parts: expected baseline, toolkit or predict, found {sorted(unknown)}")
    unknown = set(args.runtimes.split(",")) - set(RUNTIME_LABELS)
    if unknown:
        parser.error(f"--runtimes: expected keras, litert or litert-int8, found "
                     f"{sorted(unknown)}")
    for name in ("flops_per_cycle", "clock_ghz"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')}: expected a positive number, found "
                         f"{getattr(args, name)}")
    try:  # the paths now, not in a worker process minutes later
        from ferkit import InputError, paths
        from ferkit.data import check_data_path

        for model in (args.stage1, args.stage2):
            if model:
                paths.model_file(model)
        for data in (args.predict_file, args.parse_file):
            if data:
                check_data_path(data)
    except InputError as err:
        parser.error(str(err))
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
    from ferkit.backend import keras

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(**fit_args, epochs=1 + repeats, verbose=0, callbacks=[EpochTimer()])
    return [images_per_epoch / t for t in times[1:]]


def cnn_training_defaults(**changes):
    """cnn_train.py's recipe (ferkit.recipes.Stage1Recipe, whose defaults the script
    shows), with ``changes``: the training figures use what a user's run would, without
    importing the script."""
    from ferkit.recipes import Stage1Recipe

    return Stage1Recipe(**changes)


def work_baseline(args) -> dict:
    """Plain Keras: default threads, float32, model.fit on numpy arrays, no augmentation."""
    import numpy as np
    from ferkit.backend import keras
    from ferkit.models import build_model

    defaults = cnn_training_defaults()
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
    """cnn_train.py's training step: its recipe's defaults, threads, pipeline, precision,
    compile."""
    from ferkit.backend import keras
    from ferkit.machine import configure_threads
    from ferkit.pipeline import make_dataset
    from ferkit.training import build_for_training

    run = cnn_training_defaults(batch_size=args.batch_size)
    configure_threads()
    keras.utils.set_random_seed(run.seed)
    images, labels = random_faces(args.train_images, args.seed)
    data = make_dataset(images, labels, run.batch_size, 7, augment=run.augment, seed=run.seed)
    model, policy, _ = build_for_training("cnn", 7, run.build_options, run.lr,
                                          run.precision, run.label_smoothing)
    rates = epoch_rates(model, dict(x=data, shuffle=False), len(images), args.repeats)
    return {"rates": rates, "precision": policy, "augment": run.augment}


def work_predict(args) -> dict:
    """predict.py's cascade at steady state (ferkit.inference.Cascade, on the runtime
    --worker-runtime), without and with TTA, and stage 1 alone."""
    import dataclasses

    import numpy as np
    from ferkit.inference import Cascade, handoff_threshold
    from ferkit.record import read_record

    runtime = args.worker_runtime
    # As predict.py loads them; TensorFlow is imported only on the Keras runtime.
    plain = Cascade.load(args.stage1, args.stage2, runtime=runtime)
    info = read_record(args.stage2)
    with_tta = dataclasses.replace(plain, tta=True,
                                   handoff_below=handoff_threshold(None, info, True))
    images, _ = random_faces(args.predict_images, args.seed + 1)
    share = args.handoff_share
    if share is None and args.worker_untrained:
        share = TYPICAL_HANDOFF
    forced = None
    if share is not None:
        forced = np.zeros(len(images), dtype=bool)
        forced[np.random.default_rng(args.seed).permutation(len(images))[
            :round(share * len(images))]] = True

    handed = []

    def cascade(tta):  # the lines of predict.py's main between loading and writing
        said = (with_tta if tta else plain).predict(images, forced)
        handed.append(float(said.handed_over.mean()))
        return said.labels

    alone = dataclasses.replace(plain, stage2=None)  # predict.py --no-cascade

    def stage1_alone(tta):
        return alone.predict(images).labels

    def rates(run, tta):
        run(tta)  # warm-up: tracing, oneDNN primitives, XNNPACK's set-up for these shapes
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(tta)
            times.append(time.perf_counter() - start)
        return [len(images) / t for t in times]

    result = {"cascade": rates(cascade, False), "cascade_tta": rates(cascade, True),
              "stage1": rates(stage1_alone, False)}
    result["handoff_share"] = statistics.median(handed)
    result["models"] = "untrained" if args.worker_untrained else "trained"
    result["runtime"] = runtime
    if runtime == "keras":  # the work per face, counted on the Keras models' layers
        result["flops"] = {"stage1": model_flops(plain.stage1),
                           "stage2": model_flops(plain.stage2)}
    return result


def model_flops(model) -> int:
    """Float32 operations of one face's forward pass: 2 per multiply-add of the
    convolutions (output pixels x kernel area x input channels x filters) and dense
    layers (inputs x units); BatchNorm (folded into the convolutions by the .tflite
    converter), ReLU, pooling and softmax add well under 1% and are left out."""
    import numpy as np
    from ferkit.backend import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width = layer.output.shape[1:3]
            flops += 2 * height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * int(np.prod(layer.kernel.shape))
    return flops


def work_parse(args) -> dict:
    from ferkit.data import load_faces

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


def time_predict_script(args, stage1, stage2, folder: Path) -> dict:
    """predict.py end to end on --predict-file, per runtime and TTA setting: wall times from
    process start to exit (the output file is written just before the exit), --e2e-repeats
    runs each, interleaved so that a busy spell of the machine hits every setting alike;
    each process's peak memory; whether the runtimes wrote byte-identical files."""
    runtimes = args.runtimes.split(",")
    results = {(runtime, tta): {"seconds": [], "peak_mb": []}
               for runtime in runtimes for tta in (False, True)}
    for _ in range(args.e2e_repeats):
        for (runtime, tta), result in results.items():
            out = folder / f"predictions-{runtime}{'-tta' * tta}.csv"
            command = [sys.executable, str(ROOT / "predict.py"), args.predict_file, str(out),
                       "--stage1", str(stage1), "--stage2", str(stage2),
                       "--runtime", runtime] + ["--tta"] * tta
            seconds, peak_mb, code, report = run_timed(command, folder / "predict.log")
            if code != 0 or not out.exists():
                raise RuntimeError(f"predict.py failed (exit {code}): {report[-1:]}")
            result["seconds"].append(seconds)
            result["peak_mb"].append(peak_mb)
            result["rows"] = sum(1 for _ in out.open()) - 1
            result["report"] = " / ".join(report)
    for tta in (False, True):  # the files of the last runs against the first runtime's
        rows = {r: (folder / f"predictions-{r}{'-tta' * tta}.csv").read_bytes().splitlines()
                for r in runtimes}
        for runtime in runtimes:
            results[runtime, tta]["differing_rows"] = sum(
                a != b for a, b in zip(rows[runtime], rows[runtimes[0]]))
            results[runtime, tta]["identical"] = rows[runtime] == rows[runtimes[0]]
    return results


def run_timed(command, log: Path):
    """(wall seconds, peak memory MB, exit code, stdout lines) of one process, its memory
    read from its own rusage (os.wait4), not the largest of all children so far."""
    with open(log, "w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    return (seconds, usage.ru_maxrss / 1024, process.returncode,
            log.read_text().strip().splitlines())


def save_untrained_models(folder: Path, seed: int, int8: bool):
    """Untrained stage 1 and specialist with sidecars and .tflite copies (float32, and with
    ``int8`` the int8 ones, calibrated on random faces), saved by a helper process."""
    code = (
        "import sys\n"
        "from ferkit.backend import keras; keras.utils.set_random_seed(int(sys.argv[3]))\n"
        "import numpy as np\n"
        "from ferkit.litert import export_tflite\n"
        "from ferkit.models import build_model, save_model\n"
        "for name, classes in (('stage1', list(range(7))), ('stage2', "
        f"{SPECIALIST_CLASSES!r})):\n"
        "    save_model(build_model('cnn', len(classes)), f'{sys.argv[2]}/{name}.h5',\n"
        "               {'architecture': 'cnn', 'classes': classes, 'build': {}})\n"
        "    export_tflite(f'{sys.argv[2]}/{name}.h5')\n"
        "    if sys.argv[4] == 'int8':\n"
        "        export_tflite(f'{sys.argv[2]}/{name}.h5', 'int8', np.random.default_rng(0)\n"
        "                      .integers(0, 256, (50, 48, 48), np.uint8))\n")
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder), str(seed),
                    "int8" if int8 else "-"], check=True, capture_output=True)
    return folder / "stage1.h5", folder / "stage2.h5"


# --- the report ----------------------------------------------------------------------------

def cpu_info() -> dict:
    """/proc/cpuinfo's first processor's fields (model name, flags, ...) and the highest
    'cpu MHz' of any core; {} where there is no /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    mhz = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "cpu MHz":
            mhz.append(float(value))
        fields.setdefault(key, value)
    fields["max MHz"] = max(mhz, default=0.0)
    return fields


def flops_per_cycle(info: dict) -> tuple[float, str]:
    """Float32 FLOPs one core can start per cycle, from its flags, and how that was found:
    2 FMA units x float32 lanes of the widest vectors x 2 (an FMA is a multiply and an
    add). AMD's first AVX512 cores (Zen 4: AVX512 but not VP2INTERSECT, which Zen 5 added
    back) split each 512-bit FMA over their two 256-bit units, so they count 8 lanes."""
    flags = set(info.get("flags", "").split())
    if "avx512f" in flags:
        zen4 = info.get("vendor_id") == "AuthenticAMD" and "avx512_vp2intersect" not in flags
        lanes, why = (8, "AVX512 on 256-bit units (AMD Zen 4)") if zen4 else (16, "AVX512")
    elif {"avx2", "fma"} <= flags:
        lanes, why = 8, "AVX2+FMA"
    else:
        lanes, why = 4, "SSE, counted as if it had FMA"
    return 2 * lanes * 2, f"2 FMA units x {lanes} float32 lanes ({why}) x 2"


def cpu_peak_flops(args) -> tuple[float, str]:
    """(float32 FLOP/s, formula with its figures): cores (os.cpu_count()) x clock (the
    highest 'cpu MHz' in /proc/cpuinfo, or --clock-ghz; a virtual machine may show its base
    clock, not the boost) x FLOPs per cycle and core (flops_per_cycle, or
    --flops-per-cycle)."""
    info = cpu_info()
    per_cycle, how = flops_per_cycle(info)
    if args.flops_per_cycle is not None:
        per_cycle, how = args.flops_per_cycle, "--flops-per-cycle"
    cores = os.cpu_count() or 1
    ghz, clock = info.get("max MHz", 0.0) / 1000, "cpu MHz of /proc/cpuinfo"
    if args.clock_ghz is not None:
        ghz, clock = args.clock_ghz, "--clock-ghz"
    peak = cores * ghz * 1e9 * per_cycle
    return peak, (f"{cores} cores x {ghz:.2f} GHz [{clock}] x {per_cycle:g} FLOP/cycle "
                  f"[{how}] = {peak / 1e9:.0f} GFLOP/s")


def machine() -> str:
    info = cpu_info()
    name = info.get("model name") or platform.processor() or platform.machine()
    flags = set(info.get("flags", "").split())
    simd = ("AVX512-BF16" if "avx512_bf16" in flags else "AVX512" if "avx512f" in flags
            else "AVX2, no AVX512" if "avx2" in flags else "no AVX2" if flags
            else "unknown SIMD")
    return f"{name}, {os.cpu_count()} cores, {simd}"


def fmt(rates) -> str:
    values = ", ".join(f"{r:.0f}" for r in rates)
    return (f"{statistics.median(rates):7.1f} images/s median, best {max(rates):.0f} "
            f"(runs: {values})")


def share_of_peak(rates, flops_per_face: float, peak: float) -> str:
    """Median images/s x float32 FLOPs per face / float32 peak FLOP/s. Over 100%: the
    cores run faster than the clock counted, or (int8) the work is not float32."""
    return (f"{statistics.median(rates) * flops_per_face / peak:6.1%} of the float32 peak "
            f"({statistics.median(rates) * flops_per_face / 1e9:.0f} GFLOP/s)")


def report_predict(results: dict, peak: float) -> None:
    """The predict part's rows, one block per runtime, with the share of the float32 peak
    where the work per face is known (counted on the Keras models)."""
    flops = next((r["flops"] for r in results.values() if "flops" in r), None)
    for runtime, r in results.items():
        print(f"3. predict   {RUNTIME_LABELS[runtime]}: cascade ({r['models']} models, "
              f"specialist on {r['handoff_share']:.0%} of faces), peak {r['peak_mb']:.0f} MB",
              flush=True)
        work = {}
        if flops:  # GFLOP per face: stage 1, plus the specialist on the faces handed over
            cascade = flops["stage1"] + r["handoff_share"] * flops["stage2"]
            work = {"cascade": cascade, "cascade_tta": 2 * cascade, "stage1": flops["stage1"]}
        for key, label in (("cascade", "cascade"), ("cascade_tta", "cascade + TTA"),
                           ("stage1", "stage 1 alone")):
            share = f"; {share_of_peak(r[key], work[key], peak)}" if work else ""
            print(f"     {label:<16} {fmt(r[key])}{share}")
    if flops:
        print(f"     work per face: stage 1 {flops['stage1'] / 1e9:.3f} GFLOP, specialist "
              f"{flops['stage2'] / 1e9:.3f} GFLOP (x2 with TTA)", flush=True)


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
    runtimes = args.runtimes.split(",")
    peak, formula = cpu_peak_flops(args)
    print(f"machine: {machine()}; Python {platform.python_version()}")
    print(f"float32 peak: {formula}")
    print(f"data: random 48x48 faces, seed {args.seed}; training {args.train_images} images "
          f"per epoch, batch {args.batch_size}; prediction {args.predict_images} images; "
          f"median of {args.repeats} timed runs after a warm-up", flush=True)
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        stage1, stage2 = args.stage1, args.stage2
        untrained = not (stage1 and stage2)
        if untrained and ("predict" in parts or args.predict_file):
            stage1, stage2 = save_untrained_models(Path(tmp), args.seed,
                                                   "litert-int8" in runtimes)
        models = ["--stage1", str(stage1), "--stage2", str(stage2)] + (
            ["--worker-untrained"] if untrained else [])
        results = {}
        for part in parts:
            if part == "predict":
                report_predict({runtime: run_worker("predict", argv + models
                                                    + ["--worker-runtime", runtime])
                                for runtime in runtimes}, peak)
                continue
            results[part] = r = run_worker(part, argv)
            if part == "baseline":
                print(f"1. baseline  plain Keras model.fit, numpy, float32, no augmentation: "
                      f"{fmt(r['rates'])}; peak {r['peak_mb']:.0f} MB", flush=True)
            else:
                print(f"2. toolkit   cnn_train.py's step: tf.data, augmentation "
                      f"{'on' if r['augment'] else 'off'}, precision {r['precision']}: "
                      f"{fmt(r['rates'])}; peak {r['peak_mb']:.0f} MB", flush=True)
            if part != "predict" and {"baseline", "toolkit"} <= set(results):
                ratio = (statistics.median(results["toolkit"]["rates"])
                         / statistics.median(results["baseline"]["rates"]))
                best = max(results["toolkit"]["rates"]) / max(results["baseline"]["rates"])
                print(f"ratio toolkit / baseline: {ratio:.2f} (medians), {best:.2f} "
                      f"(best runs)", flush=True)
        if args.predict_file:
            report_predict_script(time_predict_script(args, stage1, stage2, Path(tmp)), args)
    if args.parse_file:
        r = run_worker("parse", argv)
        print(f"load_faces {args.parse_file} ({r['rows']} rows): "
              f"{statistics.median(r['seconds']):.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in r['seconds'])}); peak {r['peak_mb']:.0f} MB")
    return 0


def report_predict_script(timed: dict, args) -> None:
    runtimes = args.runtimes.split(",")
    medians = {key: statistics.median(t["seconds"]) for key, t in timed.items()}
    for (runtime, tta), t in timed.items():
        label = f"predict.py{' --tta' if tta else ''} --runtime {runtime}"
        runs = ", ".join(f"{s:.2f}" for s in t["seconds"])
        same = (f"byte-identical to {runtimes[0]}'s" if t["identical"] else
                f"differs from {runtimes[0]}'s on {t['differing_rows']} of {t['rows']} rows")
        print(f"{label:<36} end to end on {args.predict_file} ({t['rows']} rows): "
              f"{medians[runtime, tta]:.2f} s median (runs: {runs}); peak "
              f"{statistics.median(t['peak_mb']):.0f} MB; output {same}", flush=True)
        print(f"     it reported: {t['report']}")
    if "keras" in runtimes:
        for runtime in runtimes:
            for tta in (False, True):
                if runtime != "keras":
                    print(f"Keras / {RUNTIME_LABELS[runtime]} end to end"
                          f"{' with --tta' if tta else ''}: "
                          f"{medians['keras', tta] / medians[runtime, tta]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
