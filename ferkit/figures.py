"""The analysis figures: confusion matrices, reliability diagrams, saliency panels and image
grids.

Figures are matplotlib.figure.Figure objects saved as PNG (by Agg), never through pyplot:
no backend is switched (importing this module changes nothing in a caller's matplotlib), no
display is needed, nothing is ever shown, and nothing is left open for pyplot to hold. Every
PNG is written atomically, so an interrupted run never leaves half a figure.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from ferkit.evaluation import row_shares
from ferkit.files import write_atomically
from ferkit.paths import writing

DPI = 90
PALETTE_COLOURS = 256


def save(fig, path) -> None:
    """Write ``fig`` as a palette PNG: 256 colours keep these figures readable at about a
    third of the bytes of a full-colour PNG (they are committed and shown in RESULTS.md)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    image = Image.open(buffer).convert("RGB").quantize(colors=PALETTE_COLOURS)
    with writing(path, "figure"):
        write_atomically(path, lambda tmp: image.save(tmp, format="PNG", optimize=True))


def confusion_figure(panels, names, path, suptitle=None) -> None:
    """Row-normalized confusion matrices side by side.

    panels: [(title, counts (K, K))]; names: the K class names in matrix order. Each cell
    shows the share of its true class and the count.
    """
    k = len(names)
    fig = Figure(figsize=(1.0 + 0.95 * k * len(panels), 0.9 * k + 1.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, counts) in zip(axes[0], panels):
        shares = row_shares(counts)
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for t in range(k):
            for p in range(k):
                ax.text(p, t, f"{100 * shares[t, p]:.0f}%\n({counts[t, p]})", ha="center",
                        va="center", fontsize=8,
                        color="white" if shares[t, p] > 0.6 else "black")
        ax.set_xticks(range(k), names, rotation=45, ha="right")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of the true class")
    if suptitle:
        fig.suptitle(suptitle)
    save(fig, path)


def reliability_figure(panels, path, suptitle=None) -> None:
    """Reliability diagrams side by side, one column a set of predictions: above, the
    accuracy of each confidence bin against its mean confidence (on the diagonal where the
    probabilities mean what they say), before and after calibration; below, the share of
    the faces in each bin. ECE before and after in each title.

    panels: [(title, {"raw": Reliability, "calibrated": Reliability})]
    (ferkit.calibration.reliability, the same bins for both)."""
    styles = {"raw": ("tab:grey", "raw softmax"), "calibrated": ("tab:blue", "calibrated")}
    fig = Figure(figsize=(4.2 * len(panels), 5.6), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, sharex=True,
                        gridspec_kw={"height_ratios": [3, 1.2]})
    for column, (title, bins) in enumerate(panels):
        above, below = axes[0, column], axes[1, column]
        above.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":",
                   label="perfectly calibrated")
        width = np.diff(next(iter(bins.values())).edges)[0]
        for i, (kind, found) in enumerate(bins.items()):
            colour, name = styles[kind]
            seen = found.counts > 0
            above.plot(found.confidence[seen], found.accuracy[seen], marker="o", markersize=4,
                       color=colour, label=f"{name} (ECE {found.ece:.1%})")
            below.bar(found.edges[:-1] + width * (0.1 + 0.4 * i), found.share, width * 0.4,
                      align="edge", color=colour, label=name)
        above.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy in the bin")
        above.set_title(f"{title}\nECE " + " -> ".join(f"{found.ece:.1%}"
                                                      for found in bins.values()), fontsize=10)
        above.legend(loc="upper left", fontsize=8)
        above.grid(alpha=0.3)
        below.set(xlabel="confidence (top probability)", ylabel="share of faces")
        below.grid(alpha=0.3)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    save(fig, path)


def normalized(maps) -> np.ndarray:
    """Each map divided by its own maximum: (N, h, w) in 0-1 (an all-zero map stays 0)."""
    maps = np.asarray(maps, dtype=np.float64)
    peaks = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)


def saliency_figure(faces, maps, kept, captions, title, path) -> None:
    """One row per face: the face, the map over it, and the face where ``kept`` (the rest
    greyed out; explain.most_important keeps a fixed share of each map's pixels).

    faces: (N, 48, 48) 0-255; maps: (N, 48, 48) >= 0; kept: (N, 48, 48) bool; captions: N
    strings.
    """
    heat = normalized(maps)
    n = len(faces)
    # "compressed" packs the square images; the colour bar hangs right under the last
    # map (laid out beside the grid, it left a blank band above itself).
    fig = Figure(figsize=(7.2, 2.3 * n + 0.6), layout="compressed")
    axes = fig.subplots(n, 3, squeeze=False)
    for row, (face, hmap, mask, caption) in enumerate(zip(faces, heat, kept, captions)):
        face_ax, heat_ax, mask_ax = axes[row]
        face_ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        face_ax.set_ylabel(caption, fontsize=8)
        heat_ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        overlay = heat_ax.imshow(hmap, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        # Pixels not kept are shown at a flat mid-grey: visibly "not looked at".
        mask_ax.imshow(np.where(mask, face, 128), cmap="gray", vmin=0, vmax=255)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("face")
    axes[0, 1].set_title("map over the face")
    axes[0, 2].set_title(f"its {np.mean(kept):.0%} most\nimportant pixels")
    bar = axes[-1, 1].inset_axes([0.0, -0.16, 1.0, 0.06])
    fig.colorbar(overlay, cax=bar, orientation="horizontal",
                 label="importance (share of the face's maximum)")
    fig.suptitle(title)
    save(fig, path)


def shown_path(path) -> str:
    """A file as a figure's title names it: relative to the current folder when it lies in
    or beside it (../shared/data/...), else its name alone: never an absolute path of the
    machine that drew it."""
    path, here = Path(path).resolve(), Path.cwd()
    if path.is_relative_to(here.parent):
        return Path(os.path.relpath(path, here)).as_posix()
    return path.name


def grid_figure(images, captions, title, path, cmap="gray", vmin=0, vmax=255,
                colorbar_label=None, beside=None) -> None:
    """A grid of images, each captioned; ``beside`` = (image 0-255, caption) drawn large on
    the left (the input whose activation maps fill the grid). A colour bar when
    ``colorbar_label`` is given (vmin/vmax None: each tile scaled to its own range)."""
    n = len(images)
    columns = min(n, 8)
    rows = math.ceil(n / columns)
    extra = 2 if beside is not None else 0
    fig = Figure(figsize=(1.35 * (columns + extra) + 0.4, 1.5 * rows + 0.8),
                 layout="constrained")
    grid = fig.add_gridspec(rows, columns + extra)
    if beside is not None:
        ax = fig.add_subplot(grid[:, :extra])
        ax.imshow(beside[0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(beside[1], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    tiles = []
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(grid[i // columns, extra + i % columns])
        shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(caption, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        tiles.append(ax)
    if colorbar_label:
        fig.colorbar(shown, ax=tiles, shrink=0.8, label=colorbar_label)
    fig.suptitle(title)
    save(fig, path)


def training_curves(history: list[dict], path) -> None:
    """Loss and accuracy by epoch of a training history (ferkit.training), training and
    validation; the averages' validation accuracy at each cycle end; dotted lines
    where warm restarts begin. Every epoch is a marker, so that a run of one or a few
    epochs shows its points (a line alone draws nothing through one point); whole epochs
    on the axis."""
    epochs = [h["epoch"] for h in history]
    points = {"marker": "o", "markersize": 5 if len(epochs) <= 20 else 2}
    restarts = [h["epoch"] - 0.5 for prev, h in zip(history, history[1:])
                if h["cycle"] != prev["cycle"]]
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[metric] for h in history], label="training", **points)
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], label="validation", **points)
        if metric == "accuracy":
            for key, label in (("average_val_accuracy", "average of cycle ends"),
                               ("ema_val_accuracy", "Adam's moving average")):
                ends = [h for h in history if key in h]
                if ends:
                    ax.plot([h["epoch"] for h in ends], [h[key] for h in ends], "o-",
                            label=label)
        for x in restarts:
            ax.axvline(x, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("epoch")
        if len(epochs) <= 20:  # each epoch its tick, a half epoch of room either side
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save(fig, path)


# One colour per class, for the timeline's lines and bands: annotate.py's drawing colours
# (ferkit.app.annotation.CLASS_COLOURS, BGR there), as matplotlib's RGB 0-1.
CLASS_RGB = ((0.9, 0.24, 0.24), (0.16, 0.63, 0.16), (0.67, 0.35, 0.78), (1.0, 0.82, 0.0),
             (0.16, 0.51, 0.86), (1.0, 0.55, 0.0), (0.55, 0.55, 0.55))


def timeline_figure(tracks: dict, title: str, path) -> None:
    """Per track, its seven probabilities over time (lines) and its smoothed label as a
    coloured band under them; ``tracks``: ferkit.tracking.timeline_arrays' dict. A video
    without faces gets a figure that says so."""
    from ferkit.labels import CLASS_NAMES

    rows = max(1, len(tracks))
    fig = Figure(figsize=(9, 1.9 * rows + 0.8))
    if not tracks:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no faces found in this video", ha="center", va="center",
                fontsize=14)
        ax.set_axis_off()
    end = max([times[-1] for times, _, _ in tracks.values()] + [0.0])
    for row, (track, (times, probs, labels)) in enumerate(tracks.items()):
        ax = fig.add_subplot(rows, 1, row + 1)
        for k, name in enumerate(CLASS_NAMES):
            ax.plot(times, probs[:, k], color=CLASS_RGB[k], lw=1.4, label=name)
        # The band: each frame's smoothed label, from its time to the next frame's.
        edges = np.append(times, times[-1] + (np.median(np.diff(times)) if len(times) > 1
                                              else 0.1))
        for start, stop, label in zip(edges[:-1], edges[1:], labels):
            ax.axvspan(start, stop, ymin=0, ymax=0.08, color=CLASS_RGB[label], lw=0)
        ax.set_xlim(0, max(end, edges[-1]))
        ax.set_ylim(-0.1, 1.02)
        ax.set_ylabel(f"track {track}\nprobability")
        ax.grid(alpha=0.3)
        if row == 0:
            ax.legend(ncol=7, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02),
                      frameon=False)
    fig.axes[-1].set_xlabel("time, s (band: the smoothed label)" if tracks else "")
    fig.suptitle(title, y=1.0)
    save(fig, path)
