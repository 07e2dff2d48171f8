"""Everything the tiny builders write is marked as random weights, whoever calls them."""

from __future__ import annotations

from pathlib import Path


def marked(written: dict[str, Path]) -> dict[str, Path]:
    """``written`` (model key → path), each path marked as random weights (a provenance record)."""
    from ..models import mark_random

    for path in written.values():
        mark_random(path)
    return written
