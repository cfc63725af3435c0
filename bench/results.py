"""Score the shipped models on a labelled test set and print README's results tables.

Usage:
    python3 bench/results.py --data ../shared/data/fer2013/test.csv.gz \
        --labels ../shared/data/fer2013/test_labels.csv

Prints, as Markdown: the accuracy and macro-F1 of the DNN, of stage 1 alone and of the
cascade, each without and with flip TTA; the per-class recall of stage 1 and of the cascade; and, from the
sidecars, the epochs, wall time and best validation accuracy of each training run.
"""
import argparse
import sys
from pathlib import Path


from ferkit import MODELS
from ferkit.app import cli
from ferkit.data import USAGES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--data", default=str(Path("data") / "test.csv"),
                        help="faces to score: 'id,feature' (with --labels) or a labelled file")
    parser.add_argument("--labels", default=None, help="answers 'id,label' for an id file")
    parser.add_argument("--usage", choices=USAGES, default=None,
                        help="split to score of Kaggle's fer2013.csv (required when the file "
                             "holds several)")
    cli.add_cascade_options(parser)
    parser.add_argument("--dnn", default=str(MODELS / "dnn.h5"), help="DNN baseline")
    return parser.parse_args(argv)


def check_paths(args) -> None:
    """Every path, before any work and before TensorFlow is imported."""
    from ferkit import paths
    from ferkit.data import check_data_path

    check_data_path(args.data)
    if args.labels is not None:
        paths.input_file(args.labels)
    paths.model_file(args.stage1, ("stage1",))
    paths.model_file(args.stage2, ("specialist",))
    paths.model_file(args.dnn, ("dnn",))


def main(argv=None):
    args = parse_args(argv)
    check_paths(args)
    from ferkit.data import labelled_file
    from ferkit.evaluation import class_metrics
    from ferkit.inference import (Cascade, choose_runtime, handoff_threshold, load_predictor,
                                  load_specialist, load_stage1, predict_probs, runtime_line)
    from ferkit.labels import CLASS_NAMES

    faces = labelled_file(args.data, args.usage, args.labels)
    truth = faces.labels
    runtime, why = choose_runtime(args.runtime, [args.stage1, args.stage2, args.dnn])
    print(runtime_line(runtime, why, cli.flag))
    stage1, info1 = load_stage1(args.stage1, runtime)
    stage2, info2 = load_specialist(args.stage2, runtime)
    dnn, info_dnn = load_predictor(args.dnn, runtime)
    classes = info2["classes"]
    handoff_below = {tta: handoff_threshold(args.handoff_below, info2, tta)
                     for tta in (False, True)}

    # The specialist runs only on the faces handed to it, as in predict.py.
    predictions = {}
    for tta in (False, True):
        suffix = " + flip TTA" if tta else ""
        predictions["DNN" + suffix] = predict_probs(dnn, faces.images, tta=tta).argmax(1)
        said = Cascade(stage1, stage2, classes, handoff_below[tta], tta).predict(faces.images)
        predictions["stage 1 alone" + suffix] = said.stage1_probabilities.argmax(1)
        predictions["cascade" + suffix] = said.labels
    metrics = {name: class_metrics(truth, labels, range(7))
               for name, labels in predictions.items()}

    print(f"Scored on {args.data}: {len(truth)} faces; the cascade hands a face to the "
          f"specialist when stage 1's confidence is at most {handoff_below[False]:g} "
          f"({handoff_below[True]:g} with flip TTA).\n")
    print("| model | accuracy | macro-F1 |\n| --- | --- | --- |")
    for name, m in metrics.items():
        print(f"| {name} | {100 * m['accuracy']:.2f}% | {m['macro_f1']:.3f} |")

    shown = ["stage 1 alone", "cascade", "stage 1 alone + flip TTA", "cascade + flip TTA"]
    print("\n| recall | " + " | ".join(shown) + " | faces |")
    print("| --- |" + " --- |" * (len(shown) + 1))
    for c, name in enumerate(CLASS_NAMES):
        cells = " | ".join(f"{100 * metrics[s]['recall'][c]:.1f}%" for s in shown)
        print(f"| {name} | {cells} | {metrics['cascade']['support'][c]} |")

    print("\n| training run | epochs | wall time | best validation accuracy | precision | machine |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path, info in ((args.stage1, info1), (args.stage2, info2), (args.dnn, info_dnn)):
        # An average (average_weights.py) trained no epoch itself: its sources' runs first.
        sources = info.get("averaged_from", [])
        runs = [(Path(source["model"]).name, source) for source in sources]
        runs.append((Path(path).name, info))
        for name, run in runs:
            epochs = f"average of {len(sources)}" if run is info and sources else run["epochs_run"]
            print(f"| `{name}` | {epochs} | {run['wall_time_s'] / 60:.0f} min | "
                  f"{100 * run['val_accuracy']:.2f}% | {info['precision']} | "
                  f"{info.get('machine', '?')} |")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
