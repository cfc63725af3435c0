"""Faces over time (ferkit.tracking): track ids on the synthetic scenes of
ferkit.composites.TRACKING_SCENES (two heads that move, one that leaves and comes back, two
that pass close, a head shown for three frames), the smoothed label, and what annotate.py
writes for a video: faces.csv's track, time and smoothed label, NAME.summary.csv and
NAME.timeline.png, whose values are recomputed here from faces.csv."""
import numpy as np
import pandas as pd
import pytest

from ferkit import tracking
from ferkit.app import annotate
from ferkit.composites import TRACKING_SCENES, person_of, scene_video, write_video
from ferkit.faces import find_faces, load_detector, source_settings
from ferkit.labels import CLASS_NAMES
from test_annotate import no_staging_left, run_annotate

PROBS = [f"p_{name.lower()}" for name in CLASS_NAMES]

pytestmark = pytest.mark.slow  # videos annotated through the cascade


@pytest.fixture(scope="module")
def scenes():
    """Per scene: the video and, per frame, Haar's boxes (annotate.py's video settings)."""
    detector, settings = load_detector(), source_settings("live")
    found = {}
    for name in TRACKING_SCENES:
        video = scene_video(name)
        found[name] = video, [find_faces(frame, detector, settings)[0] for frame in video.frames]
    return found


def kept_tracks(video, boxes_per_frame):
    """{track: set of the persons its boxes lie on} of the tracks VideoTracks keeps."""
    tracks = tracking.VideoTracks(video.fps)
    persons = {}
    for frame, boxes in enumerate(boxes_per_frame):
        ids, _, _ = tracks.update(frame, boxes, np.full((len(boxes), 7), 1 / 7))
        for track, box in zip(ids, boxes):
            persons.setdefault(int(track), set()).add(
                person_of(box, [head[frame] for head in video.heads]))
    return {t: p for t, p in persons.items() if tracks.kept(t)}


@pytest.mark.parametrize("scene,people", [("two_move", 2), ("pass_close", 2),
                                          ("leave_and_return", 1)])
def test_each_person_keeps_one_track_and_no_track_holds_two(scenes, scene, people):
    video, boxes = scenes[scene]
    kept = kept_tracks(video, boxes)
    assert sorted(kept.values(), key=min) == [{p} for p in range(people)], kept


def test_the_face_that_leaves_comes_back_under_its_id(scenes):
    video, boxes = scenes["leave_and_return"]
    tracks = tracking.VideoTracks(video.fps)
    ids = [tracks.update(frame, b, np.full((len(b), 7), 1 / 7))[0]
           for frame, b in enumerate(boxes)]
    absent = [frame for frame, head in enumerate(video.heads[0]) if head is None]
    before = {int(t) for frame in range(absent[0]) for t, b in zip(ids[frame], boxes[frame])
              if person_of(b, [video.heads[0][frame]]) == 0}
    after = {int(t) for frame in range(absent[-1] + 1, len(ids))
             for t, b in zip(ids[frame], boxes[frame])
             if person_of(b, [video.heads[0][frame]]) == 0}
    assert before == after and len(before) == 1, (before, after)


def test_a_face_shown_for_three_frames_is_dropped(scenes):
    video, boxes = scenes["false_blob"]
    kept = kept_tracks(video, boxes)
    assert list(kept.values()) == [{0}], kept  # the moving head alone; the blob's is gone


def test_the_smoothed_label_is_the_mean_over_the_window_before_each_frame():
    # One track, Happy for a second then Sad: a 1 s window turns a frame after the change
    # half way, at 0.5 s, as a trailing mean of 10 frames a second does.
    happy, sad = np.eye(7)[3] * 0.8 + 0.2 / 7, np.eye(7)[4] * 0.8 + 0.2 / 7
    times = np.arange(20) / 10
    table = pd.DataFrame([[0, "v", 1, t, *(happy if t < 1 else sad)] for t in times],
                         columns=["frame", "file", "track", "time", *PROBS])
    labels = tracking.smoothed_labels(table, 1.0)
    mean = [table[PROBS][(times > t - 1.0 - 1e-9) & (times <= t)].mean().to_numpy().argmax()
            for t in times]
    assert labels.tolist() == mean
    assert labels.tolist() == [3] * 15 + [4] * 5
    assert tracking.smoothed_labels(table, 0).tolist() == [3] * 10 + [4] * 10


def test_smooth_out_of_range_is_one_line_naming_it(tmp_path, capsys):
    video = tmp_path / "two.mp4"
    write_video(video, scene_video("two_move").frames[:2], 10)
    code, _, err = run_annotate([video, "--out", tmp_path / "out", "--smooth", "-1"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --smooth: "), err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """annotate.py --no-cascade on the two_move and false_blob scenes: its output folder,
    the figure's arrays as timeline_figure was handed them, and the videos."""
    folder = tmp_path_factory.mktemp("tracked")
    videos = []
    for name in ("two_move", "false_blob"):
        video = scene_video(name)
        videos.append(folder / f"{name}.mp4")
        write_video(videos[-1], video.frames, video.fps)
    drawn = {}
    with pytest.MonkeyPatch.context() as patch:
        import ferkit.figures

        real = ferkit.figures.timeline_figure

        def recording(tracks, title, path):
            drawn[path.name] = tracks
            real(tracks, title, path)
        patch.setattr(ferkit.figures, "timeline_figure", recording)
        assert annotate.main([*map(str, videos), "--out", str(folder / "out"),
                              "--no-cascade"]) == 0
    return folder / "out", drawn, videos


def test_faces_csv_has_each_rows_track_time_and_smoothed_label(annotated):
    out, _, videos = annotated
    table = pd.read_csv(out / "faces.csv")
    for column in ("track", "time", "smooth_label", "smooth_label_name", "label"):
        assert column in table.columns
    assert (table["time"] == (table["frame"] / 10).round(3)).all()
    assert (table.groupby("file")["track"].nunique() == [1, 2]).all()  # the blob's dropped
    assert (table.groupby(["file", "track"]).size() >= tracking.MIN_TRACK_FRAMES).all()
    # The smoothed label: the mean of the track's probabilities over the second before.
    for _, rows in table.groupby(["file", "track"]):
        for _, row in rows.iterrows():
            window = rows[(rows["time"] > row["time"] - tracking.DEFAULT_SMOOTH - 1e-9)
                          & (rows["time"] <= row["time"])]
            assert row["smooth_label"] == window[PROBS].mean().to_numpy().argmax()
            assert row["smooth_label_name"] == CLASS_NAMES[row["smooth_label"]]


def test_summary_and_timeline_values_are_those_of_faces_csv(annotated):
    out, drawn, videos = annotated
    table = pd.read_csv(out / "faces.csv")
    for video in videos:
        rows = table[table["file"] == str(video)]
        summary = pd.read_csv(out / f"{video.stem}.summary.csv")
        assert summary["track"].tolist() == sorted(rows["track"].unique())
        for _, line in summary.iterrows():
            own = rows[rows["track"] == line["track"]]
            assert line["first_seen"] == own["time"].min()
            assert line["last_seen"] == own["time"].max()
            assert line["frames"] == len(own)
            for k, name in enumerate(CLASS_NAMES):
                share = (own["smooth_label"] == k).mean()
                assert line[f"share_{name.lower()}"] == pytest.approx(share, abs=1e-4)
                assert line[f"mean_p_{name.lower()}"] == pytest.approx(
                    own[PROBS[k]].mean(), abs=1e-4)
        tracks = drawn[f"{video.stem}.timeline.png"]
        assert sorted(tracks) == sorted(rows["track"].unique())
        for track, (times, probs, labels) in tracks.items():
            own = rows[rows["track"] == track].sort_values("time")
            assert np.array_equal(times, own["time"].to_numpy())
            assert np.allclose(probs, own[PROBS].to_numpy())
            assert np.array_equal(labels, own["smooth_label"].to_numpy())
        assert (out / f"{video.stem}.timeline.png").stat().st_size > 1000


def test_a_video_without_faces_gives_empty_tables_and_a_timeline_saying_so(tmp_path,
                                                                           monkeypatch):
    video = tmp_path / "wall.mp4"
    write_video(video, np.full((20, 240, 320, 3), 128, np.uint8), 10)
    said = {}
    import ferkit.figures

    real = ferkit.figures.timeline_figure
    monkeypatch.setattr(ferkit.figures, "timeline_figure",
                        lambda tracks, title, path: said.update(tracks=tracks) or real(
                            tracks, title, path))
    assert annotate.main([str(video), "--out", str(tmp_path / "out"), "--no-cascade"]) == 0
    assert pd.read_csv(tmp_path / "out" / "faces.csv").empty
    summary = pd.read_csv(tmp_path / "out" / "wall.summary.csv")
    assert summary.empty and tuple(summary.columns) == tracking.SUMMARY_COLUMNS
    assert said["tracks"] == {} and (tmp_path / "out" / "wall.timeline.png").exists()


def test_a_video_with_no_frames_is_one_line_exit_2_and_no_output(tmp_path, capsys):
    video = tmp_path / "empty.avi"  # opens, and gives no frame
    write_video(video, np.zeros((0, 48, 48, 3), np.uint8), 10)
    code, _, err = run_annotate([video, "--out", tmp_path / "out", "--no-cascade"], capsys)
    assert code == 2 and err.count("\n") == 1 and "empty.avi: " in err, err
    assert not (tmp_path / "out").exists() and no_staging_left(tmp_path)


def test_analyze_video_gives_the_rows_annotate_py_writes(annotated):
    from ferkit import Recognizer

    out, _, videos = annotated
    written = pd.read_csv(out / "faces.csv")
    recognizer = Recognizer(cascade=False)
    for video in videos:
        table = recognizer.analyze_video(video)
        assert tuple(table.columns) == tracking.TABLE_COLUMNS
        assert len(table) > 0
        pd.testing.assert_frame_equal(
            table.reset_index(drop=True),
            written[written["file"] == str(video)].reset_index(drop=True), check_dtype=False)
