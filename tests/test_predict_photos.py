"""predict.py labels faces already cropped; given a photo, a video or a folder of them, its
one error line sends the user to annotate.py with the command to run."""
import pytest

from conftest import make_faces
from ferkit.app import predict
from ferkit.app import cli


@pytest.mark.parametrize("name", ["photo.jpg", "holiday.PNG", "clip.mp4", "photos/", "videos/"])
def test_photos_and_videos_are_sent_to_annotate(tmp_path, capsys, name):
    path = tmp_path / name.rstrip("/")
    if name.endswith("/"):
        path.mkdir()
        (path / ("a.jpg" if name == "photos/" else "a.mp4")).write_bytes(b"")
    else:
        path.write_bytes(b"")
    assert cli.run(predict.main, [str(path), str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: predict.py labels faces already cropped (a CSV, or class "
                   f"folders of crops); photos and videos go to annotate.py, which finds the "
                   f"faces first: python3 annotate.py {path} --out runs/annotated\n")


def test_class_folders_of_crops_are_faces_not_photos(tmp_path, capsys):
    from PIL import Image

    images, _ = make_faces(2)
    (tmp_path / "faces" / "happy").mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "faces" / "happy" / f"{i}.png")
    code = cli.run(predict.main, [str(tmp_path / "faces"), str(tmp_path / "out.csv"),
                                  "--no-cascade"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out.csv").read_text().startswith("id,label\nhappy/0.png,")
