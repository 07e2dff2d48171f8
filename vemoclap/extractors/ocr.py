"""On-screen text → English → RoBERTa sentiment: ``ocr_sentiment`` (1×768).

Per frame, PP-OCR (rapidocr-onnxruntime, whose wheel ships the PP-OCRv4 models; or PaddleOCR
itself with ``backend="paddleocr"``) finds text boxes; boxes on one text row are merged into one
line. Over all frames the lines are deduplicated (whitespace and case folded), then, per unique
line, as the reference does: language identification (papluca XLM-R, threshold 0.9) → NLLB-200
translation when the language is known and not English → SymSpell word segmentation → optional
T5 spelling correction; the lines are joined with ". " and scored by the sentiment model shared
with the ASR extractor.

Choices (documented so results can be compared):
* A line whose language is below the threshold is marked "unknown" and kept untranslated (it
  still gets segmentation and spelling, which only touch Latin-script words).
* ``spell_check=None`` ("auto") corrects spelling on CUDA and skips it on the CPU, where the 3-GB
  T5-large costs seconds per line; on "auto" a missing spelling model is skipped with a warning.
* A frame nearly identical to the last frame read (mean absolute grey-level difference of
  64×36 thumbnails below ``skip_similar``) reuses that frame's text instead of running OCR again:
  sampled frames of static title cards and slides often repeat, and OCR costs 0.3–0.7 s a frame
  on a CPU. ``skip_similar=0`` reads every frame.
"""
from __future__ import annotations

from ..errors import OptionError

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import models
from . import text
from .base import Clip, Extractor, ExtractorOutput, Missing, shared_model
from .text import (UNKNOWN_LANGUAGE, LanguageIdentifier, Sentiment, SentimentModel, SpellCorrector, Translator,
                   WordSegmenter)

log = logging.getLogger(__name__)

BACKENDS = ("rapidocr", "paddleocr")


@dataclass
class OcrLine:
    frame_index: int  # index into the clip's sampled frames
    timestamp: float  # seconds
    box: list[list[int]]  # 4 corner points [x, y], clockwise from top-left, in frame pixels
    text: str
    score: float  # recognition confidence


@dataclass
class OcrOutput(ExtractorOutput):
    lines: list[OcrLine] = field(default_factory=list)  # every line read, per frame
    unique_lines: list[str] = field(default_factory=list)  # in order of first appearance
    languages: list[str] = field(default_factory=list)  # per unique line: a code ("en", "fr", ...) or "unknown"
    language_scores: list[float] = field(default_factory=list)
    english_lines: list[str] = field(default_factory=list)  # per unique line, after translation and clean-up
    english_text: str = ""  # english_lines joined with ". ": what the sentiment model read
    sentiment: Sentiment | None = None
    frames_read: int = 0  # frames OCR ran on
    frames_reused: int = 0  # near-duplicate frames that reused the previous result
    backend: str = "rapidocr"

    def describe(self) -> list[str]:
        lines = [f"on-screen text: {self.english_text!r}"]
        original = [line for line, lang in zip(self.unique_lines, self.languages) if lang not in ("en",)]
        if original and original != self.english_lines:
            lines.append(f"  as read: {' | '.join(self.unique_lines)!r}")
        if self.sentiment is not None:
            lines.append(f"  text sentiment: {self.sentiment.label} ({self.sentiment.score:.0%})")
        return lines


Detection = tuple[np.ndarray, str, float]  # (4×2 corner points, text, score)


class _RapidOcr:
    """rapidocr-onnxruntime: PP-OCRv4 detection + recognition, models from the wheel."""

    def __init__(self, use_cuda: bool):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ImportError("the OCR backend needs rapidocr-onnxruntime: pip install rapidocr-onnxruntime") from exc
        options: dict[str, Any] = {}
        if use_cuda:
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                options = {"det_use_cuda": True, "cls_use_cuda": True, "rec_use_cuda": True}
        self.engine = RapidOCR(**options)

    def __call__(self, image_rgb: np.ndarray, min_score: float) -> list[Detection]:
        # rapidocr takes arrays as OpenCV BGR.
        result, _ = self.engine(np.ascontiguousarray(image_rgb[..., ::-1]), text_score=min_score)
        return [(np.asarray(points, dtype=np.float32).reshape(4, 2), str(label), float(score))
                for points, label, score in (result or [])]


class _PaddleOcr:
    """PaddleOCR itself (2.x ``ocr()`` or 3.x ``predict()``); its models download on first use."""

    def __init__(self, use_cuda: bool):
        try:
            import paddleocr
        except ImportError as exc:
            raise ImportError("backend 'paddleocr' is not installed: pip install vemoclap[paddle]") from exc
        self.v3 = int(str(getattr(paddleocr, "__version__", "3")).split(".")[0]) >= 3
        if self.v3:
            self.engine = paddleocr.PaddleOCR(use_doc_orientation_classify=False, use_doc_unwarping=False,
                                              use_textline_orientation=True, device="gpu" if use_cuda else "cpu")
        else:
            self.engine = paddleocr.PaddleOCR(use_angle_cls=True, show_log=False, use_gpu=use_cuda)

    def __call__(self, image_rgb: np.ndarray, min_score: float) -> list[Detection]:
        image = np.ascontiguousarray(image_rgb[..., ::-1])
        found: list[Detection] = []
        if self.v3:
            for page in self.engine.predict(image):
                for poly, label, score in zip(page["rec_polys"], page["rec_texts"], page["rec_scores"]):
                    found.append((np.asarray(poly, dtype=np.float32).reshape(-1, 2)[:4], str(label), float(score)))
        else:
            for page in self.engine.ocr(image, cls=True) or []:
                for poly, (label, score) in page or []:
                    found.append((np.asarray(poly, dtype=np.float32).reshape(4, 2), str(label), float(score)))
        return [d for d in found if d[2] >= min_score]


def _rect(points: np.ndarray) -> list[list[int]]:
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    return [[int(x0), int(y0)], [int(x1), int(y0)], [int(x1), int(y1)], [int(x0), int(y1)]]


def merge_rows(detections: list[Detection], max_gap: float = 1.5) -> list[Detection]:
    """Joins boxes of one text row (words the detector split apart) into one line, in reading order.

    Two boxes share a row when their vertical extents overlap by at least half the smaller
    height; neighbours in a row are joined when the gap between them is at most ``max_gap``
    times the row's height (a wider gap is another column)."""
    if len(detections) < 2:
        return detections
    items = sorted(detections, key=lambda d: (d[0][:, 1].min(), d[0][:, 0].min()))
    rows: list[list[Detection]] = []
    for item in items:
        top, bottom = item[0][:, 1].min(), item[0][:, 1].max()
        for row in rows:
            r_top = min(d[0][:, 1].min() for d in row)
            r_bottom = max(d[0][:, 1].max() for d in row)
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap >= 0.5 * min(bottom - top, r_bottom - r_top):
                row.append(item)
                break
        else:
            rows.append([item])
    merged: list[Detection] = []
    for row in rows:
        row.sort(key=lambda d: d[0][:, 0].min())
        group = [row[0]]
        for item in row[1:]:
            height = max(np.ptp(group[-1][0][:, 1]), np.ptp(item[0][:, 1]))
            gap = item[0][:, 0].min() - group[-1][0][:, 0].max()
            if gap <= max_gap * height:
                group.append(item)
            else:
                merged.append(_join(group))
                group = [item]
        merged.append(_join(group))
    return merged


def _join(group: list[Detection]) -> Detection:
    if len(group) == 1:
        return group[0]
    points = np.concatenate([d[0] for d in group])
    box = np.asarray(_rect(points), dtype=np.float32)
    lengths = np.array([max(1, len(d[1])) for d in group], dtype=np.float64)
    score = float(np.average([d[2] for d in group], weights=lengths))
    return box, " ".join(d[1] for d in group), score


def normalize(line: str) -> str:
    """The key lines are deduplicated by: whitespace collapsed, case folded."""
    return " ".join(line.split()).casefold()


def _mostly_latin(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) >= 0.8 * len(letters)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)


class OcrSentimentExtractor(Extractor):
    name = "ocr_sentiment"
    inputs = ("frames",)
    output_type = OcrOutput

    def __init__(self, *, backend: str = "rapidocr", min_score: float = 0.5, spell_check: bool | None = None,
                 language_threshold: float = text.LANGUAGE_THRESHOLD, merge_lines: bool = True,
                 skip_similar: float = 2.0, max_lines: int = 128, **options):
        """``min_score``: recognition confidence below which a line is dropped; ``max_lines``: at most
        this many unique lines go through the text models (the sentiment model reads 512 tokens)."""
        super().__init__(**options)
        if backend not in BACKENDS:
            raise OptionError(f"unknown OCR backend '{backend}'; choose from {', '.join(BACKENDS)}")
        self.backend = backend
        self.min_score = min_score
        self.spell_check = spell_check
        self.language_threshold = language_threshold
        self.merge_lines = merge_lines
        self.skip_similar = skip_similar
        self.max_lines = max_lines

    def _load(self) -> None:
        use_cuda = self.device.type == "cuda"
        engine_cls = _RapidOcr if self.backend == "rapidocr" else _PaddleOcr
        self.engine = shared_model(f"ocr:{self.backend}", self.device, None, None, lambda: engine_cls(use_cuda))
        args = (self.device, self.dtype, self.models_dir)
        self.language_id = text.load(LanguageIdentifier, *args)
        self.translator = text.load(Translator, *args)
        self.segmenter = text.load(WordSegmenter, *args)
        self.sentiment = text.load(SentimentModel, *args)
        self.speller: SpellCorrector | None = None
        wanted = use_cuda if self.spell_check is None else self.spell_check
        if wanted:
            try:
                self.speller = text.load(SpellCorrector, *args)
            except models.ModelUnavailable as exc:
                if self.spell_check:  # asked for explicitly: the caller must know
                    raise
                log.warning("spelling correction skipped: %s", exc)

    # -- OCR over frames -----------------------------------------------------------------------
    def read_frames(self, clip: Clip) -> tuple[list[OcrLine], int, int]:
        """Every line in every frame, plus (frames read, frames reused)."""
        lines: list[OcrLine] = []
        previous: tuple[np.ndarray, list[Detection]] | None = None
        read = reused = 0
        for index, (image, timestamp) in enumerate(zip(clip.frames.images, clip.frames.timestamps)):
            thumb = _thumbnail(image) if self.skip_similar > 0 else None
            if previous is not None and thumb is not None and np.abs(thumb - previous[0]).mean() < self.skip_similar:
                detections = previous[1]
                reused += 1
            else:
                detections = self.engine(image, self.min_score)
                if self.merge_lines:
                    detections = merge_rows(detections)
                read += 1
                if thumb is not None:
                    previous = (thumb, detections)
            for points, label, score in detections:
                label = " ".join(label.split())
                if score >= self.min_score and any(ch.isalnum() for ch in label):
                    box = [[int(round(float(x))), int(round(float(y)))] for x, y in points]
                    lines.append(OcrLine(index, float(timestamp), box, label, score))
        return lines, read, reused

    @staticmethod
    def unique(lines: list[OcrLine]) -> list[str]:
        """Unique lines in order of first appearance; each keeps its most confident spelling."""
        best: dict[str, OcrLine] = {}  # replacing a value keeps the key's place: first appearance
        for line in lines:
            key = normalize(line.text)
            if key not in best or line.score > best[key].score:
                best[key] = line
        return [line.text for line in best.values()]

    # -- text chain ----------------------------------------------------------------------------
    def to_english(self, unique: list[str]) -> tuple[list[str], list[str], list[float]]:
        """(English lines, language per line, language probability per line)."""
        identified = self.language_id.identify(unique, threshold=self.language_threshold, batch_size=self.batch_size)
        languages = [code or UNKNOWN_LANGUAGE for code, _ in identified]
        scores = [score for _, score in identified]
        english = list(unique)
        for language in sorted(set(languages)):
            if language in ("en", UNKNOWN_LANGUAGE) or not Translator.supports(language):
                continue
            where = [i for i, code in enumerate(languages) if code == language]
            for i, translated in zip(where, self.translator.translate([unique[i] for i in where], language,
                                                                      batch_size=self.batch_size)):
                english[i] = translated
        english = [self.segmenter.segment(line) for line in english]
        if self.speller is not None:
            where = [i for i, line in enumerate(english) if _mostly_latin(line)]
            for i, fixed in zip(where, self.speller.correct([english[i] for i in where], batch_size=self.batch_size)):
                english[i] = fixed
        return english, languages, scores

    def _run(self, clip: Clip) -> OcrOutput:
        lines, read, reused = self.read_frames(clip)
        unique = self.unique(lines)
        if not unique:
            raise Missing(f"no text found in {len(clip.frames)} frames")
        if len(unique) > self.max_lines:
            log.info("OCR found %d unique lines; using the first %d", len(unique), self.max_lines)
            unique = unique[:self.max_lines]
        english, languages, scores = self.to_english(unique)
        kept = [line.strip() for line in english if line.strip()]
        if not kept:
            raise Missing("the text found gave no English words")
        joined = ". ".join(kept)
        scored = self.sentiment(joined)
        return OcrOutput(
            feature=scored.feature[None, :], lines=lines, unique_lines=unique, languages=languages,
            language_scores=scores, english_lines=english, english_text=joined, sentiment=scored.sentiment,
            frames_read=read, frames_reused=reused, backend=self.backend)
