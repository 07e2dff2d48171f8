"""Video and audio ingest on PyAV: probe a file, sample frames, load the audio track.

Knows nothing about models. Every failure is a :class:`MediaError` whose message is one line
naming the file, what is wrong and what to do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000  # Hz; every audio model here takes 16 kHz mono
CHUNK_SECONDS = 3.0  # BEATs / AST chunk length (reference-facts)
CHUNK_HOP_SECONDS = 1.5  # 50 % overlap


class MediaError(ValueError):
    """A file that cannot be used, with a one-line reason naming the file."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float  # seconds
    fps: float  # average frame rate
    width: int
    height: int
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    frame_count: int | None = None  # from the container, when it says


@dataclass
class Frames:
    images: np.ndarray  # n×H×W×3 uint8 RGB
    timestamps: np.ndarray  # n float64 seconds: the times actually decoded
    warnings: list[str] = field(default_factory=list)  # e.g. undecodable frames replaced

    def __len__(self) -> int:
        return len(self.images)


def probe(path) -> MediaInfo:
    raise NotImplementedError


def sample_frames(path, n: int = 16, *, random: bool = False, short_side: int | None = 360,
                  seed: int | None = None) -> Frames:
    raise NotImplementedError


def load_audio(path, sr: int = SAMPLE_RATE) -> np.ndarray:
    raise NotImplementedError


def chunk_starts(n_samples: int, n: int = 16, *, sr: int = SAMPLE_RATE, chunk_s: float = CHUNK_SECONDS,
                 hop_s: float = CHUNK_HOP_SECONDS, random: bool = False, seed: int | None = None) -> np.ndarray:
    """Start samples of the audio chunks the reference uses: 3-s chunks with 50 % overlap; when there
    are more than ``n``, ``n`` equidistant ones (``random=True``: ``n`` random ones, in order).
    A track shorter than one chunk has no chunks."""
    chunk, hop = int(round(chunk_s * sr)), int(round(hop_s * sr))
    if n_samples < chunk:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_samples - chunk + 1, hop, dtype=np.int64)
    if len(starts) > n:
        if random:
            rng = np.random.default_rng(seed)
            starts = np.sort(rng.choice(starts, size=n, replace=False))
        else:
            starts = starts[np.round(np.linspace(0, len(starts) - 1, n)).astype(int)]
    return starts


def audio_chunks(audio: np.ndarray, n: int = 16, *, sr: int = SAMPLE_RATE, chunk_s: float = CHUNK_SECONDS,
                 hop_s: float = CHUNK_HOP_SECONDS, random: bool = False, seed: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(chunks k×samples float32, start times k seconds) per :func:`chunk_starts`; k ≤ n, 0 when too short."""
    chunk = int(round(chunk_s * sr))
    starts = chunk_starts(len(audio), n, sr=sr, chunk_s=chunk_s, hop_s=hop_s, random=random, seed=seed)
    chunks = np.stack([audio[s:s + chunk] for s in starts]) if len(starts) else np.zeros((0, chunk), np.float32)
    return chunks.astype(np.float32, copy=False), starts / sr
