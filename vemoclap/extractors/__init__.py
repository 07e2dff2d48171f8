"""The frozen feature extractors, one module each, behind one protocol (see ``base``).

Modules are imported only when an extractor is built, so ``import vemoclap`` stays light.
"""

from __future__ import annotations

from ..errors import OptionError
from ..registry import EXTRACTORS, default_extractors  # name, class, models, fusion feature of each
from .base import Clip, Extractor, ExtractorOutput, Missing, bind, check_options, option_names, resolve_device


def available() -> list[str]:
    """Names of every extractor that can be built with :func:`get`."""
    return list(EXTRACTORS)


def registration(name: str):
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise OptionError(f"unknown extractor '{name}'; choose from {', '.join(EXTRACTORS)}") from None


def extractor_class(name: str) -> type[Extractor]:
    registered = registration(name)
    cls = registered.load()
    bind(cls, registered)  # a row registered after its class was defined
    return cls


def options_type(name: str) -> type:
    """The extractor's ``Options`` dataclass (the fields are the options it takes)."""
    return registration(name).options_type()


def check(name: str, options) -> None:
    """An OptionError when ``options`` names an option the extractor ``name`` does not take."""
    check_options(name, options_type(name), options)


def output_type(name: str) -> type[ExtractorOutput]:
    """The output class of the extractor called ``name`` (the base class for unknown names)."""
    return extractor_class(name).output_type if name in EXTRACTORS else ExtractorOutput


def get(name: str, **options) -> Extractor:
    """Build the extractor called ``name`` (models load on first use or ``.load()``)."""
    return extractor_class(name)(**options)


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
    "check",
    "option_names",
    "options_type",
    "registration",
    "default_extractors",
]
