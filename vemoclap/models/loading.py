"""Load a model from the models dir, fetching it (verified) first when downloads are allowed; every
failure is a :class:`~vemoclap.errors.ModelUnavailable` that names the model and the fix."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelUnavailable, one_line
from ..quiet import quiet_transformers
from .advice import unavailable
from .fetch import fetch_model
from .kinds import local_path
from .layout import downloads_allowed
from .provenance import record
from .table import MODELS


def resolve(key: str, models_dir: str | os.PathLike | None = None) -> str:
    """For a Hugging Face model: a local directory when present, else the hub id.

    ``from_pretrained`` on the returned string does the right thing either way; pair it with
    :func:`load_pretrained` so a failure becomes a :class:`ModelUnavailable` with a hint.
    """
    ref = MODELS[key]
    assert ref.kind == "hf", key
    local = local_path(key, models_dir)
    if local is not None:
        return str(local)
    return ref.hub_id


def load_pretrained(key: str, cls, models_dir: str | os.PathLike | None = None, **kwargs):
    """``cls.from_pretrained`` on the model's local dir or hub id; errors name the model and the fix."""
    source = resolve(key, models_dir)
    local = source != MODELS[key].hub_id
    if not local and downloads_allowed():  # fetched (verified) into the models dir, never unchecked
        try:
            fetch_model(key, models_dir)
        except ModelUnavailable:
            raise
        except Exception as exc:  # network and hub errors come in many types
            raise unavailable(key, models_dir, f"download failed: {one_line(exc)}") from exc
        source, local = resolve(key, models_dir), True
    if not local:
        record(key, None, "hub")
        kwargs.setdefault("local_files_only", True)  # offline: only the hub's local cache can serve it
    try:
        with quiet_transformers():
            return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:  # transformers raises OSError for missing repos/files
        raise unavailable(key, models_dir, one_line(exc)) from exc
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":  # a truncated or damaged weights file is the files' fault
            raise
        raise unavailable(
            key, models_dir, f"damaged weights file ({one_line(exc)}); delete the folder and fetch it again"
        ) from exc


def checkpoint_file(key: str, models_dir: str | os.PathLike | None = None, *, name: str | None = None) -> Path:
    """A checkpoint file of a "file" model: from the models dir, else downloaded (verified) into it."""
    local = local_path(key, models_dir, name=name)
    if local is not None:
        return local
    if not downloads_allowed():
        raise unavailable(key, models_dir, "downloads are off (offline mode)", name=name)
    fetch_model(key, models_dir)
    local = local_path(key, models_dir, name=name)
    if local is None:
        raise unavailable(key, models_dir, "the download did not produce the file", name=name)
    return local


def classifier_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """The reference's trained classifier folder in the models dir (the Analyzer fetches it first)."""
    local = local_path("classifier", models_dir)
    if local is None:
        raise unavailable("classifier", models_dir)
    return local
