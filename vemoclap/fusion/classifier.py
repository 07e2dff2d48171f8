"""A loaded classifier ready to predict, and the one way to load either checkpoint format."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError, one_line
from .checkpoints import (
    CONFIG_FILE,
    HEADS_UNVERIFIED,
    REFERENCE_CONFIG_FILE,
    REFERENCE_WEIGHTS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    ClassifierConfig,
    _our_files,
    _reference_files,
    load_checkpoint,
    load_reference_checkpoint,
)
from .network import AttentionClassifier
from .prepare import collate


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
        from ..extractors.base import resolve_device

        self.autocast = bool(autocast)  # fp16 autocast on CUDA; fp32 otherwise
        self.origin = "local"  # "random" for the tiny builders' weights (vemoclap.models.origin)
        self.heads_chosen = False  # True once the user named the head count (load_classifier(heads=N))
        config.norm_stats()  # fail now, not on the first video, when stats are missing
        self.config = config
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()

    def __repr__(self) -> str:
        return f"EmotionClassifier(features={self.config.features}, labels={self.config.labels}, device={self.device})"

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    def heads_note(self) -> str | None:
        """One line when the head count of a reference-layout checkpoint is the unverified default."""
        if self.heads_chosen or self.config.training.get("source") != "reference":
            return None
        stated = self.config.training.get("config_heads")
        return HEADS_UNVERIFIED.format(heads=self.config.num_heads, stated=stated if stated is not None else "none")

    def predict(self, features: Mapping[str, Any]) -> np.ndarray:
        """Probabilities (softmax) for one video's features; missing ones count as zeros."""
        return self.predict_batch([features])[0]

    def predict_batch(self, videos: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``N × n_labels`` probabilities for N videos."""
        if len(videos) == 0:
            return np.zeros((0, self.config.n_labels), np.float32)
        return self.predict_prepared([self.config.prepare(video) for video in videos])

    def predict_prepared(
        self, prepared: Sequence[Mapping[str, np.ndarray]], attention: dict[str, torch.Tensor] | None = None
    ) -> np.ndarray:
        """``N × n_labels`` probabilities for videos already prepared (``config.prepare``), in eval
        mode (no dropout) whatever mode the model was left in; ``attention``, a dict, receives each
        pair's head-averaged attention weights (:meth:`AttentionClassifier.forward`)."""
        batch = collate(prepared)
        use_autocast = self.autocast and self.device.type == "cuda"
        training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=use_autocast):
                logits = self.model({name: x.to(self.device) for name, x in batch.items()}, attention=attention)
                return torch.softmax(logits.float(), dim=-1).cpu().numpy()
        finally:
            self.model.train(training)


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


def _chosen(classifier: EmotionClassifier, heads: int | None) -> EmotionClassifier:
    classifier.heads_chosen = heads is not None
    return classifier


def _with_origin(classifier: EmotionClassifier, path: Path) -> EmotionClassifier:
    """Where the weights came from, read from the provenance file the tiny builders and downloads write."""
    from ..models import RANDOM, origin

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
            return _chosen(
                _with_origin(with_heads(EmotionClassifier(model, config, device, autocast=autocast), heads), path),
                heads,
            )
        folder = path if path.is_dir() else path.parent if path.is_file() else None
        reference = _reference_files(folder) if folder is not None else None
        if reference is not None:
            model, config = load_reference_checkpoint(*reference)
            classifier = EmotionClassifier(model, config, device, autocast=autocast)
            return _chosen(_with_origin(with_heads(classifier, heads), folder), heads)
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
