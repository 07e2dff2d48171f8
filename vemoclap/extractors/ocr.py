"""On-screen text → English → RoBERTa sentiment: ``ocr_sentiment`` (1×768).

Per frame, PP-OCR (rapidocr 3, whose wheel ships PP-OCRv6 small models; rapidocr-onnxruntime 1.x
with its PP-OCRv4 models where it is installed instead; or PaddleOCR itself with
``backend="paddleocr"``) finds text boxes. The text unit is a line (``text_unit="line"``: boxes on
one text row merged) or a frame (``text_unit="frame"``: every box of a frame joined by a space in
the engine's reading order, as the reference did). The units are deduplicated over all frames
(whitespace and case folded), then, per unique unit: language identification (papluca XLM-R,
``langid_threshold`` 0.9 on at most ``langid_max_tokens`` tokens) → NLLB-200 translation when the
language is known and not English → spelling; the units are joined with ". " and scored by the
sentiment model shared with the ASR extractor.

On a CUDA device the PP-OCR sessions run on the GPU when onnxruntime has its CUDA provider
(``onnxruntime-gpu`` installed in place of ``onnxruntime``; cuDNN picks convolution algorithms by
heuristic, not by timing each new crop width); without it they run on the CPU and one line is logged.

OCR models (``ocr_models``):
* "ppocr-default": the models inside the installed package (rapidocr 3: PP-OCRv6 small det/rec,
  multilingual incl. Chinese and English; rapidocr-onnxruntime 1.x: PP-OCRv4 Chinese+English).
* "ppocr-en": the reference's paper-era English pair, en_PP-OCRv3_det_mobile +
  en_PP-OCRv4_rec_mobile (rapidocr 3 only). Rows of the model table (``ppocr_en_det``,
  ``ppocr_en_rec``: the URL and SHA-256 that rapidocr's ``default_models.yaml`` lists), fetched
  and verified into ``<models dir>/ppocr/`` on first use and handed to rapidocr as files, so
  rapidocr itself never downloads. When they cannot be had, the bundled models read the text and
  the output names the deviation.

Spelling (``spelling``):
* "tokens" (default): SymSpell segments only run-together non-dictionary tokens of every unit,
  then T5 corrects mostly-Latin units when ``spell_check`` allows (auto: on CUDA only).
* "segment+t5" (the reference, paper era): for English or unknown-language units only, SymSpell
  word segmentation of the whole string, then T5-large-spell; translated units are left as NLLB
  wrote them. T5 always runs here (a missing spelling model is an error unless
  ``spell_check=False``).
* "none": no segmentation, no correction.

Choices (documented so results can be compared):
* A line whose language is below the threshold is marked "unknown" and kept untranslated (it
  still gets segmentation and spelling, which only touch Latin-script words).
* ``spell_check=None`` ("auto") corrects spelling on CUDA and skips it on the CPU, where the 3-GB
  T5-large costs seconds per line; on "auto" a missing spelling model is skipped with a warning.
* ``detection``: the text detector's settings. "rapidocr" keeps rapidocr's (the shorter side
  brought to 736 px, so a 360p frame is enlarged 2×; box threshold 0.5, unclip 1.6, dilation);
  "paddleocr" uses PaddleOCR 2.x's, which the reference ran (the longer side limited to 960 px and
  never enlarged; box threshold 0.6, unclip 1.5, no dilation): on 640×360 frames the detector
  sees 4× fewer pixels. The PaddleOCR backend always uses its own.
* ``int8_decoders``: NLLB and T5 (the text models that write text token by token) with int8
  weights, on the CPU only: their decoding reads every weight for every token, so on a CPU it
  waits on memory, and int8 weights make it about 4× faster. Greedy outputs can differ where two
  tokens are nearly tied. The ``reference`` recipe asks for float32 and turns this on for a CPU as
  a named deviation; off by default.
* The reference's PaddleOCR 2.x, which these options reproduce: ``det_normalization="imagenet"``
  (the detector's input normalised with ImageNet mean/std; rapidocr's own is mean = std = 0.5),
  ``channel_order="rgb"`` (the RGB frame handed as it is to an engine that reads arrays as BGR, so
  the models see red and blue swapped: a quirk of the reference, followed under ``reference``),
  ``angle_classifier=False`` (no text-direction classifier), ``dedup_english=True`` (strings that
  translation and spelling made equal are read once, ``dict.fromkeys``), and T5 with
  ``spell_max_new_tokens=None`` / ``spell_truncation=False`` (``max_length=512``, input whole).
* A frame nearly identical to the last frame read (mean absolute grey-level difference of
  64×36 thumbnails below ``skip_similar``) reuses that frame's text instead of running OCR again:
  sampled frames of static title cards and slides often repeat, and OCR costs 0.3–0.7 s a frame
  on a CPU. ``skip_similar=0`` reads every frame.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..errors import OptionError, one_line
from . import text
from .base import Clip, Extractor, ExtractorOutput, Missing, shared_model
from .text import (
    UNKNOWN_LANGUAGE,
    LanguageIdentifier,
    Sentiment,
    SentimentModel,
    SpellCorrector,
    Translator,
    WordSegmenter,
)

log = logging.getLogger(__name__)

BACKENDS = ("rapidocr", "paddleocr")
OCR_MODELS = ("ppocr-default", "ppocr-en")
TEXT_UNITS = ("line", "frame")
SPELLING = ("tokens", "segment+t5", "none")
CHINESE_CODES = ("zho_Hans", "zho_Hant")
# Text-detection settings by name: rapidocr's own, or the defaults of PaddleOCR 2.x's detector
# (its published command-line options: det_limit_side_len 960, det_db_box_thresh 0.6, ...), which
# the reference ran. Keys are rapidocr 3's Det.* parameters.
DETECTION = {
    "rapidocr": {},
    "paddleocr": {
        "limit_side_len": 960,
        "limit_type": "max",
        "box_thresh": 0.6,
        "unclip_ratio": 1.5,
        "use_dilation": False,
    },
}

# The detector's input normalisation by name, (mean, std) per channel of the array the engine is
# given: rapidocr's own (0.5, 0.5), or PaddleOCR 2.x's ImageNet statistics, which the reference ran.
DET_NORMALIZATION = {
    "rapidocr": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
# What the engine (which reads arrays as OpenCV BGR) is handed: "bgr", the frame converted to BGR;
# "rgb", the RGB frame as it is, so the models see red and blue swapped (the reference's quirk).
CHANNEL_ORDERS = ("bgr", "rgb")

# The reference's English PP-OCR pair: rows of the model table (URL and SHA-256 pinned there).
# Inside a models dir they live under ppocr/.
ENGLISH_MODELS = {"det": "ppocr_en_det", "rec": "ppocr_en_rec"}


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
    ocr_models: str = ""  # the detection + recognition models that ran, in words
    text_unit: str = "line"  # "line": unique_lines are lines; "frame": one string per frame
    frame_texts: list[str] = field(default_factory=list)  # per frame read: its boxes joined by a space

    def describe(self) -> list[str]:
        lines = [f"on-screen text: {self.english_text!r}"]
        original = [line for line, lang in zip(self.unique_lines, self.languages) if lang not in ("en",)]
        if original and original != self.english_lines:
            lines.append(f"  as read: {' | '.join(self.unique_lines)!r}")
        if self.sentiment is not None:
            lines.append(f"  text sentiment: {self.sentiment.label} ({self.sentiment.score:.0%})")
        return lines


Detection = tuple[np.ndarray, str, float]  # (4×2 corner points, text, score)


def english_model_files(models_dir) -> dict[str, Path] | None:
    """The English det/rec pair from ``<models dir>/ppocr/`` (SHA-256 checked against the model
    table), or None when absent."""
    from ..models.download import expected_sha256, sha256_file

    paths = {part: models.target_path(key, models_dir) for part, key in ENGLISH_MODELS.items()}
    if not all(path.is_file() for path in paths.values()):
        return None
    for part, path in paths.items():
        key = ENGLISH_MODELS[part]
        if sha256_file(path) != expected_sha256("file", key, models.MODELS[key].sha256):
            raise models.ModelUnavailable(
                f"OCR model {path} does not match its SHA-256 (damaged or another file); delete it and "
                "let vemoclap fetch it again, or use ocr_models='ppocr-default'"
            )
    return paths


def fetch_english_models(models_dir) -> dict[str, Path]:
    """The English det/rec pair, fetched (verified) into the models dir by the model table when not
    there yet; :class:`~vemoclap.models.ModelUnavailable` when it cannot be had."""
    local = english_model_files(models_dir)
    if local is not None:
        return local
    if not models.downloads_allowed():
        root = models.models_root(models_dir)
        folder = root / "ppocr" if root is not None else "the ppocr/ folder of a models dir (--models-dir)"
        raise models.ModelUnavailable(
            f"downloads are off and {folder} lacks the English pair: `vemoclap download-models "
            "--only ppocr_en_det,ppocr_en_rec` fetches it (or ocr_models='ppocr-default')"
        )
    try:
        for key in ENGLISH_MODELS.values():
            if models.local_path(key, models_dir) is None:
                models.fetch_model(key, models_dir)
    except models.ModelUnavailable:
        raise
    except Exception as exc:  # network errors come in many types: one line, and the caller falls back
        raise models.ModelUnavailable(
            f"OCR models 'ppocr-en' could not be fetched ({type(exc).__name__}: {one_line(exc, limit=160)})"
        ) from exc
    return english_model_files(models_dir)


@functools.cache
def _no_onnxruntime_telemetry() -> None:
    """onnxruntime's telemetry events off, before any inference session is made. Its lookup of the
    telemetry host is stopped only by ``ORT_DISABLE_TELEMETRY`` set before onnxruntime is imported,
    which importing vemoclap does (``vemoclap/__init__.py``); this call stops the events themselves."""
    try:
        import onnxruntime
    except ImportError:
        return
    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        disable()


# rapidocr's default cuDNN search is EXHAUSTIVE: every convolution algorithm timed again for each new input
# shape, and each text crop the recognizer reads has its own width. HEURISTIC picks without timing.
CUDA_EP_SETTINGS = {"cudnn_conv_algo_search": "HEURISTIC"}
ON_GPU = "; on the GPU (onnxruntime CUDA)"


def onnx_cuda(wanted: bool, providers: list[str] | None = None) -> bool:
    """Whether OCR's onnxruntime sessions run on the GPU: asked for (the extractor is on a CUDA device)
    and onnxruntime has its CUDA provider (``onnxruntime-gpu``). Asked for without it: one logged line."""
    if not wanted:
        return False
    if providers is None:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return True
    log.info(
        "OCR runs on the CPU: onnxruntime has no CUDA provider here (onnxruntime-gpu, in place of "
        "onnxruntime, runs it on the GPU)"
    )
    return False


class _RapidOcr:
    """rapidocr 3 (PP-OCRv6 small in its wheel, or the English pair), else rapidocr-onnxruntime 1.x."""

    def __init__(
        self,
        use_cuda: bool,
        ocr_models: str = "ppocr-default",
        models_dir=None,
        detection: str = "rapidocr",
        *,
        normalization: str = "rapidocr",
        angle_classifier: bool = True,
        channel_order: str = "bgr",
        device_index: int = 0,
    ):
        _no_onnxruntime_telemetry()
        self.channel_order = channel_order
        self.angle_classifier = angle_classifier
        try:
            import rapidocr
        except ImportError:
            rapidocr = None
        if rapidocr is None:
            self._init_v1(use_cuda, ocr_models, detection, normalization)
            return
        from rapidocr import LangDet, LangRec, ModelType, OCRVersion, RapidOCR

        self.v3 = True
        params: dict[str, Any] = {"Global.log_level": "error", "Global.use_cls": bool(angle_classifier)}
        params.update({f"Det.{key}": value for key, value in DETECTION[detection].items()})
        mean, std = DET_NORMALIZATION[normalization]
        params.update({"Det.mean": list(mean), "Det.std": list(std)})
        self.on_gpu = onnx_cuda(use_cuda)
        if self.on_gpu:
            params["EngineConfig.onnxruntime.use_cuda"] = True
            params.update({f"EngineConfig.onnxruntime.cuda_ep_cfg.{k}": v for k, v in CUDA_EP_SETTINGS.items()})
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = int(device_index)
        self.description = "rapidocr 3: PP-OCRv6 small det + rec (bundled)"
        if ocr_models == "ppocr-en":
            # Fetched by the model table (pinned URL and SHA-256) and handed over as files, so rapidocr
            # never downloads anything itself.
            local = fetch_english_models(models_dir)
            params.update(
                {
                    "Det.lang_type": LangDet.EN,
                    "Det.ocr_version": OCRVersion.PPOCRV4,
                    "Det.model_type": ModelType.MOBILE,
                    "Rec.lang_type": LangRec.EN,
                    "Rec.ocr_version": OCRVersion.PPOCRV4,
                    "Rec.model_type": ModelType.MOBILE,
                }
            )
            params.update({"Det.model_path": str(local["det"]), "Rec.model_path": str(local["rec"])})
            self.description = "rapidocr 3: en_PP-OCRv3_det_mobile + en_PP-OCRv4_rec_mobile"
        self.engine = RapidOCR(params=params)
        self.description += ON_GPU if self.on_gpu else ""

    def _init_v1(self, use_cuda: bool, ocr_models: str, detection: str = "rapidocr", normalization: str = "rapidocr"):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ImportError("the OCR backend needs rapidocr: pip install rapidocr onnxruntime") from exc
        if ocr_models != "ppocr-default":
            raise models.ModelUnavailable(
                f"OCR models '{ocr_models}' need rapidocr 3 (pip install 'rapidocr>=3' onnxruntime); "
                "rapidocr-onnxruntime 1.x has only its bundled models (ocr_models='ppocr-default')"
            )
        if normalization != "rapidocr":
            raise OptionError("det_normalization needs rapidocr 3 (pip install 'rapidocr>=3' onnxruntime)")
        self.v3 = False
        options: dict[str, Any] = {f"det_{key}": value for key, value in DETECTION[detection].items()}
        self.on_gpu = onnx_cuda(use_cuda)
        if self.on_gpu:
            options.update({"det_use_cuda": True, "cls_use_cuda": True, "rec_use_cuda": True})
        self.engine = RapidOCR(**options)
        self.description = "rapidocr-onnxruntime 1.x: PP-OCRv4 Chinese+English det + rec (bundled)"
        self.description += ON_GPU if self.on_gpu else ""

    def __call__(self, image_rgb: np.ndarray, min_score: float) -> list[Detection]:
        image = _engine_input(image_rgb, self.channel_order)
        if self.v3:
            out = self.engine(image, text_score=min_score)
            if out.boxes is None or out.txts is None:
                return []
            return [
                (np.asarray(points, dtype=np.float32).reshape(4, 2), str(label), float(score))
                for points, label, score in zip(out.boxes, out.txts, out.scores)
            ]
        result, _ = self.engine(image, use_cls=self.angle_classifier, text_score=min_score)
        return [
            (np.asarray(points, dtype=np.float32).reshape(4, 2), str(label), float(score))
            for points, label, score in (result or [])
        ]


class _PaddleOcr:
    """PaddleOCR itself (2.x ``ocr()`` or 3.x ``predict()``); its models download on first use."""

    description = "PaddleOCR (its default models)"

    def __init__(
        self,
        use_cuda: bool,
        ocr_models: str = "ppocr-default",
        models_dir=None,
        detection: str = "",
        *,
        normalization: str = "",
        angle_classifier: bool = True,
        channel_order: str = "bgr",
        device_index: int = 0,  # PaddleOCR picks its own GPU
    ):
        # ``detection`` and ``normalization`` are taken for the engines' common signature: PaddleOCR
        # uses its own settings (ImageNet statistics).
        self.channel_order = channel_order
        self.angle_classifier = angle_classifier
        if ocr_models != "ppocr-default":
            raise OptionError(f"ocr_models '{ocr_models}' is for the rapidocr backend; PaddleOCR uses its own")
        try:
            import paddleocr
        except ImportError as exc:
            raise ImportError("backend 'paddleocr' is not installed: pip install vemoclap[paddle]") from exc
        self.v3 = int(str(getattr(paddleocr, "__version__", "3")).split(".")[0]) >= 3
        if self.v3:
            self.engine = paddleocr.PaddleOCR(
                use_doc_orientation_classify=False,
                use_doc_unwarping=False,
                use_textline_orientation=angle_classifier,
                device="gpu" if use_cuda else "cpu",
            )
        else:
            self.engine = paddleocr.PaddleOCR(use_angle_cls=angle_classifier, show_log=False, use_gpu=use_cuda)

    def __call__(self, image_rgb: np.ndarray, min_score: float) -> list[Detection]:
        image = _engine_input(image_rgb, self.channel_order)
        found: list[Detection] = []
        if self.v3:
            for page in self.engine.predict(image):
                for poly, label, score in zip(page["rec_polys"], page["rec_texts"], page["rec_scores"]):
                    found.append((np.asarray(poly, dtype=np.float32).reshape(-1, 2)[:4], str(label), float(score)))
        else:
            for page in self.engine.ocr(image, cls=self.angle_classifier) or []:
                for poly, (label, score) in page or []:
                    found.append((np.asarray(poly, dtype=np.float32).reshape(4, 2), str(label), float(score)))
        return [d for d in found if d[2] >= min_score]


def _engine_input(image_rgb: np.ndarray, channel_order: str) -> np.ndarray:
    """The array the engine (which reads arrays as OpenCV BGR) is handed: the frame in BGR, or
    ("rgb") the RGB frame as it is, as the reference handed it."""
    if channel_order == "rgb":
        return np.ascontiguousarray(image_rgb)
    return np.ascontiguousarray(image_rgb[..., ::-1])


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


@dataclass(frozen=True)
class Options:
    # reading the text (rapidocr's PP-OCR models)
    backend: str = "rapidocr"  # one of BACKENDS
    ocr_models: str = "ppocr-default"  # one of OCR_MODELS
    detection: str = "rapidocr"  # text-detection settings, one of DETECTION
    det_normalization: str = "rapidocr"  # the detector's input mean/std, one of DET_NORMALIZATION
    channel_order: str = "bgr"  # what the engine is handed, one of CHANNEL_ORDERS ("rgb": the reference's quirk)
    angle_classifier: bool = True  # rapidocr's text-direction (0/180°) classifier; the reference ran none
    text_unit: str = "line"  # one of TEXT_UNITS: what one piece of text is
    merge_lines: bool = True  # boxes on one line become one line
    min_confidence: float = 0.5  # recognition confidence below which a box is dropped
    skip_similar: float = 2.0  # a frame this close to a read one (thumbnail distance) reuses its text
    max_lines: int = 128  # unique units through the text models, at most (the sentiment model reads 512 tokens)
    lowercase: bool = False
    # language id and translation to English
    langid_threshold: float = text.LANGUAGE_THRESHOLD
    langid_max_tokens: int = 128
    chinese_code: str = "zho_Hans"  # NLLB's code for Chinese, one of CHINESE_CODES
    # spelling
    spelling: str = "tokens"  # one of SPELLING
    spell_check: bool | None = None  # T5 spelling fix (None: on CUDA only)
    spell_max_new_tokens: int | None = 128  # T5's output cap (also 2n+16); None: generate(max_length=512)
    spell_truncation: bool = True  # T5's input cut at 512 tokens; False: read whole, as the reference did
    dedup_english: bool = False  # repeats dropped after translation and spelling (the reference's dict.fromkeys)
    int8_decoders: bool = False  # NLLB and T5 with int8 weights (CPU only)
    # old names
    min_score: float | None = None  # of min_confidence
    language_threshold: float | None = None  # of langid_threshold


class OcrSentimentExtractor(Extractor):
    name = "ocr_sentiment"
    inputs = ("frames",)
    output_type = OcrOutput

    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        for option, value, choices in (
            ("backend", o.backend, BACKENDS),
            ("ocr_models", o.ocr_models, OCR_MODELS),
            ("detection", o.detection, tuple(DETECTION)),
            ("det_normalization", o.det_normalization, tuple(DET_NORMALIZATION)),
            ("channel_order", o.channel_order, CHANNEL_ORDERS),
            ("text_unit", o.text_unit, TEXT_UNITS),
            ("spelling", o.spelling, SPELLING),
            ("chinese_code", o.chinese_code, CHINESE_CODES),
        ):
            if value not in choices:
                raise OptionError(f"unknown OCR {option} '{value}'; choose from {', '.join(choices)}")
        self.backend = o.backend
        self.ocr_models = o.ocr_models
        self.detection = o.detection
        self.engine_settings = {
            "normalization": o.det_normalization,
            "angle_classifier": bool(o.angle_classifier),
            "channel_order": o.channel_order,
        }
        self.text_unit = o.text_unit
        self.lowercase = bool(o.lowercase)
        self.min_confidence = float(o.min_confidence if o.min_score is None else o.min_score)
        self.langid_threshold = float(o.langid_threshold if o.language_threshold is None else o.language_threshold)
        self.langid_max_tokens = int(o.langid_max_tokens)
        self.spelling = o.spelling
        self.chinese_code = o.chinese_code
        self.spell_check = o.spell_check
        if o.int8_decoders and self.device.type != "cpu":
            raise OptionError("int8_decoders is for the CPU (int8 weights through torch's dynamic quantization)")
        self.int8_decoders = bool(o.int8_decoders)
        self.merge_lines = o.merge_lines
        self.skip_similar = o.skip_similar
        self.max_lines = o.max_lines
        self.dedup_english = bool(o.dedup_english)
        if o.spell_max_new_tokens is not None and int(o.spell_max_new_tokens) < 1:
            raise OptionError(f"spell_max_new_tokens must be at least 1 (or None), not {o.spell_max_new_tokens}")
        self.spell_limits = {"max_new_tokens": o.spell_max_new_tokens, "truncation": bool(o.spell_truncation)}

    def needed_models(self) -> dict[str, str | None]:
        keys = ["language_id", "translation", "sentiment"]
        if self.spelling != "none" and self.spell_check is not False:
            keys.append("spell")
        if self._english_pair():
            keys += ENGLISH_MODELS.values()
        return {key: None for key in keys}

    def optional_models(self) -> set[str]:
        asked = self.spell_check or self.spelling == "segment+t5"
        optional = set() if asked else {"spell"}  # "auto" corrects spelling only where the model is there
        if self._english_pair():  # without them the bundled models read the text (a named deviation)
            optional |= set(ENGLISH_MODELS.values())
        return optional

    def _english_pair(self) -> bool:
        return self.backend == "rapidocr" and self.ocr_models == "ppocr-en"

    def _load(self) -> None:
        use_cuda = self.device.type == "cuda"
        engine_cls = _RapidOcr if self.backend == "rapidocr" else _PaddleOcr
        models_dir = self.models_dir
        settings = dict(self.engine_settings, device_index=self.device.index or 0)
        tag = ":".join(str(value) for value in settings.values())
        try:
            self.engine = shared_model(
                f"ocr:{self.backend}:{self.ocr_models}:{self.detection}:{tag}",
                self.device,
                None,
                models_dir,
                lambda: engine_cls(use_cuda, self.ocr_models, models_dir, self.detection, **settings),
            )
        except models.ModelUnavailable as exc:
            if self.ocr_models == "ppocr-default":
                raise
            # The English pair needs a download (or rapidocr 3); the bundled models still read text,
            # and the output says which models ran instead.
            log.warning("OCR: %s; using the bundled models instead", one_line(exc))
            self.engine = shared_model(
                f"ocr:{self.backend}:ppocr-default:{self.detection}:{tag}",
                self.device,
                None,
                models_dir,
                lambda: engine_cls(use_cuda, "ppocr-default", models_dir, self.detection, **settings),
            )
            self.engine_note = f"{self.ocr_models} unavailable ({one_line(exc, limit=400)})"
        args = (self.device, self.dtype, self.models_dir)
        generating = (self.device, text.INT8 if self.int8_decoders else self.dtype, self.models_dir)
        self.language_id = text.load(LanguageIdentifier, *args)
        self.translator = text.load(Translator, *generating)
        self.segmenter = text.load(WordSegmenter, *args) if self.spelling != "none" else None
        self.sentiment = text.load(SentimentModel, *args)
        self.speller: SpellCorrector | None = None
        if self.spelling == "none":
            return
        if self.spelling == "segment+t5":
            wanted = self.spell_check is not False  # the reference always corrected
        else:
            wanted = use_cuda if self.spell_check is None else self.spell_check
        if wanted:
            try:
                self.speller = text.load(SpellCorrector, *generating)
            except models.ModelUnavailable as exc:
                if self.spell_check or self.spelling == "segment+t5":  # asked for: the caller must know
                    raise
                log.warning("spelling correction skipped: %s", exc)

    # -- OCR over frames -----------------------------------------------------------------------
    def read_frames(self, clip: Clip) -> tuple[list[OcrLine], int, int]:
        """Every box kept in every frame (lines, or the frame's boxes in frame mode), plus (frames read,
        frames reused)."""
        lines: list[OcrLine] = []
        previous: tuple[np.ndarray, list[Detection]] | None = None
        read = reused = 0
        for index, (image, timestamp) in enumerate(zip(clip.frames.images, clip.frames.timestamps)):
            thumb = _thumbnail(image) if self.skip_similar > 0 else None
            if previous is not None and thumb is not None and np.abs(thumb - previous[0]).mean() < self.skip_similar:
                detections = previous[1]
                reused += 1
            else:
                detections = self.engine(image, self.min_confidence)
                # Frame mode keeps the engine's boxes as the reference joined them.
                if self.merge_lines and self.text_unit == "line":
                    detections = merge_rows(detections)
                read += 1
                if thumb is not None:
                    previous = (thumb, detections)
            for points, label, score in detections:
                label = " ".join(label.split())
                if self.lowercase:
                    label = label.lower()
                if score >= self.min_confidence and any(ch.isalnum() for ch in label):
                    box = [[int(round(float(x))), int(round(float(y)))] for x, y in points]
                    lines.append(OcrLine(index, float(timestamp), box, label, score))
        return lines, read, reused

    @staticmethod
    def frame_texts(lines: list[OcrLine]) -> list[tuple[int, str]]:
        """(frame index, its kept boxes joined by a space) for every frame with text, in order."""
        per_frame: dict[int, list[str]] = {}
        for line in lines:
            per_frame.setdefault(line.frame_index, []).append(line.text)
        return [(index, " ".join(texts)) for index, texts in per_frame.items()]

    @staticmethod
    def unique(lines: list[OcrLine]) -> list[str]:
        """Unique lines in order of first appearance; each keeps its most confident spelling."""
        best: dict[str, OcrLine] = {}  # replacing a value keeps the key's place: first appearance
        for line in lines:
            key = normalize(line.text)
            if key not in best or line.score > best[key].score:
                best[key] = line
        return [line.text for line in best.values()]

    @staticmethod
    def unique_strings(strings: list[str]) -> list[str]:
        """Unique strings in order of first appearance (whitespace and case folded for the comparison)."""
        seen: dict[str, str] = {}
        for string in strings:
            seen.setdefault(normalize(string), string)
        return list(seen.values())

    # -- text chain ----------------------------------------------------------------------------
    def to_english(self, unique: list[str]) -> tuple[list[str], list[str], list[float]]:
        """(English units, language per unit, language probability per unit); every model step runs
        batched over all the units that need it."""
        identified = self.language_id.identify(
            unique, threshold=self.langid_threshold, batch_size=self.batch_size, max_length=self.langid_max_tokens
        )
        languages = [code or UNKNOWN_LANGUAGE for code, _ in identified]
        scores = [score for _, score in identified]
        english = list(unique)
        translated: set[int] = set()
        for language in sorted(set(languages)):
            if language in ("en", UNKNOWN_LANGUAGE) or not Translator.supports(language):
                continue
            where = [i for i, code in enumerate(languages) if code == language]
            code = self.chinese_code if language == "zh" else None
            for i, result in zip(
                where,
                self.translator.translate([unique[i] for i in where], language, batch_size=self.batch_size, code=code),
            ):
                english[i] = result
                translated.add(i)
        if self.spelling == "segment+t5":
            # The reference: English/unknown strings segmented whole, then T5; translations untouched.
            where = [i for i in range(len(english)) if i not in translated]
            for i in where:
                english[i] = self.segmenter.segment_text(english[i])
            if self.speller is not None and where:
                for i, fixed in zip(where, self._correct([english[i] for i in where])):
                    english[i] = fixed
        elif self.spelling == "tokens":
            english = [self.segmenter.segment(line) for line in english]
            if self.speller is not None:
                where = [i for i, line in enumerate(english) if _mostly_latin(line)]
                for i, fixed in zip(where, self._correct([english[i] for i in where])):
                    english[i] = fixed
        return english, languages, scores

    def _correct(self, strings: list[str]) -> list[str]:
        return self.speller.correct(strings, batch_size=self.batch_size, **self.spell_limits)

    def _run(self, clip: Clip) -> OcrOutput:
        lines, read, reused = self.read_frames(clip)
        per_frame = [string for _, string in self.frame_texts(lines)]
        unique = self.unique_strings(per_frame) if self.text_unit == "frame" else self.unique(lines)
        if not unique:
            raise Missing(f"no text found in {len(clip.frames)} frames")
        if len(unique) > self.max_lines:
            log.info("OCR found %d unique %ss; using the first %d", len(unique), self.text_unit, self.max_lines)
            unique = unique[: self.max_lines]
        english, languages, scores = self.to_english(unique)
        kept = [line.strip() for line in english if line.strip()]
        if self.dedup_english:  # strings that translation and spelling made equal are read once
            kept = list(dict.fromkeys(kept))
        if not kept:
            raise Missing("the text found gave no English words")
        joined = ". ".join(kept)
        scored = self.sentiment(joined)
        return OcrOutput(
            feature=scored.feature[None, :],
            lines=lines,
            unique_lines=unique,
            languages=languages,
            language_scores=scores,
            english_lines=english,
            english_text=joined,
            sentiment=scored.sentiment,
            frames_read=read,
            frames_reused=reused,
            backend=self.backend,
            ocr_models=getattr(self.engine, "description", self.backend)
            + (f"; instead of {self.engine_note}" if getattr(self, "engine_note", None) else "")
            + ("; NLLB and T5 with int8 weights" if self.int8_decoders else ""),
            text_unit=self.text_unit,
            frame_texts=per_frame,
        )
