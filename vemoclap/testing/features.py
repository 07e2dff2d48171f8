"""Synthetic feature caches for tests and benchmarks, in the real on-disk format
(:mod:`vemoclap.training.store`'s files and :mod:`vemoclap.training.extraction`'s manifest)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .._util import atomic_write_text
from ..labels import EMOTIONS
from ..training.extraction import MANIFEST_COLUMNS, MANIFEST_FILE
from ..training.store import write_feature_file


def write_manifest(directory: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``manifest.csv`` (the extractor's columns) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in MANIFEST_COLUMNS})
    path = Path(directory) / MANIFEST_FILE
    atomic_write_text(path, buffer.getvalue())
    return path


def _per_class(value: int | Mapping[str, int], label: str) -> int:
    return int(value.get(label, 0)) if isinstance(value, Mapping) else int(value)


def make_synthetic_feature_set(
    directory: str | os.PathLike,
    *,
    n_per_class: int | Mapping[str, int] = 20,
    test_per_class: int | Mapping[str, int] = 10,
    val_per_class: int = 0,
    labels: Sequence[str] = EMOTIONS,
    features: Sequence[str] = ("clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment"),
    rows: tuple[int, int] = (20, 32),
    signal: float = 1.0,
    face_missing: float = 0.2,
    seed: int = 0,
    test_shift: float = 0.0,
    dims: Mapping[str, int] | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> Path:
    """Write a synthetic cache with a learnable class signal, in the real on-disk format.

    ``clip`` rows carry a class-dependent mean (plus noise), ``asr_sentiment`` a weaker one, and
    ``beats`` an interaction: a class direction whose sign flips with a per-video ±1 that is also
    written into ``clip``'s last dimension (so only a model that combines the two uses it).
    ``face_emotion`` is missing for about ``face_missing`` of the videos and otherwise has fewer
    rows. Everything else is noise. ``test_shift`` adds a constant to every test value (to prove
    that test data does not leak into training statistics). ``recipe`` (a recipe dict) is recorded
    in every file as the recipe that made it.
    """
    from ..fusion import FEATURES

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    widths = {name: int((dims or {}).get(name, FEATURES[name].dim if name in FEATURES else 32)) for name in features}
    sequence = {name: (FEATURES[name].sequence if name in FEATURES else True) for name in features}
    # One fixed random ±1 pattern per class and feature: the class means differ in every dimension.
    patterns = {name: rng.choice([-1.0, 1.0], size=(len(labels), widths[name])) for name in features}

    plan = [
        (label, split)
        for split, count in (("train", n_per_class), ("val", val_per_class), ("test", test_per_class))
        for label in labels
        for _ in range(_per_class(count, label))
    ]
    manifest = []
    for index, (label, split) in enumerate(plan):
        c = list(labels).index(label)
        flip = rng.choice([-1.0, 1.0])
        arrays: dict[str, np.ndarray | None] = {}
        row_times: dict[str, np.ndarray] = {}
        for name in features:
            dim = widths[name]
            k = int(rng.integers(rows[0], rows[1] + 1)) if sequence[name] else 1
            if name == "face_emotion":
                if rng.random() < face_missing:
                    arrays[name] = None
                    continue
                k = int(rng.integers(1, 17))
            noise = rng.standard_normal((k, dim)).astype(np.float32)
            if name == "clip":
                x = noise + 0.5 * signal * patterns[name][c]
                x[:, -1] = 3.0 * flip  # the interaction's key
            elif name == "beats":
                x = noise + 0.5 * signal * flip * patterns[name][c]
            elif name == "asr_sentiment":
                x = noise + 0.3 * signal * patterns[name][c]
            else:
                x = noise
            if split == "test":
                x = x + test_shift
            arrays[name] = x.astype(np.float32)
            if sequence[name]:
                row_times[name] = np.linspace(0.0, 10.0, k)
        video_id = f"{label}/{split}_{index:05d}"  # the extractor's "<label>/<stem>" id layout
        name = f"{label}_{split}_{index:05d}.mp4"
        write_feature_file(
            directory,
            video_id,
            arrays,
            times=row_times,
            label=label,
            split=split,
            name=name,
            duration=10.0,
            recipe=recipe,
        )
        manifest.append(
            {
                "id": video_id,
                "name": name,
                "path": f"synthetic/{name}",
                "label": label,
                "split": split,
                "feature_file": f"{video_id}.safetensors",
                "duration": "10.000",
                "frames": 0,
                "missing": json.dumps({n: "missing" for n, a in arrays.items() if a is None}),
            }
        )
    write_manifest(directory, manifest)
    return directory


__all__ = ["make_synthetic_feature_set", "write_manifest"]
