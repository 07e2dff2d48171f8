"""Audio rules shared by the audio extractors (BEATs, AST): which 3-s chunks of a track are read,
when a track counts as silent, and the readable output (AudioSet tags per track and per chunk)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import media
from ..errors import OptionError
from .base import Clip, ExtractorOutput, Missing

SILENCE_PEAK = 1e-4  # a track whose peak stays below this is treated as silent
# index, mid, display_name of the 527 AudioSet classes (AudioSet's class_labels_indices.csv)
AUDIOSET_LABELS_CSV = Path(__file__).resolve().parent.parent / "data" / "audioset_labels.csv"


# --------------------------------------------------------------------------- readable output


@dataclass
class AudioTag:
    label: str
    score: float  # probability in [0, 1], averaged over the chunks


@dataclass
class AudioOutput(ExtractorOutput):
    """Audio features per 3-s chunk plus AudioSet tags. ``times`` holds chunk centres (s)."""

    tags: list[AudioTag] = field(default_factory=list)  # top-k over the whole track
    chunk_times: list[float] = field(default_factory=list)  # start of each chunk (s)
    chunk_top: list[str] = field(default_factory=list)  # most likely label of each chunk

    def describe(self) -> list[str]:
        tags = ", ".join(f"{tag.label} {tag.score:.0%}" for tag in self.tags) or "none"
        return [f"{self.name} audio events: {tags}"]


@lru_cache(maxsize=1)
def audioset_labels() -> tuple[tuple[str, str], ...]:
    """The 527 AudioSet classes as (mid, display name), in AudioSet's class-index order."""
    with open(AUDIOSET_LABELS_CSV, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return tuple((row["mid"], row["display_name"]) for row in sorted(rows, key=lambda r: int(r["index"])))


def audioset_names_by_mid() -> dict[str, str]:
    return dict(audioset_labels())


# --------------------------------------------------------------------------- shared audio rules

CHUNK_SELECTIONS = ("equidistant", "reference-indices")
CHUNK_ENDS = ("inclusive", "exclusive")
SILENCE = ("missing", "embed")


def select_chunk_starts(
    n_samples: int,
    n_chunks: int,
    *,
    selection: str = "equidistant",
    end: str = "inclusive",
    sr: int = media.SAMPLE_RATE,
) -> np.ndarray:
    """Start samples of the 3-s chunks (hop 1.5 s) kept for a track of ``n_samples``.

    ``end``: "inclusive" takes every whole chunk, starts ``0, hop, …`` up to ``n − L``;
    "exclusive" stops before ``n − L`` (the reference's rule: a track of exactly one chunk has no
    start). ``selection`` when there are more than ``n_chunks`` starts: "equidistant" keeps
    ``n_chunks`` equidistant starts; "reference-indices" keeps the reference app's values, the
    equidistant *indices* ``round(linspace(0, k − 1, n))`` used as sample offsets, so every chunk
    starts within the first few milliseconds (tracks over ~27 s).
    """
    if selection not in CHUNK_SELECTIONS:
        raise OptionError(f"beats chunk_selection '{selection}' is unknown; choose from {', '.join(CHUNK_SELECTIONS)}")
    if end not in CHUNK_ENDS:
        raise OptionError(f"beats chunk_end '{end}' is unknown; choose from {', '.join(CHUNK_ENDS)}")
    chunk, hop = int(round(media.CHUNK_SECONDS * sr)), int(round(media.CHUNK_HOP_SECONDS * sr))
    if n_samples < chunk:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_samples - chunk + (1 if end == "inclusive" else 0), hop, dtype=np.int64)
    if len(starts) > n_chunks:
        indices = np.round(np.linspace(0, len(starts) - 1, n_chunks)).astype(np.int64)
        starts = indices if selection == "reference-indices" else starts[indices]
    return starts


def clip_chunks(
    clip: Clip, n_chunks: int, *, selection: str = "equidistant", end: str = "inclusive", silence: str = "missing"
) -> tuple[np.ndarray, np.ndarray]:
    """The clip's 3-s chunks (k × 48000 float32 at 16 kHz) and their start times, or Missing.

    ``silence``: "missing" (a track whose peak stays below ``SILENCE_PEAK`` gives no feature) or
    "embed" (the model runs on it, as the reference did)."""
    if silence not in SILENCE:
        raise OptionError(f"beats silence '{silence}' is unknown; choose from {', '.join(SILENCE)}")
    audio = clip.audio_16k()
    if audio.size == 0:
        raise Missing("no audio track")
    seconds = len(audio) / media.SAMPLE_RATE
    if seconds < media.CHUNK_SECONDS:
        raise Missing(f"audio is {seconds:.1f} s long, shorter than one {media.CHUNK_SECONDS:g}-s chunk")
    if silence == "missing" and float(np.abs(audio).max()) < SILENCE_PEAK:
        raise Missing("audio is silent")
    starts = select_chunk_starts(len(audio), n_chunks, selection=selection, end=end)
    if len(starts) == 0:
        raise Missing(
            f"audio is exactly {media.CHUNK_SECONDS:g} s: no chunk start under chunk_end='exclusive' "
            f"(the reference app fails on such a track)"
        )
    chunk = int(round(media.CHUNK_SECONDS * media.SAMPLE_RATE))
    chunks = np.stack([audio[s : s + chunk] for s in starts]).astype(np.float32, copy=False)
    return chunks, starts / media.SAMPLE_RATE


def audio_output(
    features: np.ndarray, probs: np.ndarray, starts: np.ndarray, labels: Sequence[str], top_k: int
) -> AudioOutput:
    """Assemble the output from per-chunk features (k×D) and AudioSet probabilities (k×C)."""
    mean = probs.mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:top_k]
    return AudioOutput(
        feature=features.astype(np.float32),
        times=starts + media.CHUNK_SECONDS / 2,
        tags=[AudioTag(labels[i], float(mean[i])) for i in order],
        chunk_times=[float(s) for s in starts],
        chunk_top=[labels[i] for i in probs.argmax(axis=1)],
    )
