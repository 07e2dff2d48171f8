"""The frozen feature extractors, one module each, behind one protocol (see ``base``).

Modules are imported only when an extractor is built, so ``import vemoclap`` stays light.
"""
from __future__ import annotations

from ..errors import OptionError

import importlib

from .base import Clip, Extractor, ExtractorOutput, Missing, resolve_device

# name → "module:Class". The name is also the output's name; feature_name says which fusion
# feature it fills.
_REGISTRY: dict[str, str] = {
    "clip": "vemoclap.extractors.clip:ClipExtractor",
    "beats": "vemoclap.extractors.beats:BeatsExtractor",
    "ast": "vemoclap.extractors.ast:AstExtractor",
    "face_emotion": "vemoclap.extractors.faces:FaceEmotionExtractor",
    "asr_sentiment": "vemoclap.extractors.asr:AsrSentimentExtractor",
    "ocr_sentiment": "vemoclap.extractors.ocr:OcrSentimentExtractor",
    "caption": "vemoclap.extractors.caption:CaptionExtractor",
}

# What the reference system runs, in order.
DEFAULT_EXTRACTORS: tuple[str, ...] = ("clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment", "caption")


def available() -> list[str]:
    """Names of every extractor that can be built with :func:`get`."""
    return list(_REGISTRY)


def extractor_class(name: str) -> type[Extractor]:
    try:
        module_name, class_name = _REGISTRY[name].split(":")
    except KeyError:
        raise OptionError(f"unknown extractor '{name}'; choose from {', '.join(_REGISTRY)}") from None
    return getattr(importlib.import_module(module_name), class_name)


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


__all__ = ["Clip", "Extractor", "ExtractorOutput", "Missing", "resolve_device", "available", "get",
           "extractor_class", "DEFAULT_EXTRACTORS"]
