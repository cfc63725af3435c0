"""What the filters respond to: gradient-ascent images, class images and activation maps.

Usage:
    python3 filter_vis.py                          # conv1_1, conv2_2, conv3_3: 16 filters each
    python3 filter_vis.py --layer conv2_1 --filters 32 --steps 200
    python3 filter_vis.py --class Angry --class Happy     # or --class all
    python3 filter_vis.py --image 0 --data data/test.csv --layer relu1_1   # face 0's maps

Filter grids: for each of the first --filters filters of a layer, the input that maximizes
the filter's mean activation, found by gradient ascent from a random grey image with small
random jitter, a decay towards grey and optionally a blur; the first convolution, which
sees the pixels, is drawn as its kernels instead (gradient ascent on a 3x3 filter finds
flat squares). --class does the same for a
class's pre-softmax logit (what the model thinks an angry face looks like); --image draws a
layer's feature maps for one face beside it. With --class or --image only those figures
are drawn. PNGs go into runs/figures/, which git ignores (README's figures are made with
--out figures).
"""
import argparse
import re
import sys
from pathlib import Path

import numpy as np

from ferkit import figures
from ferkit.app import cli
from ferkit.app.cli import UsageError
from ferkit.inference import DEFAULT_STAGE1
from ferkit.labels import CLASS_NAMES
from ferkit.progress import progress_bar


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_STAGE1), help="model to look into")
    parser.add_argument("--layer", action="append", default=None,
                        help="layer for the filter grids and --image, by name (conv2_1, "
                             "relu2_1, ...) or index into the model's layers; repeat for "
                             "several (default: the first, a middle and the last convolution)")
    parser.add_argument("--filters", type=int, default=16,
                        help="how many filters (the first ones) per layer")
    parser.add_argument("--steps", type=int, default=100, help="ascent steps")
    parser.add_argument("--lr", type=float, default=4.0,
                        help="ascent step in pixel levels (the gradient is normalized)")
    parser.add_argument("--jitter", type=int, default=2,
                        help="random shift of up to this many pixels at each step")
    parser.add_argument("--decay", type=float, default=0.01,
                        help="share of the distance to grey taken back at each step")
    parser.add_argument("--blur-every", type=int, default=0,
                        help="blur the image (3x3) every this many steps (0 = never)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random grey start")
    parser.add_argument("--class", dest="classes", action="append", default=None,
                        metavar="NAME|INDEX",
                        help="ascent on this class's logit instead (a name such as Angry, a "
                             "class number 0-6, or 'all'); repeat for several")
    parser.add_argument("--image", default=None, metavar="ID",
                        help="draw the --layer feature maps for this face instead: the "
                             "file's id, or its 0-based row number in files without ids")
    cli.add_data_options(parser, "where --image is looked up (default: the model's recorded "
                                 "validation split)")
    cli.add_figures_out(parser)
    return parser.parse_args(argv)


def class_outputs(specs, classes) -> list[int]:
    """--class values (names, class numbers or 'all') -> output indices of the model."""
    outputs = []
    for spec in specs:
        if spec.strip().lower() == "all":
            outputs.extend(range(len(classes)))
            continue
        by_name = {name.lower(): c for c, name in enumerate(CLASS_NAMES)}
        c = int(spec) if spec.strip().isdigit() else by_name.get(spec.strip().lower())
        if c not in classes:
            raise UsageError(f"--class {spec!r}: expected one of the model's classes "
                             f"{', '.join(f'{k} {CLASS_NAMES[k]}' for k in classes)}, or all")
        outputs.append(classes.index(c))
    return list(dict.fromkeys(outputs))  # each once, in the order asked


def default_layers(convs: list[str], model_name: str) -> list[str]:
    """The first, a middle and the last of a model's convolutions (fewer when it has fewer)."""
    if not convs:
        raise UsageError(f"{model_name}: has no convolutional layer; choose one with --layer")
    return list(dict.fromkeys([convs[0], convs[len(convs) // 2], convs[-1]]))


def progress_callback(steps):
    bar = progress_bar(steps, "step")
    return lambda step: bar.update(step)


def main(argv=None):
    args = parse_args(argv)
    makes = ("stage1",) if args.model == str(DEFAULT_STAGE1) else ()
    cli.check_analysis_paths(args, [(args.model, makes)])
    if args.filters < 1:
        raise UsageError(f"--filters {args.filters}: expected at least one filter")
    # TensorFlow loads only now, after the input checks: --help and input errors stay fast.
    from ferkit import explain
    from ferkit.models import load_model

    model, info = load_model(args.model, makes[0] if makes else "")
    classes = info["classes"]
    stem = Path(args.model).stem
    out = Path(args.out)
    ascent = dict(steps=args.steps, lr=args.lr, jitter=args.jitter, decay=args.decay,
                  blur_every=args.blur_every, seed=args.seed)
    # Resolve every option before the slow work, so a bad one fails at once (the ascent
    # checks --steps, --lr, --jitter, --decay itself, before its first figure is written).
    outputs = class_outputs(args.classes, classes) if args.classes else []
    layers = ([explain.resolve_layer(model, spec) for spec in args.layer] if args.layer
              else default_layers(explain.conv_layers(model), model.name))
    face = None
    if args.image is not None:
        faces = cli.analysis_faces(args, args.model, info, require_labels=False)
        rows = np.flatnonzero(faces.ids == args.image)
        if not len(rows):
            raise UsageError(f"--image: no face with id {args.image!r} among the "
                             f"{len(faces)} faces (ids such as {', '.join(faces.ids[:3])})")
        face = faces.images[rows[0]]

    if outputs:
        print(f"class images: ascent on the logits of {len(outputs)} classes")
        images, logits = explain.class_ascent(model, outputs, callback=progress_callback(
            args.steps), **ascent)
        path = out / f"{stem}_classes.png"
        figures.grid_figure(images, [f"{CLASS_NAMES[classes[o]]}\nlogit {v:.2f}"
                                     for o, v in zip(outputs, logits)],
                            f"{stem}: inputs that maximize each class logit", path)
        print(f"wrote {path}")
    if face is not None:
        safe_id = re.sub(r"[^A-Za-z0-9]+", "_", args.image)   # folder ids hold a '/'
        for layer in layers:
            maps = explain.activation_maps(model, layer, face[None])[0]   # (h, w, C)
            shown = np.moveaxis(maps[..., :args.filters], -1, 0)           # (F, h, w)
            path = out / f"{stem}_activations_{layer}_{cli.scored_faces(args)}_{safe_id}.png"
            figures.grid_figure(
                shown, [f"filter {i}\nmean {m.mean():.2f}" for i, m in enumerate(shown)],
                f"{stem}: {layer} feature maps ({len(shown)} of {maps.shape[-1]}, "
                f"{maps.shape[0]}x{maps.shape[1]})", path, cmap="viridis",
                vmin=float(shown.min()), vmax=float(shown.max()), colorbar_label="activation",
                beside=(face, f"id {args.image}"))
            print(f"wrote {path}")
    if outputs or face is not None:
        return 0
    for layer in layers:
        count = min(args.filters, model.get_layer(layer).output.shape[-1])
        path = out / f"{stem}_filters_{layer}.png"
        if explain.sees_the_pixels(model, layer):  # its kernels are the picture
            kernels = explain.first_layer_kernels(model, layer, list(range(count)))
            reach = float(np.abs(kernels).max())
            figures.grid_figure(kernels, [f"filter {i}" for i in range(count)],
                                f"{stem}: {layer}'s kernels on the pixels (red: brighter "
                                f"raises it, blue: darker does)", path, cmap="RdBu_r",
                                vmin=-reach, vmax=reach, colorbar_label="weight")
            print(f"wrote {path}")
            continue
        print(f"{layer}: ascent on {count} filters")
        images, reached = explain.filter_ascent(model, layer, list(range(count)),
                                                callback=progress_callback(args.steps),
                                                **ascent)
        figures.grid_figure(images, [f"filter {i}\nact {v:.2f}" for i, v in enumerate(reached)],
                            f"{stem}: inputs that maximize the mean activation of {layer}'s "
                            f"filters", path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
