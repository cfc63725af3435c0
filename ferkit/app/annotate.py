"""Find every face in photos and videos, read its expression, draw it and list it.

Usage:
    python3 annotate.py photo.jpg --out runs/annotated/
    python3 annotate.py photos/ clip.mp4 --out runs/annotated/ --every 5 --tta
    python3 annotate.py --camera 0 --out runs/annotated/ --max-frames 300

Each face is found by MTCNN in a photo and by OpenCV's Haar cascade in a video frame
(--detector), cropped as a square around the detector's box with --margin of its side added
on each side (FER2013's framing), made grey 48x48 and labelled by the same two-stage
cascade as predict.py (stage 1, and the specialist where stage 1 hands the face over).
Writes OUT/faces.csv, one row per face: file,frame,time,track,x,y,w,h, score (the input as
given or as found in a folder, the frame, 0 for a photo, a video's seconds from its start
and the face's track id, the same for one person across frames (ferkit.tracking; empty for
a photo), the box in the input's pixels, the detector's score: Haar's number of windows
merged into the box, MTCNN's confidence 0-1),
label,label_name (the cascade's, 0-6 and its name), handed_over (1 where the specialist
decided), p_angry..p_neutral (the probabilities that go with the label: stage 1's, or where
the specialist decided, stage 1's share of the specialist's classes split as the specialist
says), stage1_p_angry..stage1_p_neutral (stage 1's own; all averaged with the mirror
image's under --tta), smooth_label,smooth_label_name (a video's: the mean of the track's
p_angry..p_neutral over the last --smooth seconds; a photo's: its label). A video's tracks
seen in fewer than --min-track sampled frames are dropped (a detector's false faces). For
each video, NAME.summary.csv (per track: first and last seen, frames, the share of frames
per smoothed label, the mean probabilities) and NAME.timeline.png (per track, the seven
probabilities over time and the smoothed label as a band). Beside it: NAME_annotated.SUFFIX per photo and video, each face
boxed, with its label and the label's probability ('*': the specialist chose the label; in
a video: '#track', the smoothed label and probabilities, from a track's --min-track-th
frame on) and beside the box a bar chart of the label's probabilities (a photo with no room for it beside
the face gets a strip on its right; a video frame keeps its size). A photo without a face
gets a line saying so, and no row and no copy. Outputs are staged in a folder beside OUT
and moved into place only when everything succeeded.
"""
import argparse
import sys
import time
from pathlib import Path

from ferkit import paths, tracking
from ferkit.app import annotation, cli
from ferkit.faces import DEFAULT_MIN_NEIGHBORS, DETECTORS, SOURCE_DETECTORS, source_settings
from ferkit.files import staged_folder
from ferkit.tracking import DEFAULT_SMOOTH, MIN_TRACK_FRAMES, SMOOTH_RANGE
from ferkit.inference import load_stage1
from ferkit.words import counted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     epilog="\n".join(__doc__.split("\n\n")[2:]),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="photos (.jpg .jpeg .png .bmp .webp), videos (.mp4 .avi), or "
                             "folders holding them (not searched below the first level)")
    parser.add_argument("--out", required=True,
                        help="folder for faces.csv and the annotated files (made, with its parents, if "
                             "needed)")
    parser.add_argument("--camera", type=int, default=None, metavar="N",
                        help="also read OpenCV's camera N (0: the first webcam) until "
                             "--max-frames or Ctrl-C")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="in videos, find and label the faces of every N-th frame "
                             "(the annotated video keeps every frame, drawn with the last "
                             "labelled frame's faces)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="read at most N frames of each video and of the camera")
    parser.add_argument("--detector", choices=("auto",) + DETECTORS, default="auto",
                        help="face detector: mtcnn = MTCNN (finds the most faces; loads "
                             "TensorFlow), haar = OpenCV's Haar cascade; auto = "
                             f"{per_source(0)}")
    parser.add_argument("--min-face", type=int, default=None, metavar="PIXELS",
                        help="smallest face the detector looks for, in the input's pixels "
                             f"(default: {per_source(1)})")
    parser.add_argument("--min-neighbors", type=int, default=DEFAULT_MIN_NEIGHBORS,
                        help="overlapping detector windows a face needs (more: fewer false "
                             "faces, fewer faces found)")
    parser.add_argument("--margin", type=float, default=None,
                        help="share of the detector's box side added on each side of the "
                             "square crop (default: the detector's, tuned to FER2013's "
                             "framing)")
    parser.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH, metavar="SECONDS",
                        help="in videos, a face's smoothed label is the mean of its track's "
                             "probabilities over the last SECONDS (%g to %g; 0: none)" % SMOOTH_RANGE)
    parser.add_argument("--min-track", type=int, default=MIN_TRACK_FRAMES, metavar="FRAMES",
                        help="in videos, a track seen in fewer sampled frames is not a person "
                             "(a detector's false face): its rows are dropped and it is not drawn")
    parser.add_argument("--no-draw", dest="draw", action="store_false",
                        help="write faces.csv only, no annotated photos or videos")
    parser.add_argument("--explain", action="store_true",
                        help="draw beside each face its Grad-CAM (ferkit.explain) over the crop: "
                             "where stage 1 looked for the label given")
    cli.add_prediction_options(parser)
    cli.add_calibration_option(parser)
    args = parser.parse_args(argv)
    if not args.inputs and args.camera is None:
        parser.error("expected at least one INPUT or --camera N")
    for name in ("every", "max_frames", "min_track"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a count >= 1, found {value}")
    if args.explain and not args.draw:
        parser.error("--explain draws beside each face: it cannot go with --no-draw")
    return args


def per_source(field: int) -> str:
    """A default that SOURCE_DETECTORS sets per kind of input, said once where both kinds
    share it: 'mtcnn for photos, haar for videos and the camera', or '48'."""
    photo, live = SOURCE_DETECTORS["photo"][field], SOURCE_DETECTORS["live"][field]
    return f"{photo}" if photo == live else f"{photo} for photos, {live} for videos and the camera"


def check_paths(args) -> None:
    """The models (each with its sidecar) and the --out folder, before TensorFlow is
    imported (the inputs are checked by annotation.find_sources)."""
    cli.check_prediction_models(args)
    paths.output_folder(args.out, "annotated files (--out)")


def main(argv=None):
    started = time.perf_counter()
    args = parse_args(argv)
    # Photos get the detector that finds the most faces, videos the one that keeps up
    # (ferkit.Recognizer's per-source settings, checked here before any model loads).
    face_options = {"detector": None if args.detector == "auto" else args.detector,
                    "min_face": args.min_face, "min_neighbors": args.min_neighbors,
                    "margin": args.margin}
    for kind in SOURCE_DETECTORS:
        source_settings(kind, **face_options)
    tracking.check_smooth(args.smooth)  # a bad --smooth: one line naming it, before any work
    sources = annotation.find_sources(args.inputs, args.camera)
    check_paths(args)
    names = annotation.output_names(sources)
    photos = [i for i, source in enumerate(sources) if source.kind == "photo"]
    videos = [i for i, source in enumerate(sources) if source.kind != "photo"]
    frames = 0
    recognizer = cli.recognizer(args, **face_options)
    cli.announce_cascade(recognizer.cascade, args.stage1, args.stage2, args.handoff_below)
    # Grad-CAM needs stage 1 as a Keras model, whatever runs the cascade.
    explain_model = load_stage1(args.stage1)[0] if args.explain else None
    annotators = {kind: annotation.Annotator(recognizer, kind, explain_model)
                  for kind, used in (("photo", photos), ("live", videos)) if used}
    # A failure to write (a full disk) is one line naming the folder, not a traceback.
    with paths.writing(args.out, "annotated files"), staged_folder(args.out) as stage:
        # Photos first, one progress bar over them all; then each video with its own.
        rows, faceless = annotation.annotate_photos(
            annotators.get("photo"), [sources[i] for i in photos],
            [stage / names[i] if args.draw else None for i in photos], len(photos) > 1)
        for name in faceless:
            print(f"{name}: no face found")
        for i in videos:
            print(f"{sources[i].name}:")
            found, read = annotation.annotate_video(
                annotators["live"], sources[i], stage / names[i] if args.draw else None, args.every,
                args.max_frames, smooth=args.smooth, min_track=args.min_track)
            rows += found
            frames += read
            annotation.write_video_report(stage, names[i], sources[i].name, found)
        annotation.write_faces_csv(stage / annotation.CSV_NAME, rows)
    print(f"wrote {Path(args.out) / annotation.CSV_NAME}: {counted(len(rows), 'face')} from "
          f"{counted(len(photos), 'photo')} and {counted(frames, 'video frame')}"
          f"{'' if args.draw else ', nothing drawn'}; "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
