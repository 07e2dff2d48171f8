"""The app's log file and its quiet output: tracebacks and library chatter never land on the page."""

from __future__ import annotations

import logging
from pathlib import Path

from ..quiet import captured

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


def quiet():
    """Library chatter (prints, progress bars, warnings) goes to the log instead of the page."""
    return captured(log)
