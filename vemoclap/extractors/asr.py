"""Speech → English text (openai-whisper, task "translate") → RoBERTa sentiment: ``asr_sentiment`` (1×768).

The whisper model is found in this order: an explicit checkpoint path; ``<models dir>/whisper/<name>.pt``
(also the file name whisper's own download writes, e.g. ``large-v3.pt`` for "large"); whisper's own
download into ``<models dir>/whisper`` (or its cache), only when downloads are allowed.

Choices (documented so results can be compared):
* ``whisper_model="auto"`` is "medium" on CUDA and "small" on the CPU.
* ``temperature=None`` keeps whisper's fallback schedule (0.0, 0.2, … 1.0) on every device, as whisper's
  own defaults do, so a feature does not depend on the device; pass ``temperature=0.0`` for speed
  (fallback costs up to ~6× when the model keeps failing its checks).
* English-only (".en") and "turbo" models were not trained to translate: task "translate" rejects them.
* The audio array is passed to ``transcribe`` directly (``whisper.load_audio`` needs ffmpeg).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import models
from ..errors import OptionError, one_line
from ..media import SAMPLE_RATE
from . import text
from .base import Clip, Extractor, ExtractorOutput, Missing, shared_model
from .text import Sentiment, SentimentModel

log = logging.getLogger(__name__)

# Whisper models that cannot translate to English (no translation training).
NO_TRANSLATION = ("turbo", "large-v3-turbo")


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str
    no_speech_prob: float = 0.0


@dataclass
class AsrOutput(ExtractorOutput):
    text: str = ""  # the whole transcript (English for task "translate")
    language: str | None = None  # whisper's code of the spoken language, e.g. "de"
    language_name: str | None = None
    segments: list[Segment] = field(default_factory=list)
    sentiment: Sentiment | None = None
    model: str = ""  # whisper model name or checkpoint path
    task: str = "translate"

    def describe(self) -> list[str]:
        spoken = f" (spoken: {self.language_name or self.language})" if self.language else ""
        lines = [f"speech{spoken}: {self.text.strip()!r}"]
        if self.sentiment is not None:
            lines.append(f"  speech sentiment: {self.sentiment.label} ({self.sentiment.score:.0%})")
        return lines


def _cannot_translate(name: str) -> bool:
    return name.endswith(".en") or name in NO_TRANSLATION


class AsrSentimentExtractor(Extractor):
    name = "asr_sentiment"
    inputs = ("audio",)
    output_type = AsrOutput

    def __init__(self, *, whisper_model: str | Path = "auto", task: str = "translate", language: str | None = None,
                 temperature: float | tuple[float, ...] | None = None, condition_on_previous_text: bool = True,
                 no_speech_prob: float = 0.9, min_seconds: float = 1.0, silence_dbfs: float = -60.0, **options):
        """``language``: the spoken language's whisper code when known (None: detected);
        ``no_speech_prob``: the transcript counts as no speech when every segment's no-speech
        probability is at least this; ``min_seconds``: shorter audio gives no feature;
        ``silence_dbfs``: audio whose peak is below this level is silent."""
        super().__init__(**options)
        if task not in ("translate", "transcribe"):
            raise OptionError(f"task must be 'translate' or 'transcribe', not '{task}'")
        self.whisper_model = str(whisper_model)
        if self.whisper_model == "auto":
            self.whisper_model = "medium" if self.device.type == "cuda" else "small"
        if task == "translate" and _cannot_translate(self.whisper_model):
            raise OptionError(f"whisper '{self.whisper_model}' cannot translate to English (it was not trained to); "
                             "choose a multilingual model such as small, medium or large, or task='transcribe'")
        self.task = task
        self.language = language
        self.temperature = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if temperature is None else temperature
        self.condition_on_previous_text = condition_on_previous_text
        self.no_speech_prob = no_speech_prob
        self.min_seconds = min_seconds
        self.silence_level = 10.0 ** (silence_dbfs / 20.0)

    # -- loading -------------------------------------------------------------------------------
    def _checkpoint(self) -> str:
        """What to pass to ``whisper.load_model``: a local file when there is one, else a model name."""
        import whisper

        name = self.whisper_model
        known = whisper.available_models()
        if name not in known:
            path = Path(name).expanduser()
            if path.is_file():
                return str(path)
            raise models.ModelUnavailable(f"whisper model '{name}' is neither a model name ({', '.join(known)}) "
                                          "nor an existing checkpoint file")
        candidates = [name]
        url = getattr(whisper, "_MODELS", {}).get(name)
        if url and Path(url).stem != name:  # "large" downloads as large-v3.pt
            candidates.append(Path(url).stem)
        for candidate in candidates:
            local = models.local_path("whisper", self.models_dir, name=candidate)
            if local is not None:
                return str(local)
        if not models.downloads_allowed():
            raise models.unavailable("whisper", self.models_dir, "downloads are off (offline mode)", name=name)
        return name

    def _build_whisper(self, source: str):
        import whisper

        root = Path(self.models_dir).expanduser() if self.models_dir else models.default_models_dir()
        download_root = str(root / "whisper") if root else None
        try:
            model = whisper.load_model(source, device=self.device, download_root=download_root)
        except Exception as exc:  # download or unreadable file: say which model and what to do
            first = one_line(exc)
            if Path(source).is_file():
                raise models.ModelUnavailable(f"whisper checkpoint {source} could not be loaded: {first}") from exc
            raise models.unavailable("whisper", self.models_dir, first, name=source) from exc
        model.eval()
        return model

    def needed_models(self) -> dict[str, str | None]:
        import whisper

        size = self.whisper_model if self.whisper_model in whisper.available_models() else None
        return {**({"whisper": size} if size else {}), "sentiment": None}  # a checkpoint path needs no fetching

    def _load(self) -> None:
        source = self._checkpoint()
        self.whisper = shared_model(f"whisper:{source}", self.device, "float32", self.models_dir,
                                    lambda: self._build_whisper(source))
        if self.task == "translate" and not self.whisper.is_multilingual:
            raise OptionError(f"whisper checkpoint {source} is English-only and cannot translate; "
                             "use a multilingual model or task='transcribe'")
        self.sentiment = text.load(SentimentModel, self.device, self.dtype, self.models_dir)

    # -- running -------------------------------------------------------------------------------
    def _audio(self, clip: Clip) -> np.ndarray:
        audio = clip.audio_16k()
        if audio.size == 0:
            raise Missing("no audio track")
        seconds = len(audio) / SAMPLE_RATE
        if seconds < self.min_seconds:
            raise Missing(f"the audio is only {seconds:.2f} s long; speech recognition needs {self.min_seconds:g} s")
        peak = float(np.abs(audio).max())
        if peak < self.silence_level:
            level = 20 * np.log10(peak) if peak > 0 else float("-inf")
            raise Missing(f"the audio is silent (peak {level:.0f} dBFS)")
        return np.ascontiguousarray(audio)

    def _run(self, clip: Clip) -> AsrOutput:
        import torch
        from whisper.tokenizer import LANGUAGES

        audio = self._audio(clip)
        result = self.whisper.transcribe(
            audio, task=self.task, language=self.language, temperature=self.temperature,
            condition_on_previous_text=self.condition_on_previous_text,
            fp16=self.device.type == "cuda" and self.dtype == torch.float16, verbose=None)
        segments = [Segment(float(s["start"]), float(s["end"]), " ".join(s["text"].split()),
                            float(s.get("no_speech_prob", 0.0)))
                    for s in result.get("segments", []) if s["text"].strip()]
        transcript = " ".join(result.get("text", "").split())
        if not transcript:
            raise Missing("no speech found: whisper's transcript is empty")
        if segments and all(s.no_speech_prob >= self.no_speech_prob for s in segments):
            raise Missing(f"no speech found: whisper's no-speech probability is ≥ {self.no_speech_prob:g} "
                          "in every segment")
        language = result.get("language")
        scored = self.sentiment(transcript)
        return AsrOutput(
            feature=scored.feature[None, :], text=transcript, language=language,
            language_name=LANGUAGES.get(language) if language else None, segments=segments,
            sentiment=scored.sentiment, model=self.whisper_model, task=self.task)
