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
