"""What counts as a user's mistake, and how any error is said in one line.

Every module raises errors whose message is one line for people (MediaError, SourceError,
CheckpointError, DatasetError, ... are ValueErrors; ModelUnavailable names the model and the fix).
The CLI and the app show those as they are; anything else is a bug and keeps its traceback in
the log.
"""
from __future__ import annotations


def one_line(exc: BaseException | str, limit: int = 1000) -> str:
    """The first line of an error's message (or its type name), cut to ``limit`` characters."""
    text = str(exc).strip()
    if text:
        first = text.splitlines()[0].strip()
    else:
        first = type(exc).__name__ if isinstance(exc, BaseException) else ""
    return first if len(first) <= limit else first[:limit - 1] + "…"


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for people: shown as one line, no traceback."""
    from .models import ModelUnavailable

    # MediaError, SourceError, CheckpointError and the training errors are all ValueErrors.
    return (ValueError, FileNotFoundError, ModelUnavailable)
