"""The masked face of the saliency figures keeps a fixed share of each map's pixels, those
the (blurred) map rates most important; --keep sets the share."""
import numpy as np
import pytest

from conftest import ROOT, make_faces, write_csv
from ferkit.app import saliency
from ferkit import figures
from ferkit.app import cli
from ferkit.errors import ParameterError
from ferkit.explain import most_important

PIXELS = 48 * 48


def test_most_important_keeps_exactly_the_share_asked_for():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 48, 48)).astype(np.float32)
    maps[1] = 0  # a flat map too: ties still give the share
    for keep in (0.1, 0.25, 1.0):
        kept = most_important(maps, keep)
        assert kept.shape == maps.shape and kept.dtype == bool
        assert (kept.reshape(3, -1).sum(axis=1) == round(keep * PIXELS)).all()
    with pytest.raises(ParameterError):
        most_important(maps, 0)


def test_most_important_follows_the_blurred_map():
    """One bright patch and specks of noise: the kept pixels are the patch, not the specks."""
    rng = np.random.default_rng(1)
    heat = rng.random((48, 48)).astype(np.float32) * 0.2
    heat[rng.random((48, 48)) < 0.03] = 1.0      # single-pixel specks
    heat[10:22, 10:22] += 0.6                     # the region that matters: 144 pixels
    kept = most_important(heat[None], 144 / PIXELS)[0]
    assert kept[10:22, 10:22].mean() > 0.85
    assert not most_important(heat[None], 144 / PIXELS, smoothing=0)[0][10:22, 10:22].all()


@pytest.fixture
def drawn(monkeypatch):
    """What saliency.py hands to the figure: (title, kept masks) per method."""
    calls = []
    original = figures.saliency_figure

    def spy(faces, maps, kept, captions, title, path):
        calls.append((title, np.asarray(kept)))
        original(faces, maps, kept, captions, title, path)
    monkeypatch.setattr(figures, "saliency_figure", spy)
    return calls


@pytest.mark.slow
def test_saliency_on_the_shipped_model_keeps_the_chosen_share(tmp_path, drawn):
    images, _ = make_faces(6)
    data = write_csv(tmp_path / "faces.csv", "id,feature",
                     ((f"f{i}", image) for i, image in enumerate(images)))
    argv = ["--model", str(ROOT / "models" / "cnn.h5"), "--data", str(data), "--ids",
            "f0,f1,f2", "--samples", "2", "--out", str(tmp_path)]
    for keep in (0.25, 0.1):
        drawn.clear()
        assert cli.run(saliency.main, argv + ["--keep", str(keep)]) == 0
        assert len(drawn) == 3  # saliency, SmoothGrad, Grad-CAM
        for title, kept in drawn:
            assert kept.shape == (3, 48, 48), title
            assert (kept.reshape(3, -1).sum(axis=1) == round(keep * PIXELS)).all(), title
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "cnn_gradcam_faces.png", "cnn_saliency_faces.png", "cnn_smoothgrad_faces.png"]
