"""The process-wide cache of loaded models: rerunning a cell or building a new app reuses them."""

from __future__ import annotations

import contextlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import Analyzer

# One set of models fills a Colab T4, so a different configuration replaces the cached one.
MAX_CACHED_ANALYZERS = 1


@dataclass
class ModelState:
    """How loading one model went (kept with the cached Analyzer so reruns can show it)."""

    status: str  # "waiting", "loading", "loaded", "unavailable", "failed"
    seconds: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "loaded"


@dataclass
class LoadedModels:
    analyzer: "Analyzer"
    states: dict[str, ModelState] = field(default_factory=dict)
    not_importable: dict[str, str] = field(default_factory=dict)  # extractor → why its module fails
    loads: int = 1  # how many times this configuration was built in this process (hits do not count)


_ANALYZERS: "OrderedDict[str, LoadedModels]" = OrderedDict()
_BUILDS: Counter[str] = Counter()


def get(key: str) -> LoadedModels | None:
    loaded = _ANALYZERS.get(key)
    if loaded is not None:
        _ANALYZERS.move_to_end(key)
    return loaded


def make_room() -> None:
    """Drop the oldest configurations so that a new one fits."""
    while len(_ANALYZERS) >= MAX_CACHED_ANALYZERS:
        _ANALYZERS.popitem(last=False)
        free_memory()


def put(key: str, loaded: LoadedModels) -> LoadedModels:
    _BUILDS[key] += 1
    loaded.loads = _BUILDS[key]
    _ANALYZERS[key] = loaded
    return loaded


def cached_models() -> dict[str, LoadedModels]:
    """A copy of the module-wide cache of loaded models, by configuration key."""
    return dict(_ANALYZERS)


def clear_cache() -> None:
    """Forget every cached Analyzer (their memory is freed when nothing else holds them)."""
    _ANALYZERS.clear()
    free_memory()


def free_memory() -> None:
    import gc

    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
