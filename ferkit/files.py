"""Files the toolkit writes without TensorFlow: atomic writes (a reader or a crash never sees
half a file), staged output folders, and where the JSON sidecar beside each model lies (its
record: ferkit.record)."""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path

from ferkit.errors import InputError


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
