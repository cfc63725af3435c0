"""The paths a script is given, checked before any work and before TensorFlow is imported.

Inputs must exist, be readable and be the right kind (a file, or for faces also an image
folder); outputs must be writable where they go (not a folder where a file is wanted, a
parent folder that exists, or can be made where the script makes it, and a file can be
created there: tried, since permissions alone miss a read-only file system, /proc, or a
root user). Each problem is one InputError naming the path, what was expected and what was
found: a DataError for an input (a missing or unreadable file), an InputError for an
output (a place the option cannot write to); writing() turns a failure of the final write
itself (a full disk) into one such line too. No TensorFlow, pandas or numpy here, so a
script fails in well under a second on a bad path.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from ferkit.errors import DataError, InputError


def input_file(path, what: str = "file", makes: tuple = ()) -> Path:
    """An existing, readable file (not a folder). ``what`` names it in the message
    ("model file"); when it is missing the error carries ``makes`` (InputError.makes: what
    would make it)."""
    path = Path(path)
    _must_exist(path, what, "", makes)
    if path.is_dir():
        raise DataError(f"{path}: expected a {what}, found a folder")
    _must_be_readable(path, what)
    return path


def input_data(path, hint: str = "") -> Path:
    """Faces: an existing, readable file, or an image folder that can be listed."""
    path = Path(path)
    _must_exist(path, "file", hint)
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise DataError(f"{path}: cannot list the image folder (no read permission)")
    else:
        _must_be_readable(path, "file")
    return path


def model_file(path, makes: tuple = ()) -> Path:
    """A trained model: the .h5 file and its JSON sidecar beside it, both readable; when
    either is missing, the error carries ``makes``, the kind of model and its details
    (``("stage1",)``, ``("specialist", "0_2_4_6")``: InputError.makes), for the caller's
    layer to name the command that makes it."""
    path = input_file(path, "model file", makes=makes)
    sidecar = path.with_suffix(".json")
    if not sidecar.exists():
        raise DataError(f"{sidecar}: sidecar not found beside the model", makes=makes)
    input_file(sidecar, "sidecar")
    return path


def output_file(path, what: str = "output") -> Path:
    """A file the script will write (atomically, beside its final place): not a folder,
    in a folder where a file can be created. A missing folder is fine if it can be made:
    every command makes the missing folders of its outputs (with their parents) when it
    first writes there, and one that stops first leaves none behind."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: expected a file name for the {what}, found a folder")
    _can_write_in(path.parent, path, what)
    return path


def output_folder(path, what: str = "output") -> Path:
    """A folder the script will write files into: a folder or nothing yet (it is made,
    with its parents), not a file, and a file can be created in it (or in the nearest
    folder above it that exists)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: expected a folder for the {what}, found a file")
    _can_write_in(path, path, what)
    return path


@contextlib.contextmanager
def writing(path, what: str = "output"):
    """The final write of ``path``: an OSError inside (a full disk, a folder removed or
    made read-only since the check) becomes one InputError naming the file, so a long job
    ends with one line, not a traceback."""
    try:
        yield
    except OSError as err:
        raise InputError(f"{path}: cannot write the {what} ({_reason(err)})") from None


def _must_exist(path: Path, what: str, hint: str, makes: tuple = ()) -> None:
    if path.exists():
        return
    beside = _compressed_twin(path)
    if beside is not None:
        hint, makes = f"{beside.name} is beside it", ()
    raise DataError(f"{path}: {what} not found" + _then(hint), makes=makes)


def _compressed_twin(path: Path) -> Path | None:
    """X.csv.gz beside a missing X.csv (or X.csv beside a missing X.csv.gz): most likely
    the file meant, since every loader reads .gz files as they are."""
    twin = (path.with_name(path.name[:-3]) if path.name.endswith(".gz")
            else path.with_name(path.name + ".gz"))
    return twin if twin.is_file() else None


def _must_be_readable(path: Path, what: str) -> None:
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot read the {what} (no read permission)")


def _can_write_in(folder: Path, path: Path, what: str) -> None:
    """``folder`` exists and a file can be created in it, or it can be made: its nearest
    existing ancestor is a folder where a file can be created. Tried with an empty
    temporary file, removed at once: os.access says yes to root everywhere and to anyone
    on /proc or a file system mounted read-only."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{path}: cannot make the folder for the {what}: {existing} is a file")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".ferkit-write-check-")
    except OSError as err:
        # /proc and /sys answer "not found" for a file they will not make.
        reason = ("no new file can be made there" if err.errno == errno.ENOENT
                  else _reason(err))
        raise InputError(f"{path}: cannot write the {what} in {existing} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _reason(err: OSError) -> str:
    """An OSError's reason in words ("Read-only file system"), without the path."""
    return err.strerror or type(err).__name__


def _then(hint: str) -> str:
    return f"; {hint}" if hint else ""
