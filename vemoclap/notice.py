"""The one wording of the notice that a result came from randomly initialised weights.

The tiny models (:mod:`vemoclap.tiny`, behind the tests and the offline demo) have random weights;
their provenance record says so, and every place a result is shown (text, HTML, warnings, the
banner on pictures and videos, the CSV column) says it in these words so that nobody reads a
meaningless emotion as a finding.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .models.provenance import RANDOM


def random_names(weights: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """Of ``weights`` (name → the models it ran on, each with an "origin"), the names that ran on
    random weights."""
    return [name for name, uses in weights.items() if any(use.get("origin") == RANDOM for use in uses)]


def _partly(names: list[str], used: Iterable[str] | None) -> bool:
    """Whether only some of the models ``used`` are random (``used`` unknown: not said)."""
    return used is not None and bool(set(used) - set(names))


def random_weights_notice(names: Iterable[str], used: Iterable[str] | None = None, *, loaded: bool = False) -> str:
    """One line naming what ran on random weights ("clip", "classifier" …); with ``used`` (everything
    that ran), it says "partly random" when the others had trained weights; ``loaded``: said of
    models loaded but not run yet."""
    names = list(names)
    partly = "partly random: " if _partly(names, used) else ""
    return (
        f"RANDOM WEIGHTS: {partly}{', '.join(names)} {'run' if loaded else 'ran'} on tiny randomly initialised models (vemoclap.tiny), "
        "a demo of the code path: the emotion and every number here mean nothing"
    )


def random_models_notice(keys: Iterable[str], present: Iterable[str] | None = None) -> str:
    """One line saying that a models folder holds tiny random models (before anything ran)."""
    keys = list(keys)
    partly = "partly random: " if _partly(keys, present) else ""
    return (
        f"RANDOM WEIGHTS: {partly}the models folder holds tiny randomly initialised models (vemoclap.tiny) "
        f"for {', '.join(keys)}: whatever they make means nothing"
    )


def random_weights_mark(names: Iterable[str], used: Iterable[str] | None = None) -> str | None:
    """The short mark drawn on pictures and burned into videos (None when nothing is random):
    "RANDOM WEIGHTS: this means nothing", or "RANDOM WEIGHTS (partly random: clip, classifier)"."""
    names = list(names)
    if not names:
        return None
    if _partly(names, used):
        return f"RANDOM WEIGHTS (partly random: {', '.join(names)})"
    return "RANDOM WEIGHTS: this means nothing"


def random_weights_cell(names: Iterable[str] | None) -> str:
    """The ``random_weights`` column of a CSV: "yes (clip, classifier)", "no", or empty when unknown."""
    if names is None:
        return ""
    names = list(names)
    return f"yes ({', '.join(names)})" if names else "no"


def result_mark(result) -> str | None:
    """:func:`random_weights_mark` of a :class:`~vemoclap.results.Result` (or anything with
    ``random_weights`` and ``weights``)."""
    return random_weights_mark(getattr(result, "random_weights", None) or [], getattr(result, "weights", None))
