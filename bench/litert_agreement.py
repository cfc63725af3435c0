"""How closely the LiteRT copies of the models agree with Keras on a file of faces.

Usage:
    python3 export_tflite.py models/cnn.h5 models/cnn_specific_0_2_4_6.h5 models/dnn.h5
    python3 bench/litert_agreement.py --data ../shared/data/fer2013/test.csv.gz \
        --labels ../shared/data/fer2013/test_labels.csv

For stage 1, the specialist (on every face) and the DNN, without and with flip TTA: the
largest difference between the two runtimes' probabilities and how many faces get the same
label; for the cascade (the thresholds tuned into the specialist's sidecar), how many faces
get the same final label and the same hand-off. With --labels, each runtime's accuracy too.
Exits 1 when the runtimes disagree (DISAGREE), 0 when they agree.
"""
import argparse
import sys
from pathlib import Path


from ferkit import MODELS
from ferkit.app import cli
from ferkit.data import DEFAULT_TEST
from ferkit.inference import DEFAULT_STAGE1, DEFAULT_STAGE2

TOLERANCE = 1e-4  # the bound on the probability difference


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_TEST),
                        help="faces: 'id,feature' (labels from --labels) or a labelled file")
    parser.add_argument("--labels", default=None,
                        help="answers 'id,label' for an id file: also print accuracies")
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="7-class model")
    parser.add_argument("--stage2", default=str(DEFAULT_STAGE2), help="specialist model")
    parser.add_argument("--dnn", default=str(MODELS / "dnn.h5"), help="DNN baseline")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    from ferkit.data import labelled_file
    from ferkit.inference import (Cascade, handoff_threshold, load_predictor, load_specialist,
                               load_stage1, predict_probs)

    faces = labelled_file(args.data, labels_path=args.labels, require_labels=False)
    loaded = {}
    for runtime in ("litert", "keras"):  # LiteRT first: a missing .tflite fails fast
        loaded[runtime] = {"stage 1": load_stage1(args.stage1, runtime),
                           "specialist": load_specialist(args.stage2, runtime),
                           "DNN": load_predictor(args.dnn, runtime)}
    info2 = loaded["keras"]["specialist"][1]
    print(f"{len(faces)} faces of {args.data}; LiteRT (.tflite) against Keras (.h5)\n")
    accuracy_head = " accuracy Keras | accuracy LiteRT |" if faces.labels is not None else ""
    print(f"| model | TTA | max abs probability difference | same label |{accuracy_head}")
    print("| --- | --- | --- | --- |" + " --- | --- |" * bool(accuracy_head))

    def row(name, tta, labels, difference="", note=""):
        same = int(np.sum(labels["keras"] == labels["litert"]))
        cells = [name, "yes" if tta else "no", difference,
                 f"{same} of {len(faces)}{note}"]
        if faces.labels is not None:  # not for the specialist: it knows only 4 classes
            cells += ([f"{np.mean(labels[r] == faces.labels):.4f}" for r in ("keras", "litert")]
                      if name != "specialist" else ["n/a", "n/a"])
        print("| " + " | ".join(cells) + " |")
        return same == len(faces)

    agree = True
    for tta in (False, True):
        for name in ("stage 1", "specialist", "DNN"):
            probs = {r: predict_probs(loaded[r][name][0], faces.images, tta=tta)
                     for r in loaded}
            difference = float(np.abs(probs["litert"] - probs["keras"]).max())
            classes = np.asarray(loaded["keras"][name][1]["classes"])
            labels = {r: classes[p.argmax(axis=1)] for r, p in probs.items()}
            agree &= row(name, tta, labels, f"{difference:.2e}") and difference <= TOLERANCE
        threshold = handoff_threshold(None, info2, tta)
        runs = {r: Cascade(loaded[r]["stage 1"][0], loaded[r]["specialist"][0],
                           info2["classes"], threshold, tta, r).predict(faces.images)
                for r in loaded}
        same_handoff = int(np.sum(runs["keras"].handed_over == runs["litert"].handed_over))
        agree &= row(f"cascade (hand-off below {threshold:g})", tta,
                     {r: run.labels for r, run in runs.items()}, "n/a",
                     f"; same hand-off {same_handoff}")
        agree &= same_handoff == len(faces)
    print(f"\n{'agree' if agree else 'DISAGREE'}: every probability within {TOLERANCE:g} and "
          f"every label and hand-off the same" + ("" if agree else " does not hold"))
    return 0 if agree else 1  # a failed check fails the command (scripts, CI)


if __name__ == "__main__":
    sys.exit(cli.run(main))
