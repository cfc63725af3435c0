"""Confusion matrices of stage 1 alone and of the cascade, with per-class metrics.

Usage:
    python3 confusion.py                          # validation split of models/cnn.h5
    python3 confusion.py --model models/dnn.h5    # one model alone (here the DNN)
    python3 confusion.py --data ../shared/data/fer2013/test.csv.gz \
        --labels ../shared/data/fer2013/test_labels.csv

By default the faces scored are the validation split recorded in the (stage-1) model's
sidecar, rebuilt from the same data (--train-data FILE, else the file the sidecar records,
else data/train.csv; each used only when it holds the faces the model trained on), classes,
share and seed, so no image the model was trained on is scored. Writes two PNGs into
runs/figures/, which git ignores (README's figures are made with --out figures): the
row-normalized matrices (each cell the share of its true class and the count) and the
reliability diagrams (accuracy against confidence in 15 bins and the share of faces in
each, raw softmax and calibrated, ECE in the titles). Prints accuracy, macro-F1, per-class
precision, recall and F1, the five most confused pairs, what the cascade changed, and the
ECE, negative log-likelihood and Brier score of the raw and the calibrated probabilities
(the calibrations in the sidecars: calibrate.py).
"""
import argparse
import sys
from pathlib import Path

from ferkit.app import cli
from ferkit.words import percent

TOP_PAIRS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    cli.add_cascade_options(parser)
    parser.add_argument("--model", default=None,
                        help="score this one model alone instead of stage 1 and the cascade "
                             "(e.g. models/dnn.h5; a specialist is scored on its classes)")
    cli.add_data_options(parser, "labelled faces to score instead of the recorded validation "
                                 "split: 'label,feature' CSV, fer2013.csv (with --usage), an image "
                                 "folder, or 'id,feature' with --labels")
    parser.add_argument("--tta", action="store_true",
                        help="average the softmax of each image and its mirror image")
    cli.add_figures_out(parser)
    return parser.parse_args(argv)


def report(title, truth, predicted, classes, names):
    """Print the metrics of one set of predictions; return (title with the accuracy,
    confusion counts): one panel of the figure."""
    from ferkit.evaluation import class_metrics, confusion_counts, most_confused

    counts = confusion_counts(truth, predicted, classes)
    metrics = class_metrics(truth, predicted, classes)
    print(f"\n{title}: accuracy {percent(metrics['accuracy'])}, macro-F1 "
          f"{metrics['macro_f1']:.4f}")
    print(f"  {'class':<9} {'precision':>9} {'recall':>7} {'F1':>6} {'faces':>6}")
    for i, name in enumerate(names):
        print(f"  {name:<9} {metrics['precision'][i]:9.3f} {metrics['recall'][i]:7.3f} "
              f"{metrics['f1'][i]:6.3f} {metrics['support'][i]:6d}")
    print("  most confused (true -> predicted, share of the true class):")
    for t, p, count, share in most_confused(counts, TOP_PAIRS):
        print(f"    {names[t]:>8} -> {names[p]:<8} {share:6.1%} ({count})")
    return f"{title}: accuracy {metrics['accuracy']:.1%}", counts


def calibration_report(title, raw, calibrated, truth):
    """Print ECE, NLL and Brier of the raw and the calibrated probabilities (None: the
    sidecar has no calibration) against ``truth`` (positions in their columns); return
    one panel of the reliability figure: (title, {"raw": bins, "calibrated": bins})."""
    from ferkit.calibration import reliability, scores

    found = {"raw": raw} if calibrated is None else {"raw": raw, "calibrated": calibrated}
    print(f"\n{title}: calibration (ECE over 15 confidence bins, NLL, Brier)")
    for kind, probs in found.items():
        measured = scores(probs, truth)
        print(f"  {kind:<10} ECE {measured['ece']:6.2%}  NLL {measured['nll']:.4f}  Brier "
              f"{measured['brier']:.4f}  mean confidence {measured['confidence']:.3f}")
    if calibrated is None:
        print(f"  no calibration in the sidecar; make it with: python3 calibrate.py")
    return title, {kind: reliability(probs, truth) for kind, probs in found.items()}


def main(argv=None):
    args = parse_args(argv)
    cli.check_analysis_paths(args, [(args.model, ())] if args.model is not None
                             else [(args.stage1, ("stage1",)), (args.stage2, ("specialist",))])
    import numpy as np
    from ferkit import figures
    import dataclasses

    from ferkit.evaluation import keep_classes, seen_in_training
    from ferkit.inference import (Cascade, calibrate, choose_runtime, load_predictor,
                                  model_calibration, predict_probs, runtime_line)
    from ferkit.record import read_record
    from ferkit.models import class_names

    # Load (and so check) every model and the faces before the slow predictions; Keras or
    # LiteRT as --runtime says (ferkit.inference.choose_runtime).
    if args.model is not None:
        runtime, why = choose_runtime(args.runtime, [args.model])
        print(runtime_line(runtime, why, cli.flag))
        model, info = load_predictor(args.model, runtime)
        first_path, calibration = args.model, model_calibration(info, args.tta)
    else:
        cascade = Cascade.load(args.stage1, args.stage2, args.handoff_below, args.tta,
                               args.runtime)
        cli.announce_cascade(cascade, args.stage1, args.stage2, args.handoff_below)
        info, info2 = read_record(args.stage1), read_record(args.stage2)
        first_path, calibration = args.stage1, cascade.stage1_calibration
    classes = info["classes"]
    faces = keep_classes(cli.analysis_faces(args, first_path, info), classes)
    names = class_names(classes)
    source = (figures.shown_path(args.data) if args.data
              else f"validation split of {figures.shown_path(first_path)}")
    print(f"scoring {len(faces)} faces: {source}")

    if args.model is None:  # stage 1 on every face, the specialist on those handed to it
        # The raw softmax and, as Cascade.predict calibrates them, the calibrated
        # probabilities (the same labels: hand-off and labels come from the raw softmax).
        raw = dataclasses.replace(cascade, stage1_calibration=None, cascade_calibration=None)
        raw = raw.predict(faces.images, progress=(Path(first_path).name,
                                                  f"{Path(args.stage2).name} (handed off)"))
        said = cascade.predict(faces.images)
        probs = raw.stage1_probabilities
    else:
        probs = predict_probs(model, faces.images, args.tta, progress=Path(first_path).name)
    predicted = np.asarray(classes)[probs.argmax(axis=1)]
    first_title = Path(first_path).name + (" alone" if args.model is None else "")
    panels = [report(first_title, faces.labels, predicted, classes, names)]
    truth = np.searchsorted(classes, faces.labels)  # positions in the models' outputs
    shown = (None if calibration is None else
             said.stage1_probabilities if args.model is None else calibrate(calibration, probs))
    reliability_panels = [calibration_report(first_title, probs, shown, truth)]
    if args.model is None:
        print(f"hand-off threshold {cascade.handoff_below:g}")
        cascaded = raw.labels
        panels.append(report("cascade", faces.labels, cascaded, classes, names))
        # Calibrated as Cascade.predict calibrates: stage 1's probabilities by its own
        # calibration, the specialist's on the faces handed to it by the cascade's.
        reliability_panels.append(calibration_report(
            "cascade", raw.probabilities,
            None if cascade.cascade_calibration is None else said.probabilities, truth))
        print(f"\n{cli.cascade_changes(predicted, cascaded, faces.labels)}")
        if args.data is None:
            # Trained with another seed or share, the specialist may have trained on some of
            # stage 1's validation faces, which would flatter the cascade on those.
            seen = seen_in_training(faces, info, info2, args.stage2, args.train_data)
            if seen.any():
                print(f"note: {seen.sum()} of these faces were in the specialist's training "
                      f"split; score a held-out file with --data for an unbiased cascade")
    stem = "cascade" if args.model is None else Path(args.model).stem
    suptitle = f"{len(faces)} faces: {source}" + (" (flip TTA)" if args.tta else "")
    out = Path(args.out) / f"{stem}_confusion_{cli.scored_faces(args)}.png"
    figures.confusion_figure(panels, names, out, suptitle=suptitle)
    print(f"wrote {out}")
    out = Path(args.out) / f"{stem}_reliability_{cli.scored_faces(args)}.png"
    figures.reliability_figure(reliability_panels, out, suptitle=suptitle)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
