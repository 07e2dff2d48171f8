"""The fusion classifier: feature specs, preparation (normalize, fix length), the cross-attention
network, and its checkpoints (ours and the reference's).

Everything the classifier needs to know about a feature lives in its extractor's registration
(:data:`FEATURES`, read from ``vemoclap.registry``). Preparation is
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

Why a video got its emotion — each input's leave-one-out contribution and the attention each row
of a sequence received — is :func:`explain` (``explain.py``).

Checkpoints: ours is a folder with ``classifier.safetensors`` (state dict) and
``classifier.json`` (:class:`ClassifierConfig`). The reference ships ``model_config.pt`` (a pickled
dict holding paths and a ``torch.device``) and ``model.pt`` (a state dict); both are read with
``torch.load(weights_only=True)`` and an allow-list of path classes and ``torch.device`` only.
"""

from __future__ import annotations

from ..registry import FEATURES, FeatureSpec, reference_features
from .checkpoints import (
    CONFIG_FILE,
    DEFAULT_HEADS,
    HEADS_UNVERIFIED,
    REFERENCE_CONFIG_FILE,
    REFERENCE_WEIGHTS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    ClassifierConfig,
    config_from_reference,
    config_heads,
    default_config,
    load_checkpoint,
    load_reference_checkpoint,
    reference_heads,
    save_checkpoint,
)
from .classifier import EmotionClassifier, load_classifier, with_heads
from .explain import Explanation, explain
from .network import AttentionClassifier
from .prepare import REFERENCE_STATS, NormStats, collate, compute_stats, is_sequence, prepare, row_indices

__all__ = [
    "FeatureSpec",
    "FEATURES",
    "reference_features",
    "REFERENCE_CONFIG_FILE",
    "REFERENCE_WEIGHTS_FILE",
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
    "Explanation",
    "explain",
    "load_classifier",
    "with_heads",
    "reference_heads",
    "config_heads",
    "HEADS_UNVERIFIED",
    "DEFAULT_HEADS",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
]
