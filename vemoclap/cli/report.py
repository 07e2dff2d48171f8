"""What the CLI prints to a terminal: text that came from files (a classifier's labels, a model's
class names, a video's title) cannot move the cursor, recolour the screen or forge lines."""

from __future__ import annotations

import re
import sys

# ANSI/VT escape sequences (CSI, OSC, and two-character ESC forms), then any other control character
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """``text`` with escape sequences removed and other control characters shown as ``?``
    (newlines and tabs kept: a report has several lines)."""
    return _CONTROLS.sub("?", _ESCAPES.sub("", str(text)))


def show(text: str, file=None) -> None:
    """Print ``text`` made safe for a terminal."""
    print(terminal_text(text), file=file or sys.stdout, flush=True)


__all__ = ["show", "terminal_text"]
