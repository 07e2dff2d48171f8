"""One registration per extractor: its name, its class, the models it loads and the fusion feature it
fills. Everything else derives from this table: the extractor lookup (``vemoclap.extractors``), the
fusion feature specs (``vemoclap.fusion.FEATURES``), the default extractor set, training's default
features and the "used by" column of ``vemoclap models``. Adding an extractor means its own module
plus one entry here (and a row in ``vemoclap.models.MODELS`` for a model nobody loads yet).

This module imports nothing heavy: it is read by ``import vemoclap``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dim: int  # width of one row
    length: int  # rows the classifier sees (sequences are padded / trimmed to it)
    sequence: bool  # True: one row per frame / audio chunk; False: one vector per video
    description: str = ""


@dataclass(frozen=True)
class Registration:
    name: str  # the extractor's name, also its output's name
    target: str  # "module:Class"
    models: tuple[str, ...]  # keys of vemoclap.models.MODELS it loads
    feature: FeatureSpec | None = None  # the fusion feature it fills (None: readable output only)
    default: bool = True  # part of the reference's set, run unless told otherwise
    reads: tuple[str, ...] = ()  # extractors whose outputs it uses when they ran first (see run_order)


def _sequence(name: str, dim: int, description: str) -> FeatureSpec:
    return FeatureSpec(name, dim, 16, True, description)


def _single(name: str, description: str) -> FeatureSpec:
    return FeatureSpec(name, 768, 1, False, description)


# In the order the reference runs them.
EXTRACTORS: dict[str, Registration] = {
    reg.name: reg
    for reg in [
        Registration(
            "clip",
            "vemoclap.extractors.clip:ClipExtractor",
            ("clip",),
            _sequence("clip", 512, "CLIP ViT-B/32 image embedding per frame"),
        ),
        Registration(
            "beats",
            "vemoclap.extractors.beats:BeatsExtractor",
            ("beats",),
            _sequence("beats", 768, "BEATs embedding per 3-s audio chunk"),
        ),
        Registration(
            "face_emotion",
            "vemoclap.extractors.faces:FaceEmotionExtractor",
            ("face_expression", "yolo_face"),
            _sequence("face_emotion", 768, "facial-expression ViT CLS feature per frame with a face"),
        ),
        Registration(
            "asr_sentiment",
            "vemoclap.extractors.asr:AsrSentimentExtractor",
            ("whisper", "sentiment"),
            _single("asr_sentiment", "RoBERTa sentiment CLS feature of the transcript"),
        ),
        Registration(
            "ocr_sentiment",
            "vemoclap.extractors.ocr:OcrSentimentExtractor",
            ("language_id", "translation", "spell", "sentiment"),
            _single("ocr_sentiment", "RoBERTa sentiment CLS feature of the on-screen text"),
        ),
        # Reads CLIP's rows (CLIPCap captions an embedding already made) and the face and OCR boxes
        # (the reference captioned the frame with the most of them).
        Registration(
            "caption",
            "vemoclap.extractors.caption:CaptionExtractor",
            ("caption",),
            reads=("clip", "face_emotion", "ocr_sentiment"),
        ),
        # Not in the reference set: an alternative audio feature (use it instead of beats).
        Registration(
            "ast",
            "vemoclap.extractors.audio_spectrogram:AstExtractor",
            ("ast",),
            _sequence("ast", 768, "AST embedding per 3-s audio chunk"),
            default=False,
        ),
    ]
}

DEFAULT_EXTRACTORS: tuple[str, ...] = tuple(name for name, reg in EXTRACTORS.items() if reg.default)

FEATURES: dict[str, FeatureSpec] = {reg.feature.name: reg.feature for reg in EXTRACTORS.values() if reg.feature}

DEFAULT_FEATURES: tuple[str, ...] = tuple(
    EXTRACTORS[name].feature.name for name in DEFAULT_EXTRACTORS if EXTRACTORS[name].feature
)


def run_order(names) -> list[str]:
    """``names`` in the order given, except that the extractors one reads are moved ahead of it."""
    names = list(dict.fromkeys(names))
    order: list[str] = []

    def place(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in order or name in seen:
            return
        reg = EXTRACTORS.get(name)
        for earlier in reg.reads if reg else ():
            if earlier in names:
                place(earlier, seen + (name,))
        order.append(name)

    for name in names:
        place(name)
    return order


def used_by(model_key: str) -> list[str]:
    """The extractors that load the model ``model_key``."""
    return [name for name, reg in EXTRACTORS.items() if model_key in reg.models]
