"""The app's log file and its quiet output: tracebacks and library chatter never land on the page."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Iterator

log = logging.getLogger("vemoclap.app")

LOG_FILE = "vemoclap-app.log"


def log_to_file(path: Path) -> None:
    """Send vemoclap's log (tracebacks included) to a file, so nothing lands on the page."""
    logger = logging.getLogger("vemoclap")
    for handler in list(logger.handlers):  # one app log at a time: the newest app's
        if getattr(handler, "_vemoclap_app", None) is not None:
            if handler._vemoclap_app == str(path):
                return
            logger.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:  # a read-only place: keep the log in memory rather than on the page
        handler = logging.NullHandler()
    handler._vemoclap_app = str(path)  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Library chatter (prints, progress bars, warnings) goes to the log instead of the page."""
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("default")
        yield
    for w in caught:
        log.debug("warning: %s", w.message)
    for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
        if text.strip():
            log.debug("%s: %s", stream, text.strip()[-4000:])
