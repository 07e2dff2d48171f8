"""The frozen feature extractors, one module each, behind one protocol (see ``base``).

Modules are imported only when an extractor is built, so ``import vemoclap`` stays light.
"""

from __future__ import annotations

import importlib

from ..errors import OptionError
from ..registry import DEFAULT_EXTRACTORS, EXTRACTORS  # name, class, models, fusion feature of each
from .base import Clip, Extractor, ExtractorOutput, Missing, resolve_device


def available() -> list[str]:
    """Names of every extractor that can be built with :func:`get`."""
    return list(EXTRACTORS)


def extractor_class(name: str) -> type[Extractor]:
    try:
        registration = EXTRACTORS[name]
    except KeyError:
        raise OptionError(f"unknown extractor '{name}'; choose from {', '.join(EXTRACTORS)}") from None
    module_name, class_name = registration.target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def output_type(name: str) -> type[ExtractorOutput]:
    """The output class of the extractor called ``name`` (the base class for unknown names)."""
    return extractor_class(name).output_type if name in EXTRACTORS else ExtractorOutput


def get(name: str, **options) -> Extractor:
    """Build the extractor called ``name`` (models load on first use or ``.load()``)."""
    import inspect

    cls = extractor_class(name)
    parameters = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            known = ", ".join(k for k, p in parameters.items() if p.kind is not p.VAR_POSITIONAL)
            raise OptionError(f"{name}: unknown option(s) {', '.join(unknown)}; it takes {known}")
    return cls(**options)


__all__ = [
    "Clip",
    "Extractor",
    "ExtractorOutput",
    "Missing",
    "resolve_device",
    "available",
    "get",
    "extractor_class",
    "output_type",
    "DEFAULT_EXTRACTORS",
]
