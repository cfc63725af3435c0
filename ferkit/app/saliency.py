"""Where in the face the model looks: saliency, SmoothGrad and Grad-CAM maps.

Usage:
    python3 saliency.py                           # one face per class, all three methods
    python3 saliency.py --method gradcam --keep 0.4 --data data/test.csv --ids 0,1,2
    python3 saliency.py --model models/dnn.h5 --method smoothgrad
    python3 saliency.py --data faces/ --ids happy/img1.png

Each map explains the pre-softmax logit of the class the model predicts for the face.
By default the faces come from the validation split recorded in the model's sidecar: for
each class, the correctly classified face the model is most confident about. One PNG per
method, one row per face: the face, the map over it, and the face with only the --keep
share of its pixels that matter most (ranked on the map blurred by a Gaussian of 2 pixels,
so they gather into regions rather than specks), into runs/figures/, which git ignores
(README's figures are made with --out figures).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from ferkit import figures
from ferkit.app import cli
from ferkit.app.cli import UsageError
from ferkit.inference import predict_probs
from ferkit.inference import DEFAULT_STAGE1
from ferkit.labels import CLASS_NAMES
from ferkit.progress import progress_bar

METHODS = ("saliency", "smoothgrad", "gradcam")
TITLES = {"saliency": "vanilla gradient saliency |d logit / d pixel|",
          "smoothgrad": "SmoothGrad (mean |gradient| over noisy copies)",
          "gradcam": "Grad-CAM"}
# The masked face's share of the pixels: enough for the eyes, brows and mouth together (a
# face covers some two thirds of FER2013's crop), few enough that the rest is visibly gone.
KEEP = 0.25


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_STAGE1), help="model to explain")
    cli.add_data_options(parser, "faces to pick from instead of the model's recorded validation "
                                 "split (any format predict.py reads)")
    parser.add_argument("--ids", default=None,
                        help="comma-separated ids of the faces to explain: the file's id "
                             "column, or the 0-based row number in files without ids "
                             "(default: one correctly classified face per class)")
    parser.add_argument("--method", choices=METHODS + ("all",), default="all",
                        help="which maps to draw")
    parser.add_argument("--keep", type=float, default=KEEP,
                        help="share of the pixels the masked face keeps: those the map "
                             "(blurred) rates most important")
    parser.add_argument("--samples", type=int, default=25, help="SmoothGrad: noisy copies")
    parser.add_argument("--noise", type=float, default=0.15,
                        help="SmoothGrad: noise std as a share of the 0-255 range")
    parser.add_argument("--layer", default=None,
                        help="Grad-CAM layer, by name or index (default: the last "
                             "convolution's rectified output, relu3_3 in the CNN)")
    cli.add_figures_out(parser)
    return parser.parse_args(argv)


def rows_of_ids(faces, ids_option) -> list[int]:
    """The rows of the --ids given, checked before any model runs on the faces."""
    wanted = [i.strip() for i in ids_option.split(",") if i.strip()]
    rows = {face_id: row for row, face_id in enumerate(faces.ids)}
    unknown = [i for i in wanted if i not in rows]
    if unknown or not wanted:
        raise UsageError(f"--ids: no face with id {(unknown or [ids_option])[0]!r} among "
                         f"the {len(faces)} faces (ids such as {', '.join(faces.ids[:3])})")
    return [rows[i] for i in wanted]


def pick_faces(faces, probs, classes):
    """Rows to explain without --ids: per class the most confident correct face (the most
    confident face predicted as that class when the faces have no labels)."""
    predicted = np.asarray(classes)[probs.argmax(axis=1)]
    confidence = probs.max(axis=1)
    picked = []
    for c in classes:
        ok = predicted == c if faces.labels is None else (predicted == c) & (faces.labels == c)
        if ok.any():
            picked.append(int(np.flatnonzero(ok)[confidence[ok].argmax()]))
    if not picked:
        raise UsageError("no correctly classified face to explain; choose faces with --ids")
    return picked


def main(argv=None):
    args = parse_args(argv)
    # Checked before any work, so no figure is drawn with the other methods first.
    makes = ("stage1",) if args.model == str(DEFAULT_STAGE1) else ()
    cli.check_analysis_paths(args, [(args.model, makes)])
    if not 0 < args.keep <= 1:
        raise UsageError(f"--keep {args.keep}: expected a share of the pixels, "
                         f"0 < keep <= 1")
    if args.samples < 1 or not args.noise >= 0:
        raise UsageError(f"--samples {args.samples} --noise {args.noise}: expected at least "
                         f"one sample and a noise >= 0")
    # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
    from ferkit import explain
    from ferkit.models import load_model

    model, info = load_model(args.model, makes[0] if makes else "")
    classes = info["classes"]
    methods = list(METHODS) if args.method == "all" else [args.method]
    if "gradcam" in methods:
        # Check the layer now, not after the predictions; a model without convolutions
        # (the DNN) simply has no Grad-CAM under --method all.
        if args.layer is not None:
            gradcam_layer = explain.resolve_layer(model, args.layer)
        elif explain.conv_layers(model) or args.method == "gradcam":
            gradcam_layer = explain.last_conv_output(model)
        else:
            print(f"{args.model}: no convolutional layer, so no Grad-CAM")
            methods.remove("gradcam")
    faces = cli.analysis_faces(args, args.model, info, require_labels=False)
    if args.ids is not None:  # only the faces asked for are scored
        rows = rows_of_ids(faces, args.ids)
        probs = predict_probs(model, faces.images[rows], progress=Path(args.model).name)
    else:
        all_probs = predict_probs(model, faces.images, progress=Path(args.model).name)
        rows = pick_faces(faces, all_probs, classes)
        probs = all_probs[rows]

    images = faces.images[rows]
    outputs = probs.argmax(axis=1)   # the output index explained for each face
    captions = []
    for row, p, out in zip(rows, probs, outputs):
        truth = "" if faces.labels is None else f"true {CLASS_NAMES[faces.labels[row]]}\n"
        captions.append(f"id {faces.ids[row]}\n{truth}predicted {CLASS_NAMES[classes[out]]} "
                        f"{p.max():.0%}")
    techniques = {
        "saliency": lambda: explain.vanilla_saliency(model, images, outputs),
        "smoothgrad": lambda: explain.smoothgrad(model, images, outputs, args.samples,
                                                 args.noise),
        "gradcam": lambda: explain.gradcam(model, images, outputs, gradcam_layer),
    }
    print(f"explaining {len(rows)} faces with {', '.join(methods)}")
    bar = progress_bar(len(methods), "method")
    stem = Path(args.model).stem
    written = []
    for method in methods:
        maps = techniques[method]()                                      # (N, 48, 48)
        title = TITLES[method] + (f" on {gradcam_layer}" if method == "gradcam" else "")
        written.append(Path(args.out) / f"{stem}_{method}_{cli.scored_faces(args)}.png")
        figures.saliency_figure(images, maps, explain.most_important(maps, args.keep),
                                captions, f"{stem}: {title}", written[-1])
        bar.add(1)
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
