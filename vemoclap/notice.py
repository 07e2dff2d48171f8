"""The one wording of the notice that a result came from randomly initialised weights.

The tiny models (:mod:`vemoclap.tiny`, behind the tests and the offline demo) have random weights;
their provenance record says so, and every place a result is shown (text, HTML, warnings) says it
in these words so that nobody reads a meaningless emotion as a finding.
"""

from __future__ import annotations

from typing import Iterable


def random_weights_notice(names: Iterable[str]) -> str:
    """One line naming what ran on random weights ("clip", "classifier" …)."""
    return (
        f"RANDOM WEIGHTS: {', '.join(names)} ran on tiny randomly initialised models (vemoclap.tiny), "
        "a demo of the code path: the emotion and every number here mean nothing"
    )
