"""Speech → English text (Whisper, task "translate") → RoBERTa sentiment: ``asr_sentiment`` (1×768).

Two Whisper backends behind the same options (:mod:`.whisper_backends`): faster-whisper
(CTranslate2: int8 on the CPU, fp16 on CUDA; about 2× faster) and openai-whisper. ``backend="auto"``
picks the fastest installed one that implements the recipe's ``long_form`` algorithm
(``sequential``: whisper's own; ``chunked``: the reference's 30-s windows with a 5-s stride, greedy,
``max_new_tokens`` per window) and whose model can be had (a local file, or a download when
downloads are allowed).

Model files: openai-whisper loads an explicit checkpoint path, ``<models dir>/whisper/<name>.pt``
(also the file name whisper's own download writes, e.g. ``large-v3.pt`` for "large"), or whisper's
own download; faster-whisper loads a CTranslate2 folder path, ``<models dir>/whisper-ct2/<name>/``
(or ``<models dir>/Systran/faster-whisper-<name>/``), or faster-whisper's own download.

Choices (documented so results can be compared):
* ``whisper_model="auto"`` is "medium" on CUDA and "small" on the CPU.
* ``temperature=None`` with ``temperature_fallback=True`` keeps whisper's fallback schedule
  (0.0, 0.2, … 1.0) on every device, so a feature does not depend on the device; pass
  ``temperature=0.0`` (or ``temperature_fallback=False``) for speed. ``chunked`` is always greedy.
* ``timestamps`` (chunked): decode with timestamp tokens, which count against ``max_new_tokens``,
  and merge the windows by transformers' timestamp-aware merge, as the reference's pipeline did
  (``return_timestamps=True``); a change of language between windows then starts no new group.
  Off: ``<|notimestamps|>`` and a plain overlap merge. ``sequential`` always decodes timestamps.
* ``silence_dbfs``: audio whose peak is below this level is silent (no feature, Whisper not run);
  ``None``: no loudness gate, so even an all-zero track goes to Whisper, as in the reference.
* ``no_speech_gating``: whisper skips windows it judges silent, and a transcript whose every
  segment has p(no speech) ≥ ``no_speech_prob`` counts as no speech. The reference did neither.
* ``vad=True``: Silero VAD (:mod:`.vad`) keeps only speech before Whisper runs; no speech at all →
  no feature, without decoding anything.
* ``compute_type="auto"`` (faster-whisper): int8 on the CPU, float16 on CUDA when fp16 is allowed,
  else float32; "float32" reproduces openai-whisper's fp32 arithmetic most closely.
* English-only (".en") and "turbo" models were not trained to translate: task "translate" rejects them.
* The audio array is passed to the backend directly (``whisper.load_audio`` needs ffmpeg).
* ``backend="auto"`` with a faster-whisper that cannot run here (CTranslate2's library does not load,
  or on a GPU its CUDA 12 / cuDNN 9 libraries do not, at load or at the first transcription): one
  logged line, and Whisper runs on openai-whisper; an explicit ``backend="faster-whisper"`` fails instead.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import models
from ..errors import OptionError, one_line
from ..media import SAMPLE_RATE
from . import text, vad, whisper_backends
from .base import Clip, Extractor, ExtractorOutput, Missing, shared_model
from .text import Sentiment, SentimentModel

log = logging.getLogger(__name__)

# Whisper models that cannot translate to English (no translation training).
NO_TRANSLATION = ("turbo", "large-v3-turbo")
# CTranslate2's compute types (faster-whisper); "auto" resolves to one of them.
COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


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
    backend: str = ""  # "faster-whisper" or "openai-whisper"
    long_form: str = "sequential"
    speech_seconds: float | None = None  # with VAD: seconds of speech found and decoded

    def describe(self) -> list[str]:
        spoken = f" (spoken: {self.language_name or self.language})" if self.language else ""
        lines = [f"speech{spoken}: {self.text.strip()!r}"]
        if self.sentiment is not None:
            lines.append(f"  speech sentiment: {self.sentiment.label} ({self.sentiment.score:.0%})")
        return lines


def _cannot_translate(name: str) -> bool:
    return name.endswith(".en") or name in NO_TRANSLATION


@dataclass(frozen=True)
class Options:
    # the model and what it is asked
    whisper_model: str | Path = "auto"  # a size, a checkpoint file or a CTranslate2 folder (auto: by device)
    backend: str = "auto"  # "auto" | "faster-whisper" | "openai-whisper"
    compute_type: str = "auto"  # faster-whisper's (auto: float16 / float32 on a GPU, int8 on a CPU)
    task: str = "translate"  # or "transcribe"
    language: str | None = None  # the spoken language's Whisper code when known (None: detected)
    # long audio: "sequential" (Whisper's own) or "chunked" (chunk_s windows overlapping by stride_s
    # on each side, at most max_new_tokens per window)
    long_form: str = "sequential"
    chunk_s: float = 30.0
    stride_s: float = 5.0
    max_new_tokens: int | None = None
    timestamps: bool = False  # chunked: decode timestamp tokens and merge windows by them (the reference's)
    # decoding
    temperature: float | tuple[float, ...] | None = None  # None: 0, or the fallback ladder
    temperature_fallback: bool = True
    seed: int | None = 0  # the fallback's sampling seeded per transcript: a feature is reproducible (None: not)
    condition_on_previous_text: bool = True
    # what counts as no speech
    no_speech_gating: bool = True  # no speech when every segment's no-speech probability ≥ no_speech_prob
    no_speech_prob: float = 0.9
    vad: bool = False  # decode only what voice-activity detection calls speech
    min_seconds: float = 1.0  # shorter audio gives no feature
    silence_dbfs: float | None = -60.0  # audio whose peak is below this level is silent (None: no gate)


@contextlib.contextmanager
def _seeded(seed: int | None, backend: str, device):
    """Whisper's temperature fallback samples: with a seed, the same audio gives the same transcript
    (torch's generator for openai-whisper, forked so the caller's random state is untouched;
    CTranslate2's for faster-whisper)."""
    if seed is None:
        yield
        return
    import torch

    if backend == "faster-whisper":
        import ctranslate2

        ctranslate2.set_random_seed(seed)
    devices = [device] if getattr(device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class AsrSentimentExtractor(Extractor):
    name = "asr_sentiment"
    inputs = ("audio",)
    output_type = AsrOutput

    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.task not in ("translate", "transcribe"):
            raise OptionError(f"task must be 'translate' or 'transcribe', not '{o.task}'")
        self.whisper_model = str(o.whisper_model)
        if self.whisper_model == "auto":
            self.whisper_model = "medium" if self.device.type == "cuda" else "small"
        if o.task == "translate" and _cannot_translate(self.whisper_model):
            raise OptionError(
                f"whisper '{self.whisper_model}' cannot translate to English (it was not trained to); "
                "choose a multilingual model such as small, medium or large, or task='transcribe'"
            )
        if o.max_new_tokens is not None and int(o.max_new_tokens) < 1:
            raise OptionError(f"max_new_tokens must be at least 1, not {o.max_new_tokens}")
        self.requested_backend = o.backend
        self.backend = self._pick_backend(o.backend, o.long_form)
        self.task = o.task
        self.language = o.language
        temperature = o.temperature
        if temperature is None:
            temperature = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if o.temperature_fallback else 0.0
        self.temperature = temperature
        self.seed = None if o.seed is None else int(o.seed)
        self.condition_on_previous_text = o.condition_on_previous_text
        self.no_speech_gating = o.no_speech_gating
        self.no_speech_prob = o.no_speech_prob
        self.long_form = o.long_form
        self.chunk_s, self.stride_s, self.max_new_tokens = float(o.chunk_s), float(o.stride_s), o.max_new_tokens
        whisper_backends.windows(int(self.chunk_s * SAMPLE_RATE), self.chunk_s, self.stride_s)  # checks them
        self.vad = bool(o.vad)
        compute_type = o.compute_type
        if compute_type == "auto":
            import torch

            cuda_type = "float16" if self.dtype == torch.float16 else "float32"
            compute_type = cuda_type if self.device.type == "cuda" else "int8"
        if compute_type not in COMPUTE_TYPES:
            raise OptionError(f"compute_type must be auto or one of {', '.join(COMPUTE_TYPES)}, not '{compute_type}'")
        self.compute_type = compute_type
        self.min_seconds = o.min_seconds
        self.timestamps = bool(o.timestamps)
        self.silence_level = None if o.silence_dbfs is None else 10.0 ** (o.silence_dbfs / 20.0)

    def _pick_backend(self, backend: str, long_form: str) -> str:
        """A checkpoint file or CTranslate2 folder given as ``whisper_model`` fixes the backend."""
        path = Path(self.whisper_model).expanduser()
        fixed = "openai-whisper" if path.is_file() else "faster-whisper" if (path / "model.bin").is_file() else None
        if fixed and backend not in ("auto", fixed):
            raise OptionError(f"whisper model {path} is a {fixed} model; use backend='{fixed}' or 'auto'")
        return whisper_backends.choose(fixed or backend, long_form)

    @property
    def decoding(self) -> whisper_backends.Decoding:
        temperatures = tuple(self.temperature) if isinstance(self.temperature, (tuple, list)) else (self.temperature,)
        return whisper_backends.Decoding(
            task=self.task,
            language=self.language,
            long_form=self.long_form,
            temperatures=temperatures,
            condition_on_previous_text=self.condition_on_previous_text,
            no_speech_threshold=0.6 if self.no_speech_gating else None,
            chunk_s=self.chunk_s,
            stride_s=self.stride_s,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            timestamps=self.timestamps,
        )

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
            raise models.ModelUnavailable(
                f"whisper model '{name}' is neither a model name ({', '.join(known)}) nor an existing checkpoint file"
            )
        for candidate in models.whisper_names(name):  # "large" downloads as large-v3.pt
            local = models.local_path("whisper", self.models_dir, name=candidate)
            if local is not None:
                return str(local)
        if not models.downloads_allowed():
            raise models.unavailable("whisper", self.models_dir, "downloads are off (offline mode)", name=name)
        return name

    def _ct2_source(self) -> str:
        """What to pass to faster-whisper: a local CTranslate2 folder when there is one, else a size name."""
        path = Path(self.whisper_model).expanduser()
        if (path / "model.bin").is_file():
            return str(path)
        local = models.whisper_ct2_dir(self.whisper_model, self.models_dir)
        if local is not None:
            return str(local)
        if not models.downloads_allowed():
            raise models.unavailable(
                "whisper_ct2", self.models_dir, "downloads are off (offline mode)", name=self.whisper_model
            )
        return self.whisper_model

    def _build(self, loader, source: str, *args):
        try:
            return loader(source, self.device, *args)
        except whisper_backends.BackendUnavailable:  # the library, not the model: _load falls back
            raise
        except Exception as exc:  # download or unreadable file: say which model and what to do
            first = one_line(exc)
            if Path(source).exists():
                raise models.ModelUnavailable(f"whisper model {source} could not be loaded: {first}") from exc
            key = "whisper" if loader is whisper_backends.load_openai else "whisper_ct2"
            raise models.unavailable(key, self.models_dir, first, name=source) from exc

    def needed_models(self) -> dict[str, str | None]:
        import whisper

        size = self.whisper_model if self.whisper_model in whisper.available_models() else None
        if size is None:  # a checkpoint path or folder needs no fetching
            return {"sentiment": None}
        return {"whisper_ct2" if self.backend == "faster-whisper" else "whisper": size, "sentiment": None}

    def alternatives(self) -> dict[str, tuple[str, str | None]]:
        # auto falls back to openai-whisper's checkpoint where no CTranslate2 folder can be had
        if self.backend == "faster-whisper" and self.requested_backend == "auto":
            return {"whisper_ct2": ("whisper", self.whisper_model)}
        return {}

    def _download_root(self, folder: str) -> str | None:
        root = Path(self.models_dir).expanduser() if self.models_dir else models.default_models_dir()
        return str(root / folder) if root else None

    def _load_faster(self) -> None:
        import torch

        source = self._ct2_source()
        self.whisper = shared_model(
            f"faster-whisper:{source}:{self.compute_type}",
            self.device,
            self.compute_type,
            self.models_dir,
            lambda: self._build(
                lambda s, d: whisper_backends.load_faster(
                    s,
                    d,
                    self.compute_type,
                    download_root=self._download_root("whisper-ct2"),
                    cpu_threads=torch.get_num_threads(),
                ),
                source,
            ),
        )
        if self.task == "translate" and not self.whisper.model.is_multilingual:
            raise OptionError(
                f"whisper model {source} is English-only and cannot translate; "
                "use a multilingual model or task='transcribe'"
            )

    def _load_openai(self) -> None:
        source = self._checkpoint()
        self.whisper = shared_model(
            f"whisper:{source}",
            self.device,
            "float32",
            self.models_dir,
            lambda: self._build(whisper_backends.load_openai, source, self._download_root("whisper")),
        )
        if self.task == "translate" and not self.whisper.is_multilingual:
            raise OptionError(
                f"whisper checkpoint {source} is English-only and cannot translate; "
                "use a multilingual model or task='transcribe'"
            )

    def _can_fall_back(self) -> bool:
        return self.requested_backend == "auto" and whisper_backends.installed("openai-whisper")

    def _fall_back(self, exc: BaseException) -> None:
        """faster-whisper cannot run here (its libraries do not load): one line, then openai-whisper."""
        log.warning("faster-whisper cannot run here (%s); Whisper runs on openai-whisper instead", one_line(exc))
        self.backend = "openai-whisper"

    def _load(self) -> None:
        if self.backend == "faster-whisper":
            try:
                self._load_faster()
            except models.ModelUnavailable as exc:
                # auto: an offline machine with only openai-whisper's checkpoint still runs
                if not self._can_fall_back():
                    raise
                log.info("faster-whisper model unavailable (%s); using openai-whisper", one_line(exc))
                self.backend = "openai-whisper"
            except whisper_backends.BackendUnavailable as exc:
                if not self._can_fall_back():
                    raise OptionError(f"{exc}; choose backend='auto' or 'openai-whisper'") from exc
                self._fall_back(exc)
        if self.backend == "openai-whisper":
            self._load_openai()
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
        if self.silence_level is not None and peak < self.silence_level:
            level = 20 * np.log10(peak) if peak > 0 else float("-inf")
            raise Missing(f"the audio is silent (peak {level:.0f} dBFS)")
        return np.ascontiguousarray(audio)

    def transcribe(self, audio: np.ndarray) -> whisper_backends.Transcript:
        """The loaded backend's transcript of 16-kHz mono ``audio`` under this extractor's decoding."""
        import torch

        self.load()
        if self.backend == "faster-whisper":
            try:
                with _seeded(self.seed, self.backend, self.device):
                    return whisper_backends.faster_transcribe(self.whisper, audio, self.decoding)
            except Exception as exc:
                # CTranslate2 loads cuBLAS / cuDNN on first use: a GPU without them fails here, not at load
                if not (whisper_backends.library_failure(exc) and self._can_fall_back()):
                    raise
                self._fall_back(exc)
                self._load_openai()
        fp16 = self.device.type == "cuda" and self.dtype == torch.float16
        with _seeded(self.seed, self.backend, self.device):
            return whisper_backends.openai_transcribe(self.whisper, audio, self.decoding, fp16=fp16)

    def _run(self, clip: Clip) -> AsrOutput:
        audio = self._audio(clip)
        time_map, speech_seconds = None, None
        if self.vad:
            spans = vad.speech_spans(audio)
            speech_seconds = sum(end - start for start, end in spans) / SAMPLE_RATE
            if not spans:
                raise Missing("no speech found: voice-activity detection found none")
            audio, time_map = vad.keep_speech(audio, spans)
        result = self.transcribe(audio)
        place = time_map.original if time_map else float
        segments = [
            Segment(place(start), place(end), " ".join(words.split()), p)
            for start, end, words, p in result.segments
            if words.strip()
        ]
        transcript = " ".join(result.text.split())
        if not transcript:
            raise Missing("no speech found: whisper's transcript is empty")
        if self.no_speech_gating and segments and all(s.no_speech_prob >= self.no_speech_prob for s in segments):
            raise Missing(
                f"no speech found: whisper's no-speech probability is ≥ {self.no_speech_prob:g} in every segment"
            )
        scored = self.sentiment(transcript)
        return AsrOutput(
            feature=scored.feature[None, :],
            text=transcript,
            language=result.language,
            language_name=_language_name(result.language),
            segments=segments,
            sentiment=scored.sentiment,
            model=self.whisper_model,
            task=self.task,
            backend=self.backend,
            long_form=self.long_form,
            speech_seconds=speech_seconds,
        )


def _language_name(code: str | None) -> str | None:
    if not code:
        return None
    try:
        from whisper.tokenizer import LANGUAGES
    except ImportError:  # faster-whisper alone knows only the codes
        return None
    return LANGUAGES.get(code)
