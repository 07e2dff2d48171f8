"""The classifier's config and its two checkpoint formats: ours (``classifier.safetensors`` +
``classifier.json``) and the reference's (``model_config.pt`` + ``model.pt``, read with
``torch.load(weights_only=True)`` and an allow-list of path classes and ``torch.device`` only)."""

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
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from .._util import atomic_write_bytes, atomic_write_json
from ..errors import UserError, one_line
from ..labels import EMOTIONS
from ..registry import FEATURES, reference_features
from .network import AttentionClassifier
from .prepare import REFERENCE_STATS, NormStats, _lookup, is_sequence, prepare

log = logging.getLogger(__name__)

CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "classifier.safetensors"
# File names the reference's app uses inside its classifier folder (weights/classifier/).
REFERENCE_CONFIG_FILE = "model_config.pt"
REFERENCE_WEIGHTS_FILE = "model.pt"
FORMAT_VERSION = 1


# Largest sizes a classifier config may ask for (the reference's: 16 frames, d=512, 4 heads, 6 labels).
MAX_SIZES = {"length": 4096, "dim": 65536, "heads": 64, "labels": 1000}
MAX_CONFIG_BYTES = 16 * 2**20


class CheckpointError(UserError):
    """A classifier checkpoint that cannot be used; the message is one line naming the file."""


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a classifier and feed it: stored beside its weights as JSON."""

    features: list[str] = field(default_factory=lambda: list(reference_features()))
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
        self._check_bounds()
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

    def _check_bounds(self) -> None:
        """Sizes a classifier can have, checked before any tensor is made (n_frames 10**9 would ask
        for terabytes), and labels that print as one plain word each."""
        for what, value, high in (
            ("n_frames", self.n_frames, MAX_SIZES["length"]),
            ("d_model", self.d_model, MAX_SIZES["dim"]),
            ("num_heads", self.num_heads, MAX_SIZES["heads"]),
            ("n_labels", self.n_labels, MAX_SIZES["labels"]),
            *((f"feature_dims[{k}]", v, MAX_SIZES["dim"]) for k, v in self.feature_dims.items()),
            *((f"feature_lengths[{k}]", v, MAX_SIZES["length"]) for k, v in self.feature_lengths.items()),
        ):
            if not 1 <= value <= high:
                raise ValueError(f"{what} is {value}; a classifier's must be between 1 and {high}")
        if not (math.isfinite(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout is {self.dropout}; it must be a number from 0 up to (not including) 1")
        for label in self.labels:
            if not label or len(label) > 64 or not label.isprintable():
                raise ValueError(f"label {label[:64]!r} is not a short printable name")

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
        from .._util import to_jsonable

        return json.dumps(to_jsonable(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ClassifierConfig":
        return cls.from_dict(json.loads(text))


def default_config(features: Iterable[str] | None = None, **options: Any) -> ClassifierConfig:
    """A config for ``features`` (default: the reference classifier's inputs) with the reference's settings (dims, lengths, stats from the tables)."""
    return ClassifierConfig(features=list(reference_features() if features is None else features), **options)


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
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"{config_path}: {config_path.stat().st_size} bytes is far too big for a classifier config"
        )
    try:
        config = ClassifierConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
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
        # torch's text advises loading with weights_only=False; that advice must never reach the user
        detail = re.search(r"WeightsUnpickler error: ([^\n]*(?:\n\s*\n?[^\n]+)?)", str(exc))
        reason = " ".join(detail.group(1).split())[:160] if detail else "a weights-only load refused it"
        raise CheckpointError(
            f"{path}: not a loadable torch file ({reason}); it was not loaded (a safe load runs no code in it)"
        ) from None
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


DEFAULT_HEADS = 4  # the reference app's and the paper's ("Attention modules have 4 heads")


def reference_heads(raw: Mapping[str, Any]) -> int:
    """Attention heads a reference-layout checkpoint runs with: :data:`DEFAULT_HEADS`, whatever its
    config says. The reference app never passes a head count, so its AttentionClassifier builds its
    default of 4, and the paper says 4; the published config's ``n_heads: 8`` is the training
    script's argparse default, which only its transformer models read. The weight shapes are equal
    for any count, so only accuracy on the published features can settle it (``vemoclap evaluate
    --heads both``; docs/parity.md). The config's own value is kept in ``training["config_heads"]``."""
    return DEFAULT_HEADS


def config_heads(raw: Mapping[str, Any]) -> int | None:
    """The head count a reference config states (``num_heads`` or ``n_heads``), recorded, not trusted."""
    for key in ("num_heads", "n_heads"):
        if raw.get(key) is not None:
            return int(raw[key])
    return None


HEADS_UNVERIFIED = (
    "attention heads: {heads} (the reference app's; its checkpoint config says {stated}); unverified — "
    "`vemoclap evaluate --heads both` on the published features settles it, `--heads N` sets it"
)


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
            training={"source": "reference", "reference_config": _plain(raw), "config_heads": config_heads(raw)},
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
