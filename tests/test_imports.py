"""The package's imports: the library never imports the application layer (ferkit.app: the
command line, annotation's files and drawings, the server), its modules import one another
without a cycle, importing it changes nothing in the caller's process,
and a package named like the PyPI peer `fer` never stands in for it."""
import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, make_faces, write_csv

PACKAGE = ROOT / "ferkit"
APPLICATION = "ferkit.app"


def module_name(path) -> str:
    """ferkit/app/cli.py -> ferkit.app.cli; ferkit/app/__init__.py -> ferkit.app."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """{module: the package's modules it imports}, anywhere in its code (an import inside a
    function is an import all the same: it only delays a cycle to the first call)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)  # `from ferkit import paths` imports ferkit.paths
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = imported & set(modules) - {name}
    return graph


def find_cycle(graph) -> list[str]:
    """One import cycle of ``graph`` as [a, b, ..., a], or [] when there is none."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for neighbour in sorted(graph[node]):
            if state.get(neighbour) == "open":
                return path[path.index(neighbour):] + [neighbour]
            if neighbour not in state and (cycle := visit(neighbour)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def in_application(module: str) -> bool:
    """ferkit.app and its modules, and `python -m ferkit`'s entry point into them."""
    return module in (APPLICATION, "ferkit.__main__") or module.startswith(APPLICATION + ".")


def test_no_library_module_imports_the_application_layer():
    importers = sorted(f"{name} -> {sorted(filter(in_application, imported))}"
                       for name, imported in package_imports().items()
                       if not in_application(name) and any(map(in_application, imported)))
    assert importers == [], f"library modules importing {APPLICATION}: {importers}"


def test_the_import_graph_sees_the_application_layer():
    graph = package_imports()
    assert "ferkit.app.cli" in graph["ferkit.app.predict"]
    assert "ferkit.inference" in graph["ferkit.app.cli"]


def test_the_package_has_no_import_cycle():
    assert find_cycle(package_imports()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


@pytest.mark.slow
def test_importing_the_library_changes_nothing_in_the_callers_process():
    """`import ferkit` loads neither TensorFlow, pandas, OpenCV nor matplotlib; importing
    the modules that use them sets no environment variable, switches no matplotlib backend
    and leaves TensorFlow's logger as TensorFlow sets it."""
    code = (
        "import json, os, sys\n"
        "import ferkit\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'pandas', 'cv2', 'matplotlib')"
        " if m in sys.modules)\n"
        # What the libraries themselves change (cv2 and TensorFlow set variables) first:
        "import cv2, keras, matplotlib, tensorflow as tf\n"
        "environ, backend = dict(os.environ), dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        "level = tf.get_logger().level\n"
        "import ferkit.app.annotation, ferkit.faces, ferkit.figures, ferkit.inference, ferkit.models\n"
        "from ferkit.backend import keras\n"
        "print(json.dumps({'heavy': heavy, 'environ': dict(os.environ) == environ,\n"
        "    'backend': dict.__getitem__(matplotlib.rcParams, 'backend') == backend,\n"
        "    'tf_logger': tf.get_logger().level == level}))\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "OPENCV"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=environ)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"heavy": [], "environ": True, "backend": True, "tf_logger": True}


@pytest.mark.slow
def test_a_package_named_fer_earlier_on_the_path_changes_nothing(tmp_path):
    """A folder `fer/` that raises when imported, first on sys.path: every script still
    imports, predict.py runs and the API predicts, and no module named fer is loaded."""
    shadow = tmp_path / "shadow" / "fer"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the stand-in fer was imported')\n")
    faces = write_csv(tmp_path / "faces.csv", "id,feature", enumerate(make_faces(5)[0]))
    scripts = sorted(path.stem for path in ROOT.glob("*.py"))
    code = (
        "import importlib, json, sys\n"
        f"for script in {scripts!r}:\n"
        "    importlib.import_module(script)\n"
        "import predict, ferkit\n"
        f"status = predict.main([{str(faces)!r}, {str(tmp_path / 'out.csv')!r}])\n"
        "found = ferkit.Recognizer(cascade=False).predict(ferkit.load_faces("
        f"{str(faces)!r}).images)\n"
        "print(json.dumps({'status': status, 'faces': len(found), 'ferkit': ferkit.__file__,\n"
        "    'fer': sorted(m for m in sys.modules if m.split('.')[0] == 'fer')}))\n")
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "shadow"),
                                                           str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=environ)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"status": 0, "faces": 5, "ferkit": str(PACKAGE / "__init__.py"),
                     "fer": []}
    assert (tmp_path / "out.csv").read_text().count("\n") == 6


@pytest.mark.slow
def test_a_script_on_keras_imports_tensorflow_quietly(tmp_path):
    """The quiet import the library no longer does at import, the scripts still ask for
    (ferkit.app.cli.run): TensorFlow's start-up lines never reach a user of predict.py."""
    faces = write_csv(tmp_path / "faces.csv", "id,feature", enumerate(make_faces(5)[0]))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), str(faces),
                           str(tmp_path / "out.csv"), "--runtime", "keras", "--no-cascade"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=environ)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("runtime: Keras (--runtime keras)\n")
