"""Training data: datasets and splits, the blacklist, and feature extraction for whole datasets.

Import from the submodules (``vemoclap.training.dataset``, ``.blacklist``, ``.extraction``,
``.reference_features``); the names below load them lazily so ``import vemoclap.training`` stays light.
"""

from __future__ import annotations

_NAMES = {
    "Video": "dataset",
    "DatasetError": "dataset",
    "load_dataset": "dataset",
    "assign_splits": "dataset",
    "apply_blacklist": "dataset",
    "read_blacklist": "blacklist",
    "parse_blacklist": "blacklist",
    "suggest": "blacklist",
    "ExtractionConfig": "worker",
    "ExtractionError": "worker",
    "ExtractionReport": "extraction",
    "FeatureFileError": "store",
    "PickleRefused": "reference_features",
    "VideoFeatures": "store",
    "extract_dataset": "extraction",
    "import_reference_features": "reference_features",
    "load_features": "store",
    "read_manifest": "extraction",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
