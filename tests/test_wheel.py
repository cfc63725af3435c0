"""The built wheel, installed (not editable) into a fresh environment where the checkout is
not importable, works from a folder far from any checkout: `ferkit predict` writes what the
checkout's predict.py writes, README's Python example runs, `ferkit serve` answers, and
nothing is written inside the installed package. One environment serves every test here."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, make_faces, write_csv
from test_api import readme_python_example

pytestmark = pytest.mark.slow
# What building the wheel reads: the package, its models and the project's own files.
SOURCES = ("pyproject.toml", "README.md", "ferkit", "models")
SERVER_START_S = 180


class Installed:
    """A fresh virtual environment holding only the wheel (ferkit's dependencies come from
    the system's site-packages, none of its .pth files run); ``run`` runs a command in it from ``folder``, with no
    PYTHONPATH and no FERKIT_MODELS."""

    def __init__(self, root: Path, folder: Path):
        self.root, self.folder = root, folder
        self.python, self.ferkit = root / "bin" / "python", root / "bin" / "ferkit"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "FERKIT_MODELS")}

    def run(self, *command, timeout=300) -> subprocess.CompletedProcess:
        return subprocess.run([str(c) for c in command], capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder, env=self.env)

    def package(self) -> Path:
        done = self.run(self.python, "-c", "import ferkit; print(ferkit.__file__)")
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip()).parent

    def listing(self) -> dict[str, tuple[int, int]]:
        """Every file under the installed package: {path: (size, mtime in ns)}."""
        package = self.package()
        return {str(p.relative_to(package)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(package.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the checkout's sources (the build writes nothing into
    the checkout), installed with --no-deps into a venv; the listing of its package then."""
    base = tmp_path_factory.mktemp("wheel")
    source, wheels = base / "source", base / "dist"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.run", "*.int8.tflite"))
        else:
            shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("ferkit-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    # ferkit's dependencies: the system's site-packages as a plain path entry. Its .pth files
    # are then not run, so an editable install of a checkout there (its finder) cannot
    # import the checkout, as --system-site-packages would let it.
    [venv_site] = (base / "venv" / "lib").glob("python*/site-packages")
    (venv_site / "system-site-packages.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    far = base / "far"  # no checkout here or above
    far.mkdir()
    env = Installed(base / "venv", far)
    done = env.run(env.python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    assert done.returncode == 0, done.stderr
    env.wheel, env.before = wheel, env.listing()
    return env


def test_the_installed_copy_is_imported_and_the_checkout_is_not_on_the_path(installed):
    """The venv's own copy is imported, and nothing could import a checkout: no path
    into it, no editable install's finder (the system's own editable install stays out)."""
    done = installed.run(installed.python, "-c",
                         "import json, sys, ferkit\n"
                         "print(json.dumps({'file': ferkit.__file__, 'models': str(ferkit.MODELS),"
                         " 'path': sys.path, 'finders': [repr(f) for f in sys.meta_path]}))")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    site = installed.root / "lib"
    assert Path(found["file"]).is_relative_to(site)
    assert Path(found["models"]).is_relative_to(site) and Path(found["models"], "cnn.h5").is_file()
    on_path = [entry for entry in found["path"]
               if entry and Path(entry).resolve().is_relative_to(ROOT)]
    assert on_path == []
    assert not [hook for hook in found["path"] + found["finders"] if "editable" in hook.lower()]


def test_the_wheel_carries_the_models_and_the_page_within_60_mb(installed):
    size = installed.wheel.stat().st_size
    assert size <= 60 * 2 ** 20, f"{installed.wheel.name}: {size / 2 ** 20:.1f} MiB"
    files = set(installed.before)
    for name in ("cnn", "cnn_specific_0_2_4_6", "dnn"):
        assert {f"shipped_models/{name}{suffix}" for suffix in (".h5", ".tflite", ".json")} <= files
    assert "app/web/static/index.html" in files


def test_ferkit_predict_writes_what_the_checkouts_predict_py_writes(installed, tmp_path):
    faces = write_csv(installed.folder / "faces.csv", "id,feature",
                      enumerate(make_faces(12, seed=41)[0]))
    done = installed.run(installed.ferkit, "predict", faces.name, "out.csv")
    assert done.returncode == 0, done.stderr
    script = subprocess.run([sys.executable, str(ROOT / "predict.py"), str(faces),
                             str(tmp_path / "out.csv")], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    written = (installed.folder / "out.csv").read_text()
    assert written == (tmp_path / "out.csv").read_text()
    assert written.count("\n") == 13


def test_ferkit_models_replaces_the_shipped_models(installed, tmp_path):
    """FERKIT_MODELS names the folder the defaults come from: an empty one has no cnn.h5."""
    faces = write_csv(installed.folder / "few.csv", "id,feature", enumerate(make_faces(2)[0]))
    done = subprocess.run([str(installed.ferkit), "predict", faces.name, "few_out.csv"],
                          capture_output=True, text=True, timeout=300, cwd=installed.folder,
                          env={**installed.env, "FERKIT_MODELS": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path / 'cnn.h5'}: model file not found")


def test_ferkit_help_lists_every_command_and_bad_input_is_one_line(installed):
    done = installed.run(installed.ferkit, "--help")
    assert done.returncode == 0, done.stderr
    for command in ("predict", "annotate", "serve", "train", "train-specialist", "train-dnn",
                    "average", "export", "calibrate", "confusion", "saliency", "filters"):
        assert re.search(rf"^  {command} +\S", done.stdout, re.M), command
    bad = installed.run(installed.python, "-m", "ferkit", "predict", "missing.csv", "out.csv")
    assert bad.returncode == 2
    assert bad.stderr == "error: missing.csv: file not found\n"


def test_readmes_python_example_runs(installed):
    done = installed.run(installed.python, "-c", readme_python_example())
    assert done.returncode == 0, done.stderr
    assert "Happy" in done.stdout or "happy" in done.stdout  # the astronaut smiles


def test_ferkit_serve_answers_its_health_check(installed):
    process = subprocess.Popen([str(installed.ferkit), "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=installed.folder, env=installed.env)
    started, lines = time.monotonic(), []
    try:
        for line in process.stdout:
            lines.append(line)
            if found := re.search(r"serving on (http://\S+/)", line):
                break
            assert time.monotonic() - started < SERVER_START_S, "".join(lines)
        else:
            raise AssertionError(f"ferkit serve ended: {''.join(lines)}")
        with urllib.request.urlopen(found.group(1) + "api/health", timeout=30) as answer:
            assert answer.status == 200
            assert json.loads(answer.read())["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_nothing_is_written_inside_the_installed_package(installed):
    """Last in this file: after every command above ran, the package is as installed."""
    assert installed.listing() == installed.before
