"""One registration per extractor: the only description of it.

A row names the extractor's class (its module also defines the extractor's ``Options``, a frozen
dataclass of every option it takes), the models it loads, the fusion feature it fills, whether it
runs by default, whether it is an input of the reference classifier, the extractors whose outputs it
reads, and the builders of its tiny random models. Everything else is derived from the live table
when asked: the extractor lookup (``vemoclap.extractors``), the fusion feature specs, the default
extractor set, the reference classifier's inputs, the tiny models and the "used by" column of
``vemoclap models``. Adding an extractor means its own module, one row here (or a call to
:func:`register`), a row in ``vemoclap.models.MODELS`` for each new model and a tiny builder.

This module imports nothing heavy: it is read by ``import vemoclap``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dim: int  # width of one row
    length: int  # rows the classifier sees (sequences are padded / trimmed to it)
    sequence: bool  # True: one row per frame / audio chunk; False: one vector per video
    description: str = ""
    spoken: str = ""  # how the report names the input ("the faces"); empty: its name


@dataclass(frozen=True)
class Registration:
    name: str  # the extractor's name, also its output's name
    target: str  # "module:Class"; the module also defines the extractor's Options dataclass
    models: tuple[str, ...]  # keys of vemoclap.models.MODELS it loads
    feature: FeatureSpec | None = None  # the fusion feature it fills (None: readable output only)
    run_by_default: bool = True  # run unless the user names the extractors
    # One of the reference classifier's inputs. Its checkpoint fixes them, so this is not the same
    # as running by default: a new default extractor must not change what that classifier reads.
    reference_input: bool = False
    reads: tuple[str, ...] = ()  # extractors whose outputs it uses when they ran first (see run_order)
    tiny: tuple[str, ...] = ()  # "module:function" builders writing tiny random versions of its models

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    def load(self) -> type:
        """The extractor class (importing its module)."""
        return _resolve(self.target)

    def options_type(self) -> type:
        """The frozen dataclass of the options the extractor takes (its module's ``Options``)."""
        return _resolve(f"{self.module}:Options")


def _resolve(target: str) -> Any:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _sequence(name: str, dim: int, description: str, spoken: str) -> FeatureSpec:
    return FeatureSpec(name, dim, 16, True, description, spoken)


def _single(name: str, description: str, spoken: str) -> FeatureSpec:
    return FeatureSpec(name, 768, 1, False, description, spoken)


# In the order the reference runs them.
EXTRACTORS: dict[str, Registration] = {
    reg.name: reg
    for reg in [
        Registration(
            "clip",
            "vemoclap.extractors.clip:ClipExtractor",
            ("clip",),
            _sequence("clip", 512, "CLIP ViT-B/32 image embedding per frame", "the picture"),
            reference_input=True,
            tiny=("vemoclap.tiny.vision:build_clip_models",),
        ),
        Registration(
            "beats",
            "vemoclap.extractors.beats:BeatsExtractor",
            ("beats",),
            _sequence("beats", 768, "BEATs embedding per 3-s audio chunk", "the audio"),
            reference_input=True,
            tiny=("vemoclap.tiny.audio:build_beats_models",),
        ),
        Registration(
            "face_emotion",
            "vemoclap.extractors.faces:FaceEmotionExtractor",
            ("face_expression", "yolo_face"),
            _sequence("face_emotion", 768, "facial-expression ViT CLS feature per frame with a face", "the faces"),
            reference_input=True,
            tiny=("vemoclap.tiny.vision:build_face_models",),
        ),
        Registration(
            "asr_sentiment",
            "vemoclap.extractors.asr:AsrSentimentExtractor",
            ("whisper", "whisper_ct2", "sentiment"),
            _single("asr_sentiment", "RoBERTa sentiment CLS feature of the transcript", "the transcript"),
            reference_input=True,
            tiny=("vemoclap.tiny.text:build_sentiment_models", "vemoclap.tiny.text:build_whisper_models"),
        ),
        Registration(
            "ocr_sentiment",
            "vemoclap.extractors.ocr:OcrSentimentExtractor",
            ("language_id", "translation", "spell", "sentiment"),
            _single("ocr_sentiment", "RoBERTa sentiment CLS feature of the on-screen text", "the on-screen text"),
            reference_input=True,
            tiny=("vemoclap.tiny.text:build_sentiment_models", "vemoclap.tiny.text:build_ocr_text_models"),
        ),
        # Reads CLIP's rows (CLIPCap captions an embedding already made) and the face and OCR boxes
        # (the reference captioned the frame with the most of them).
        Registration(
            "caption",
            "vemoclap.extractors.caption:CaptionExtractor",
            ("caption",),
            reads=("clip", "face_emotion", "ocr_sentiment"),
            tiny=("vemoclap.tiny.vision:build_caption_models", "vemoclap.tiny.clipcap:build"),
        ),
        # Not in the reference set: an alternative audio feature (use it instead of beats).
        Registration(
            "ast",
            "vemoclap.extractors.audio_spectrogram:AstExtractor",
            ("ast",),
            _sequence("ast", 768, "AST embedding per 3-s audio chunk", "the audio"),
            run_by_default=False,
            tiny=("vemoclap.tiny.audio:build_ast_models",),
        ),
    ]
}


def register(registration: Registration) -> None:
    """Add (or replace) an extractor's row at run time; it shows up everywhere the table is read."""
    EXTRACTORS[registration.name] = registration


def unregister(name: str) -> None:
    EXTRACTORS.pop(name, None)


def default_extractors() -> tuple[str, ...]:
    """The extractors run when none are named."""
    return tuple(name for name, reg in EXTRACTORS.items() if reg.run_by_default)


def feature_specs() -> dict[str, FeatureSpec]:
    """Fusion feature name → its spec, for every registered extractor that fills one."""
    return {reg.feature.name: reg.feature for reg in EXTRACTORS.values() if reg.feature}


def reference_features() -> tuple[str, ...]:
    """The reference classifier's inputs (fixed by its checkpoint), in registry order."""
    return tuple(reg.feature.name for reg in EXTRACTORS.values() if reg.reference_input and reg.feature)


def tiny_builders() -> tuple[str, ...]:
    """Every registered tiny-model builder ("module:function"), each once, in registry order."""
    return tuple(dict.fromkeys(target for reg in EXTRACTORS.values() for target in reg.tiny))


def load_builder(target: str):
    return _resolve(target)


class _LiveFeatures(Mapping):
    """:func:`feature_specs` as a mapping read at each use, so a row registered later is in it."""

    def __getitem__(self, name: str) -> FeatureSpec:
        return feature_specs()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(feature_specs())

    def __len__(self) -> int:
        return len(feature_specs())

    def __repr__(self) -> str:
        return f"FEATURES({feature_specs()!r})"


FEATURES: Mapping[str, FeatureSpec] = _LiveFeatures()


# The shortcuts the CLI, the app and training take for the options users change most:
# shortcut → (extractor, option).
SHORTCUTS: dict[str, tuple[str, str]] = {
    "whisper_model": ("asr_sentiment", "whisper_model"),
    "face_detector": ("face_emotion", "detector"),
}


def with_shortcuts(
    extractor_options: Mapping[str, Mapping[str, Any]] | None = None, names=None, **shortcuts: Any
) -> dict[str, dict[str, Any]]:
    """A copy of ``extractor_options`` (extractor → options) with each shortcut given (not None)
    written into its extractor's options; with ``names``, only for the extractors among them."""
    options = {name: dict(opts) for name, opts in (extractor_options or {}).items()}
    for shortcut, value in shortcuts.items():
        extractor, option = SHORTCUTS[shortcut]
        if value and (names is None or extractor in names):
            options.setdefault(extractor, {})[option] = value
    return options


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
