"""Faces over time: a track id that stays with each person across a video's frames, the
expression smoothed along each track, and what a faces table says per track.

The ids come from norfair (an established multi-object tracker: a Kalman filter per face
and an assignment of boxes to tracks by their overlap), chosen over motpy on the scenes of
ferkit.composites.TRACKING_SCENES (bench/tracking.py, RESULTS.md). Everything here works
frame by frame, as a camera gives them, and keeps only what the last few seconds need, so
memory stays flat over a long video.

The table functions (smoothed_labels, drop_short_tracks, summary, timeline_arrays) take
the faces table (faces.csv's columns, ferkit.Recognizer.analyze_video's DataFrame), so a
user can redraw or re-summarise a video without running it again.
"""
from __future__ import annotations

import collections

import numpy as np

from ferkit.errors import ParameterError
from ferkit.inference import LABEL_PROBABILITY_FIELDS, RESULT_FIELDS
from ferkit.labels import CLASS_NAMES, NUM_CLASSES

# How long a track waits, unseen, for its face to come back (a head turned away, a hand in
# front, the detector missing it): seconds of video.
MAX_ABSENCE = 1.0
# A box joins a track when its overlap with the track's predicted box (intersection over
# union) is at least 1 - this: faces move little between two frames of a video.
MAX_IOU_DISTANCE = 0.8
# A track seen in fewer sampled frames than this is not a person (a detector's false face:
# bench/tracking.py measured how long theirs last).
MIN_TRACK_FRAMES = 5
# The window of a track's probabilities averaged into its smoothed label, seconds before
# and up to each frame (bench/tracking.py measured label flips against lag).
DEFAULT_SMOOTH = 1.0
SMOOTH_RANGE = (0.0, 60.0)
PROBABILITY_FIELDS = LABEL_PROBABILITY_FIELDS  # p_angry..p_neutral: what is smoothed
# The faces table (faces.csv, Recognizer.analyze_video's DataFrame), one row a face: the
# input, the frame (0 for a photo), a video's seconds from its start and the face's track
# ("" for a photo), the face (ferkit.FaceResult.record()), and the track's smoothed label
# and its name (a photo's: its label).
TRACK_FIELDS = ("time", "track")
SMOOTH_FIELDS = ("smooth_label", "smooth_label_name")
TABLE_COLUMNS = ("file", "frame", *TRACK_FIELDS) + RESULT_FIELDS + SMOOTH_FIELDS


def check_smooth(seconds) -> float:
    """The smoothing window, seconds: 0 (no smoothing) to 60."""
    low, high = SMOOTH_RANGE
    if not isinstance(seconds, (int, float)) or not low <= seconds <= high:
        raise ParameterError("smooth", f"expected seconds from {low:g} to {high:g}, found "
                                       f"{seconds}")
    return float(seconds)


class FaceTracker:
    """Track ids (1, 2, ...) for the boxes of successive sampled frames of one video.

    ``fps``: the video's frame rate; ``every``: one frame in ``every`` is looked at, so
    absences are counted in sampled frames."""

    def __init__(self, fps: float, every: int = 1, max_absence: float = MAX_ABSENCE):
        import norfair  # a light import (numpy, scipy), made where tracking is asked for

        self._norfair = norfair
        misses = max(1, round(max_absence * fps / every))
        self._tracker = norfair.Tracker(distance_function="iou",
                                        distance_threshold=MAX_IOU_DISTANCE,
                                        hit_counter_max=misses, initialization_delay=0)
        self._step = 0

    @property
    def steps(self) -> int:
        """Sampled frames seen so far."""
        return self._step

    def update(self, boxes) -> np.ndarray:
        """The track id of each box (x, y, w, h) of the next sampled frame, int (N,)."""
        self._step += 1
        detections = [self._norfair.Detection(
            np.array([[x, y], [x + w, y + h]], float), data=(self._step, i))
            for i, (x, y, w, h) in enumerate(boxes)]
        ids = np.zeros(len(detections), int)
        for track in self._tracker.update(detections):
            step, i = track.last_detection.data
            if step == self._step:
                ids[i] = track.id
        return ids


class Smoother:
    """Each track's probabilities averaged over the last ``seconds`` of video (its frames
    from ``time - seconds`` up to ``time``); a track's entries older than that are let go."""

    def __init__(self, seconds: float = DEFAULT_SMOOTH):
        self.seconds = check_smooth(seconds)
        self._recent = collections.defaultdict(collections.deque)  # track -> (time, probs)

    def update(self, track: int, time: float, probs) -> np.ndarray:
        """The track's smoothed probabilities (7,) at ``time``, with ``probs`` counted."""
        recent = self._recent[track]
        recent.append((time, np.asarray(probs, float)))
        while recent[0][0] < time - self.seconds - 1e-9:
            recent.popleft()
        return np.mean([p for _, p in recent], axis=0)

    def forget(self, before: float) -> None:
        """Let go of the tracks last seen before ``before`` (seconds)."""
        for track in [t for t, recent in self._recent.items() if recent[-1][0] < before]:
            del self._recent[track]


class VideoTracks:
    """What tracking adds to each face of a video, frame by frame: its track id, its
    smoothed label, and whether its track has been seen in ``min_frames`` sampled frames
    yet (a drawing shows only those: shorter tracks are dropped from the table)."""

    def __init__(self, fps: float, every: int = 1, smooth: float = DEFAULT_SMOOTH,
                 min_frames: int = MIN_TRACK_FRAMES):
        self.tracker = FaceTracker(fps, every)
        self.smoother = Smoother(smooth)
        self.min_frames = check_min_frames(min_frames)
        self.fps = fps
        self._seen = collections.Counter()

    def update(self, frame: int, boxes, probs):
        """(track ids (N,), smoothed probabilities (N, 7), shown (N,) bool) of one sampled
        frame's faces: their boxes (x, y, w, h) and probabilities (N, 7); the smoothed
        label is the smoothed probabilities' argmax."""
        return self.update_at(frame_time(frame, self.fps), boxes, probs)

    def update_at(self, time: float, boxes, probs):
        """update() for a frame at ``time`` seconds (a camera's frames, timed as they come)."""
        ids = self.tracker.update(boxes)
        smoothed = np.array([self.smoother.update(track, time, p)
                             for track, p in zip(ids, probs)]).reshape(len(ids), NUM_CLASSES)
        self._seen.update(ids.tolist())
        self.smoother.forget(time - MAX_ABSENCE - self.smoother.seconds)
        shown = np.array([self._seen[track] >= self.min_frames for track in ids], bool)
        return ids, smoothed, shown

    def kept(self, track: int) -> bool:
        """Whether a track is long enough to be a person, of what was seen so far: seen in
        ``min_frames`` sampled frames, or in all of a video shorter than that."""
        return self._seen[track] >= min(self.min_frames, self.tracker.steps)


class VideoTable:
    """The faces table of one video, built frame by frame: each sampled frame's faces
    (ferkit.FaceResult) get their time, track and smoothed label (VideoTracks); ``rows()``
    are those of the tracks long enough to be a person, in TABLE_COLUMNS' order.
    Recognizer.analyze_video and annotate.py both build their rows so."""

    def __init__(self, name: str, fps: float, every: int = 1, smooth: float = DEFAULT_SMOOTH,
                 min_track: int = MIN_TRACK_FRAMES):
        self.name = name
        self.tracks = VideoTracks(fps, every, smooth, min_track)
        self._rows = []

    def add(self, frame: int, faces):
        """(track ids (N,), smoothed probabilities (N, 7), shown (N,)) of one sampled
        frame's faces, their rows kept."""
        boxes = [face.box for face in faces]
        probs = np.array([face.probabilities for face in faces], float).reshape(-1, NUM_CLASSES)
        ids, smoothed, shown = self.tracks.update(frame, boxes, probs)
        time = frame_time(frame, self.tracks.fps)
        self._rows += [table_row(self.name, frame, face, time, track, label)
                       for face, track, label in zip(faces, ids, smoothed.argmax(axis=1))]
        return ids, smoothed, shown

    def rows(self) -> list[list]:
        track = TABLE_COLUMNS.index("track")
        return [row for row in self._rows if self.tracks.kept(row[track])]


def table_row(name: str, frame: int, face, time="", track="", smooth_label=None) -> list:
    """One face's row of the faces table (faces.csv): the input's name, the frame, a
    video's time and track ("" for a photo), FaceResult.record() (handed_over as 1 or 0),
    the smoothed label and its name (a photo's: its label)."""
    smooth = face.label if smooth_label is None else int(smooth_label)
    return [name, frame, time, track if track == "" else int(track),
            *(int(value) if isinstance(value, bool) else value
              for value in face.record().values()), smooth, CLASS_NAMES[smooth]]


class LiveStreams:
    """VideoTracks for each of several live streams at once (a web page's webcam each),
    its frames timed as they come; a stream idle for ``idle_seconds`` is let go, and no
    more than ``most`` are kept (the longest idle goes first)."""

    def __init__(self, fps: float = 5.0, smooth: float = DEFAULT_SMOOTH,
                 idle_seconds: float = 60.0, most: int = 32):
        self.fps, self.smooth, self.idle_seconds, self.most = fps, smooth, idle_seconds, most
        self._streams = {}  # name -> (VideoTracks, the clock's start, last seen)

    def update(self, stream: str, now: float, boxes, probs):
        """VideoTracks.update_at's answer for ``stream``'s frame at ``now`` (seconds of a
        monotonic clock)."""
        for name in [n for n, (_, _, seen) in self._streams.items()
                     if now - seen > self.idle_seconds]:
            del self._streams[name]
        if stream not in self._streams:
            while len(self._streams) >= self.most:
                del self._streams[min(self._streams, key=lambda n: self._streams[n][2])]
            self._streams[stream] = (VideoTracks(self.fps, 1, self.smooth), now, now)
        tracks, start, _ = self._streams[stream]
        self._streams[stream] = (tracks, start, now)
        return tracks.update_at(now - start, boxes, probs)


def frame_time(frame: int, fps: float) -> float:
    """Seconds from the video's start to ``frame`` (0-based), to the millisecond."""
    return round(frame / fps, 3)


def check_min_frames(frames) -> int:
    if not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ParameterError("min_track", f"expected a count of frames >= 1, found {frames}")
    return int(frames)


# --- the faces table ----------------------------------------------------------------------------

def smoothed_labels(table, seconds: float = DEFAULT_SMOOTH) -> np.ndarray:
    """The smoothed label (0-6) of each row of a faces table (its track, time and
    p_angry..p_neutral), as Smoother gives it frame by frame."""
    labels = np.zeros(len(table), int)
    smoother = Smoother(seconds)
    order = np.lexsort((table["time"].to_numpy(), table["track"].to_numpy()))
    probs = table[list(PROBABILITY_FIELDS)].to_numpy(float)
    tracks, times = table["track"].to_numpy(), table["time"].to_numpy(float)
    for i in order:
        labels[i] = int(np.argmax(smoother.update(tracks[i], times[i], probs[i])))
    return labels


def drop_short_tracks(table, min_frames: int = MIN_TRACK_FRAMES):
    """The rows of a faces table whose track is seen in at least ``min_frames`` frames
    (of its file)."""
    counts = table.groupby(["file", "track"])["frame"].transform("size")
    return table[counts >= min_frames].reset_index(drop=True)


SUMMARY_COLUMNS = ("file", "track", "first_seen", "last_seen", "frames") + tuple(
    f"share_{name.lower()}" for name in CLASS_NAMES) + tuple(
    f"mean_{field}" for field in PROBABILITY_FIELDS)


def summary(table):
    """Per track of a faces table: first and last seen (seconds), frames seen, the share
    of those frames per smoothed label and the mean of each probability; a DataFrame with
    SUMMARY_COLUMNS (no rows for a video without faces)."""
    import pandas as pd

    rows = []
    for (file, track), rows_of in table.groupby(["file", "track"], sort=True):
        shares = np.bincount(rows_of["smooth_label"].to_numpy(int),
                             minlength=len(CLASS_NAMES)) / len(rows_of)
        means = rows_of[list(PROBABILITY_FIELDS)].to_numpy(float).mean(axis=0)
        rows.append([file, int(track), float(rows_of["time"].min()),
                     float(rows_of["time"].max()), len(rows_of), *shares.round(4),
                     *means.round(4)])
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def timeline_arrays(table) -> dict:
    """What the timeline figure draws, per track of one video's faces table, in track
    order: {track: (times (N,), probabilities (N, 7), smoothed labels (N,))}, by time."""
    found = {}
    for track, rows_of in table.sort_values(["track", "time"]).groupby("track", sort=True):
        found[int(track)] = (rows_of["time"].to_numpy(float),
                             rows_of[list(PROBABILITY_FIELDS)].to_numpy(float),
                             rows_of["smooth_label"].to_numpy(int))
    return found
