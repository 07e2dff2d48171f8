"""What ``vemoclap models`` lists: one row per model with its source, size, licence, users and local state."""

from __future__ import annotations

import os

from ..registry import used_by
from .kinds import kind_of
from .layout import models_root
from .provenance import read_provenance
from .table import MODELS, size_mib

# Users of the models no extractor loads.
OTHER_USERS = {"classifier": ["fusion"], "samples": ["samples"]}


def license_of(key: str, models_dir: str | os.PathLike | None = None) -> str:
    """A model's licence: the known one, else what its download recorded from the hub, else "unknown"."""
    ref, kind = kind_of(key)
    if ref.license:
        return ref.license
    root = models_root(models_dir)
    path = kind.present(ref, root, "small") or kind.target(ref, root, "small")
    return read_provenance(path).get("license") or "unknown"


def table(models_dir: str | os.PathLike | None = None, whisper_size: str = "small") -> list[dict]:
    """One row per entry of :data:`MODELS`: source, size, licence, the extractors that use it, local state."""
    rows = []
    root = models_root(models_dir)
    for key in MODELS:
        ref, kind = kind_of(key)
        local = kind.present(ref, root, whisper_size)
        record = read_provenance(local) if local else {}
        rows.append(
            {
                "key": key,
                "source": kind.describe(ref, whisper_size),
                "size_mib": size_mib(key, whisper_size if kind.sized else None),
                "license": license_of(key, models_dir),
                "used_by": used_by(key) or OTHER_USERS.get(key, []),
                "local": str(local) if local else None,
                "origin": record.get("origin") or ("local" if local else None),
                "verified": record.get("verified"),
                "purpose": ref.purpose,
            }
        )
    return rows
