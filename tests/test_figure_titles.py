"""Figures name files as a report can show them: relative to the current folder, never by
an absolute path of the machine that drew them."""
from conftest import ROOT
from ferkit.figures import shown_path


def test_files_in_or_beside_the_current_folder_are_named_relative_to_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert shown_path(ROOT / "models" / "cnn.h5") == "models/cnn.h5"
    assert shown_path(ROOT.parent / "shared" / "data" / "test.csv.gz") == \
        "../shared/data/test.csv.gz"
    assert shown_path(ROOT / "runs" / ".." / "data" / "test.csv") == "data/test.csv"


def test_files_elsewhere_are_named_by_their_name_alone(tmp_path):
    assert shown_path(tmp_path / "faces" / "test.csv") == "test.csv"
