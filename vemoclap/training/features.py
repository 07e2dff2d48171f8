"""Read a feature cache (what ``vemoclap extract`` writes) into memory for training and evaluation.

A cache is a folder with one ``<video id>.safetensors`` file per video (ids are
``<label>/<stem>``, so one sub-folder per label) and a ``manifest.csv``; the format is
:mod:`vemoclap.training.store`'s, read with its own functions. Each file holds every extracted
feature as a ``rows × dim`` float32 tensor (a sequence keeps all its rows, more than the
classifier's 16, so training can pick random ones), ``<feature>.times`` with the second of each
row, and metadata (label, split, file name, duration, missing features with reasons …). A missing
feature has no tensor. The manifest's label and split win over a file's own (a person can
re-split a dataset by editing one CSV); without a manifest the files are scanned.

:class:`FeatureSet` is the in-memory form: per video a dict feature → array (``None`` when
missing), the label (a string), the split and the id. Tests and benchmarks build synthetic caches
in the same format with :func:`vemoclap.testing.features.make_synthetic_feature_set`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import UserError
from ..labels import EMOTIONS
from .extraction import MANIFEST_FILE, read_manifest
from .store import recipe_of_metadata

log = logging.getLogger(__name__)

VALIDATION_SPLITS = ("val", "valid", "validation")


class FeatureSetError(UserError):
    """A feature cache or feature set that cannot be used; the message is one line."""


@dataclass
class FeatureSet:
    """Cached features of many videos, in memory. Index ``i`` is one video across every list."""

    ids: list[str]
    labels: list[str]  # one label name per video
    splits: list[str]  # "train", "test", "val", ... per video
    features: list[dict[str, np.ndarray | None]]  # per video: feature → rows × dim (None: missing)
    times: list[dict[str, np.ndarray]] = field(default_factory=list)  # per video: feature → row seconds
    label_names: list[str] = field(default_factory=list)  # class id order; empty: from the labels
    info: list[dict[str, Any]] = field(default_factory=list)  # per video: file_name, duration, missing ...
    source: Path | None = None  # the cache folder it was read from

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.labels) == len(self.splits) == len(self.features) == n):
            raise FeatureSetError(
                f"a feature set needs one label, split and feature dict per video; got "
                f"{n} ids, {len(self.labels)} labels, {len(self.splits)} splits, "
                f"{len(self.features)} feature dicts"
            )
        if len(set(self.ids)) != n:
            dupes = sorted({i for i in self.ids if self.ids.count(i) > 1})[:5]
            raise FeatureSetError(f"video ids must be unique; repeated: {dupes}")
        self.labels = [str(label) for label in self.labels]
        self.splits = [str(split) for split in self.splits]
        self.times = list(self.times) or [{} for _ in range(n)]
        self.info = list(self.info) or [{} for _ in range(n)]
        if not self.label_names:
            self.label_names = default_label_names(self.labels)
        self.label_names = [str(name) for name in self.label_names]
        unknown = sorted(set(self.labels) - set(self.label_names))
        if unknown:
            raise FeatureSetError(f"labels {unknown} are not among the label names {self.label_names}")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.split_counts().items())
        return f"FeatureSet({len(self)} videos; {counts}; features {self.feature_names}; labels {self.label_names})"

    # ---- what is in it -------------------------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        """Features present (with at least one row) in at least one video, sorted."""
        return sorted(
            {
                name
                for video in self.features
                for name, array in video.items()
                if array is not None and np.size(array) > 0
            }
        )

    def dims(self) -> dict[str, int]:
        """Row width of each present feature (checked to agree across videos)."""
        found: dict[str, int] = {}
        for index, video in enumerate(self.features):
            for name, array in video.items():
                if array is None or np.size(array) == 0:
                    continue
                dim = int(np.shape(array)[-1])
                if found.setdefault(name, dim) != dim:
                    raise FeatureSetError(
                        f"feature '{name}' has width {dim} in video {self.ids[index]} but "
                        f"{found[name]} elsewhere; was the cache written by one extractor set?"
                    )
        return found

    def max_rows(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for video in self.features:
            for name, array in video.items():
                if array is not None and np.size(array) > 0:
                    rows[name] = max(rows.get(name, 0), int(np.atleast_2d(array).shape[0]))
        return rows

    def coverage(self) -> dict[str, int]:
        """How many videos have each feature."""
        return {
            name: sum(1 for video in self.features if video.get(name) is not None and np.size(video[name]) > 0)
            for name in self.feature_names
        }

    def split_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for split in self.splits:
            counts[split] = counts.get(split, 0) + 1
        return counts

    def label_ids(self) -> np.ndarray:
        """Class id of every video, in :attr:`label_names` order."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def check_features(self, names: Iterable[str]) -> list[str]:
        """``names`` as a list, or a FeatureSetError naming those this set does not have."""
        names = list(names)
        have = self.feature_names
        absent = [name for name in names if name not in have]
        if absent:
            where = f" at {self.source}" if self.source else ""
            raise FeatureSetError(
                f"features {absent} are not in the feature set{where} (it has: "
                f"{', '.join(have) or 'none'}); extract them or choose others with --features"
            )
        return names

    def recipe(self, indices: Iterable[int] | None = None) -> tuple[dict[str, Any] | None, str]:
        """(the feature recipe that made the videos at ``indices`` (default all), how it is known).

        Read from each file's metadata (:func:`~vemoclap.training.store.recipe_of_metadata`);
        ``(None, why)`` when no video says. Videos made with different recipes (their settings
        as run differ) are a FeatureSetError: one classifier should see one recipe's features."""
        picked = range(len(self)) if indices is None else [int(i) for i in indices]
        found: dict[str, tuple[dict[str, Any], str, str]] = {}
        unknown = 0
        for i in picked:
            recipe = self.info[i].get("recipe") if i < len(self.info) else None
            if not recipe:
                unknown += 1
                continue
            key = json.dumps(_recipe_settings(recipe), sort_keys=True, default=str)
            found.setdefault(key, (recipe, str(self.info[i].get("recipe_source") or "recorded"), self.ids[i]))
        if not found:
            return None, "no video records the recipe that made its features"
        if len(found) > 1:
            names = [f"{r.get('name')} v{r.get('version')} ({vid})" for r, _, vid in found.values()]
            where = f" at {self.source}" if self.source else ""
            raise FeatureSetError(
                f"the feature set{where} mixes features made with {len(found)} different recipes "
                f"or settings ({'; '.join(names[:3])}); extract them again with one recipe, "
                f"or name the one to record with --recipe"
            )
        recipe, how, _ = next(iter(found.values()))
        if unknown:
            log.warning(
                "%d videos do not record their recipe; taking the others' (%s v%s)",
                unknown,
                recipe.get("name"),
                recipe.get("version"),
            )
        return recipe, how

    # ---- selecting videos ----------------------------------------------------------------------

    def indices(self, split: str | Sequence[str]) -> np.ndarray:
        """Positions of the videos in ``split`` (a name or several names)."""
        wanted = {split} if isinstance(split, str) else set(split)
        return np.array([i for i, s in enumerate(self.splits) if s in wanted], dtype=np.int64)

    def subset(self, indices: Iterable[int]) -> "FeatureSet":
        """The videos at ``indices`` (same label names, so class ids stay the same)."""
        picked = [int(i) for i in indices]
        return FeatureSet(
            ids=[self.ids[i] for i in picked],
            labels=[self.labels[i] for i in picked],
            splits=[self.splits[i] for i in picked],
            features=[self.features[i] for i in picked],
            times=[self.times[i] for i in picked],
            label_names=list(self.label_names),
            info=[self.info[i] for i in picked],
            source=self.source,
        )

    def split(self, name: str) -> "FeatureSet":
        """The videos of one split; a FeatureSetError when it has none."""
        found = self.indices(name)
        if len(found) == 0:
            counts = ", ".join(f"{k} {v}" for k, v in self.split_counts().items()) or "no videos"
            where = f" at {self.source}" if self.source else ""
            raise FeatureSetError(f"the feature set{where} has no '{name}' videos (it has: {counts})")
        return self.subset(found)

    def validation_split_name(self) -> str | None:
        """The name of a held-out validation split when the cache has one."""
        present = set(self.splits)
        return next((name for name in VALIDATION_SPLITS if name in present), None)

    def train_val_indices(
        self, fraction: float = 0.1, seed: int = 0, train_split: str = "train"
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(fit indices, validation indices, where validation came from).

        The cache's own validation split when it has one; otherwise a stratified, seeded
        ``fraction`` of the training split (:func:`stratified_holdout`)."""
        train = self.indices(train_split)
        if len(train) == 0:
            counts = ", ".join(f"{k} {v}" for k, v in self.split_counts().items()) or "no videos"
            where = f" at {self.source}" if self.source else ""
            raise FeatureSetError(
                f"the feature set{where} has no '{train_split}' videos to train on (it has: {counts})"
            )
        val_name = self.validation_split_name()
        if val_name is not None:
            return train, self.indices(val_name), f"split '{val_name}'"
        fit, val = stratified_holdout(self.label_ids()[train], fraction, seed)
        return train[fit], train[val], f"{fraction:.0%} of '{train_split}' (stratified, seed {seed})"


def _recipe_settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """What of a recipe changes the features: name, version, frames, extractor options, precision."""
    return {key: recipe.get(key) for key in ("name", "version", "frames", "extractors", "precision")}


def default_label_names(labels: Iterable[str]) -> list[str]:
    """Ekman-6 in the reference's order when every label is an Ekman emotion (all six, so class
    ids match the reference's), otherwise the labels sorted alphabetically (the reference app's
    rule)."""
    present = set(labels)
    if present <= set(EMOTIONS):
        return list(EMOTIONS)
    return sorted(present)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (fit, holdout) with about ``fraction`` of each class held out, seeded.

    scikit-learn's stratified split; classes too small to stratify (one video) stay in fit."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    n = len(labels)
    if not 0.0 < fraction < 1.0:
        raise FeatureSetError(f"the validation fraction must be between 0 and 1, got {fraction}")
    positions = np.arange(n)
    counts = {label: int((labels == label).sum()) for label in np.unique(labels)}
    stratifiable = np.array([counts[label] >= 2 for label in labels])
    pool = positions[stratifiable]
    n_hold = max(int(math.ceil(fraction * n)), len({labels[i] for i in pool}))
    if len(pool) < 2 or n_hold >= len(pool):
        raise FeatureSetError(
            f"too few training videos ({n}) to hold out {fraction:.0%} for validation; "
            f"add a 'val' split to the manifest or more videos"
        )
    try:
        fit, hold = train_test_split(pool, test_size=n_hold, stratify=labels[pool], random_state=seed)
    except ValueError as exc:  # too few videos on one side for every class
        log.warning("cannot stratify the validation split (%s); holding out without stratification", exc)
        fit, hold = train_test_split(pool, test_size=n_hold, random_state=seed)
    fit = np.sort(np.concatenate([fit, positions[~stratifiable]]))
    return fit, np.sort(hold)


# ---- reading a cache ---------------------------------------------------------------------------


def read_feature_file(
    path: str | os.PathLike,
) -> tuple[dict[str, np.ndarray | None], dict[str, np.ndarray], dict[str, Any]]:
    """One cached video: (feature → array, None for a feature listed as missing; feature → row
    seconds; parsed metadata). Reads with :func:`vemoclap.training.store.load_features`."""
    from .store import load_features

    path = Path(path)
    try:
        video = load_features(path)
    except FileNotFoundError:
        raise FeatureSetError(
            f"{path}: feature file not found; re-run `vemoclap extract` to resume the cache"
        ) from None
    features: dict[str, np.ndarray | None] = {}
    for name, array in video.features.items():
        array = np.asarray(array, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]  # a single vector is one row
        features[name] = array if array.size > 0 else None
    for name in video.missing:
        features.setdefault(name, None)
    times = {name: np.asarray(t, dtype=np.float64) for name, t in video.times.items()}
    return features, times, dict(video.metadata)


def _cache_entries(directory: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """(id, feature file, manifest row) of every cached video: the manifest's rows whose files
    exist, or without a manifest every feature file found."""
    manifest_path = directory / MANIFEST_FILE
    entries: list[tuple[str, Path, dict[str, Any]]] = []
    if manifest_path.is_file():
        try:
            rows = read_manifest(directory)
        except (KeyError, ValueError) as exc:
            raise FeatureSetError(
                f"{manifest_path}: unreadable manifest ({exc}); delete it, `vemoclap extract` "
                f"rewrites it from the feature files"
            ) from None
        for row in rows:
            video_id = (row.get("id") or "").strip()
            if not video_id:
                continue
            file = Path(row.get("feature_file") or directory / f"{video_id}.safetensors")
            if not file.is_file():  # listed but gone: say so, train on the rest
                log.warning("%s: %s is listed but its feature file is missing; skipped", manifest_path, video_id)
                continue
            entries.append((video_id, file, row))
    else:
        # Ids may hold a folder ("<label>/<stem>"): the id is the path inside the cache, no suffix.
        entries = [
            (file.relative_to(directory).with_suffix("").as_posix(), file, {})
            for file in sorted(directory.rglob("*.safetensors"))
            if not file.name.startswith(".")
        ]
    if not entries:
        raise FeatureSetError(
            f"{directory}: no cached features (no {MANIFEST_FILE} rows with files, no "
            f"*.safetensors); run `vemoclap extract DATASET --out {directory}` first"
        )
    return entries


def _excluded(video_id: str, file_name: str, excluded: set[str]) -> bool:
    """Whether a blacklist entry names the video by id, file name or file stem."""
    return video_id.lower() in excluded or bool(
        file_name and (file_name.lower() in excluded or Path(file_name).stem.lower() in excluded)
    )


def _video_info(file: Path, file_name: str, meta: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a FeatureSet keeps about one video besides its arrays (``meta``: the file's metadata
    with the manifest row over it; ``metadata``: the file's own)."""
    try:
        duration = float(meta["duration"]) if meta.get("duration") not in (None, "") else None
    except (TypeError, ValueError):
        duration = None
    recipe, recipe_source = recipe_of_metadata(metadata)
    return {
        "name": file_name,
        "path": str(meta.get("path") or meta.get("source") or ""),
        "feature_file": str(file),
        "duration": duration,
        "missing": meta.get("missing") or {},
        "recipe": recipe,
        "recipe_source": recipe_source,
    }


def load_feature_set(
    directory: str | os.PathLike,
    *,
    splits: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    label_names: Sequence[str] | None = None,
    progress: bool = False,
) -> FeatureSet:
    """Read a feature cache folder into a :class:`FeatureSet`.

    ``splits`` keeps only those splits; ``exclude`` drops videos by id or source file name (a
    blacklist); ``label_names`` fixes the class order (default :func:`default_label_names`).
    """
    from tqdm.auto import tqdm

    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FeatureSetError(f"{directory}: not a folder; give the folder `vemoclap extract --out` wrote")
    entries = _cache_entries(directory)

    excluded = {str(item).strip().lower() for item in exclude if str(item).strip()}
    wanted = None if splits is None else {str(s) for s in splits}
    ids, labels, split_names, features, times, info = [], [], [], [], [], []
    unsplit = 0
    for video_id, file, row in tqdm(entries, desc="loading features", unit="video", disable=not progress):
        arrays, row_times, metadata = read_feature_file(file)
        # The manifest carries the current label and split; the file's metadata what was known then.
        meta = {**metadata, **{k: v for k, v in row.items() if v not in (None, "")}}
        file_name = str(meta.get("name") or meta.get("file_name") or "")
        if _excluded(video_id, file_name, excluded):
            continue
        label, split = str(meta.get("label") or "").strip(), str(meta.get("split") or "").strip()
        if not label:
            raise FeatureSetError(f"{file}: no label (neither in {MANIFEST_FILE} nor in the file's metadata)")
        if not split:
            split, unsplit = "train", unsplit + 1
        if wanted is not None and split not in wanted:
            continue
        ids.append(video_id)
        labels.append(label)
        split_names.append(split)
        features.append(arrays)
        times.append(row_times)
        info.append(_video_info(file, file_name, meta, metadata))
    if unsplit:
        log.warning(
            "%s: %d videos have no split; counted as 'train' (set the split column of %s)",
            directory,
            unsplit,
            MANIFEST_FILE,
        )
    if not ids:
        raise FeatureSetError(
            f"{directory}: every cached video was excluded or outside splits {sorted(wanted) if wanted else []}"
        )
    return FeatureSet(
        ids=ids,
        labels=labels,
        splits=split_names,
        features=features,
        times=times,
        label_names=list(label_names) if label_names else [],
        info=info,
        source=directory,
    )


def as_feature_set(value: "FeatureSet | str | os.PathLike") -> FeatureSet:
    """A FeatureSet as is, or the cache folder at a path loaded."""
    return value if isinstance(value, FeatureSet) else load_feature_set(value)


__all__ = [
    "FeatureSet",
    "FeatureSetError",
    "load_feature_set",
    "as_feature_set",
    "read_feature_file",
    "stratified_holdout",
    "default_label_names",
    "MANIFEST_FILE",
]
