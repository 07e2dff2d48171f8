"""Import the reference's published features (a pickle) as our per-video feature files.

The layout is not documented, so the import assumes and validates strictly; see
:func:`import_reference_features`. The folder it writes has the layout of
:mod:`vemoclap.training.extraction`'s, with ``extraction.json`` saying ``"source": "import"``.
"""

from __future__ import annotations

import _compat_pickle
import json
import logging
import pickle
import re
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
    """The pickle names a global outside the allow-list (nothing of it was run)."""


# The globals a pickle of numpy arrays, numpy scalars and builtin containers names (numpy 1 and 2
# spell the module differently; ``_codecs.encode`` carries an array's bytes in protocol-2 pickles).
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        *(("builtins", name) for name in ("set", "frozenset", "complex", "slice", "bytes", "bytearray", "range")),
    }
)


class AllowListUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, numpy scalars and builtin containers: any other global the
    pickle names (a function to call, a class to build) raises :class:`PickleRefused` before it is
    looked up, so nothing from the file runs. Persistent ids (torch storages) are refused too."""

    source = "the pickle"

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocol-2 pickles), mapped as the base class maps them; no Python 3 module has them
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in ALLOWED_GLOBALS:
            raise PickleRefused(
                f"{self.source}: refusing to unpickle it — it names {module}.{name}, which is not a numpy "
                f"array, numpy scalar or builtin container (only those are loaded, so nothing in the file "
                f"runs); if the published record changed, see docs/reproduce.md"
            )
        if module.startswith("numpy.core"):  # numpy 2 keeps the old path as a shim: use the real one
            module = module.replace("numpy.core", "numpy._core", 1) if hasattr(np, "_core") else module
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise PickleRefused(
            f"{self.source}: refusing to unpickle it — it holds a persistent object ({str(pid)[:40]}), "
            f"e.g. a torch storage; save tensors with torch.save, which the safe loader reads"
        )


def safe_unpickle(path: Path) -> Any:
    """A pickle file's content through :class:`AllowListUnpickler`; one-line errors."""
    with open(path, "rb") as handle:
        unpickler = AllowListUnpickler(handle)
        unpickler.source = str(path)
        try:
            return unpickler.load()
        except PickleRefused:
            raise
        except Exception as exc:  # a damaged pickle raises many types
            raise FeatureFileError(f"{path}: not a readable pickle ({typed_one_line(exc)[:200]})") from None


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


def _read_published(path: Path) -> Any:
    import zipfile

    if zipfile.is_zipfile(path):  # a torch.save file: torch's weights_only loader is an allow-list too
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError
            raise FeatureFileError(
                f"{path}: a torch file that the safe loader refuses ({typed_one_line(exc)[:200]}); "
                f"re-save it with plain dicts, tensors and strings"
            ) from None
    return safe_unpickle(path)


def split_of_file(path: Path) -> str | None:
    """The split a file's name gives (``ekman6_train.pkl`` → train), or None."""
    words = set(re.split(r"[^a-z]+", Path(path).stem.lower()))
    found = [split_name(word, str(path)) for word in sorted(words & _SPLIT_KEYS)]
    return found[0] if len(set(found)) == 1 else None


def _by_split(data: Mapping, path: Path, split: str | None) -> list[tuple[str, str | None, Any]]:
    if set(map(str, data)) <= _SPLIT_KEYS and all(isinstance(v, Mapping) for v in data.values()):
        return [
            (str(key), split_name(str(name), str(path)), value)
            for name, videos in data.items()
            for key, value in videos.items()
        ]
    return [(str(key), split, value) for key, value in data.items()]


def _flatten_sample(value: Any, split: str | None) -> tuple[str | None, Any]:
    """A sample of the author's layout (``{"features": {...}, "label": ..., "split"?}``) as a flat dict."""
    if isinstance(value, Mapping) and isinstance(value.get("features"), Mapping):
        flat = {str(k): v for k, v in value["features"].items()}
        flat.update({k: value[k] for k in _LABEL_KEYS if k in value})
        value = flat if "split" not in value else {**flat, "split": value["split"]}
    if isinstance(value, Mapping) and "split" in value:
        split = str(value["split"])
        value = {k: v for k, v in value.items() if k != "split"}
    return split, value


def _entries(data: Any, path: Path, split: str | None = None) -> tuple[list[tuple[str, str | None, Any]], dict]:
    """(video key, split or None, its value) of every video, and the file's index → label names.

    Layouts: a dict keyed by video or by split, or the author's ``{"samples": {...}, "stats": ...,
    "idx_to_label": {i: name}}`` (its samples keyed by video or by split)."""
    if not isinstance(data, Mapping) or not data:
        raise FeatureFileError(
            f"{path}: expected a dict keyed by video (or by split, or with 'samples'), found "
            f"{type(data).__name__}{' (empty)' if isinstance(data, Mapping) else ''}"
        )
    index_names: dict = {}
    if isinstance(data.get("samples"), Mapping):
        index_names = {int(k): str(v) for k, v in (data.get("idx_to_label") or {}).items()}
        data = data["samples"]
        if not data:
            raise FeatureFileError(f"{path}: 'samples' is empty")
    entries = []
    for key, entry_split, value in _by_split(data, path, split):
        entry_split, value = _flatten_sample(value, entry_split)
        entries.append((key, None if entry_split is None else split_name(entry_split, str(path)), value))
    return entries, index_names


def _label(value: Mapping[str, Any], labels: Sequence[str], where: str, index_names: Mapping[int, str]) -> str:
    """The label: a name, an index (into the file's ``idx_to_label`` when it has one, else ``labels``)
    or a one-hot vector."""
    label_key = next((k for k in _LABEL_KEYS if k in value), None)
    if label_key is None:
        raise FeatureFileError(f"{where}: no label (looked for {', '.join(_LABEL_KEYS)})")
    raw_label = value[label_key]
    if hasattr(raw_label, "detach"):
        raw_label = raw_label.detach().cpu().numpy()
    if isinstance(raw_label, (np.ndarray, list, tuple)) and np.size(raw_label) > 1:
        vector = np.asarray(raw_label).ravel()
        if vector.size != len(index_names or labels) or sorted(vector.tolist()) != [0] * (vector.size - 1) + [1]:
            raise FeatureFileError(f"{where}: label {vector.tolist()} is not one-hot over {len(labels)} classes")
        raw_label = int(np.argmax(vector))
    if hasattr(raw_label, "item"):
        raw_label = raw_label.item()
    if isinstance(raw_label, (int, np.integer)) and not isinstance(raw_label, bool):
        names = [index_names[i] for i in sorted(index_names)] if index_names else list(labels)
        if not 0 <= int(raw_label) < len(names):
            raise FeatureFileError(f"{where}: label index {raw_label} is outside 0..{len(names) - 1}")
        raw_label = names[int(raw_label)]
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
    entries, index_names = _entries(data, path, split_of_file(path))
    for key, split, value in entries:
        where = f"{path}: video '{key}'"
        if not isinstance(value, Mapping):
            raise FeatureFileError(f"{where}: expected a dict of features, found {type(value).__name__}")
        label = _label(value, labels, where, index_names)
        features, missing = _features(value, where, ignored)
        parsed.append((key, label, split, features, missing))
    if ignored:
        log.warning("%s: ignored keys that are not features: %s", path, ", ".join(sorted(ignored)))
    return parsed


def _claim_folder(out_dir: Path, paths: Sequence[Path]) -> None:
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
            "pickle": str(paths[0]) if len(paths) == 1 else [str(p) for p in paths],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def _write_files(out_dir: Path, parsed: list, progress: bool) -> dict[str, int]:
    """One feature file per video and the manifest; returns feature → videos without it."""
    from tqdm.auto import tqdm

    from ..recipes import get_recipe

    # Made by the reference's own extraction, which the reference recipe reproduces.
    recipe = get_recipe("reference").to_dict()
    ids = assign_ids([(label, key) for key, label, *_ in parsed])
    rows, missing_counts = [], {}
    for vid, (key, label, split, features, missing, path) in tqdm(
        list(zip(ids, parsed)), desc="import", unit="video", disable=not progress
    ):
        video = Video(id=vid, path=Path(key), label=label, split=split)
        imported_recipe = {**recipe, "notes": [f"imported from {path.name}: made by the reference's own extraction"]}
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
    pickle_path, out_dir, *, labels: Sequence[str] = EMOTIONS, progress: bool = True
) -> ExtractionReport:
    """Convert the reference's published features (one file, or a list of them) into our per-video
    feature files in one folder.

    Layouts (validated strictly; see docs/reproduce.md): a dict keyed by video (file name or id) of
    dicts holding feature name → array (names from ``fusion.FEATURES``, each ``k × dim`` or a ``dim``
    vector, ``None`` / empty for a missing one) and the label (``label``, ``emotion``, ``class`` or
    ``target``: a name, an index into ``labels`` or a one-hot vector); or that keyed by split first
    (``{"train": {...}, "test": {...}}``); or the author's ``{"samples": {video: {"features": {...},
    "label": ...}}, "stats": ..., "idx_to_label": {i: name}}``. A video's split comes from its
    ``split`` key, the split level, or else the file's name (``*_train.pkl``). Other keys of a video
    are ignored (listed once in the log). Anything else is a one-line :class:`FeatureFileError`.

    Pickles are read by :class:`AllowListUnpickler` (numpy arrays and builtins only: anything else is
    :class:`PickleRefused`, before it runs); a ``torch.save`` zip file by torch's ``weights_only`` loader.
    """
    start = time.perf_counter()
    paths = [Path(p).expanduser() for p in ([pickle_path] if isinstance(pickle_path, (str, Path)) else pickle_path)]
    if not paths:
        raise NotFound("no published features file given")
    parsed = []
    for path in paths:
        if not path.is_file():
            raise NotFound(f"{path}: no such file")
        parsed += [(*entry, path) for entry in _parse(path, _read_published(path), labels)]
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked_folder(out_dir):
        clean_temporary(out_dir)
        _claim_folder(out_dir, paths)
        missing_counts = _write_files(out_dir, parsed, progress)
    return ExtractionReport(out_dir, len(parsed), len(parsed), 0, {}, missing_counts, time.perf_counter() - start)


__all__ = ["ALLOWED_GLOBALS", "AllowListUnpickler", "PickleRefused", "import_reference_features", "safe_unpickle"]
