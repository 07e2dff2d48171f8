"""Voice-activity detection before Whisper: Silero VAD, whose ONNX model ships inside faster-whisper.

:func:`speech_spans` finds the speech (faster-whisper's ``get_speech_timestamps``, onnxruntime);
:func:`keep_speech` joins those spans into one shorter signal, and :class:`TimeMap` maps times in
it back to the original audio. Whisper then decodes only speech: silence and music-only stretches
cost nothing, and audio with no speech at all is not decoded.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError
from ..media import SAMPLE_RATE


@dataclass
class VadSettings:
    threshold: float = 0.5  # speech probability above which a 32-ms frame is speech
    min_speech_ms: int = 250  # shorter speech is dropped
    min_silence_ms: int = 2000  # silences shorter than this stay inside a span
    pad_ms: int = 400  # kept on each side of a span


def speech_spans(audio: np.ndarray, settings: VadSettings | None = None) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech in 16-kHz mono ``audio``."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError as exc:
        raise OptionError(
            "voice-activity detection (vad=True) needs faster-whisper, whose package ships the "
            "Silero VAD model: pip install faster-whisper, or set vad=False"
        ) from exc
    settings = settings or VadSettings()
    options = VadOptions(
        threshold=settings.threshold,
        min_speech_duration_ms=settings.min_speech_ms,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=settings.pad_ms,
    )
    found = get_speech_timestamps(np.ascontiguousarray(audio, dtype=np.float32), options, sampling_rate=SAMPLE_RATE)
    return [(int(s["start"]), int(s["end"])) for s in found]


@dataclass
class TimeMap:
    """Maps seconds in the joined speech back to seconds in the original audio."""

    spans: list[tuple[int, int]]
    _ends: list[int] = field(default_factory=list)  # cumulative joined length after each span

    def __post_init__(self) -> None:
        total = 0
        for start, end in self.spans:
            total += end - start
            self._ends.append(total)

    def original(self, seconds: float) -> float:
        if not self.spans:
            return seconds
        sample = int(round(seconds * SAMPLE_RATE))
        index = min(bisect.bisect_right(self._ends, sample), len(self.spans) - 1)
        before = self._ends[index - 1] if index else 0
        start, end = self.spans[index]
        return min(start + max(sample - before, 0), end) / SAMPLE_RATE  # past the end: the end


def keep_speech(audio: np.ndarray, spans: list[tuple[int, int]]) -> tuple[np.ndarray, TimeMap]:
    """The speech spans of ``audio`` joined end to end, and the map back to the original times."""
    if not spans:
        return np.zeros(0, dtype=np.float32), TimeMap([])
    joined = np.concatenate([audio[start:end] for start, end in spans]).astype(np.float32, copy=False)
    return joined, TimeMap(list(spans))
