"""What a run needs before it starts: the models the chosen recipe's extractors (and the classifier)
load on this device, and what they cost — download size and disk use, computed from the model table
(:func:`vemoclap.models.size_mib`). ``vemoclap models``, ``vemoclap download-models`` and the app's
step 2 say it; ``download-models`` fetches exactly this by default."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cost:
    """The models a configuration needs and what they cost (MiB, from the model table)."""

    needs: tuple[models.Need, ...]
    missing: tuple[tuple[str, str | None], ...]  # (key, Whisper size) not in the models dir yet
    disk_mib: int  # all of them, once they are there
    download_mib: int  # the missing ones
    device: str  # the device the recipe was resolved for ("cpu", "cuda")
    recipe: str  # the recipe's label

    @property
    def wanted(self) -> tuple[tuple[str, str | None], ...]:
        """Each model once, as (key, Whisper size or None)."""
        return tuple(dict.fromkeys((need.key, need.name) for need in self.needs))

    def names(self) -> str:
        return ", ".join(key + (f" {name}" if name else "") for key, name in self.wanted)

    def line(self) -> str:
        """One line: what the recipe needs on this device, its disk use and what is left to download."""
        head = (
            f"recipe {self.recipe} on {self.device} needs {len(self.wanted)} models "
            f"({self.names()}): {self.disk_mib:,} MiB on disk"
        )
        if not self.missing:
            return head + "; all are in the models dir"
        return head + f"; {self.download_mib:,} MiB to download ({len(self.missing)} missing)"


def recipe_needs(
    extractors=None,
    *,
    device: str = "auto",
    models_dir=None,
    classifier="reference",
    recipe=None,
    **options,
) -> tuple[list[models.Need], str, str]:
    """(the models a run with these settings needs, the device it resolves to, the recipe's label):
    what :class:`vemoclap.pipeline.Analyzer` would fetch, worked out without fetching anything."""
    from .extractors import resolve_device
    from .pipeline import REFERENCE_CLASSIFIER, Analyzer

    reference = isinstance(classifier, str) and classifier == REFERENCE_CLASSIFIER
    if not reference and classifier is not None:  # a checkpoint of one's own: its recipe, no download
        analyzer = Analyzer(extractors, device=device, models_dir=models_dir, classifier=classifier, **options)
    else:
        chosen = recipe if recipe is not None else ("reference" if reference else None)
        analyzer = Analyzer(extractors, device=device, models_dir=models_dir, classifier=None, recipe=chosen, **options)
    needs = ([models.Need("classifier")] if reference else []) + analyzer.needed_models()
    return needs, str(resolve_device(device)), analyzer.recipe.label


def cost(needs, models_dir=None, *, device: str = "", recipe: str = "") -> Cost:
    """What ``needs`` cost: every model's size from the table, and the sum of those not there yet."""
    wanted = list(dict.fromkeys((need.key, need.name) for need in needs))
    missing = [(key, name) for key, name in wanted if models.fetch.missing([key], models_dir, (name,))]
    return Cost(
        tuple(needs),
        tuple(missing),
        sum(models.size_mib(key, name) for key, name in wanted),
        sum(models.size_mib(key, name) for key, name in missing),
        device,
        recipe,
    )


def default_cost(models_dir=None, device: str = "auto", **settings) -> Cost:
    """The cost of ``vemoclap analyze``'s default run on this device (or with ``settings``)."""
    needs, resolved, label = recipe_needs(device=device, models_dir=models_dir, **settings)
    return cost(needs, models_dir, device=resolved, recipe=label)


__all__ = ["Cost", "cost", "default_cost", "recipe_needs"]
