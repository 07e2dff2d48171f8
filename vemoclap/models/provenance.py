"""Where weights came from, and whether they are random.

Beside what it wrote, every download leaves a provenance file (:data:`PROVENANCE`) saying where it
came from, how it was verified and its licence; the tiny builders (:mod:`vemoclap.tiny`) write one
that says the weights are random, and :func:`origin` reads it, so whatever was made from random
weights can say so. While a block runs inside :func:`recording`, every model looked up is recorded
as a :class:`ModelUse`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .._util import atomic_write_json

PROVENANCE = "vemoclap-source.json"  # inside a model folder; "<file>.vemoclap-source.json" beside a file
RANDOM = "random"  # origin of weights made by vemoclap.tiny


def provenance_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / PROVENANCE if path.is_dir() else path.with_name(path.name + "." + PROVENANCE)


def read_provenance(path: str | os.PathLike | None) -> dict:
    """The provenance record beside/inside ``path`` ({} when there is none or it is unreadable)."""
    if path is None:
        return {}
    try:
        value = json.loads(provenance_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_provenance(path: str | os.PathLike, record: dict) -> None:
    atomic_write_json(provenance_file(path), record)


def mark_random(path: str | os.PathLike, note: str = "") -> None:
    """Mark weights as randomly initialised (what the tiny builders call on everything they write)."""
    write_provenance(
        path,
        {
            "origin": RANDOM,
            "made_by": "vemoclap.tiny",
            "note": note or "tiny randomly initialised model: its outputs mean nothing",
        },
    )


def origin(path: str | os.PathLike | None) -> str:
    """ "random" (made by vemoclap.tiny), "download" (fetched and verified by vemoclap), or "local"."""
    return read_provenance(path).get("origin") or "local"


def is_random(path: str | os.PathLike | None) -> bool:
    return origin(path) == RANDOM


@dataclass(frozen=True)
class ModelUse:
    """One model an extractor loaded: its key, the local path (None: the hub's cache) and its origin."""

    key: str
    path: str | None
    origin: str

    @property
    def random(self) -> bool:
        return self.origin == RANDOM


_USES: contextvars.ContextVar[list[ModelUse] | None] = contextvars.ContextVar("vemoclap_model_uses", default=None)


@contextlib.contextmanager
def recording():
    """Collect the :class:`ModelUse` of every model looked up inside the block (the loaders call
    :func:`vemoclap.models.local_path`, which records what it found)."""
    uses: list[ModelUse] = []
    token = _USES.set(uses)
    try:
        yield uses
    finally:
        _USES.reset(token)


def record(key: str, path: Path | None, how: str | None = None) -> None:
    """Note one model looked up (``how``: its origin when it has no local path, e.g. "hub")."""
    uses = _USES.get()
    if uses is None:
        return
    use = ModelUse(key, str(path) if path else None, how or origin(path))
    if use not in uses:
        uses.append(use)


def replay(uses: list[ModelUse]) -> None:
    """Record ``uses`` again (a model shared between extractors is loaded once but used by each)."""
    for use in uses:
        current = _USES.get()
        if current is not None and use not in current:
            current.append(use)
