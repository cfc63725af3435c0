"""Figures name files as a report can show them: relative to the current folder, never by
an absolute path of the machine that drew them; training curves are readable for any run
length."""
from conftest import ROOT
from ferkit import figures
from ferkit.figures import shown_path


def test_files_in_or_beside_the_current_folder_are_named_relative_to_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert shown_path(ROOT / "models" / "cnn.h5") == "models/cnn.h5"
    assert shown_path(ROOT.parent / "shared" / "data" / "test.csv.gz") == \
        "../shared/data/test.csv.gz"
    assert shown_path(ROOT / "runs" / ".." / "data" / "test.csv") == "data/test.csv"


def test_files_elsewhere_are_named_by_their_name_alone(tmp_path):
    assert shown_path(tmp_path / "faces" / "test.csv") == "test.csv"


def test_a_one_epoch_runs_curves_show_its_points(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path: drawn.append(fig))
    history = [{"epoch": 1, "cycle": 0, "loss": 1.9, "val_loss": 1.8, "accuracy": 0.25,
                "val_accuracy": 0.27}]
    figures.training_curves(history, tmp_path / "curves.png")
    for ax in drawn[0].axes:
        lines = ax.get_lines()
        assert len(lines) == 2 and all(line.get_marker() == "o" for line in lines)
        assert all(tick == int(tick) for tick in ax.get_xticks())  # whole epochs
