"""What counts as a user's mistake, and how any error is said in one line.

A :class:`UserError` is something a person can fix (a bad file, a bad link, a missing model, a bad
option): its message is one line saying which thing, what is wrong and what to do, and the CLI
shows it as it is (exit code 2). Every other exception is a bug: the CLI prints a short line and
writes the traceback to a log file (exit code 1). UserError subclasses ValueError so that code
catching ValueError keeps working; a plain ValueError is *not* a user error.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the person running vemoclap can fix; the message is one line that says how."""


class OptionError(UserError):
    """An option or argument has a value that cannot be used."""


class NotFound(UserError, FileNotFoundError):
    """A file or folder the person named does not exist (also a FileNotFoundError)."""


class ModelUnavailable(UserError):
    """A model could not be found locally nor fetched; the message says how to supply it."""


class SourceError(UserError):
    """A video source that cannot be used, with a one-line reason and what to do."""


def one_line(exc: BaseException | str, limit: int = 1000) -> str:
    """The first line of an error's message (or its type name), cut to ``limit`` characters."""
    text = str(exc).strip()
    if text:
        first = text.splitlines()[0].strip()
    else:
        first = type(exc).__name__ if isinstance(exc, BaseException) else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for people: shown as one line, no traceback."""
    return (UserError,)
