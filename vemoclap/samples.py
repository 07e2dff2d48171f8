"""Sample videos by name, and the one place a source is recognised as one (:func:`local_copy`).

``sample`` is the project's own generated video (:mod:`vemoclap.generated_video`: offline, no real
emotion); ``sample:joy`` … are the reference's seven Ekman-6 samples, fetched on first use and
verified against their pinned git blob ids.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SourceError
from .generated_video import sample_video
from .models import SAMPLE_NAMES, fetch_reference_file

PREFIX = "sample:"
GENERATED = "sample"  # "sample:sample" is the reference's own sample.mp4


def names() -> list[str]:
    """Every sample on offer: the generated one first, then the reference's."""
    return [GENERATED, *SAMPLE_NAMES]


def reference(name: str, models_dir=None, progress=None) -> Path:
    """The local copy of one of the reference's samples (``"joy"`` or ``"sample:joy"``)."""
    name = name.removeprefix(PREFIX)
    if name not in SAMPLE_NAMES:
        raise SourceError(
            f"{PREFIX}{name}: no such sample; choose one of "
            f"{', '.join(PREFIX + n for n in SAMPLE_NAMES)} (or '{GENERATED}', the offline one)"
        )
    return fetch_reference_file(f"sample_data/{name}.mp4", models_dir, progress)


def fetch(name: str, models_dir=None, progress=None) -> Path:
    """The local copy of a sample (``"joy"``, ``"sample:joy"``, or ``"sample"`` for the generated one)."""
    if name == GENERATED:
        return sample_video()
    return reference(name, models_dir, progress)


def local_copy(source, models_dir=None, progress=None) -> Path | None:
    """The sample's local copy when ``source`` names one (``"sample"``, ``"sample:joy"``), else None.

    A file of that name in the working folder is not a sample: the file wins."""
    if not isinstance(source, str) or not (source == GENERATED or source.startswith(PREFIX)):
        return None
    if Path(source).exists():
        return None
    return fetch(source, models_dir, progress)
