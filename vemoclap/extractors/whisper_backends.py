"""Whisper backends for the ASR extractor: openai-whisper (PyTorch) and faster-whisper (CTranslate2).

Both run both long-form algorithms a recipe can ask for, so a recipe's choice of algorithm never
forces the slower backend:

* ``sequential``: whisper's own long-form transcription (30-s windows moved by the last
  timestamp, optional temperature fallback, previous text as prompt, no-speech gating) —
  ``whisper.transcribe`` / ``faster_whisper.WhisperModel.transcribe``.
* ``chunked``: the reference's algorithm (transformers' ASR pipeline with ``chunk_length_s=30``,
  ``stride_length_s=5``): fixed 30-s windows every 20 s, each decoded on its own (greedy, at most
  ``max_new_tokens``, the language detected per window), decoded in batches. Without
  ``timestamps`` every window is decoded with ``<|notimestamps|>`` and the windows' text tokens
  are joined at their best overlap; with ``timestamps`` (the reference's ``return_timestamps=True``)
  Whisper writes timestamp tokens too, which count against ``max_new_tokens``, and the windows are
  merged by transformers' own timestamp-aware merge (``_decode_asr`` in ``transformers.models.whisper.tokenization_whisper``,
  which the pipeline's ``postprocess`` calls): text is cut at timestamps outside the strides and a
  change of language does not start a new group.

:func:`choose` picks the backend ("auto": the fastest installed one; faster-whisper is about 2×
faster on a CPU, see benchmarks/README.md). The same weights give the same tokens in both
(tests/test_whisper_backends.py). An installed faster-whisper whose CTranslate2 cannot load (its
library, or CUDA 12 / cuDNN 9 on a GPU) raises :class:`BackendUnavailable`, on which the ASR
extractor falls back to openai-whisper.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import OptionError, one_line
from ..media import SAMPLE_RATE

log = logging.getLogger(__name__)

BACKENDS = ("faster-whisper", "openai-whisper")  # fastest first
LONG_FORMS = ("sequential", "chunked")
IMPLEMENTS = {"faster-whisper": set(LONG_FORMS), "openai-whisper": set(LONG_FORMS)}
_MODULES = {"faster-whisper": ("faster_whisper", "ctranslate2"), "openai-whisper": ("whisper",)}
WINDOW_S = 30  # whisper's input window
EOT = 50257  # tokens below this are text (both vocabularies)
TIME_PRECISION = 0.02  # seconds per timestamp token (30 s / 1500 encoder positions)


class BackendUnavailable(RuntimeError):
    """faster-whisper is installed but cannot run here: CTranslate2's library, or the CUDA libraries it
    loads (CUDA 12's cuBLAS, cuDNN 9), failed to load. The message is one line."""


# what CTranslate2 says when a library it needs cannot be loaded (at import, model load or first use)
_LIBRARY_FAILURE = re.compile(r"cuda|cudnn|cublas|\.so\b|\.so\.|\.dll|librar|symbol|driver", re.IGNORECASE)


def library_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says that faster-whisper's libraries cannot load (not a bad model or input)."""
    if isinstance(exc, BackendUnavailable):
        return True
    if isinstance(exc, (ImportError, OSError)):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and "out of memory" not in message and bool(_LIBRARY_FAILURE.search(message))


def installed(backend: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in _MODULES[backend])


def choose(backend: str = "auto", long_form: str = "sequential") -> str:
    """The backend to run: the one asked for, or ("auto") the fastest installed one that
    implements ``long_form``."""
    if long_form not in LONG_FORMS:
        raise OptionError(f"long_form must be one of {', '.join(LONG_FORMS)}, not '{long_form}'")
    if backend != "auto":
        if backend not in BACKENDS:
            raise OptionError(f"whisper backend must be auto or one of {', '.join(BACKENDS)}, not '{backend}'")
        if not installed(backend):
            package = "faster-whisper" if backend == "faster-whisper" else "openai-whisper"
            raise OptionError(
                f"whisper backend '{backend}' is not installed; pip install {package} or choose backend='auto'"
            )
        return backend
    for candidate in BACKENDS:
        if long_form in IMPLEMENTS[candidate] and installed(candidate):
            return candidate
    raise OptionError("no whisper backend is installed; pip install faster-whisper (or openai-whisper)")


@dataclass
class Decoding:
    """What the recipe fixes about decoding (the same for every backend)."""

    task: str = "translate"
    language: str | None = None  # None: detected (per window when chunked)
    long_form: str = "sequential"
    temperatures: tuple[float, ...] = (0.0,)  # sequential: the fallback schedule; chunked: greedy only
    condition_on_previous_text: bool = True  # sequential only
    no_speech_threshold: float | None = 0.6  # sequential: None = decode every window (no gating)
    chunk_s: float = 30.0  # chunked
    stride_s: float = 5.0  # chunked: overlap on each side of a window
    max_new_tokens: int | None = None  # per window; None: the model's limit (n_text_ctx // 2)
    batch_size: int = 8  # chunked: windows decoded together
    timestamps: bool = False  # chunked: decode timestamp tokens and merge by them (sequential always does)


@dataclass
class Transcript:
    text: str
    language: str | None
    segments: list[tuple[float, float, str, float]] = field(default_factory=list)  # start, end, text, p(no speech)
    tokens: list[int] = field(default_factory=list)  # text tokens of the transcript
    window_tokens: list[list[int]] = field(default_factory=list)  # chunked: each window's tokens (timestamps too)
    window_languages: list[str] = field(default_factory=list)


# ---- the chunked algorithm (backend-independent parts) --------------------------------------------


@dataclass(frozen=True)
class Window:
    start: int  # samples
    end: int
    stride_left: int
    stride_right: int


def windows(n_samples: int, chunk_s: float = 30.0, stride_s: float = 5.0, sr: int = SAMPLE_RATE) -> list[Window]:
    """The reference's chunk layout: windows of ``chunk_s`` starting every ``chunk_s - 2·stride_s``
    seconds, the last one reaching the end of the audio (transformers' ``chunk_iter``)."""
    chunk, stride = int(round(chunk_s * sr)), int(round(stride_s * sr))
    step = chunk - 2 * stride
    if chunk > WINDOW_S * sr or step <= 0:
        raise OptionError(
            f"chunk_s must be at most {WINDOW_S} s and more than twice stride_s "
            f"(got chunk_s={chunk_s:g}, stride_s={stride_s:g})"
        )
    out = []
    for start in range(0, n_samples, step):
        end = min(start + chunk, n_samples)
        left = 0 if start == 0 else stride
        last = start + chunk >= n_samples
        if end - start > left:
            out.append(Window(start, end, left, 0 if last else stride))
        if last:
            break
    return out


def window_audio(audio: np.ndarray, window: Window) -> np.ndarray:
    """One window's samples, zero-padded to whisper's 30 s."""
    piece = audio[window.start : window.end]
    return np.pad(piece, (0, WINDOW_S * SAMPLE_RATE - len(piece))).astype(np.float32)


def merge_overlapping(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Join token sequences of overlapping windows: slide each next sequence along the joined one,
    take the alignment with the largest share of equal tokens (ties to the longer overlap; at least
    two equal tokens), and cut both halves at the middle of the overlap."""
    if not sequences:
        return []
    total: list[int] = []
    left = list(sequences[0])
    for right in map(list, sequences[1:]):
        best, cut = 0.0, (len(left), len(left), 0, 0)
        for i in range(1, len(left) + len(right)):
            l0, l1 = max(0, len(left) - i), min(len(left), len(left) + len(right) - i)
            r0, r1 = max(0, i - len(left)), min(len(right), i)
            matches = int(np.sum(np.asarray(left[l0:l1]) == np.asarray(right[r0:r1])))
            score = matches / i + i / 10000.0
            if matches > 1 and score > best:
                best, cut = score, (l0, l1, r0, r1)
        l0, l1, r0, r1 = cut
        total.extend(left[: (l0 + l1) // 2])
        left = right[(r0 + r1) // 2 :]
    return total + left


def join_windows(window_tokens: Sequence[Sequence[int]], languages: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Text tokens of consecutive windows merged at their overlaps; a new group starts where the
    detected language changes (as the reference's pipeline does). Returns (language, tokens) groups."""
    groups: list[tuple[str, list[list[int]]]] = []
    for tokens, language in zip(window_tokens, languages):
        text = [t for t in tokens if t < EOT]
        if groups and groups[-1][0] != language:
            groups.append((language, []))
        elif not groups:
            groups.append((language, []))
        if text:
            groups[-1][1].append(text)
    return [(language, merge_overlapping(seqs)) for language, seqs in groups if seqs]


class PipelineTokenizer:
    """What transformers' ``_decode_asr`` reads of a ``WhisperTokenizer``, for a backend's own
    vocabulary: the special tokens' ids (everything from ``<|endoftext|>`` to ``<|notimestamps|>``;
    timestamp tokens follow), their names, and the backend's decoding of text tokens. It keeps the
    text tokens the merge decoded (``kept``), so a transcript has its tokens as well as its text."""

    def __init__(self, specials: dict[str, int], decode_text):
        self._ids = {name: i for name, i in specials.items() if EOT <= i <= specials["<|notimestamps|>"]}
        self._names = {i: name for name, i in self._ids.items()}
        self.all_special_ids = sorted(self._names)
        self._decode_text = decode_text
        self.kept: list[int] = []

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._ids[token]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if len(ids) == 1 and ids[0] in self._names:
            return self._names[ids[0]]
        text = [i for i in ids if i < EOT]
        self.kept.extend(text)
        return self._decode_text(text)

    def _strip_prompt(self, token_ids, prompt_token_id, decoder_start_token_id):
        return list(token_ids)  # no window is given a previous-text prompt


def merge_with_timestamps(
    window_tokens: Sequence[Sequence[int]],
    languages: Sequence[str],
    spans: Sequence[Window],
    tokenizer: PipelineTokenizer,
) -> tuple[str, list[tuple[float | None, float | None, str]], list[int]]:
    """The windows merged as transformers' ASR pipeline merges them with ``return_timestamps=True``:
    each window's generated tokens (timestamps included) after its language token, with its length
    and strides in seconds, handed to transformers' ``_decode_asr``. Returns the text, the
    (start, end, text) chunks and the text tokens kept."""
    from transformers.models.whisper.tokenization_whisper import _decode_asr

    outputs = []
    for tokens, language, span in zip(window_tokens, languages, spans):
        ids = [tokenizer.convert_tokens_to_ids(f"<|{language}|>")] + [int(t) for t in tokens]
        stride = (
            (span.end - span.start) / SAMPLE_RATE,
            span.stride_left / SAMPLE_RATE,
            span.stride_right / SAMPLE_RATE,
        )
        outputs.append({"tokens": np.asarray([ids], dtype=np.int64), "stride": stride})
    from ..quiet import quiet_transformers

    tokenizer.kept = []
    with quiet_transformers():  # "did not predict an ending timestamp": a window cut mid-word, as expected
        text, optional = _decode_asr(
            tokenizer, outputs, return_timestamps=True, return_language=False, time_precision=TIME_PRECISION
        )
    chunks = [(c["timestamp"][0], c["timestamp"][1], c["text"]) for c in optional.get("chunks", [])]
    return text, chunks, list(tokenizer.kept)


def _batches(items: list, size: int):
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


def _token_limit(decoding: Decoding, n_text_ctx: int, prompt_len: int) -> int:
    limit = n_text_ctx - prompt_len  # positions left after the prompt
    wanted = decoding.max_new_tokens or n_text_ctx // 2
    return max(1, min(wanted, limit))


# ---- openai-whisper ----------------------------------------------------------------------------


def load_openai(source: str, device, download_root: str | None):
    import whisper

    model = whisper.load_model(source, device=device, download_root=download_root)
    model.eval()
    return model


def openai_transcribe(model, audio: np.ndarray, decoding: Decoding, *, fp16: bool = False) -> Transcript:
    if decoding.long_form == "chunked":
        return _openai_chunked(model, audio, decoding, fp16)
    result = model.transcribe(
        audio,
        task=decoding.task,
        language=decoding.language,
        temperature=decoding.temperatures,
        condition_on_previous_text=decoding.condition_on_previous_text,
        no_speech_threshold=decoding.no_speech_threshold,
        fp16=fp16,
        verbose=None,
    )
    segments = [
        (float(s["start"]), float(s["end"]), s["text"], float(s.get("no_speech_prob", 0.0)))
        for s in result.get("segments", [])
    ]
    tokens = [t for s in result.get("segments", []) for t in s.get("tokens", []) if t < EOT]
    return Transcript(result.get("text", ""), result.get("language"), segments, tokens)


def _openai_chunked(model, audio: np.ndarray, decoding: Decoding, fp16: bool) -> Transcript:
    import torch
    import whisper
    from whisper.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, task=decoding.task)
    prompt_len = len(tokenizer.sot_sequence) + (0 if decoding.timestamps else 1)
    sample_len = _token_limit(decoding, model.dims.n_text_ctx, prompt_len)
    options = whisper.DecodingOptions(  # temperature 0: greedy, no sampling
        task=decoding.task,
        language=decoding.language,
        temperature=0.0,
        sample_len=sample_len,
        without_timestamps=not decoding.timestamps,
        fp16=fp16,
    )
    spans = windows(len(audio), decoding.chunk_s, decoding.stride_s)
    tokens: list[list[int]] = []
    languages: list[str] = []
    for batch in _batches(spans, decoding.batch_size):
        mel = torch.stack(
            [
                whisper.log_mel_spectrogram(
                    torch.from_numpy(window_audio(audio, w)), n_mels=model.dims.n_mels, padding=0
                )[:, :3000]
                for w in batch
            ]
        ).to(model.device)
        with torch.no_grad():
            for result in whisper.decode(model, mel, options):
                tokens.append(list(result.tokens))
                languages.append(result.language)
    if decoding.timestamps:
        merge = PipelineTokenizer(dict(tokenizer.special_tokens), tokenizer.decode)
        return _timestamped_transcript(tokens, languages, spans, merge)
    return _chunked_transcript(tokens, languages, tokenizer.decode)


def _majority(languages: list[str]) -> str | None:
    """The language reported: the windows' one when they agree (as the reference reports it), else the
    most frequent."""
    return max(set(languages), key=languages.count) if languages else None


def _chunked_transcript(tokens: list[list[int]], languages: list[str], decode) -> Transcript:
    groups = join_windows(tokens, languages)
    text = "".join(decode(group) for _, group in groups)
    kept = [t for _, group in groups for t in group]
    return Transcript(text, _majority(languages), [], kept, tokens, languages)


def _timestamped_transcript(
    tokens: list[list[int]], languages: list[str], spans: list[Window], merge: PipelineTokenizer
) -> Transcript:
    text, chunks, kept = merge_with_timestamps(tokens, languages, spans, merge)
    end_of_audio = spans[-1].end / SAMPLE_RATE if spans else 0.0
    segments = [
        (float(start or 0.0), float(end_of_audio if end is None else end), words, 0.0) for start, end, words in chunks
    ]
    return Transcript(text, _majority(languages), segments, kept, tokens, languages)


# ---- faster-whisper ----------------------------------------------------------------------------


def load_faster(source: str, device, compute_type: str, *, download_root: str | None = None, cpu_threads: int = 0):
    """A ``faster_whisper.WhisperModel`` from a CTranslate2 folder or a size name (downloaded).

    Raises :class:`BackendUnavailable` when faster-whisper cannot be imported (CTranslate2's library does
    not load) or CTranslate2 cannot use the device (no CUDA, or CUDA libraries it cannot load)."""
    try:
        from faster_whisper import WhisperModel
    except (ImportError, OSError) as exc:
        raise BackendUnavailable(f"faster-whisper cannot be imported ({_one_line(exc)})") from exc

    kind, _, index = str(device).partition(":")
    try:
        model = WhisperModel(
            source,
            device=kind,
            device_index=int(index or 0),
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            download_root=download_root,
        )
    except RuntimeError as exc:
        if kind == "cuda" and library_failure(exc):
            raise BackendUnavailable(f"CTranslate2 cannot run on {device} ({_one_line(exc)})") from exc
        raise
    model.vemoclap_text_ctx = _ct2_text_ctx(Path(source))
    model.max_length = model.vemoclap_text_ctx  # faster-whisper assumes 448 positions
    return model


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc, limit=200)}"


def _ct2_text_ctx(folder: Path) -> int:
    """The decoder's positions: from a converted folder's generation_config.json, else 448 (every
    released Whisper)."""
    try:
        return int(json.loads((folder / "generation_config.json").read_text())["max_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 448


def faster_transcribe(model, audio: np.ndarray, decoding: Decoding) -> Transcript:
    if decoding.long_form == "chunked":
        return _faster_chunked(model, audio, decoding)
    # beam_size=1 / best_of=1: whisper.transcribe's greedy decoding and single sample per fallback
    segments, info = model.transcribe(
        audio,
        task=decoding.task,
        language=decoding.language,
        temperature=list(decoding.temperatures),
        beam_size=1,
        best_of=1,
        condition_on_previous_text=decoding.condition_on_previous_text,
        no_speech_threshold=decoding.no_speech_threshold,
        vad_filter=False,
        without_timestamps=False,
    )
    segments = list(segments)
    rows = [(float(s.start), float(s.end), s.text, float(s.no_speech_prob)) for s in segments]
    tokens = [t for s in segments for t in s.tokens if t < EOT]
    return Transcript("".join(s.text for s in segments), info.language, rows, tokens)


def _faster_chunked(model, audio: np.ndarray, decoding: Decoding) -> Transcript:
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    multilingual = model.model.is_multilingual
    base = Tokenizer(model.hf_tokenizer, multilingual, task=decoding.task, language=decoding.language or "en")
    suppress = list(get_suppressed_tokens(base, [-1]))
    n_text_ctx = getattr(model, "vemoclap_text_ctx", 448)
    spans = windows(len(audio), decoding.chunk_s, decoding.stride_s)
    tokens: list[list[int]] = []
    languages: list[str] = []
    for batch in _batches(spans, decoding.batch_size):
        features = np.stack([model.feature_extractor(window_audio(audio, w), padding=0)[:, :3000] for w in batch])
        encoded = model.encode(features)
        if decoding.language:
            found = [decoding.language] * len(batch)
        elif multilingual:
            found = [ranked[0][0][2:-2] for ranked in model.model.detect_language(encoded)]
        else:
            found = ["en"] * len(batch)
        prompts = []
        for language in found:
            tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=decoding.task, language=language)
            # without <|notimestamps|> CTranslate2 applies whisper's timestamp rules itself
            prompts.append(list(tokenizer.sot_sequence) + ([] if decoding.timestamps else [tokenizer.no_timestamps]))
        limit = _token_limit(decoding, n_text_ctx, len(prompts[0]))
        # CTranslate2's Whisper generates at most max_length // 2 tokens (measured with 4.8: max_length 44
        # gives 22 new tokens after a 4-token prompt), so ask for twice the limit and cut.
        results = model.model.generate(  # beam 1, top-1: greedy, no sampling
            encoded,
            prompts,
            beam_size=1,
            sampling_topk=1,
            max_length=2 * limit,
            suppress_blank=True,
            suppress_tokens=suppress,
        )
        for result in results:
            ids = list(result.sequences_ids[0])
            if EOT in ids:
                ids = ids[: ids.index(EOT)]
            tokens.append(ids[:limit])
        languages.extend(found)
    if decoding.timestamps:
        specials = model.hf_tokenizer.get_vocab(with_added_tokens=True)
        return _timestamped_transcript(tokens, languages, spans, PipelineTokenizer(specials, base.decode))
    return _chunked_transcript(tokens, languages, base.decode)
