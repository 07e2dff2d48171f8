"""Where models live on disk and whether they may be downloaded: the settings every lookup reads."""

from __future__ import annotations

import os
from pathlib import Path

from .._util import cache_root

MODELS_DIR_ENV = "VEMOCLAP_MODELS_DIR"
OFFLINE_ENV = "VEMOCLAP_OFFLINE"
REFERENCE_DIR = "reference"  # <models dir>/reference/<path in the reference repository>


def default_models_dir() -> Path:
    """``$VEMOCLAP_MODELS_DIR``, else ``$VEMOCLAP_CACHE/models`` (``~/.cache/vemoclap/models``)."""
    value = os.environ.get(MODELS_DIR_ENV)
    return Path(value).expanduser() if value else cache_root() / "models"


def models_root(models_dir: str | os.PathLike | None = None) -> Path:
    return Path(models_dir).expanduser() if models_dir else default_models_dir()


def downloads_allowed() -> bool:
    """False when ``VEMOCLAP_OFFLINE`` or the hub's own ``HF_HUB_OFFLINE`` is set."""
    return all(os.environ.get(name, "") not in ("1", "true", "yes") for name in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def reference_target(path: str, models_dir: str | os.PathLike | None = None) -> Path:
    """The local copy of one reference-repository file."""
    return models_root(models_dir) / REFERENCE_DIR / path
