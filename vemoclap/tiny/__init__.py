"""Tiny randomly initialized models of the real classes, for the offline demo and the tests.

Everything here is random: whatever it predicts means nothing, and outputs made with it say so.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from pathlib import Path

from ..models import mark_random, target_path
from ..registry import load_builder, tiny_builders
from .marks import marked

log = logging.getLogger(__name__)

FORMAT = 2  # the layout of a tiny models dir (2: the manifest below replaced a bare marker)
MANIFEST = ".complete"  # written last: a dir without it was never finished

__all__ = [
    "make_tiny_models",
    "make_tiny_classifier",
    "make_tiny_reference_classifier",
    "tiny_models_dir",
    "manifest",
]


def make_tiny_classifier(directory: str | Path, *, seed: int = 0) -> Path:
    """A randomly initialized emotion classifier with the reference's feature dims, in our format."""
    import torch

    from ..fusion import AttentionClassifier, default_config, save_checkpoint

    torch.manual_seed(seed)
    config = default_config()
    model = AttentionClassifier(
        config.feature_dims,
        d_model=config.d_model,
        n_labels=config.n_labels,
        dropout=config.dropout,
        num_heads=config.num_heads,
    )
    path = save_checkpoint(directory, model, config)
    mark_random(path)
    return path


def make_tiny_reference_classifier(directory: str | Path, *, seed: int = 0, d_model: int = 32) -> Path:
    """A randomly initialized classifier in the reference's own layout (``model_config.pt`` with the
    reference's keys + ``model.pt`` state dict), where ``classifier="reference"`` looks for it."""
    import torch

    from ..fusion import (
        FEATURES,
        REFERENCE_CONFIG_FILE,
        REFERENCE_WEIGHTS_FILE,
        AttentionClassifier,
        config_from_reference,
        reference_features,
    )
    from ..labels import EMOTIONS

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inputs = sorted(reference_features())
    raw = {
        "features": inputs,
        "feature_dims": {f: FEATURES[f].dim for f in inputs},
        "feature_lengths": {f: FEATURES[f].length for f in inputs},
        "d_model": d_model,
        "n_labels": len(EMOTIONS),
        "dropout": 0.5,
        "n_frames": 16,
        "labels": list(EMOTIONS),
        "normalize_data": True,
        "device": torch.device("cpu"),
        "vemoclap_random_weights": True,
    }  # travels with the file (a mirror of it stays labelled)
    torch.manual_seed(seed)
    model = AttentionClassifier.from_config(config_from_reference(raw))
    config_file, weights_file = REFERENCE_CONFIG_FILE, REFERENCE_WEIGHTS_FILE
    torch.save(raw, directory / config_file)
    torch.save(model.state_dict(), directory / weights_file)
    mark_random(directory)
    return directory


def make_tiny_models(directory: str | Path, *, classifier: bool = True) -> dict[str, Path]:
    """Write a tiny randomly initialized model of every kind vemoclap loads, laid out as a models dir.

    Same classes and file formats as the real models (transformers ``save_pretrained`` folders, a
    Whisper checkpoint, a BEATs checkpoint dict, an ultralytics YOLO file), so
    ``vemoclap analyze VIDEO --models-dir DIRECTORY`` runs offline through the real loaders. Outputs
    are random; shapes are the reference's. The builders are those of the registered extractors
    (``vemoclap.registry``). Returns model key → path written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for target in tiny_builders():
        written.update(marked(load_builder(target)(directory)))
    if classifier:
        written["classifier"] = make_tiny_classifier(directory / "classifier")
        # where the default classifier ("reference") is looked for in a models dir
        written["reference_classifier"] = make_tiny_reference_classifier(target_path("classifier", directory))
    log.info("wrote %d tiny models to %s", len(written), directory)
    return written


def manifest() -> dict:
    """What a tiny models dir is built from: the layout version and a fingerprint of each builder's
    module (and of this one, which writes the classifiers). A dir whose manifest differs is rebuilt,
    so a new or changed builder is picked up."""
    builders = {target: _fingerprint(load_builder(target)) for target in tiny_builders()}
    return {"format": FORMAT, "classifiers": _fingerprint(make_tiny_classifier), "builders": builders}


def _fingerprint(function) -> str:
    source = Path(inspect.getfile(function)).read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def tiny_models_dir(directory: str | Path | None = None) -> Path:
    """A models dir of tiny random models (built once, then reused while its builders stay the same):
    what ``vemoclap demo`` runs on.

    Default: ``$VEMOCLAP_CACHE/tiny-models``. Everything in it is marked as random weights.
    """
    from .._util import cache_root

    directory = Path(directory) if directory else cache_root() / "tiny-models"
    done = directory / MANIFEST
    wanted = manifest()
    try:
        current = json.loads(done.read_text())
    except (OSError, ValueError):
        current = None
    if current != wanted:
        from ..quiet import quiet_transformers as _quiet_transformers

        if current is not None:
            log.info("tiny models in %s were built by other builders; rebuilding them", directory)
        part = directory.with_name(directory.name + f".part-{os.getpid()}")
        with _quiet_transformers():
            make_tiny_models(part)
        (part / MANIFEST).write_text(json.dumps(wanted, indent=1))
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        os.replace(part, directory)
    return directory
