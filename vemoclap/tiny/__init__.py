"""Tiny randomly initialized models of the real classes, for the offline demo and the tests.

Everything here is random: whatever it predicts means nothing, and outputs made with it say so.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["make_tiny_models", "make_tiny_classifier"]


def make_tiny_classifier(directory: str | Path, *, seed: int = 0) -> Path:
    """A randomly initialized emotion classifier with the reference's feature dims, in our format."""
    import torch

    from ..fusion import REFERENCE_FEATURES, AttentionClassifier, default_config, save_checkpoint

    torch.manual_seed(seed)
    config = default_config(REFERENCE_FEATURES)
    model = AttentionClassifier(config.feature_dims, d_model=config.d_model, n_labels=config.n_labels,
                                dropout=config.dropout, num_heads=config.num_heads)
    return save_checkpoint(directory, model, config)


def make_tiny_models(directory: str | Path, *, classifier: bool = True) -> dict[str, Path]:
    """Write a tiny randomly initialized model of every kind vemoclap loads, laid out as a models dir.

    Same classes and file formats as the real models (transformers ``save_pretrained`` folders, a
    Whisper checkpoint, a BEATs checkpoint dict, an ultralytics YOLO file), so
    ``vemoclap analyze VIDEO --models-dir DIRECTORY`` runs offline through the real loaders. Outputs
    are random; shapes are the reference's. Returns model key → path written.
    """
    from . import audio, text, vision

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for builder in (vision.build, audio.build, text.build):
        written.update(builder(directory))
    if classifier:
        written["classifier"] = make_tiny_classifier(directory / "classifier")
    log.info("wrote %d tiny models to %s", len(written), directory)
    return written
