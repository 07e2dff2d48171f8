"""The text models behind the ASR and OCR sentiment features (not extractors themselves).

* :class:`SentimentModel` — "cardiffnlp/twitter-roberta-base-sentiment-latest": label, score and the
  768-d CLS token of the last hidden state (the reference's ``asr_sentiment`` / ``ocr_sentiment``).
* :class:`LanguageIdentifier` — "papluca/xlm-roberta-base-language-detection" (20 languages).
* :class:`Translator` — "facebook/nllb-200-distilled-600M", any of those languages → English.
* :class:`WordSegmenter` — SymSpell word segmentation with the dictionary bundled in symspellpy.
* :class:`SpellCorrector` — "ai-forever/T5-large-spell" (optional).

Each is built once per (device, dtype, models dir) through :func:`load` (``base.shared_model``),
so the ASR and OCR extractors share one sentiment model.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from .. import models
from .base import batches, shared_model

log = logging.getLogger(__name__)

LANGUAGE_THRESHOLD = 0.9  # reference: a line's language counts only at ≥ 0.9 probability
UNKNOWN_LANGUAGE = "unknown"

# papluca/xlm-roberta-base-language-detection labels → NLLB-200 (FLORES-200) language codes.
NLLB_CODES: dict[str, str] = {
    "ar": "arb_Arab",
    "bg": "bul_Cyrl",
    "de": "deu_Latn",
    "el": "ell_Grek",
    "en": "eng_Latn",
    "es": "spa_Latn",
    "fr": "fra_Latn",
    "hi": "hin_Deva",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "pt": "por_Latn",
    "ru": "rus_Cyrl",
    "sw": "swh_Latn",
    "th": "tha_Thai",
    "tr": "tur_Latn",
    "ur": "urd_Arab",
    "vi": "vie_Latn",
    "zh": "zho_Hans",
}
ENGLISH_NLLB = "eng_Latn"

# The prefix T5-large-spell was trained with (its model card's example).
SPELL_PREFIX = "grammar: "


@dataclass
class Sentiment:
    """Readable sentiment of a text: the top label, its probability and every label's probability."""

    label: str
    score: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class SentimentResult:
    feature: np.ndarray  # (hidden,) float32: CLS token of the last hidden state
    label: str
    score: float
    probabilities: dict[str, float]

    @property
    def sentiment(self) -> Sentiment:
        return Sentiment(self.label, self.score, dict(self.probabilities))


def _usable_length(tokenizer, config) -> int:
    """The longest input the model takes: the tokenizer's limit, capped by the position table
    (RoBERTa-family positions start after the padding index, so two slots are not usable)."""
    limit = int(tokenizer.model_max_length) if tokenizer.model_max_length else 512
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = (config.pad_token_id + 1) if config.model_type in ("roberta", "xlm-roberta") else 0
        limit = min(limit, positions - offset)
    return max(8, min(limit, 4096))


INT8 = "int8"  # the dtype name of a generating model whose linear layers hold int8 weights (CPU only)


def _prepare(model, device, dtype):
    model.eval()
    if dtype == INT8:
        import torch

        return _int8(model.to(device=device, dtype=torch.float32))
    model.to(device=device, dtype=dtype)
    return model


def _int8(model):
    """The model with int8 weights in its linear layers (torch's dynamic quantization, CPU only).

    A generating model reads every weight for every token it writes, so on a CPU its decoding waits
    on memory; int8 weights make T5-large's 3.8× faster here (``benchmarks/README.md``). Greedy
    outputs can differ from float32 where two tokens are nearly tied."""
    import warnings

    import torch

    quantize = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    if quantize is None:  # a torch that dropped it: float32, said once per model
        log.warning("this torch has no dynamic quantization: %s runs in float32", type(model).__name__)
        return model
    with warnings.catch_warnings():  # torch 2.14 marks quantized tensor creation deprecated
        warnings.filterwarnings("ignore", message=".*deprecated", category=UserWarning)
        return quantize(model, {torch.nn.Linear}, dtype=torch.qint8)


class SentimentModel:
    """RoBERTa sentiment classifier; ``model(text)`` → :class:`SentimentResult`."""

    key = "sentiment"

    def __init__(self, device="cpu", dtype=None, models_dir=None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = torch.device(device)
        self.tokenizer = models.load_pretrained(self.key, AutoTokenizer, models_dir)
        model = models.load_pretrained(self.key, AutoModelForSequenceClassification, models_dir)
        self.model = _prepare(model, self.device, dtype or torch.float32)
        self.labels = [str(model.config.id2label[i]).lower() for i in range(model.config.num_labels)]
        self.max_length = _usable_length(self.tokenizer, model.config)
        # Shared by the ASR and OCR extractors, which may run at once: a fast tokenizer called from
        # two threads can fail ("Already borrowed"), so one call at a time.
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def __call__(self, text: str) -> SentimentResult:
        return self.batch([text])[0]

    def batch(self, texts: Sequence[str], batch_size: int = 16) -> list[SentimentResult]:
        with self._lock:
            return self._batch(texts, batch_size)

    def _batch(self, texts: Sequence[str], batch_size: int) -> list[SentimentResult]:
        import torch

        results: list[SentimentResult] = []
        for chunk in batches(list(texts), batch_size):
            # Longer texts are cut at the model's limit (512 tokens for the real model).
            inputs = self.tokenizer(
                list(chunk), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                out = self.model(**inputs, output_hidden_states=True)
            cls = out.hidden_states[-1][:, 0].float().cpu().numpy()
            probs = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            for feature, p in zip(cls, probs):
                top = int(p.argmax())
                results.append(
                    SentimentResult(
                        feature=feature.astype(np.float32),
                        label=self.labels[top],
                        score=float(p[top]),
                        probabilities={label: float(v) for label, v in zip(self.labels, p)},
                    )
                )
        return results


class LanguageIdentifier:
    """XLM-R language classifier; a line's language is known only at ≥ ``threshold`` probability."""

    key = "language_id"

    def __init__(self, device="cpu", dtype=None, models_dir=None, threshold: float = LANGUAGE_THRESHOLD):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = torch.device(device)
        self.threshold = threshold
        self.tokenizer = models.load_pretrained(self.key, AutoTokenizer, models_dir)
        model = models.load_pretrained(self.key, AutoModelForSequenceClassification, models_dir)
        self.model = _prepare(model, self.device, dtype or torch.float32)
        self.labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        self.model_limit = _usable_length(self.tokenizer, model.config)
        self.max_length = min(128, self.model_limit)  # OCR lines are short

    def identify(
        self, lines: Sequence[str], threshold: float | None = None, batch_size: int = 32, max_length: int | None = None
    ) -> list[tuple[str | None, float]]:
        """(language code, probability) per line; the code is None below the threshold. ``max_length``
        tokens are read (default 128; the reference read 512), capped by the model's limit."""
        import torch

        threshold = self.threshold if threshold is None else threshold
        limit = self.max_length if max_length is None else max(8, min(int(max_length), self.model_limit))
        found: list[tuple[str | None, float]] = []
        for chunk in batches(list(lines), batch_size):
            inputs = self.tokenizer(
                list(chunk), truncation=True, max_length=limit, padding=True, return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                probs = torch.softmax(self.model(**inputs).logits.float(), dim=-1).cpu().numpy()
            for p in probs:
                top = int(p.argmax())
                score = float(p[top])
                found.append((self.labels[top] if score >= threshold else None, score))
        return found


class Translator:
    """NLLB-200 translation to English of lines in one of the language identifier's languages."""

    key = "translation"

    def __init__(self, device="cpu", dtype=None, models_dir=None, max_new_tokens: int = 200):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.device = torch.device(device)
        self.tokenizer = models.load_pretrained(self.key, AutoTokenizer, models_dir)
        model = models.load_pretrained(self.key, AutoModelForSeq2SeqLM, models_dir)
        self.model = _prepare(model, self.device, dtype or torch.float32)
        self.max_new_tokens = max_new_tokens  # the real model's generation config says 200
        self.english_id = self.tokenizer.convert_tokens_to_ids(ENGLISH_NLLB)
        self.max_length = _usable_length(self.tokenizer, model.config)
        self._lock = threading.Lock()  # src_lang is tokenizer state

    @staticmethod
    def supports(language: str | None) -> bool:
        return language in NLLB_CODES

    def translate(self, lines: Sequence[str], language: str, batch_size: int = 8, code: str | None = None) -> list[str]:
        """English translations of ``lines`` written in ``language`` (a papluca code, e.g. "fr");
        ``code`` overrides its NLLB code (e.g. "zho_Hant": the reference read Chinese as Traditional)."""
        import torch

        if language == "en" or not lines:
            return list(lines)
        if language not in NLLB_CODES:
            raise ValueError(f"no NLLB code for language '{language}'; known: {', '.join(NLLB_CODES)}")
        out: list[str] = []
        with self._lock:
            self.tokenizer.src_lang = code or NLLB_CODES[language]
            for chunk in batches(list(lines), batch_size):
                inputs = self.tokenizer(
                    list(chunk), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                ).to(self.device)
                # A translation is rarely much longer than its source: bound the decoding.
                limit = min(self.max_new_tokens, 2 * inputs["input_ids"].shape[1] + 16)
                with torch.inference_mode():
                    generated = self.model.generate(**inputs, forced_bos_token_id=self.english_id, max_new_tokens=limit)
                out.extend(text.strip() for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True))
        return out


_WORD = re.compile(r"^(\W*)([A-Za-z]{2,})(\W*)$")


class WordSegmenter:
    """Splits run-together English words ("thequickbrownfox" → "the quick brown fox") with SymSpell.

    Only whitespace-separated tokens made of ASCII letters (with optional surrounding punctuation)
    that are not dictionary words are segmented, and only when every piece is a dictionary word:
    numbers, punctuation, names and other scripts are left as they are. Case is kept.
    """

    def __init__(self):
        from importlib.resources import files

        from symspellpy import SymSpell

        # Edit distance 0: segmentation only (spelling is the T5 model's job); loads ~4× faster.
        self.symspell = SymSpell(max_dictionary_edit_distance=0, prefix_length=7)
        dictionary = files("symspellpy") / "frequency_dictionary_en_82_765.txt"
        if not self.symspell.load_dictionary(str(dictionary), term_index=0, count_index=1, encoding="utf-8"):
            raise RuntimeError(f"symspellpy's bundled dictionary could not be read from {dictionary}")
        self.words = self.symspell.words

    def segment_word(self, word: str) -> str:
        if word.lower() in self.words:
            return word
        pieces = self.symspell.word_segmentation(word, max_edit_distance=0).segmented_string.split()
        if len(pieces) > 1 and all(piece.lower() in self.words for piece in pieces):
            return " ".join(pieces)
        return word

    def segment_text(self, text: str) -> str:
        """SymSpell word segmentation of the whole string (the reference's way): every space is
        re-decided by the dictionary, e.g. "happybirth day" → "happy birthday". Edit distance 0:
        letters are kept as they are (spelling is T5's job)."""
        if not text.strip():
            return text
        return self.symspell.word_segmentation(text, max_edit_distance=0).segmented_string

    def segment(self, text: str) -> str:
        tokens = []
        for token in text.split():
            match = _WORD.match(token)
            if match:
                lead, core, tail = match.groups()
                token = lead + self.segment_word(core) + tail
            tokens.append(token)
        return " ".join(tokens)


REFERENCE_SPELL_MAX_LENGTH = 512  # the reference's T5 generate(max_length=512)


class SpellCorrector:
    """T5-large-spell: fixes spelling of English text (prompt prefix "grammar: ", as in its model card)."""

    key = "spell"

    def __init__(self, device="cpu", dtype=None, models_dir=None):
        import torch
        from transformers import AutoTokenizer, T5ForConditionalGeneration

        self.device = torch.device(device)
        self.tokenizer = models.load_pretrained(self.key, AutoTokenizer, models_dir)
        model = models.load_pretrained(self.key, T5ForConditionalGeneration, models_dir)
        # T5 activations overflow float16 (a known T5 problem): float32, or int8 weights on the CPU.
        self.model = _prepare(model, self.device, INT8 if dtype == INT8 else torch.float32)
        self.max_length = min(512, int(self.tokenizer.model_max_length or 512))

    def correct(
        self, lines: Sequence[str], batch_size: int = 8, *, max_new_tokens: int | None = 128, truncation: bool = True
    ) -> list[str]:
        """Corrected lines. ``max_new_tokens`` caps the output (also at 2n+16 for n input tokens);
        None generates up to ``max_length=512`` tokens in all, as the reference did.
        ``truncation=False`` reads inputs longer than 512 tokens whole (the reference)."""
        import torch

        out: list[str] = []
        for chunk in batches(list(lines), batch_size):
            inputs = self.tokenizer(
                [SPELL_PREFIX + line for line in chunk],
                truncation=truncation,
                max_length=self.max_length if truncation else None,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            if max_new_tokens is None:
                limits = {"max_length": REFERENCE_SPELL_MAX_LENGTH}
            else:
                limits = {"max_new_tokens": min(max_new_tokens, 2 * inputs["input_ids"].shape[1] + 16)}
            with torch.inference_mode():
                generated = self.model.generate(**inputs, **limits)
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            # An empty correction would lose the line: keep the input then.
            out.extend(fixed.strip() or line for fixed, line in zip(decoded, chunk))
        return out


T = TypeVar("T")


def load(cls: Callable[..., T], device, dtype, models_dir) -> T:
    """One shared instance of a text model class per (device, dtype, models dir)."""
    if cls is WordSegmenter:
        return shared_model("symspell", "cpu", None, None, WordSegmenter)
    # "weights", "weights/" and Path("weights") are one models dir: one shared instance.
    models_dir = Path(models_dir).expanduser().resolve() if models_dir else None
    return shared_model(
        cls.key, device, dtype, models_dir, lambda: cls(device=device, dtype=dtype, models_dir=models_dir)
    )


__all__ = [
    "Sentiment",
    "SentimentResult",
    "SentimentModel",
    "LanguageIdentifier",
    "Translator",
    "WordSegmenter",
    "SpellCorrector",
    "INT8",
    "NLLB_CODES",
    "LANGUAGE_THRESHOLD",
    "UNKNOWN_LANGUAGE",
    "load",
]
