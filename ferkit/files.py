"""Files the toolkit writes and reads without TensorFlow: atomic writes (a reader or a crash
never sees half a file), staged output folders, and the JSON sidecar beside each model."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

from ferkit import paths
from ferkit.errors import DataError, InputError


def sidecar_path(model_path) -> Path:
    return Path(model_path).with_suffix(".json")


@functools.cache
def process_umask() -> int:
    """The process's umask (read by setting it, so once, at the first write, not at
    import)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomically(path, write) -> None:
    """Call write(tmp_path) on a temporary file beside ``path``, then rename it into place,
    so that a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~process_umask())  # mkstemp's 0600 would make outputs private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(model_path, sidecar: dict) -> None:
    text = json.dumps(sidecar, indent=2, default=str) + "\n"
    write_atomically(sidecar_path(model_path), lambda tmp: Path(tmp).write_text(text))


def read_sidecar(model_path, make_command: str = "") -> dict:
    """The sidecar of the model at ``model_path``; a missing model or sidecar names
    ``make_command``, the command that makes it (ferkit.paths.model_file)."""
    path = sidecar_path(paths.model_file(model_path, make_command))
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: expected a JSON sidecar, found invalid JSON ({err})") from None
    if not isinstance(sidecar, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(sidecar).__name__}")
    for key in ("architecture", "classes", "build"):
        if key not in sidecar:
            raise DataError(f"{path}: expected a key {key!r} in the sidecar, found "
                            f"{sorted(sidecar)}")
    return sidecar


@contextlib.contextmanager
def staged_folder(folder):
    """A temporary folder beside ``folder`` to write a job's outputs into. When the block
    ends without an error, its files move into ``folder`` (made if needed), each replacing
    a file of the same name; on any error (or Ctrl-C) it is removed and ``folder`` is left
    as it was, so a failed job never leaves half its outputs."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: expected a folder for the outputs, found a file")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.",
                                      suffix=".staging"))
    except OSError as err:
        raise InputError(f"{folder}: cannot write the outputs there "
                         f"({err.strerror or err})") from None
    try:
        yield stage
        folder.mkdir(exist_ok=True)
        for file in sorted(stage.iterdir()):
            os.replace(file, folder / file.name)
        stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
