"""Output paths checked before the work starts, and a finished result never lost to a write error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from ._util import cache_root
from .errors import OptionError, UserError


class OutputError(UserError):
    """An output could not be written; the message names where the result was kept instead."""


def _checked_path(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a Path, refused when it cannot name a file at all (a NUL byte, too long a name)."""
    text = os.fspath(path)
    if "\0" in str(text):
        raise OptionError(f"{option}: the path holds a NUL byte, which no file name can; give another path")
    path = Path(text).expanduser()
    try:
        path.exists()
    except OSError as exc:  # ENAMETOOLONG and the like: the path cannot be looked at
        raise OptionError(f"{option} {str(path)[:80]}…: {exc.strerror or exc}; give a shorter path") from None
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: through symlinks, ``..`` spellings and hard links."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, ValueError):
        return False


def check_not_input(path: str | os.PathLike, inputs, option: str) -> None:
    """Refuse an output that would replace one of ``inputs`` (the video being analyzed, a list...)."""
    for source in inputs:
        if source is None or (isinstance(source, str) and "://" in source):
            continue
        if same_file(path, source):
            raise OptionError(
                f"{option} {path}: is the input {source} itself and would destroy it; choose another file"
            )


def check_file_output(path: str | os.PathLike, option: str, inputs=()) -> Path:
    """A file path that can be written: not a folder, its folder creatable and writable, not an input."""
    path = _checked_path(path, option)
    check_not_input(path, inputs, option)
    if path.is_dir():
        raise OptionError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'result.json'})")
    if path.exists() and not path.is_file():  # a device, FIFO or socket: never replaced by a renamed temp file
        raise OptionError(f"{option} {path}: is not a regular file (a device, pipe or socket); give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OptionError(f"{option} {path}: the file exists and is not writable; choose another name")
    _check_parent(path, option)
    return path


def check_dir_output(path: str | os.PathLike, option: str, inputs=()) -> Path:
    """A folder path that can be written into: not an existing file (nor an input), writable."""
    path = _checked_path(path, option)
    check_not_input(path, inputs, option)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{option} {path}: is a file, not a folder; give a folder name")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OptionError(f"{option} {path}: the folder is not writable; choose another folder")
        return path
    _check_parent(path, option)
    return path


def _check_parent(path: Path, option: str) -> None:
    parent = path.parent
    while not parent.exists():  # the nearest existing ancestor must be a writable folder
        parent = parent.parent
    if not parent.is_dir():
        raise OptionError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(f"{option} {path}: {parent} is not writable; choose another place")


def keep_result(result, what: str, target, exc: OSError) -> OutputError:
    """Save ``result`` as JSON in a temp file after ``what`` failed; the error to raise names it."""
    reason = exc.strerror or str(exc)
    for folder in (None, cache_root() / "results"):
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="vemoclap-result-", suffix=".json", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(result.to_json())
            return OutputError(
                f"{what} {target} could not be written ({reason}); the analysis was saved to {name} instead"
            )
        except OSError:
            continue
    print(result.to_json())
    return OutputError(
        f"{what} {target} could not be written ({reason}) and no temp file could be made; "
        f"the analysis was printed above as JSON"
    )


def write_or_keep(result, what: str, target, write: Callable[[], object]):
    """Run ``write()``; on an OSError keep the result in a temp file and raise a one-line OutputError."""
    try:
        return write()
    except OSError as exc:
        raise keep_result(result, what, target, exc) from None
