"""The feature store: the one module that knows the per-video feature file format.

A feature file (``<video id>.safetensors``) holds, for every feature its extractor produced,
``<feature>`` (k × dim float32; single vectors 1 × dim) and ``<feature>.times`` (k float64 seconds,
for sequence features), plus string metadata: format, version, id, label, split, name, source,
duration, frames, features and missing (JSON feature → reason), extractors (JSON: class, options,
model ids), recipe (JSON: the feature recipe the extractors were built from, as run; see
:mod:`vemoclap.recipes`) and readable (JSON: each extractor's readable output). A feature with no
rows (no face, no speech …) has no tensor and is listed in ``missing``. Files are written
atomically, so one that exists is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._util import atomic_write_bytes, to_jsonable
from ..errors import UserError, one_line

FORMAT = "vemoclap-features"
FORMAT_VERSION = "1"
SUFFIX = ".safetensors"
TIMES = ".times"  # tensor name suffix of a feature's row times


class FeatureFileError(UserError):
    """A feature file or published feature set that cannot be read; the message is one line."""


def typed_one_line(exc: BaseException) -> str:
    """The first line of an error with its type name in front (unless the message is only the name)."""
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


@dataclass
class VideoFeatures:
    """One video's feature file: arrays plus metadata (strings in the file, parsed here)."""

    features: dict[str, np.ndarray]  # feature → k × dim float32
    times: dict[str, np.ndarray]  # feature → k seconds (sequence features)
    metadata: dict[str, Any]  # id, label, split, name, source, duration, frames, missing, extractors, readable

    @property
    def missing(self) -> dict[str, str]:
        return dict(self.metadata.get("missing") or {})

    def tensors(self) -> dict[str, np.ndarray]:
        out = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in self.features.items()}
        out.update({name + TIMES: np.ascontiguousarray(t, dtype=np.float64) for name, t in self.times.items()})
        return out

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        meta = {"format": FORMAT, "version": FORMAT_VERSION}
        for key, value in self.metadata.items():
            meta[key] = value if isinstance(value, str) else json.dumps(to_jsonable(value), ensure_ascii=False)
        return save(self.tensors(), metadata=meta)


_JSON_KEYS = ("duration", "frames", "features", "missing", "extractors", "readable", "seconds", "media", "recipe")


def _parse_metadata(raw: Mapping[str, str], path: Path) -> dict[str, Any]:
    if raw.get("format") != FORMAT:
        raise FeatureFileError(f"{path}: not a vemoclap feature file (format {raw.get('format')!r})")
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_KEYS:
            try:
                meta[key] = json.loads(value)
            except json.JSONDecodeError:
                raise FeatureFileError(f"{path}: metadata '{key}' is not JSON; re-extract this video") from None
        else:
            meta[key] = value
    return meta


def read_metadata(path) -> dict[str, Any]:
    """A feature file's metadata without reading its arrays."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), "np") as handle:
            raw = handle.metadata() or {}
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise FeatureFileError(
            f"{path}: unreadable feature file ({typed_one_line(exc)}); delete it to re-extract"
        ) from None
    return _parse_metadata(raw, path)


def load_features(path) -> VideoFeatures:
    """Read one feature file (see the module docstring)."""
    from safetensors.numpy import load_file

    path = Path(path)
    meta = read_metadata(path)
    arrays = load_file(str(path))
    features = {name: arrays[name] for name in arrays if not name.endswith(TIMES)}
    times = {name[: -len(TIMES)]: arrays[name] for name in arrays if name.endswith(TIMES)}
    return VideoFeatures(features, times, meta)


IMPORTED_SOURCE = "imported from "  # how an imported file's metadata "source" begins


def recipe_of_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the recipe dict that made a file's features, how that is known). Files written before
    recipes were recorded: imported ones were made by the reference's own extraction (the
    ``reference`` recipe reproduces it); extracted ones by vemoclap's settings of the time (the
    ``vemoclap`` recipe, version 1); synthetic ones (no extractors) by none — ``(None, ...)``."""
    from ..recipes import get_recipe

    recipe = meta.get("recipe")
    if isinstance(recipe, Mapping) and recipe.get("name"):
        return dict(recipe), "recorded"
    if str(meta.get("source") or "").startswith(IMPORTED_SOURCE):
        return get_recipe("reference").to_dict(), "imported from the reference's published features"
    if meta.get("extractors"):
        return get_recipe("vemoclap").to_dict(), "extracted before recipes were recorded (vemoclap's settings)"
    return None, "no recipe recorded and no extractors (synthetic features?)"


def feature_path(out_dir, video_id: str) -> Path:
    return Path(out_dir) / (video_id + SUFFIX)


def write_feature_file(
    directory: str | os.PathLike,
    video_id: str,
    features: Mapping[str, np.ndarray | None],
    *,
    times: Mapping[str, np.ndarray] | None = None,
    label: str = "",
    split: str = "train",
    name: str = "",
    duration: float = 0.0,
    missing: Mapping[str, str] | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> Path:
    """Write one video's feature file atomically; features without rows are listed as missing.
    ``recipe``: the feature recipe's dict (``Recipe.to_dict()``) that made the features."""
    reasons = dict(missing or {})
    arrays: dict[str, np.ndarray] = {}
    for feature, array in features.items():
        if array is None or np.size(array) == 0:
            reasons.setdefault(feature, "missing")
            continue
        arrays[feature] = np.atleast_2d(np.asarray(array, dtype=np.float32))
    row_times = {f: np.asarray(t, dtype=np.float64) for f, t in (times or {}).items() if f in arrays}
    meta = {
        "id": video_id,
        "label": label,
        "split": split,
        "name": name or f"{Path(video_id).name}.mp4",
        "source": "synthetic",
        "duration": float(duration),
        "frames": 0,
        "features": sorted(arrays),
        "missing": reasons,
        "extractors": {},
        "readable": {},
    }
    if recipe is not None:
        meta["recipe"] = dict(recipe)
    path = feature_path(directory, video_id)
    atomic_write_bytes(path, VideoFeatures(arrays, row_times, meta).to_bytes())
    return path
