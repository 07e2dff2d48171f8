"""Import the reference's published features (a pickle) as our per-video feature files.

The layout is not documented, so the import assumes and validates strictly; see
:func:`import_reference_features`. The folder it writes has the layout of
:mod:`vemoclap.training.extraction`'s, with ``extraction.json`` saying ``"source": "import"``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._util import atomic_write_bytes, atomic_write_json
from ..errors import NotFound
from ..labels import EMOTIONS
from .dataset import Video, assign_ids, split_name
from .extraction import (
    CONFIG_FILE,
    MANIFEST_COLUMNS,
    MANIFEST_FILE,
    ExtractionReport,
    locked_folder,
    manifest_row,
)
from .loop import clean_temporary, write_csv
from .store import FORMAT, FORMAT_VERSION, FeatureFileError, VideoFeatures, feature_path, typed_one_line
from .worker import ExtractionError

log = logging.getLogger(__name__)

_LABEL_KEYS = ("label", "emotion", "class", "target")
_SPLIT_KEYS = {"train", "val", "valid", "validation", "test"}


class PickleRefused(ExtractionError):
    """Unpickling was refused because it was not explicitly trusted."""


def _as_float_array(value: Any, where: str) -> np.ndarray | None:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise FeatureFileError(f"{where}: not a numeric array ({type(value).__name__})") from None
    if not np.all(np.isfinite(array)):
        raise FeatureFileError(f"{where}: holds NaN or infinite values")
    return array


def _read_published(path: Path, trust_pickle: bool) -> Any:
    import pickle
    import zipfile

    if zipfile.is_zipfile(path):  # a torch.save file: the safe loader needs no trust
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError
            raise FeatureFileError(
                f"{path}: a torch file that the safe loader refuses ({typed_one_line(exc)[:200]}); "
                f"re-save it with plain dicts, tensors and strings"
            ) from None
    if not trust_pickle:
        raise PickleRefused(
            f"{path}: refusing to unpickle it — loading a pickle can run any code it holds; "
            f"if you trust its source (e.g. the reference's published features), pass "
            f"--trust-pickle (trust_pickle=True)"
        )
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - only with explicit trust, see above
    except FileNotFoundError:
        raise
    except Exception as exc:  # a damaged pickle raises many types
        raise FeatureFileError(f"{path}: not a readable pickle ({typed_one_line(exc)[:200]})") from None


def _entries(data: Any, path: Path) -> list[tuple[str, str | None, Any]]:
    """(video key, split or None, its value) of every video, from a dict keyed by video or by split."""
    if not isinstance(data, Mapping) or not data:
        raise FeatureFileError(
            f"{path}: expected a dict keyed by video (or by split), found "
            f"{type(data).__name__}{' (empty)' if isinstance(data, Mapping) else ''}"
        )
    if set(map(str, data)) <= _SPLIT_KEYS and all(isinstance(v, Mapping) for v in data.values()):
        return [
            (str(key), split_name(str(split), str(path)), value)
            for split, videos in data.items()
            for key, value in videos.items()
        ]
    return [(str(key), None, value) for key, value in data.items()]


def _label(value: Mapping[str, Any], labels: Sequence[str], where: str) -> str:
    label_key = next((k for k in _LABEL_KEYS if k in value), None)
    if label_key is None:
        raise FeatureFileError(f"{where}: no label (looked for {', '.join(_LABEL_KEYS)})")
    raw_label = value[label_key]
    if hasattr(raw_label, "item"):
        raw_label = raw_label.item()
    if isinstance(raw_label, (int, np.integer)) and not isinstance(raw_label, bool):
        if not 0 <= int(raw_label) < len(labels):
            raise FeatureFileError(f"{where}: label index {raw_label} is outside 0..{len(labels) - 1}")
        return labels[int(raw_label)]
    by_lower = {label.lower(): label for label in labels}
    if isinstance(raw_label, str) and raw_label.strip().lower() in by_lower:
        return by_lower[raw_label.strip().lower()]
    raise FeatureFileError(f"{where}: label {raw_label!r} is not one of {', '.join(labels)}")


def _features(value: Mapping[str, Any], where: str, ignored: set[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(feature → array, feature → why missing) of one video; keys that are not features go to ``ignored``."""
    from ..fusion import FEATURES

    features: dict[str, np.ndarray] = {}
    missing: dict[str, str] = {}
    for name, item in value.items():
        name = str(name)
        if name in _LABEL_KEYS:
            continue
        if name not in FEATURES:
            ignored.add(name)
            continue
        spec = FEATURES[name]
        array = _as_float_array(item, f"{where}, feature '{name}'")
        if array is None or array.size == 0:
            missing[name] = "missing in the published features"
            continue
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != spec.dim or (not spec.sequence and array.shape[0] != 1):
            expected = f"(k, {spec.dim})" if spec.sequence else f"({spec.dim},) or (1, {spec.dim})"
            raise FeatureFileError(f"{where}, feature '{name}': shape {tuple(array.shape)}, expected {expected}")
        features[name] = array
    if not features and not missing:
        raise FeatureFileError(f"{where}: no known feature ({', '.join(FEATURES)})")
    return features, missing


def _parse(path: Path, data: Any, labels: Sequence[str]) -> list[tuple[str, str, str | None, dict, dict]]:
    """(key, label, split, features, missing) of every video, each checked; one-line errors."""
    ignored: set[str] = set()
    parsed = []
    for key, split, value in _entries(data, path):
        where = f"{path}: video '{key}'"
        if not isinstance(value, Mapping):
            raise FeatureFileError(f"{where}: expected a dict of features, found {type(value).__name__}")
        label = _label(value, labels, where)
        features, missing = _features(value, where, ignored)
        parsed.append((key, label, split, features, missing))
    if ignored:
        log.warning("%s: ignored keys that are not features: %s", path, ", ".join(sorted(ignored)))
    return parsed


def _claim_folder(out_dir: Path, path: Path) -> None:
    """Write ``extraction.json`` saying the folder holds imported features (refused over extracted ones)."""
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file():
        stored = json.loads(config_path.read_text(encoding="utf-8"))
        if stored.get("source") != "import":
            raise ExtractionError(f"{out_dir}: holds extracted features; import into another --out folder")
    atomic_write_json(
        config_path,
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "source": "import",
            "pickle": str(path),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def _write_files(out_dir: Path, path: Path, parsed: list, progress: bool) -> dict[str, int]:
    """One feature file per video and the manifest; returns feature → videos without it."""
    from tqdm.auto import tqdm

    from ..recipes import get_recipe

    # Made by the reference's own extraction, which the reference recipe reproduces.
    imported_recipe = get_recipe("reference").to_dict()
    imported_recipe["notes"] = [f"imported from {path.name}: made by the reference's own extraction"]
    ids = assign_ids([(label, key) for key, label, *_ in parsed])
    rows, missing_counts = [], {}
    for vid, (key, label, split, features, missing) in tqdm(
        list(zip(ids, parsed)), desc="import", unit="video", disable=not progress
    ):
        video = Video(id=vid, path=Path(key), label=label, split=split)
        meta = {
            "id": vid,
            "label": label,
            "split": split or "",
            "name": Path(key).name,
            "source": f"imported from {path.name}",
            "duration": 0.0,
            "frames": len(features["clip"]) if "clip" in features else 0,
            "features": sorted(features),
            "missing": missing,
            "extractors": {},
            "readable": {},
            "recipe": imported_recipe,
        }
        atomic_write_bytes(feature_path(out_dir, vid), VideoFeatures(features, {}, meta).to_bytes())
        rows.append(manifest_row(video, meta))
        for feature in missing:
            missing_counts[feature] = missing_counts.get(feature, 0) + 1
    write_csv(out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
    return missing_counts


def import_reference_features(
    pickle_path, out_dir, *, trust_pickle: bool = False, labels: Sequence[str] = EMOTIONS, progress: bool = True
) -> ExtractionReport:
    """Convert the reference's published features (a pickle) into our per-video feature files.

    The layout is not documented, so this assumes and validates strictly: a dict keyed by video
    (file name or id) of dicts holding feature name → array (names from ``fusion.FEATURES``, each
    ``k × dim`` or a ``dim`` vector, ``None`` / empty for a missing one) and the label (``label``,
    ``emotion``, ``class`` or ``target``: a name or an index into ``labels``); or that keyed by
    split first (``{"train": {...}, "test": {...}}``). Other keys of a video are ignored (listed
    once in the log). Anything else is a one-line :class:`FeatureFileError`.

    Unpickling runs code from the file, so it happens only with ``trust_pickle=True``; without it
    this raises :class:`PickleRefused`. (A ``torch.save`` zip file loads safely without trust.)
    """
    start = time.perf_counter()
    path = Path(pickle_path).expanduser()
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    parsed = _parse(path, _read_published(path, trust_pickle), labels)
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked_folder(out_dir):
        clean_temporary(out_dir)
        _claim_folder(out_dir, path)
        missing_counts = _write_files(out_dir, path, parsed, progress)
    return ExtractionReport(out_dir, len(parsed), len(parsed), 0, {}, missing_counts, time.perf_counter() - start)


__all__ = ["PickleRefused", "import_reference_features"]
