"""The one home for keeping other libraries' chatter out of the user's terminal and the app's page:
their loggers (RapidOCR's coloured ``[ERROR]``/``[INFO]`` lines, ultralytics' banner), their known
noise warnings (matplotlib's "Glyph … missing", traitlets' deprecations), transformers' load
reports and progress bars, and whatever a library prints. What is muted still reaches vemoclap's own
log at DEBUG level (``--debug``, the app's log file); ``-v``/``--debug`` on the command line leave
every library as it is."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from typing import Iterator

log = logging.getLogger("vemoclap.quiet")

# Loggers of libraries that write to the terminal themselves (their own handlers, not propagated).
CHATTY_LOGGERS = ("RapidOCR", "ultralytics")
# (message pattern, category) of warnings that say nothing a user can act on.
NOISE_WARNINGS = (
    (r"Glyph \d+ .*missing from", UserWarning),  # matplotlib: a caption character the font lacks
    (r".*", DeprecationWarning),  # traitlets, jupyter and friends, about their own APIs
)


def _to_debug(record: logging.LogRecord) -> bool:
    """A logging filter: the library's record goes to vemoclap's log at DEBUG, not to its handler."""
    log.debug("%s: %s", record.name, record.getMessage())
    return False


def mute_libraries() -> None:
    """Keep the chatty libraries out of the terminal for the rest of the process and its children
    (idempotent). A filter survives the libraries' own ``setLevel`` at import, so this may run
    before they are imported."""
    os.environ.setdefault("YOLO_VERBOSE", "False")  # ultralytics' banner and per-call lines
    # child processes too (the app's Voila server and kernels: traitlets' deprecation warnings)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if _to_debug not in logger.filters:
            logger.addFilter(_to_debug)
    for message, category in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Silence one logger below ``level`` for a moment (e.g. transformers' load report)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars and layout notices; our own logs say what loaded."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # a class from another library
        yield
        return
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def captured(into: logging.Logger = log) -> Iterator[None]:
    """Everything printed or warned inside goes to ``into`` at DEBUG instead of the screen (the app's
    page), with the chatty libraries muted too."""
    mute_libraries()
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("default")
        yield
    for w in caught:
        into.debug("warning: %s", w.message)
    for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
        if text.strip():
            into.debug("%s: %s", stream, text.strip()[-4000:])


__all__ = ["CHATTY_LOGGERS", "captured", "mute_libraries", "quiet_logger", "quiet_transformers"]
