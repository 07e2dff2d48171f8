"""Preparation of a video's features for the fusion classifier, one code path for training and
inference (:func:`prepare`, then :func:`collate`); the steps are in the package's docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..registry import FEATURES


@dataclass(frozen=True)
class NormStats:
    """Scalar training-set statistics of one feature; min and max drive the normalization."""

    min: float
    max: float
    mean: float | None = None
    std: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.max > self.min):
            raise ValueError(f"normalization stats need finite min < max, got min={self.min}, max={self.max}")

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "NormStats":
        return cls(
            float(value["min"]),
            float(value["max"]),
            None if value.get("mean") is None else float(value["mean"]),
            None if value.get("std") is None else float(value["std"]),
        )

    def to_dict(self) -> dict[str, float | None]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "std": self.std}


# The reference's training-set statistics (min, max, mean, std): stats.pt at the root of
# serkansulun/video-emotion@312f802.
REFERENCE_STATS: dict[str, NormStats] = {
    "face_emotion": NormStats(-93.499756, 83.879723, 0.023644, 7.139699),
    "asr_sentiment": NormStats(-3.862561, 31.993481, 0.066896, 0.751966),
    "ocr_sentiment": NormStats(-3.536415, 31.442732, 0.058973, 0.946950),
    "beats": NormStats(-4.467730, 6.256464, 0.001673, 0.469751),
    "clip": NormStats(-11.513216, 5.377771, -0.009407, 0.477574),
}


def compute_stats(arrays: Iterable[np.ndarray | None]) -> NormStats:
    """Scalar min, max, mean and std over every element of the given arrays (None / empty skipped)."""
    lo, hi, total, total_sq, count = math.inf, -math.inf, 0.0, 0.0, 0
    for array in arrays:
        if array is None:
            continue
        values = np.asarray(array, dtype=np.float64)
        if values.size == 0:
            continue
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        total += float(values.sum())
        total_sq += float(np.square(values).sum())
        count += values.size
    if count == 0:
        raise ValueError("no values to compute normalization stats from")
    mean = total / count
    return NormStats(lo, hi, mean, math.sqrt(max(total_sq / count - mean * mean, 0.0)))


# ---- preparation -----------------------------------------------------------------------------


def _lookup(name: str, given: Mapping[str, int] | None, attr: str) -> int:
    if given is not None and name in given:
        return int(given[name])
    if name in FEATURES:
        return int(getattr(FEATURES[name], attr))
    raise ValueError(f"feature '{name}' is not in vemoclap.fusion.FEATURES; pass its {attr} explicitly")


def row_indices(
    n_rows: int, length: int, *, random: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Which of ``n_rows`` rows to keep when there are more than ``length``: equidistant ones, or
    (``random``) ``length`` distinct random ones in time order."""
    if n_rows <= length:
        return np.arange(n_rows)
    if random:
        rng = rng if rng is not None else np.random.default_rng()
        return np.sort(rng.choice(n_rows, size=length, replace=False))
    return np.round(np.linspace(0, n_rows - 1, length)).astype(np.int64)


def _as_array(value: Any) -> np.ndarray | None:
    value = getattr(value, "feature", value)  # an ExtractorOutput carries its array in .feature
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def prepare(
    features: Mapping[str, np.ndarray | None],
    feature_names: Sequence[str],
    stats: Mapping[str, NormStats] | None = None,
    *,
    lengths: Mapping[str, int] | None = None,
    dims: Mapping[str, int] | None = None,
    random: bool = False,
    rng: np.random.Generator | int | None = None,
) -> dict[str, np.ndarray]:
    """One video's features as the classifier sees them: name → ``length × dim`` float32.

    ``stats`` None skips normalization. ``lengths`` / ``dims`` default to :data:`FEATURES`.
    ``random`` picks random rows (sorted) when a sequence is too long — training augmentation;
    ``rng`` is a numpy Generator or a seed. Missing features (None, absent, no rows) are zeros.
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    prepared: dict[str, np.ndarray] = {}
    for name in feature_names:
        length, dim = _lookup(name, lengths, "length"), _lookup(name, dims, "dim")
        array = _as_array(features.get(name))
        if array is not None and array.ndim == 1 and array.size > 0:
            array = array[None, :]  # a single vector is one row
        if array is not None and array.size > 0 and (array.ndim != 2 or array.shape[1] != dim):
            raise ValueError(
                f"feature '{name}' has shape {tuple(array.shape)}, expected (rows, {dim}); "
                f"was it made by the matching extractor?"
            )
        if array is None or array.size == 0:
            prepared[name] = np.zeros((length, dim), np.float32)
            continue
        if stats is not None:
            if name not in stats:
                raise ValueError(
                    f"no normalization stats for feature '{name}'; compute them with "
                    f"vemoclap.fusion.compute_stats or turn normalization off"
                )
            lo, hi = stats[name].min, stats[name].max
            array = ((array - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)
        array = array[row_indices(len(array), length, random=random, rng=generator)]
        if len(array) < length:
            array = np.concatenate([array, np.zeros((length - len(array), dim), np.float32)])
        prepared[name] = np.ascontiguousarray(array, dtype=np.float32)
    return prepared


def collate(items: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack prepared videos into a batch: name → ``B × L × D`` float32 tensor."""
    if not items:
        raise ValueError("cannot collate an empty list of videos")
    names = list(items[0])
    batch: dict[str, torch.Tensor] = {}
    for name in names:
        try:
            stacked = np.stack([np.asarray(item[name], dtype=np.float32) for item in items])
        except KeyError:
            raise ValueError(
                f"feature '{name}' is missing from some videos; prepare() them all with the same feature names"
            ) from None
        except ValueError:
            shapes = sorted({tuple(np.shape(item[name])) for item in items})
            raise ValueError(
                f"feature '{name}' has different shapes across videos {shapes}; prepare() them with the same lengths"
            ) from None
        batch[name] = torch.from_numpy(stacked)
    return batch


def is_sequence(name: str, feature_lengths: Mapping[str, int] | None = None) -> bool:
    """From :data:`FEATURES`; a feature not listed there is a sequence when its length is > 1."""
    if name in FEATURES:
        return FEATURES[name].sequence
    if feature_lengths is not None and name in feature_lengths:
        return int(feature_lengths[name]) > 1
    raise ValueError(
        f"feature '{name}' is not in vemoclap.fusion.FEATURES; say whether it is a sequence "
        f"(sequence_features=...) or give its length"
    )
