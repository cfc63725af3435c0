"""Where the models come from when no path names one: FERKIT_MODELS's folder, else the
package's own (in a checkout, models/ beside the package)."""
from conftest import ROOT
from ferkit.shipped import models_folder, package_models


def test_a_checkout_finds_its_models_folder():
    assert package_models() == ROOT / "models"
    assert (package_models() / "cnn.h5").is_file()


def test_ferkit_models_names_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FERKIT_MODELS", str(tmp_path))
    assert models_folder() == tmp_path
    monkeypatch.setenv("FERKIT_MODELS", "")  # set but empty: as if unset
    assert models_folder() == package_models()
    monkeypatch.delenv("FERKIT_MODELS")
    assert models_folder() == package_models()
