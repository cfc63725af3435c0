"""Confusion matrices of stage 1 alone and of the cascade, with per-class metrics.

Usage:
    python3 confusion.py                          # validation split of models/cnn.h5
    python3 confusion.py --model models/dnn.h5    # one model alone (here the DNN)
    python3 confusion.py --data ../shared/data/fer2013/test.csv.gz \
        --labels ../shared/data/fer2013/test_labels.csv

By default the faces scored are the validation split recorded in the (stage-1) model's
sidecar, rebuilt from the same data (--train-data FILE, else the file the sidecar records,
else data/train.csv; each used only when it holds the faces the model trained on), classes,
share and seed, so no image the model was trained on is scored. Writes one PNG
(row-normalized matrices, each cell the share of its true class and the count) into
runs/figures/, which git ignores (README's figures are made with --out figures), and prints
accuracy, macro-F1, per-class precision, recall and F1, the five most confused pairs and
what the cascade changed.
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
    metrics = class_metrics(counts)
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


def main(argv=None):
    args = parse_args(argv)
    from ferkit.inference import MAKE_STAGE1, MAKE_STAGE2

    cli.check_analysis_paths(args, [(args.model, "")] if args.model is not None
                             else [(args.stage1, MAKE_STAGE1), (args.stage2, MAKE_STAGE2)])
    import numpy as np
    from ferkit import figures
    from ferkit.evaluation import (faces_for, keep_classes, predict_with_progress,
                                seen_in_training)
    from ferkit.files import read_sidecar
    from ferkit.inference import (Cascade, choose_runtime, load_predictor, run_cascade,
                                  runtime_line)
    from ferkit.models import class_names

    # Load (and so check) every model and the faces before the slow predictions; Keras or
    # LiteRT as --runtime says (ferkit.inference.choose_runtime).
    if args.model is not None:
        runtime, why = choose_runtime(args.runtime, [args.model])
        print(runtime_line(runtime, why))
        model, info = load_predictor(args.model, runtime)
        first_path = args.model
    else:
        cascade = Cascade.load(args.stage1, args.stage2, args.handoff_below, args.tta,
                               args.runtime)
        cli.announce_cascade(cascade, args.stage1, args.stage2, args.handoff_below)
        model, stage2 = cascade.stage1, cascade.stage2
        info, info2 = read_sidecar(args.stage1), read_sidecar(args.stage2)
        first_path = args.stage1
    classes = info["classes"]
    faces = keep_classes(faces_for(args, first_path, info), classes)
    names = class_names(classes)
    source = (figures.shown_path(args.data) if args.data
              else f"validation split of {figures.shown_path(first_path)}")
    print(f"scoring {len(faces)} faces: {source}")

    probs = predict_with_progress(model, faces.images, args.tta, Path(first_path).name)
    predicted = np.asarray(classes)[probs.argmax(axis=1)]
    panels = [report(Path(first_path).name + (" alone" if args.model is None else ""),
                     faces.labels, predicted, classes, names)]
    if args.model is None:
        print(f"hand-off threshold {cascade.handoff_below:g}")
        cascaded, _ = run_cascade(
            probs, faces.images, stage2, cascade.classes, cascade.handoff_below,
            lambda model, x: predict_with_progress(model, x, args.tta,
                                                   f"{Path(args.stage2).name} (handed off)"))
        panels.append(report("cascade", faces.labels, cascaded, classes, names))
        print(f"\n{cli.cascade_changes(predicted, cascaded, faces.labels)}")
        if args.data is None:
            # Trained with another seed or share, the specialist may have trained on some of
            # stage 1's validation faces, which would flatter the cascade on those.
            seen = seen_in_training(faces, info, info2, args.stage2, args.train_data)
            if seen.any():
                print(f"note: {seen.sum()} of these faces were in the specialist's training "
                      f"split; score a held-out file with --data for an unbiased cascade")
    stem = "cascade" if args.model is None else Path(args.model).stem
    out = Path(args.out) / f"{stem}_confusion_{cli.scored_faces(args)}.png"
    figures.confusion_figure(panels, names, out, suptitle=f"{len(faces)} faces: {source}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
