"""The fusion classifier: feature specs, preparation (normalize, fix length), the cross-attention
network, and its checkpoints (ours and the reference's).

Everything the classifier needs to know about a feature lives in :data:`FEATURES`. Preparation is
one code path for training and inference (:func:`prepare`, then :func:`collate`), in the
reference's order, which its public code shows (its training ``process_dataset`` and its
inference script both do it this way):

1. an array with no rows (or ``None`` / absent) is a missing feature;
2. present features are min–max normalized with the stored training-set scalars,
   ``x' = (x − min) / (max − min)``;
3. missing features become zeros of their full shape and short sequences are zero-padded at the
   end — so padding and missing features are 0 *after* normalization (the value that the
   training-set minimum maps to), exactly what the published checkpoint was trained on;
4. longer sequences keep ``length`` equidistant rows, ``round(linspace(0, k − 1, length))``
   (training augmentation: ``length`` random rows, kept in time order; the reference's dataset
   meant to do this too, but its mode check never matched, so it trained on equidistant rows).

Checkpoints: ours is a folder with ``classifier.safetensors`` (state dict) and
``classifier.json`` (:class:`ClassifierConfig`). The reference ships ``model_config.pt`` (a pickled
dict holding paths and a ``torch.device``) and ``model.pt`` (a state dict); both are read with
``torch.load(weights_only=True)`` and an allow-list of path classes and ``torch.device`` only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import pickle
import re
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._util import atomic_write_bytes, atomic_write_json
from .errors import UserError, one_line
from .labels import EMOTIONS
from .registry import DEFAULT_FEATURES, FEATURES, FeatureSpec  # noqa: F401 (FeatureSpec re-exported)

log = logging.getLogger(__name__)

CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "classifier.safetensors"
# File names the reference's app uses inside its classifier folder (weights/classifier/).
REFERENCE_CONFIG_FILE = "model_config.pt"
REFERENCE_WEIGHTS_FILE = "model.pt"
FORMAT_VERSION = 1


class CheckpointError(UserError):
    """A classifier checkpoint that cannot be used; the message is one line naming the file."""


# ---- feature specs ---------------------------------------------------------------------------

# Feature specs come from the extractors' registrations (vemoclap.registry).
REFERENCE_FEATURES: tuple[str, ...] = DEFAULT_FEATURES  # the reference classifier's inputs


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


# The reference's training-set statistics (reference-facts).
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


# ---- the network -----------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


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


class AttentionClassifier(nn.Module):
    """Per-feature linear encoders, cross-attention for every ordered pair of sequence features,
    mean over time, concatenation (sorted by name) with the single-vector features, ReLU, linear.

    Parameter names match the reference's checkpoint: ``encoders.<f>``, ``query_proj.<s>``,
    ``key_proj.<s>``, ``value_proj.<s>``, ``attention_layers.<a>_<b>``, ``attn_norms.<a>_<b>``,
    ``cls_mlp.0``. The reference also applies ``dropout`` to the attention weights; so do we.
    A model with a single sequence feature has no pairs: that feature is encoded and averaged
    over time instead.
    """

    def __init__(
        self,
        feature_dims: Mapping[str, int],
        d_model: int = 512,
        n_labels: int = 6,
        dropout: float = 0.5,
        num_heads: int = 4,
        sequence_features: Iterable[str] | None = None,
    ):
        super().__init__()
        if not feature_dims:
            raise ValueError("the classifier needs at least one feature")
        bad = [name for name in feature_dims if not _NAME.match(name)]
        if bad:
            raise ValueError(f"feature names may hold only letters, digits and '_': {bad}")
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.feature_dims = {name: int(dim) for name, dim in feature_dims.items()}
        if sequence_features is None:
            sequence_features = [name for name in self.feature_dims if is_sequence(name)]
        sequence_features = list(sequence_features)
        unknown = [name for name in sequence_features if name not in self.feature_dims]
        if unknown:
            raise ValueError(f"sequence features {unknown} are not in feature_dims")
        self.sequence_features = [name for name in self.feature_dims if name in sequence_features]
        self.single_features = [name for name in self.feature_dims if name not in sequence_features]
        self.d_model, self.n_labels, self.num_heads, self.dropout_p = d_model, n_labels, num_heads, dropout
        self.pairs = [(a, b) for a, b in permutations(self.sequence_features, 2)]

        # Names of the pooled parts, in the order they are concatenated.
        parts = list(self.single_features) + [f"{a}_{b}" for a, b in self.pairs]
        if len(self.sequence_features) == 1:
            parts.append(self.sequence_features[0])
        if len(set(parts)) != len(parts):
            raise ValueError(f"feature names collide with pair names ('<a>_<b>'): {sorted(parts)}")
        self.part_names = sorted(parts)

        self.encoders = nn.ModuleDict({name: nn.Linear(dim, d_model) for name, dim in self.feature_dims.items()})
        paired = self.sequence_features if self.pairs else []
        self.query_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.key_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.value_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.attention_layers = nn.ModuleDict(
            {
                f"{a}_{b}": nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
                for a, b in self.pairs
            }
        )
        self.attn_norms = nn.ModuleDict({f"{a}_{b}": nn.LayerNorm(d_model) for a, b in self.pairs})
        self.cls_mlp = nn.Sequential(nn.Linear(d_model * len(self.part_names), n_labels))
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    @classmethod
    def from_config(cls, config: "ClassifierConfig") -> "AttentionClassifier":
        return cls(
            config.feature_dims,
            d_model=config.d_model,
            n_labels=config.n_labels,
            dropout=config.dropout,
            num_heads=config.num_heads,
            sequence_features=config.sequence_features,
        )

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``batch``: name → ``B × L × D`` (or ``B × D`` for a single vector) → logits ``B × n_labels``.

        A feature absent from ``batch`` is zeros (one row: in eval mode the output is the same
        for all-zero rows of any length)."""
        unknown = sorted(set(batch) - set(self.feature_dims))
        if unknown:
            raise ValueError(
                f"features {unknown} are not inputs of this classifier (it takes {sorted(self.feature_dims)})"
            )
        if not batch:
            raise ValueError("empty batch: give at least one feature")
        first = next(iter(batch.values()))
        weight = self.cls_mlp[0].weight
        encoded: dict[str, torch.Tensor] = {}
        for name, dim in self.feature_dims.items():
            x = batch.get(name)
            if x is None:
                x = torch.zeros(first.shape[0], 1, dim)
            if x.dim() == 2:
                x = x.unsqueeze(1)
            encoded[name] = self.dropout(self.encoders[name](x.to(device=weight.device, dtype=weight.dtype)))

        pooled = {name: encoded[name].mean(1) for name in self.single_features}
        if self.pairs:
            q = {m: self.dropout(self.query_proj[m](encoded[m])) for m in self.sequence_features}
            k = {m: self.dropout(self.key_proj[m](encoded[m])) for m in self.sequence_features}
            v = {m: self.dropout(self.value_proj[m](encoded[m])) for m in self.sequence_features}
            for a, b in self.pairs:
                key = f"{a}_{b}"
                attended, _ = self.attention_layers[key](q[a], k[b], v[b], need_weights=False)
                pooled[key] = self.dropout(self.attn_norms[key](attended)).mean(1)
        elif self.sequence_features:
            name = self.sequence_features[0]
            pooled[name] = encoded[name].mean(1)
        x = torch.cat([pooled[name] for name in self.part_names], dim=1)
        return self.cls_mlp(self.relu(x))


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a classifier and feed it: stored beside its weights as JSON."""

    features: list[str] = field(default_factory=lambda: list(REFERENCE_FEATURES))
    feature_dims: dict[str, int] = field(default_factory=dict)  # empty: from FEATURES
    feature_lengths: dict[str, int] = field(default_factory=dict)  # empty: from FEATURES / n_frames
    sequence_features: list[str] | None = None  # None: from FEATURES (or length > 1)
    labels: list[str] = field(default_factory=lambda: list(EMOTIONS))
    d_model: int = 512
    n_labels: int | None = None  # None: len(labels)
    dropout: float = 0.5
    num_heads: int = 4
    stats: dict[str, NormStats] = field(default_factory=dict)  # empty: REFERENCE_STATS where known
    normalize: bool = True
    n_frames: int = 16
    training: dict[str, Any] = field(default_factory=dict)  # free-form: data, epochs, accuracy ...
    # The feature recipe its training features were made with (vemoclap.recipes): a name, or the
    # whole recipe as a dict (what `vemoclap train` writes). None: read from the layout.
    recipe: str | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.features = list(self.features)
        if not self.features:
            raise ValueError("a classifier config needs at least one feature")
        self.labels = [str(label) for label in self.labels]
        if self.n_labels is None:
            self.n_labels = len(self.labels)
        if int(self.n_labels) != len(self.labels):
            raise ValueError(f"n_labels is {self.n_labels} but {len(self.labels)} labels are given")
        self.n_labels, self.d_model, self.num_heads = int(self.n_labels), int(self.d_model), int(self.num_heads)
        self.n_frames, self.dropout = int(self.n_frames), float(self.dropout)
        dims, lengths = dict(self.feature_dims), dict(self.feature_lengths)
        for name in self.features:
            if name not in dims:
                dims[name] = _lookup(name, None, "dim")
            if name not in lengths:
                if name not in FEATURES:
                    raise ValueError(f"feature '{name}' is not in vemoclap.fusion.FEATURES; give its length")
                lengths[name] = self.n_frames if FEATURES[name].sequence else 1
        self.feature_dims = {name: int(dims[name]) for name in self.features}
        self.feature_lengths = {name: int(lengths[name]) for name in self.features}
        if self.sequence_features is None:
            self.sequence_features = [name for name in self.features if is_sequence(name, self.feature_lengths)]
        self.sequence_features = [name for name in self.features if name in set(self.sequence_features)]
        stats = {
            name: value if isinstance(value, NormStats) else NormStats.from_dict(value)
            for name, value in self.stats.items()
        }
        if not stats:
            stats = {name: REFERENCE_STATS[name] for name in self.features if name in REFERENCE_STATS}
        self.stats = stats
        self.training = dict(self.training)

    def norm_stats(self) -> dict[str, NormStats] | None:
        """The stats :func:`prepare` needs (None when this classifier does not normalize)."""
        if not self.normalize:
            return None
        missing = [name for name in self.features if name not in self.stats]
        if missing:
            raise ValueError(
                f"no normalization stats for {missing}; compute them on the training "
                f"set (vemoclap.fusion.compute_stats)"
            )
        return self.stats

    def prepare(
        self, features: Mapping[str, Any], *, random: bool = False, rng: np.random.Generator | int | None = None
    ) -> dict[str, np.ndarray]:
        """:func:`prepare` with this config's features, lengths, dims and stats."""
        return prepare(
            features,
            self.features,
            self.norm_stats(),
            lengths=self.feature_lengths,
            dims=self.feature_dims,
            random=random,
            rng=rng,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["stats"] = {name: value.to_dict() for name, value in self.stats.items()}
        return {"format": "vemoclap-classifier", "version": FORMAT_VERSION, **out}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "ClassifierConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        ignored = sorted(set(value) - known - {"format", "version"})
        if ignored:
            log.warning("ignoring unknown classifier config keys: %s", ", ".join(ignored))
        return cls(**{key: item for key, item in value.items() if key in known})

    def to_json(self) -> str:
        from ._util import to_jsonable

        return json.dumps(to_jsonable(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ClassifierConfig":
        return cls.from_dict(json.loads(text))


def default_config(features: Iterable[str] = REFERENCE_FEATURES, **options: Any) -> ClassifierConfig:
    """A config for ``features`` with the reference's settings (dims, lengths, stats from the tables)."""
    return ClassifierConfig(features=list(features), **options)


# ---- our checkpoint format -------------------------------------------------------------------


def save_checkpoint(directory: str | os.PathLike, model: AttentionClassifier, config: ClassifierConfig) -> Path:
    """Write ``classifier.safetensors`` and ``classifier.json`` into ``directory`` (atomically each)."""
    from safetensors.torch import save as safetensors_bytes

    if (
        dict(model.feature_dims) != dict(config.feature_dims)
        or model.n_labels != config.n_labels
        or model.d_model != config.d_model
    ):
        raise ValueError("the model does not match its config (feature dims, labels or d_model differ)")
    directory = Path(directory)
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    # Weights first, config last: a folder with a config always has its weights.
    atomic_write_bytes(directory / WEIGHTS_FILE, safetensors_bytes(state, metadata={"format": "pt"}))
    atomic_write_json(directory / CONFIG_FILE, config.to_dict())
    log.info("saved classifier to %s", directory)
    return directory


def _our_files(path: Path) -> tuple[Path, Path] | None:
    """(config json, weights) for a folder, either file, or a path stem; None when not ours."""
    if path.is_dir():
        pair = path / CONFIG_FILE, path / WEIGHTS_FILE
        return pair if pair[0].is_file() or pair[1].is_file() else None
    if path.suffix in (".json", ".safetensors"):
        return path.with_suffix(".json"), path.with_suffix(".safetensors")
    stem = path.with_name(path.name + ".json"), path.with_name(path.name + ".safetensors")
    return stem if stem[0].is_file() or stem[1].is_file() else None


def _load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Strict load whose failure is one line naming the file and the first differences."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    wrong = [
        f"{name} {tuple(state[name].shape)}≠{tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and tuple(state[name].shape) != tuple(tensor.shape)
    ]
    problems = [
        f"{what} {', '.join(names[:3])}" + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        for what, names in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if names
    ]
    if problems:
        raise CheckpointError(
            f"{source}: weights do not fit the configured classifier ({'; '.join(problems)}); "
            f"is the config file from the same checkpoint?"
        )
    model.load_state_dict(dict(state), strict=True)


def load_checkpoint(path: str | os.PathLike) -> tuple[AttentionClassifier, ClassifierConfig]:
    """Load our format: a folder, ``classifier.json`` / ``classifier.safetensors``, or a path stem."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    files = _our_files(path) or (path / CONFIG_FILE, path / WEIGHTS_FILE)
    config_path, weights_path = files
    for file in files:
        if not file.is_file():
            raise CheckpointError(
                f"{file}: not found; a vemoclap classifier is a folder with {CONFIG_FILE} "
                f"and {WEIGHTS_FILE} (written by save_checkpoint / vemoclap train)"
            )
    try:
        config = ClassifierConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(
            f"{config_path}: not a valid classifier config ({one_line(exc)}); re-save the checkpoint"
        ) from None
    try:
        config.norm_stats()
    except ValueError as exc:
        raise CheckpointError(f"{config_path}: {one_line(exc)}") from None
    try:
        state = load_file(str(weights_path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(
            f"{weights_path}: unreadable safetensors file ({one_line(exc)}); re-save the checkpoint"
        ) from None
    model = AttentionClassifier.from_config(config)
    _load_state(model, state, weights_path)
    return model.eval(), config


# ---- the reference's checkpoint --------------------------------------------------------------


def _path_globals() -> list[tuple[type, str]]:
    # Paths load as pure paths: no file system access, and a Windows path loads on Linux too.
    # Python ≥ 3.13 pickles them from pathlib._local.
    pure = {
        "PosixPath": pathlib.PurePosixPath,
        "PurePosixPath": pathlib.PurePosixPath,
        "WindowsPath": pathlib.PureWindowsPath,
        "PureWindowsPath": pathlib.PureWindowsPath,
    }
    return [(cls, f"{module}.{name}") for name, cls in pure.items() for module in ("pathlib", "pathlib._local")]


def _safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` allowing only path classes and torch.device beyond tensors
    and plain containers; anything else is a one-line CheckpointError (never weights_only=False)."""
    if not path.is_file():
        raise CheckpointError(
            f"{path}: not found; give the reference's {REFERENCE_CONFIG_FILE} and "
            f"{REFERENCE_WEIGHTS_FILE} (its weights/classifier folder)"
        )
    try:
        with torch.serialization.safe_globals([*_path_globals(), torch.device]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(
                f"{path}: refused to load, it needs the disallowed global {found.group(1)} "
                f"(only tensors, plain containers, paths and torch.device are allowed); "
                f"re-save it as a plain dict / state dict"
            ) from None
        raise CheckpointError(f"{path}: not a loadable torch file ({one_line(exc)[:200]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a torch.save file ({one_line(exc)}); expected the reference's model_config.pt / model.pt"
        ) from None


def _plain(value: Any) -> Any:
    """JSON-safe copy of a reference config value (paths and devices become strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)


DEFAULT_HEADS = 4  # the reference app's; a config's own num_heads / n_heads wins


def reference_heads(raw: Mapping[str, Any]) -> int:
    """Attention heads of a reference config: its ``num_heads`` or ``n_heads`` (the published
    checkpoint says 8), else :data:`DEFAULT_HEADS`. The reference app builds 4 whatever the config
    says; both have the same weight shapes, so only accuracy on real features tells which one the
    weights were trained with (``vemoclap evaluate --heads 4,8``; docs/parity.md)."""
    for key in ("num_heads", "n_heads"):
        if raw.get(key) is not None:
            return int(raw[key])
    return DEFAULT_HEADS


def config_from_reference(
    raw: Mapping[str, Any], *, stats: Mapping[str, NormStats] | None = None, source: str = "reference config"
) -> ClassifierConfig:
    """Map the reference's config dict onto a :class:`ClassifierConfig` (stats: REFERENCE_STATS)."""
    try:
        dims = {str(k): int(v) for k, v in raw["feature_dims"].items()}
        # The reference builds its network from feature_dims, so that is the feature list.
        features = list(dims)
        listed = list(raw.get("features", features))
        if sorted(listed) != sorted(features):
            log.warning("%s: 'features' %s differ from feature_dims %s; using feature_dims", source, listed, features)
        lengths = {str(k): int(v) for k, v in dict(raw.get("feature_lengths", {})).items() if k in dims}
        normalize = bool(raw.get("normalize_data", raw.get("normalize", True)))
        # The reference treats every feature but the two sentiment vectors as a sequence.
        sequence = (
            [name for name in features if FEATURES[name].sequence]
            if all(name in FEATURES for name in features)
            else [name for name in features if name not in ("asr_sentiment", "ocr_sentiment")]
        )
        n_frames = int(raw.get("n_frames", 16))
        for name in features:
            lengths.setdefault(name, n_frames if name in sequence else 1)
        chosen = dict(stats) if stats is not None else {k: v for k, v in REFERENCE_STATS.items() if k in dims}
        labels = list(raw.get("labels") or EMOTIONS)
        return ClassifierConfig(
            features=features,
            feature_dims=dims,
            feature_lengths=lengths,
            sequence_features=sequence,
            labels=labels,
            d_model=int(raw["d_model"]),
            n_labels=int(raw.get("n_labels", len(labels))),
            dropout=float(raw.get("dropout", 0.5)),
            num_heads=reference_heads(raw),
            stats=chosen,
            normalize=normalize,
            n_frames=n_frames,
            training={"source": "reference", "reference_config": _plain(raw)},
            recipe=(dict(raw["recipe"]) if isinstance(raw.get("recipe"), Mapping) else str(raw["recipe"]))
            if raw.get("recipe")
            else "reference",
        )
    except KeyError as exc:
        raise CheckpointError(f"{source}: the reference config lacks {exc}; is it the right file?") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source}: unusable reference config ({one_line(exc)})") from None


def load_reference_checkpoint(
    config_path: str | os.PathLike, weights_path: str | os.PathLike, *, stats: Mapping[str, NormStats] | None = None
) -> tuple[AttentionClassifier, ClassifierConfig]:
    """Load the reference's ``model_config.pt`` + ``model.pt`` (safely) into our classifier."""
    config_path, weights_path = Path(config_path).expanduser(), Path(weights_path).expanduser()
    raw = _safe_torch_load(config_path)
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{config_path}: expected the reference's config dict, found {type(raw).__name__}")
    config = config_from_reference(raw, stats=stats, source=str(config_path))
    if config.normalize:
        missing = [name for name in config.features if name not in config.stats]
        if missing:
            raise CheckpointError(f"{config_path}: no normalization stats for {missing}; pass stats=")
    state = _safe_torch_load(weights_path)
    if isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model"):  # a state dict wrapped in a dict
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{weights_path}: expected a state dict (parameter name → tensor)")
    model = AttentionClassifier.from_config(config)
    _load_state(model, state, weights_path)
    config.training.update({"config_file": str(config_path), "weights_file": str(weights_path)})
    log.info("loaded the reference classifier from %s", weights_path)
    return model.eval(), config


def _reference_files(directory: Path) -> tuple[Path, Path] | None:
    """The reference's (config, weights) in a folder: model_config.pt + model.pt, or exactly one
    ``*config*`` file and one other ``.pt`` / ``.pth`` file (``stats`` files are ignored)."""
    named = directory / REFERENCE_CONFIG_FILE, directory / REFERENCE_WEIGHTS_FILE
    if all(p.is_file() for p in named):
        return named
    files = [p for p in sorted(directory.iterdir()) if p.is_file() and p.suffix in (".pt", ".pth", ".pkl")]
    configs = [p for p in files if "config" in p.name.lower()]
    weights = [p for p in files if p not in configs and "stats" not in p.name.lower() and p.suffix != ".pkl"]
    if len(configs) == 1 and len(weights) == 1:
        return configs[0], weights[0]
    return None


# ---- inference -------------------------------------------------------------------------------


class EmotionClassifier:
    """A loaded classifier in eval mode: features of a video → probabilities over ``config.labels``."""

    def __init__(
        self,
        model: AttentionClassifier,
        config: ClassifierConfig,
        device: str | torch.device = "cpu",
        *,
        autocast: bool = False,
    ):
        from .extractors.base import resolve_device

        self.autocast = bool(autocast)  # fp16 autocast on CUDA; fp32 otherwise
        self.origin = "local"  # "random" for the tiny builders' weights (vemoclap.models.origin)
        config.norm_stats()  # fail now, not on the first video, when stats are missing
        self.config = config
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()

    def __repr__(self) -> str:
        return f"EmotionClassifier(features={self.config.features}, labels={self.config.labels}, device={self.device})"

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    def predict(self, features: Mapping[str, Any]) -> np.ndarray:
        """Probabilities (softmax) for one video's features; missing ones count as zeros."""
        return self.predict_batch([features])[0]

    def predict_batch(self, videos: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``N × n_labels`` probabilities for N videos."""
        if len(videos) == 0:
            return np.zeros((0, self.config.n_labels), np.float32)
        batch = collate([self.config.prepare(video) for video in videos])
        use_autocast = self.autocast and self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=use_autocast):
            logits = self.model({name: x.to(self.device) for name, x in batch.items()})
            return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def with_heads(classifier: EmotionClassifier, heads: int | None) -> EmotionClassifier:
    """The same weights run with ``heads`` attention heads (None: as loaded). The in/out projection
    shapes do not depend on the head count, so any divisor of d_model fits."""
    if heads is None or int(heads) == classifier.config.num_heads:
        return classifier
    config = dataclasses.replace(classifier.config, num_heads=int(heads), training=dict(classifier.config.training))
    config.training["heads_override"] = {"from": classifier.config.num_heads, "to": int(heads)}
    try:
        model = AttentionClassifier.from_config(config)
    except ValueError as exc:
        raise UserError(
            f"cannot run the classifier with {heads} heads ({one_line(exc)}); choose a divisor of "
            f"d_model {config.d_model}"
        ) from None
    model.load_state_dict(classifier.model.state_dict(), strict=True)
    return EmotionClassifier(model.eval(), config, classifier.device, autocast=classifier.autocast)


def _with_origin(classifier: EmotionClassifier, path: Path) -> EmotionClassifier:
    """Where the weights came from, read from the provenance file the tiny builders and downloads write."""
    from .models import RANDOM, origin

    found = [origin(p) for p in (path, path.parent if path.is_file() else path)]
    if classifier.config.training.get("reference_config", {}).get("vemoclap_random_weights"):
        found.append(RANDOM)  # the tiny builder's marker inside model_config.pt
    classifier.origin = RANDOM if RANDOM in found else next((o for o in found if o != "local"), "local")
    return classifier


def load_classifier(
    path: str | os.PathLike, device: str | torch.device = "cpu", *, heads: int | None = None, autocast: bool = False
) -> EmotionClassifier:
    """Load a classifier, telling the format from the files:

    * ours: a folder with ``classifier.json`` + ``classifier.safetensors``, either of those files,
      or a path stem ``NAME`` with ``NAME.json`` + ``NAME.safetensors``;
    * the reference's: a folder with ``model_config.pt`` + ``model.pt`` (or exactly one
      ``*config*.pt|.pth|.pkl`` and one other ``.pt|.pth``), or either file of such a pair.

    ``heads`` overrides the number of attention heads (see :func:`reference_heads`); ``autocast``
    runs it under fp16 autocast on CUDA (the reference app's way) instead of fp32.
    """
    path = Path(path).expanduser()
    try:  # a truncated or garbage file is the user's to replace: one line, not a traceback
        ours = _our_files(path)
        if ours is not None:
            model, config = load_checkpoint(path)
            return _with_origin(with_heads(EmotionClassifier(model, config, device, autocast=autocast), heads), path)
        folder = path if path.is_dir() else path.parent if path.is_file() else None
        reference = _reference_files(folder) if folder is not None else None
        if reference is not None:
            model, config = load_reference_checkpoint(*reference)
            return _with_origin(with_heads(EmotionClassifier(model, config, device, autocast=autocast), heads), folder)
    except UserError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"{path}: the classifier files are damaged or not a classifier "
            f"({type(exc).__name__}: {one_line(exc, limit=120)}); download or train it again"
        ) from None
    what = "does not exist" if not path.exists() else "holds no classifier"
    raise CheckpointError(
        f"{path}: {what}; expected a folder with {CONFIG_FILE} + {WEIGHTS_FILE} (vemoclap) "
        f"or {REFERENCE_CONFIG_FILE} + {REFERENCE_WEIGHTS_FILE} (the reference's)"
    )


__all__ = [
    "FeatureSpec",
    "FEATURES",
    "REFERENCE_FEATURES",
    "NormStats",
    "REFERENCE_STATS",
    "compute_stats",
    "row_indices",
    "prepare",
    "collate",
    "is_sequence",
    "AttentionClassifier",
    "ClassifierConfig",
    "default_config",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "config_from_reference",
    "load_reference_checkpoint",
    "EmotionClassifier",
    "load_classifier",
    "with_heads",
    "reference_heads",
    "DEFAULT_HEADS",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
]
