"""Google Colab's own upload and Drive: detected by ``google.colab`` being importable."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def drive_root() -> Path:
    """Where Google Drive is mounted: /content/drive on Colab ($VEMOCLAP_DRIVE moves it, for tests)."""
    return Path(os.environ.get("VEMOCLAP_DRIVE") or "/content/drive")


def drive_models() -> Path:
    """The model cache folder on Google Drive."""
    return drive_root() / "MyDrive" / "vemoclap-models"


def on_colab() -> bool:
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):  # a ``google`` namespace without ``colab``
        return False


def mount_drive() -> Path:
    """Mount Google Drive at /content/drive (Colab asks the person to allow it); returns My Drive."""
    from google.colab import drive

    drive.mount(str(drive_root()))
    return drive_root() / "MyDrive"


def upload() -> tuple[str, bytes, Path | None] | None:
    """One file through Colab's uploader: (browser name, bytes, the copy Colab wrote in the cwd).

    ``files.upload()`` saves each file into the working directory under the browser's name (adding
    " (1)" when that name is taken) and returns {original name: bytes}; None when nothing was chosen.
    """
    from google.colab import files

    chosen = files.upload()
    if not chosen:
        return None
    name, data = next(iter(chosen.items()))
    return name, bytes(data), _written_copy(name, len(data))


def _written_copy(name: str, size: int) -> Path | None:
    """The newest file in the cwd that Colab may have written for ``name`` (same size)."""
    plain = Path(Path(name).name)
    candidates = [plain, *Path.cwd().glob(f"{plain.stem} (*){plain.suffix}")]
    found = [p for p in candidates if p.is_file() and p.stat().st_size == size]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
