"""Annotating photos and videos: which inputs, every face in them and its expression (the
recognizer's FaceResults: ferkit.Recognizer.look), the drawing beside each face, faces.csv.

Everything up to reading the inputs runs without TensorFlow, so bad input fails fast; the
Annotator is handed a loaded Recognizer.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import cv2
import numpy as np

from ferkit import DataError, paths, tracking
from ferkit.inference import FaceResult
from ferkit.labels import CLASS_NAMES
from ferkit.progress import progress_bar
from ferkit.tracking import DEFAULT_SMOOTH, MIN_TRACK_FRAMES, TABLE_COLUMNS, VideoTable, table_row
from ferkit.video import frames, open_video_file, quiet_video_warnings, video_fps

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}  # suffix -> the annotated video's FourCC
CAMERA_SUFFIX = ".avi"    # MJPG: every OpenCV build writes it
CSV_NAME = "faces.csv"
# faces.csv: the input and frame; in a video, its seconds from the start and the face's
# track (ferkit.tracking); then each face's result as FaceResult.record() names it (the box
# x y w h, the detector's score, the label, its name, handed_over as 1/0, the label's
# probabilities p_angry..p_neutral, stage 1's stage1_p_angry..); then the track's smoothed
# label (--smooth). A photo's face has no time or track, and its smoothed label is its label.
CSV_COLUMNS = TABLE_COLUMNS  # faces.csv: ferkit.tracking's faces table

# One colour per class (BGR), for the box, the label and the class's bar.
CLASS_COLOURS = ((60, 60, 230), (40, 160, 40), (200, 90, 170), (0, 210, 255),
                 (220, 130, 40), (0, 140, 255), (200, 200, 200))
SHORT_NAMES = tuple(name[:3] for name in CLASS_NAMES)


class CameraError(DataError):
    """A camera OpenCV cannot open or read."""


# --- which inputs ----------------------------------------------------------------------------

@dataclasses.dataclass
class Source:
    """One input: ``name`` as given or as found in a folder (faces.csv's ``file``), its
    ``path`` (None for a camera), its ``kind`` (photo, video, camera) and camera index."""

    name: str
    path: Path | None
    kind: str
    camera: int | None = None


def find_sources(inputs, camera: int | None = None) -> list[Source]:
    """The photos and videos named on the command line or found (not recursively) in the
    folders named, then the camera; each checked: it exists, its kind is known, a photo's
    format is one OpenCV reads, a video opens and yields a frame, a camera opens."""
    sources = []
    for text in inputs:
        path = paths.input_data(text)  # exists and can be read (or listed)
        if path.is_dir():
            found = [p for p in sorted(path.iterdir()) if p.is_file()
                     and p.suffix.lower() in PHOTO_SUFFIXES + tuple(VIDEO_CODECS)]
            if not found:
                raise DataError(f"{text}: expected photos ({' '.join(PHOTO_SUFFIXES)}) or "
                                f"videos ({' '.join(VIDEO_CODECS)}) in the folder, found none")
            sources += [_file_source(str(path / p.name), p) for p in found]
        else:
            sources.append(_file_source(text, path))
    if camera is not None:
        sources.append(Source(f"camera{camera}", None, "camera", camera))
    for source in sources:
        _check_readable(source)
    return sources


def annotate_command(path) -> str | None:
    """Where faces (a CSV or class folders of crops) are expected: for a photo, a video or
    a folder holding them, the annotate.py command that finds the faces in them; else
    None. Class folders (angry/, happy/, ...) are faces, whatever else lies beside them."""
    path = Path(path)
    known = PHOTO_SUFFIXES + tuple(VIDEO_CODECS)
    if path.is_dir():
        classes = {name.lower() for name in CLASS_NAMES}
        entries = list(path.iterdir())
        if any(p.is_dir() and p.name.lower() in classes for p in entries) or not any(
                p.is_file() and p.suffix.lower() in known for p in entries):
            return None
    elif path.suffix.lower() not in known:
        return None
    return f"python3 annotate.py {path} --out runs/annotated"


def _file_source(name: str, path: Path) -> Source:
    suffix = path.suffix.lower()
    if suffix in PHOTO_SUFFIXES:
        return Source(name, path, "photo")
    if suffix in VIDEO_CODECS:
        return Source(name, path, "video")
    raise DataError(f"{name}: expected a photo ({' '.join(PHOTO_SUFFIXES)}), a video "
                    f"({' '.join(VIDEO_CODECS)}) or a folder, found a {suffix or 'suffix-less'} "
                    f"file")


def _check_readable(source: Source) -> None:
    if source.kind == "photo":
        if not cv2.haveImageReader(str(source.path)):
            raise DataError(f"{source.name}: expected a JPEG, PNG, BMP or WebP image, found "
                            f"a file OpenCV cannot read as one")
    else:
        open_video(source).release()


def open_video(source: Source) -> cv2.VideoCapture:
    """An opened capture of a video file (ferkit.video.open_video_file) or a camera that
    has given at least one frame."""
    if source.kind != "camera":
        return open_video_file(source.path, source.name)
    quiet_video_warnings()
    capture = cv2.VideoCapture(source.camera)
    if not capture.isOpened() or not capture.read()[0]:
        capture.release()
        raise CameraError(f"--camera {source.camera}: cannot open camera {source.camera} "
                          f"(no such device, or no access to it)")
    return capture


def read_photo(source: Source) -> np.ndarray:
    """The photo as BGR uint8 (H, W, 3), turned as its EXIF orientation says."""
    image = cv2.imread(str(source.path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{source.name}: expected a JPEG, PNG, BMP or WebP image, cannot "
                        f"decode it (damaged?)")
    return image


def output_names(sources) -> dict[int, str]:
    """The annotated file's name for each source (by position): NAME_annotated.SUFFIX,
    numbered where two inputs share a name; a camera's is cameraN_annotated.avi."""
    names, taken = {}, {CSV_NAME}
    for i, source in enumerate(sources):
        stem = Path(source.name).stem
        suffix = CAMERA_SUFFIX if source.kind == "camera" else source.path.suffix.lower()
        name, n = f"{stem}_annotated{suffix}", 1
        while name in taken:
            n += 1
            name = f"{stem}_{n}_annotated{suffix}"
        taken.add(name)
        names[i] = name
    return names


# --- faces and their expressions ----------------------------------------------------------------

@dataclasses.dataclass
class Found:
    """The faces of one picture: the recognizer's ``results`` (one FaceResult a face), their
    grey crops (N, 48, 48) and, with --explain, their Grad-CAM maps (N, 48, 48) in 0-1."""

    results: tuple[FaceResult, ...]
    crops: np.ndarray
    heat: np.ndarray | None = None
    tracks: np.ndarray | None = None  # a video's track ids (N,)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def boxes(self) -> np.ndarray:
        """int (N, 4): each face's x, y, w, h."""
        return np.array([face.box for face in self.results], np.int64).reshape(-1, 4)

    @property
    def probabilities(self) -> np.ndarray:
        """(N, 7): each face's label's probabilities."""
        return np.array([face.probabilities for face in self.results]).reshape(-1, 7)

    def select(self, keep) -> Found:
        """The faces where the mask ``keep`` (N,) is true."""
        keep = np.asarray(keep, dtype=bool)
        return Found(tuple(face for face, kept in zip(self.results, keep) if kept),
                     *(value if value is None else value[keep]
                       for value in (self.crops, self.heat, self.tracks)))

    def smoothed(self, labels, probabilities, tracks) -> Found:
        """The faces as a video draws them: each with its track id and its track's smoothed
        label and probabilities (none marked as the specialist's: the smoothing mixes
        both stages' labels)."""
        results = tuple(dataclasses.replace(face, label=int(label),
                                            probabilities=tuple(map(float, probs)),
                                            handed_over=False)
                        for face, label, probs in zip(self.results, labels, probabilities))
        return Found(results, self.crops, self.heat, np.asarray(tracks))


class Annotator:
    """Finds the faces of a picture and reads their expressions through the recognizer
    (ferkit.Recognizer.look, as serve.py does), for one kind of ``source`` ("photo", or
    "live" for video frames and the camera: each its own detector and smallest face); for
    --explain, ``explain_model`` is the Keras stage-1 model Grad-CAM explains."""

    def __init__(self, recognizer, source: str = "photo", explain_model=None):
        self.recognizer = recognizer
        self.source = source
        self.explain_model = explain_model
        recognizer.face_detector(self.settings.detector)  # loaded now, not on the first frame

    @property
    def settings(self):
        """How this source's faces are found and framed (ferkit.faces.FaceSettings)."""
        return self.recognizer.face_settings[self.source]

    def look(self, image: np.ndarray) -> Found:
        results, crops = self.recognizer.look(image, self.source)
        heat = None
        if self.explain_model is not None and results:
            from ferkit.explain import gradcam  # TensorFlow: only with --explain
            from ferkit.figures import normalized  # matplotlib: only with --explain

            # Grad-CAM of stage 1's logit for the label the cascade gave.
            heat = normalized(gradcam(self.explain_model, crops,
                                      np.array([face.label for face in results])))
        return Found(results, crops, heat)


def csv_rows(name: str, frame: int, found: Found) -> list[list]:
    """faces.csv's rows of one photo (ferkit.tracking.table_row: no time or track)."""
    return [table_row(name, frame, face) for face in found.results]


def write_faces_csv(path, rows) -> None:
    """faces.csv, with \n line ends as every CSV the toolkit writes (csv's default is
    \r\n)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def write_video_report(stage, annotated_name, video_name, rows) -> None:
    """NAME.summary.csv (per track: ferkit.tracking.summary) and NAME.timeline.png (per
    track, its probabilities over time and its smoothed label) of one video's rows."""
    import pandas as pd
    from ferkit.figures import timeline_figure

    table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    stem = Path(annotated_name).stem.removesuffix("_annotated")
    tracking.summary(table).to_csv(stage / f"{stem}.summary.csv", index=False,
                                   lineterminator="\n")
    timeline_figure(tracking.timeline_arrays(table),
                    f"{Path(video_name).name}: expressions over time",
                    stage / f"{stem}.timeline.png")
    print(f"  {len(table['track'].unique())} track(s): {stem}.summary.csv, {stem}.timeline.png")


# --- drawing -----------------------------------------------------------------------------------

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_HEIGHT = 22          # pixels of a capital at font scale 1
CHART_ROW = (9, 24)       # smallest, largest bar-chart row height, pixels
# A photo's chart is made no smaller than this to fit beside its face (its 9-pixel rows are
# hard to read): the photo is widened instead. A video frame cannot be.
READABLE_ROW = 14
PANEL_SHADE = 0.3         # the panel darkens the picture under it to this share


def draw_found(image: np.ndarray, found: Found, widen: bool = False) -> np.ndarray:
    """Every face's box and label, and beside it its panel (the bar chart; Grad-CAM too
    with --explain), the largest that fits in the picture without covering any face,
    label or panel already placed (rows sized to the face, down to READABLE_ROW in a
    photo, CHART_ROW's least in a video frame).
    Where none fits: with ``widen`` (photos) the picture gets a black strip on its right
    and such panels go there, level with their faces; without (video frames, whose size
    is fixed) the panel goes where it covers the least. Returns the drawn picture:
    ``image`` itself, drawn in place, or its widened copy."""
    tracks = [""] * len(found) if found.tracks is None else [f"#{t} " for t in found.tracks]
    labels = [(f"{track}{face.label_name}{'*' if face.handed_over else ''} "
               f"{face.confidence:.0%}", face.box) for face, track in zip(found.results, tracks)]
    taken = [_label_and_box(image, text, box, draw=False) for text, box in labels]
    smallest = READABLE_ROW if widen else CHART_ROW[0]
    homeless = []
    for i in range(len(found)):
        largest = max(smallest, _chart_row(found.results[i].box[3]))
        for row in range(largest, smallest - 1, -1):
            panel = _panel(found, i, row)
            spot = _free_spot(image.shape, panel.shape, taken[i], taken)
            if spot is not None:
                _place(image, panel, spot, taken)
                break
        else:
            homeless.append(i)
    if homeless and widen:
        image = _strip(image, [(found.results[i].box, _panel(found, i, max(
            smallest, _chart_row(found.results[i].box[3])))) for i in homeless])
    else:
        for i in homeless:
            panel = _panel(found, i, CHART_ROW[0])
            spot = _least_covering_spot(image.shape, panel.shape, taken[i], taken)
            if spot is not None:
                _place(image, panel, spot, taken)
    for (text, box), face in zip(labels, found.results):
        _label_and_box(image, text, box, CLASS_COLOURS[face.label])
    return image


def _chart_row(face_height) -> int:
    """The bar chart's row height for a face: its height over the seven rows, within
    CHART_ROW."""
    return int(np.clip(round(int(face_height) / len(CLASS_NAMES)), *CHART_ROW))


def _panel(found: Found, i: int, row: int) -> np.ndarray:
    face = found.results[i]
    return face_panel(face.probabilities, face.label, row,
                      None if found.heat is None else found.heat[i], found.crops[i])


def face_panel(probs, label: int, row: int, heat=None, crop=None) -> np.ndarray:
    """The bar chart of the seven probabilities, ``row`` pixels a class, with the Grad-CAM
    over the 48x48 crop on its left when ``heat`` (0-1) is given: BGR on black."""
    chart = _bar_chart(probs, label, row)
    if heat is None:
        return chart
    side = chart.shape[0]
    tile = cv2.resize(_heat_tile(crop, heat), (side, side), interpolation=cv2.INTER_LINEAR)
    return np.concatenate([tile, chart], axis=1)


def _place(image, panel, spot, taken) -> None:
    _blend(image, panel, spot)
    taken.append((*spot, spot[0] + panel.shape[1], spot[1] + panel.shape[0]))


def _strip(image, boxed_panels) -> np.ndarray:
    """``image`` with a black strip on its right holding each (box, panel) level with its
    face (moved down past the one above it, up where the picture ends)."""
    height, width = image.shape[:2]
    gap = 4
    strip = max(panel.shape[1] for _, panel in boxed_panels) + 2 * gap
    canvas = np.zeros((height, width + strip, 3), np.uint8)
    canvas[:, :width] = image
    below = 0
    for box, panel in sorted(boxed_panels, key=lambda boxed: boxed[0][1]):
        if panel.shape[0] > height:  # a picture lower than the panel: rows to fit it
            panel = cv2.resize(panel, (panel.shape[1], height), interpolation=cv2.INTER_AREA)
        y = int(np.clip(max(int(box[1]), below), 0, height - panel.shape[0]))
        canvas[y:y + panel.shape[0], width + gap:width + gap + panel.shape[1]] = panel
        below = y + panel.shape[0] + gap
    return canvas


def _label_and_box(image, text, box, colour=None, draw=True):
    """Draw the box and 'Label NN%' above it (inside its top where the picture ends): NN
    is the label's probability (FaceResult.confidence), '*' marks a label the specialist chose. Returns
    the rectangle (x0, y0, x1, y1) the two cover; ``draw`` False only measures it."""
    x, y, w, h = (int(v) for v in box)
    scale = float(np.clip(w / 160, 0.4, 1.2))
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    top = y - th - base - 4 if y - th - base - 4 >= 0 else y
    if draw:
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, max(1, round(w / 80)),
                      cv2.LINE_AA)
        cv2.rectangle(image, (x, top), (x + tw + 4, top + th + base + 4), colour, cv2.FILLED)
        cv2.putText(image, text, (x + 2, top + th + 2), FONT, scale, (0, 0, 0), thickness,
                    cv2.LINE_AA)
    return x, top, max(x + w, x + tw + 4), y + h


def _bar_chart(probs, label: int, row: int) -> np.ndarray:
    """A BGR panel, one row of ``row`` pixels per class: short name, bar, percentage; on
    black (blended over the picture when placed)."""
    pad = max(2, row // 4)
    scale = 0.62 * row / FONT_HEIGHT
    name_width = cv2.getTextSize("Sur", FONT, scale, 1)[0][0] + pad
    bar_width = 3 * row
    percent_width = cv2.getTextSize("100%", FONT, scale, 1)[0][0] + pad
    panel = np.zeros((row * len(probs) + 2 * pad, name_width + bar_width + percent_width
                      + 2 * pad, 3), np.uint8)
    for i, p in enumerate(probs):
        top = pad + i * row
        text_colour = (255, 255, 255) if i == label else (170, 170, 170)
        baseline = top + round(0.78 * row)
        cv2.putText(panel, SHORT_NAMES[i], (pad, baseline), FONT, scale, text_colour, 1,
                    cv2.LINE_AA)
        left = pad + name_width
        cv2.rectangle(panel, (left, top + row // 6), (left + max(1, round(p * bar_width)),
                                                      top + row - row // 6),
                      CLASS_COLOURS[i], cv2.FILLED)
        cv2.putText(panel, f"{p:.0%}", (left + bar_width + pad // 2, baseline), FONT, scale,
                    text_colour, 1, cv2.LINE_AA)
    return panel


def _heat_tile(crop, heat) -> np.ndarray:
    """The grey 48x48 crop with its Grad-CAM map (0-1) over it in the jet colours: BGR."""
    colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    return cv2.addWeighted(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), 0.5, colours, 0.5, 0)


def _candidates(shape, panel_shape, face) -> list[tuple[int, int]]:
    """Top-left corners for a panel by a face's rectangle (x0, y0, x1, y1: its box and
    label): right of it, left, below, above (beside first: a face's chart is read level
    with it), each slid along that side to stay inside the picture."""
    height, width = shape[:2]
    ph, pw = panel_shape[:2]
    x0, y0, x1, y1 = face
    gap = max(3, ph // 30)
    level = int(np.clip(y0, 0, max(0, height - ph)))
    along = int(np.clip(x0, 0, max(0, width - pw)))
    return [(x1 + gap, level), (x0 - gap - pw, level), (along, y1 + gap),
            (along, y0 - gap - ph)]


def _covered(spot, panel_shape, taken) -> int:
    """Pixels of the ``taken`` rectangles a panel at ``spot`` would cover."""
    cx, cy = spot
    ph, pw = panel_shape[:2]
    return sum(max(0, min(cx + pw, x1) - max(cx, x0)) * max(0, min(cy + ph, y1) - max(cy, y0))
               for x0, y0, x1, y1 in taken)


def _free_spot(shape, panel_shape, face, taken):
    """The first of _candidates that lies inside the picture and covers none of the
    ``taken`` rectangles (faces, labels, panels); None where none does."""
    height, width = shape[:2]
    ph, pw = panel_shape[:2]
    for cx, cy in _candidates(shape, panel_shape, face):
        if 0 <= cx <= width - pw and 0 <= cy <= height - ph \
                and not _covered((cx, cy), panel_shape, taken):
            return cx, cy
    return None


def _least_covering_spot(shape, panel_shape, face, taken):
    """Of _candidates, each moved inside the picture, the one that covers the least of
    the ``taken`` rectangles; None where the panel is larger than the picture."""
    height, width = shape[:2]
    ph, pw = panel_shape[:2]
    if ph > height or pw > width:
        return None
    spots = [(int(np.clip(cx, 0, width - pw)), int(np.clip(cy, 0, height - ph)))
             for cx, cy in _candidates(shape, panel_shape, face)]
    return min(spots, key=lambda spot: _covered(spot, panel_shape, taken))


def _blend(image, panel, spot) -> None:
    """The panel's drawn pixels over the picture, the picture darkened under the rest."""
    x, y = spot
    ph, pw = panel.shape[:2]
    under = image[y:y + ph, x:x + pw]
    shown = panel.any(axis=2, keepdims=True)
    image[y:y + ph, x:x + pw] = np.where(shown, panel,
                                         cv2.convertScaleAbs(under, alpha=PANEL_SHADE))


# --- photos and videos -----------------------------------------------------------------------

def annotate_photo(annotator: Annotator, source: Source, out_path=None) -> list[list]:
    """faces.csv's rows of one photo (none where it has no face); its annotated copy at
    ``out_path`` (None: not drawn; no copy of a photo without a face)."""
    image = read_photo(source)
    found = annotator.look(image)
    if len(found) and out_path is not None:
        _write_image(out_path, draw_found(image, found, widen=True))
    return csv_rows(source.name, 0, found)


def annotate_photos(annotator: Annotator, sources, out_paths, show_progress: bool = True):
    """(faces.csv's rows, the names of the photos without a face) of several photos, with a
    progress bar; ``out_paths``: each photo's annotated copy, or None (not drawn)."""
    bar = progress_bar(len(sources), "photo", show_progress)
    rows, faceless = [], []
    for source, out_path in zip(sources, out_paths):
        found = annotate_photo(annotator, source, out_path)
        rows += found
        if not found:
            faceless.append(source.name)
        bar.add(1)
    return rows, faceless


def _write_image(path, image) -> None:
    try:
        written = cv2.imwrite(str(path), image)
    except cv2.error as err:
        raise DataError(f"{path}: cannot write the annotated picture ({err})") from None
    if not written:
        raise DataError(f"{path}: cannot write the annotated picture")


def annotate_video(annotator: Annotator, source: Source, out_path=None, every: int = 1,
                   max_frames: int | None = None, show_progress: bool = True,
                   smooth: float = DEFAULT_SMOOTH, min_track: int = MIN_TRACK_FRAMES):
    """(faces.csv's rows, frames read) of a video file or a camera: the faces of every
    ``every``-th frame (from frame 0), up to ``max_frames`` frames (a camera: until then or
    Ctrl-C), each with its time, track and label smoothed over ``smooth`` seconds
    (ferkit.tracking.VideoTable, as Recognizer.analyze_video builds them); the rows of
    tracks seen in fewer than ``min_track`` sampled frames are dropped. With ``out_path``,
    every frame is written to an annotated video, the frames between two sampled ones with
    the last sampled frame's drawing: each face of a track seen ``min_track`` times so far,
    with its track id and smoothed label."""
    capture = open_video(source)
    try:
        table = VideoTable(source.name, video_fps(capture), every, smooth, min_track)
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if source.kind == "video" else 0
        total = min(total, max_frames) if total > 0 and max_frames else (total or max_frames)
        bar = progress_bar(total or None, "frame", show_progress)
        writer, read, drawn = None, 0, None
        try:
            for frame, image, sampled in frames(capture, every, max_frames):
                if sampled:
                    found = annotator.look(image)
                    ids, smoothed, shown = table.add(frame, found.results)
                    drawn = found.smoothed(smoothed.argmax(axis=1), smoothed, ids).select(shown)
                if out_path is not None:
                    writer = writer or _video_writer(out_path, capture, image.shape)
                    writer.write(draw_found(image, drawn))
                read = frame + 1
                if total is None or read < total:
                    bar.update(read)
        except KeyboardInterrupt:
            if source.kind != "camera":
                raise
            print()  # Ctrl-C ends a camera's recording; what was read is kept
        finally:
            if writer is not None:
                writer.release()
        bar.target = read  # OpenCV's frame count can be off: the bar ends where the video did
        bar.update(read, finalize=True)
        return table.rows(), read
    finally:
        capture.release()


def _video_writer(path, capture, shape) -> cv2.VideoWriter:
    fps = video_fps(capture)
    fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[Path(path).suffix.lower()])
    writer = cv2.VideoWriter(str(path), fourcc, fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise DataError(f"{path}: cannot write the annotated video (OpenCV could not open "
                        f"a {Path(path).suffix} writer)")
    return writer
