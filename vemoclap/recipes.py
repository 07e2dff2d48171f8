"""Feature recipes: named, versioned sets of extraction settings that a classifier declares.

A classifier predicts well only on features made the way its training features were made. A
:class:`Recipe` holds every setting that changes a feature: frame sampling, each extractor's
options (fields of its ``Options``), and precision. A checkpoint's config names its
recipe (``recipe`` key); the :class:`~vemoclap.pipeline.Analyzer` builds its extractors from it.

Two recipes: ``reference`` (the reference app's extraction, as closely as these libraries allow;
see docs/parity.md for every row and what is still provisional) and ``vemoclap`` (this project's
own settings). :meth:`Recipe.resolve` turns a recipe into the one actually run on a device — e.g.
a smaller Whisper on a CPU — and lists each change as a named :class:`Deviation`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import OptionError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "auto")  # auto: the extractor's own default (fp16 on CUDA where safe)
CLASSIFIER_PRECISIONS = ("fp32", "fp16-autocast")
CPU_WHISPER = "small"  # what a CPU-only run uses instead of a large Whisper, unless told otherwise
# What "fp32" means for Whisper on a CPU, by backend (compute_type "auto" of the ASR extractor).
CPU_WHISPER_PRECISION = "; faster-whisper runs int8 (CTranslate2's CPU default), openai-whisper fp32"
_LARGE_WHISPERS = ("large", "large-v1", "large-v2", "large-v3", "large-v3-turbo", "turbo")


@dataclass
class FrameSettings:
    """How frames are sampled (by default n equal segments of the decoded stream, one frame each; see
    ``positions``) and how the audio track is brought to 16 kHz mono."""

    n_frames: int = 16
    # "centre": the frame on screen at each segment's centre (k + 0.5)·D/n, D the video stream's extent;
    # "fps-filter": FFmpeg's fps=n/D_container, as the reference (earlier frame on a tie, n ± 1 frames);
    # "scenes": each scene's middle frame, as the training-era repository (TRAINING_ERA_SAMPLER)
    positions: str = "centre"
    tolerance: float = 0.0  # fraction of a segment a frame may be off its position
    short_side: int | None = 360
    upscale: bool = True  # small videos are enlarged to short_side
    max_long_side: int | None = 1920  # caps on the resized frame (hostile aspect ratios)
    max_pixels: int | None = 1920 * 1080
    random_when_training: bool = True  # training draws random rows per segment
    size_rounding: str = "round"  # "truncate": the long side is int(long / short · short_side), as the reference
    # the audio track (read with the frames): "swresample" (FFmpeg's resampler and downmix) or "sinc"
    # (native rate, plain channel mean, Hann-windowed sinc of width 6 to 16 kHz: the reference's torchaudio)
    audio_resampler: str = "swresample"

    def media_options(self) -> dict[str, Any]:
        """Keyword arguments for ``media.sample_frames`` (beside ``n``, ``random`` and ``seed``)."""
        return {
            "short_side": self.short_side,
            "upscale": self.upscale,
            "tolerance": self.tolerance,
            "max_long_side": self.max_long_side,
            "max_pixels": self.max_pixels,
            "positions": self.positions,
            "size_rounding": self.size_rounding,
            "audio_resampler": self.audio_resampler,
        }


@dataclass
class Deviation:
    """One setting run differently from the recipe, and why."""

    setting: str  # e.g. "asr_sentiment.whisper_model"
    wanted: Any
    used: Any
    reason: str

    def line(self) -> str:
        return f"{self.setting}: {self.wanted!r} → {self.used!r} ({self.reason})"


@dataclass
class Recipe:
    name: str
    version: int
    description: str = ""
    frames: FrameSettings = field(default_factory=FrameSettings)
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)  # extractor → constructor options
    precision: dict[str, str] = field(default_factory=dict)  # extractor → fp32|fp16|auto; "classifier"
    notes: list[str] = field(default_factory=list)  # known differences from what it reproduces
    deviations: list[Deviation] = field(default_factory=list)  # filled by resolve() / the Analyzer

    def __post_init__(self) -> None:
        for name, value in self.precision.items():
            allowed = CLASSIFIER_PRECISIONS if name == "classifier" else PRECISIONS
            if value not in allowed:
                raise OptionError(
                    f"recipe '{self.name}': precision of {name} is '{value}'; choose from {', '.join(allowed)}"
                )

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def classifier_precision(self) -> str:
        return self.precision.get("classifier", "fp32")

    def options_for(self, extractor: str, device_type: str = "cpu") -> dict[str, Any]:
        """Constructor options of one extractor: its recipe options plus ``half`` from precision."""
        options = dict(self.extractors.get(extractor, {}))
        precision = self.precision.get(extractor, "auto")
        if precision != "auto":
            options["half"] = precision == "fp16" and device_type == "cuda"
        return options

    # ---- the recipe actually run ------------------------------------------------------------
    def resolve(
        self,
        device: str = "auto",
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        cpu_whisper: str | None = CPU_WHISPER,
    ) -> "Recipe":
        """A copy with the user's ``overrides`` (extractor → options) applied and the changes a
        CPU-only ``device`` needs (a large Whisper becomes ``cpu_whisper``; fp16 becomes fp32),
        each recorded in ``deviations``. ``cpu_whisper=None`` (or giving ``whisper_model``)
        keeps the recipe's Whisper."""
        resolved = copy.deepcopy(self)
        device_type = _device_type(device)
        for extractor, options in (overrides or {}).items():
            target = resolved.extractors.setdefault(extractor, {})
            for key, value in options.items():
                if key in target and target[key] != value:
                    resolved.deviations.append(Deviation(f"{extractor}.{key}", target[key], value, "set by the user"))
                target[key] = value
        asr = resolved.extractors.get("asr_sentiment", {})
        whisper = str(asr.get("whisper_model", ""))
        user_whisper = "whisper_model" in (overrides or {}).get("asr_sentiment", {})
        if device_type != "cuda" and cpu_whisper and whisper in _LARGE_WHISPERS and not user_whisper:
            asr["whisper_model"] = cpu_whisper
            resolved.deviations.append(
                Deviation(
                    "asr_sentiment.whisper_model",
                    whisper,
                    cpu_whisper,
                    f"no GPU: Whisper {whisper} takes many minutes per minute of video on a CPU; "
                    f"pass --whisper-model {whisper} for full parity",
                )
            )
        for extractor, options in resolved.extractors.items():
            user_int8 = "int8_decoders" in (overrides or {}).get(extractor, {})
            if device_type == "cuda" and options.get("int8_decoders") is True:  # a recipe settled on a CPU
                options["int8_decoders"] = False
                resolved.deviations.append(
                    Deviation(f"{extractor}.int8_decoders", True, False, "int8 decoders are for the CPU; float32 here")
                )
            if device_type != "cuda" and options.get("int8_decoders") is False and not user_int8:
                options["int8_decoders"] = True
                resolved.deviations.append(
                    Deviation(
                        f"{extractor}.int8_decoders",
                        False,
                        True,
                        "no GPU: NLLB and T5 write text with int8 weights on a CPU (about 4× faster per token); "
                        f"extractor_options={{'{extractor}': {{'int8_decoders': False}}}} for float32",
                    )
                )
        if device_type != "cuda":
            for extractor, precision in resolved.precision.items():
                if precision == "fp16":
                    why = "no GPU" + (CPU_WHISPER_PRECISION if extractor == "asr_sentiment" else "")
                    resolved.deviations.append(Deviation(f"{extractor}.precision", "fp16", "fp32", why))
        return resolved

    def deviation_lines(self) -> list[str]:
        return [d.line() for d in self.deviations]

    def settled(self) -> "Recipe":
        """The settings as they were actually run, with no deviations left: what a classifier
        trained on this run's features should ask for. Each deviation is applied (a precision
        that fell back, an option the extractor did not take yet is dropped) and kept as a note."""
        settled = copy.deepcopy(self)
        for deviation in self.deviations:
            where, _, key = deviation.setting.partition(".")
            if key == "precision":
                settled.precision[where] = str(deviation.used)
            elif where in settled.extractors and not key and isinstance(deviation.wanted, Mapping):
                for name in deviation.wanted:  # the whole option set fell back to the defaults
                    settled.extractors[where].pop(name, None)
            elif where in settled.extractors and deviation.used == "default":
                settled.extractors[where].pop(key, None)
            elif where == "frames" and deviation.used == "default":
                setattr(settled.frames, key, getattr(FrameSettings(), key))
            settled.notes.append(f"features made with a deviation from {self.label}: {deviation.line()}")
        settled.deviations = []
        return settled

    def summary(self) -> str:
        text = f"recipe {self.label}"
        if self.deviations:
            text += f" with {len(self.deviations)} deviation(s): " + "; ".join(self.deviation_lines())
        return text

    # ---- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from ._util import to_jsonable

        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "Recipe":
        """A recipe from its dict; keys a newer vemoclap wrote and this one does not know are
        dropped with a warning (a checkpoint may be newer than the code reading it)."""
        value = _known(cls, value, "recipe")
        try:
            frames = FrameSettings(**_known(FrameSettings, value.pop("frames", {}) or {}, "recipe frames"))
            deviations = [Deviation(**dict(d)) for d in value.pop("deviations", []) or []]
            return cls(**value, frames=frames, deviations=deviations)
        except TypeError as exc:
            raise OptionError(f"not a recipe ({exc}); expected the keys of vemoclap.recipes.Recipe") from None


def _known(cls, value: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise OptionError(
            f"not a {what} (a {type(value).__name__}); expected the keys of vemoclap.recipes.{cls.__name__}"
        )
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - fields)
    if unknown:
        log.warning("%s: ignoring settings this version does not know: %s", what, ", ".join(map(str, unknown)))
    return {key: item for key, item in value.items() if key in fields}


def _device_type(device) -> str:
    if device in (None, "auto"):
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover - torch is a dependency
            return "cpu"
    return str(device).split(":")[0]


# ---- the registry ------------------------------------------------------------------------------

_REFERENCE_V1 = Recipe(
    name="reference",
    version=1,
    description="the reference app's extraction (VEMOCLAP, Sulun et al. 2024), for its trained classifier",
    frames=FrameSettings(tolerance=0.0, short_side=360, upscale=True, random_when_training=False),
    extractors={
        "beats": {"chunk_selection": "equidistant", "chunk_end": "inclusive", "silence": "embed"},
        "face_emotion": {"detector": "yolo", "min_face_size": 0, "conf": 0.6, "iou": 0.5},
        "asr_sentiment": {
            "whisper_model": "large-v3",
            "backend": "auto",
            "task": "translate",
            "long_form": "chunked",
            "chunk_s": 30,
            "stride_s": 5,
            "max_new_tokens": 128,
            "temperature_fallback": False,
            "no_speech_gating": False,
            "vad": False,
            # zeros only for an empty transcript: no length or loudness gate before Whisper
            # (-1000 dBFS: only exact digital silence counts as silent)
            "min_seconds": 0.0,
            "silence_dbfs": -1000.0,
        },
        "ocr_sentiment": {
            "ocr_models": "ppocr-en",
            "text_unit": "frame",
            "lowercase": True,
            "min_confidence": 0.75,
            "langid_threshold": 0.9,
            "langid_max_tokens": 512,
            "spelling": "segment+t5",
            "chinese_code": "zho_Hant",
            "int8_decoders": False,
        },
        "caption": {"captioner": "clipcap", "frame": "most-boxes"},
    },
    precision={
        "clip": "fp32",
        "beats": "fp32",
        "face_emotion": "fp32",
        "asr_sentiment": "fp16",
        "ocr_sentiment": "fp32",
        "caption": "fp32",
        "classifier": "fp32",
    },
    notes=[
        "beats chunk_selection 'equidistant' is provisional: the reference app keeps the indices 0…k of the "
        "chunk starts on tracks over ~27 s ('reference-indices'); the paper describes equidistant chunks, and "
        "the published features settle which one the checkpoint was trained on (vemoclap parity)",
        "beats chunk_end 'inclusive': a track of exactly 3.0 s gets its one chunk (the reference app crashes "
        "on it, so there is no reference feature to match); 'exclusive' reproduces the reference's starts",
        "face detector: YOLOv8-face (ultralytics) stands in for YOLOv5m-face, a pickled model that cannot be "
        "loaded safely",
        "asr_sentiment precision fp16 is Whisper's; the sentiment model shares the extractor's precision",
        "classifier fp32: the reference app ran it under fp16 autocast on a GPU; 'fp16-autocast' reproduces that",
        "attention heads: 4, as the reference app builds and the paper states; the checkpoint config's "
        "n_heads (8) is the training script's argparse default and is recorded, not trusted (docs/parity.md)",
    ],
)


# Each later version of the reference recipe as data: the options it changes ("extractor.option" or
# "frames.field" → value) and why. A checkpoint or feature file that names an older version gets that
# version's values from this table (`get_recipe("reference", version=2)`). An option added by a version
# has an extractor default that keeps the older behaviour, so a recipe dict written before it still means
# what it meant.
REFERENCE_CHANGES: dict[int, tuple[dict[str, Any], str]] = {
    2: (
        {"ocr_sentiment.detection": "paddleocr"},
        "v2: OCR text detection with PaddleOCR 2.x's settings (longer side at most 960 px, never enlarged), as "
        "the reference ran it; v1 used rapidocr's (shorter side brought to 736 px)",
    ),
    3: (
        {
            # -- ASR (Whisper with timestamps, silent tracks) --
            # return_timestamps=True: timestamp tokens count against the 128 per window, and windows are
            # merged by transformers' timestamp-aware merge (no new group at a change of language)
            "asr_sentiment.timestamps": True,
            # no loudness gate: even an all-zero (digitally silent) track goes to Whisper
            "asr_sentiment.silence_dbfs": None,
            # -- OCR (detector input, angle classifier, frame reuse, T5 limits, de-duplication) --
            "ocr_sentiment.det_normalization": "imagenet",  # PaddleOCR 2.x: ImageNet mean/std
            "ocr_sentiment.channel_order": "rgb",  # quirk: RGB frames to an engine that reads BGR
            "ocr_sentiment.angle_classifier": False,  # use_angle_cls=False
            "ocr_sentiment.skip_similar": 0.0,  # OCR on every frame
            "ocr_sentiment.spell_max_new_tokens": None,  # T5 generate(max_length=512)
            "ocr_sentiment.spell_truncation": False,  # T5 input not truncated
            "ocr_sentiment.dedup_english": True,  # list(dict.fromkeys(processed_texts)) before the join
            # -- frames, audio, caption frame --
            "frames.positions": "fps-filter",  # FFmpeg's fps=16/D_container: 15 frames + a zero row, ties earlier
            "frames.size_rounding": "truncate",  # int(w / h · 360)
            "frames.audio_resampler": "sinc",  # native rate, plain channel mean, torchaudio's sinc (Hann, width 6)
            "caption.frame": "faces-and-text",  # the reference prefers a frame with both faces and text
        },
        "v3: the reference app's extraction rule by rule (docs/parity.md)",
    ),
}


# The frame and chunk sampler of the reference's training-era repository (serkansulun/movie-genre-classification,
# preprocessing/src/extract_features.py `use_scenecuts = True`; video_utils.py `video_to_midscenes`;
# feature_extractors.py `AudioDataset`): each scene's middle frame (cuts where FFmpeg's scene score > 0.27) at
# native resolution, every 3-s BEATs chunk with starts before N − 3 s, then 16 equidistant rows of each
# feature. BEATs embeds each chunk alone, so embedding its 16 equidistant chunks gives exactly the 16
# equidistant rows of all of them. Whether the published features were made this way is what
# `vemoclap parity` measures (its "training-era scenes" setting).
TRAINING_ERA_SAMPLER: dict[str, Any] = {
    "frames.positions": "scenes",
    "frames.short_side": None,
    "beats.chunk_selection": "equidistant",
    "beats.chunk_end": "exclusive",
}


def _with_changes(recipe: Recipe, version: int, changes: Mapping[str, Any], note: str) -> Recipe:
    changed = copy.deepcopy(recipe)
    changed.version = version
    for setting, value in changes.items():
        where, key = setting.split(".", 1)
        if where == "frames":
            setattr(changed.frames, key, value)
        else:
            changed.extractors.setdefault(where, {})[key] = value
    changed.notes.append(note)
    return changed


def _versions(first: Recipe, changes: Mapping[int, tuple[Mapping[str, Any], str]]) -> dict[int, Recipe]:
    versions = {first.version: first}
    for version in sorted(changes):
        versions[version] = _with_changes(versions[max(versions)], version, *changes[version])
    return versions


REFERENCE_VERSIONS = _versions(_REFERENCE_V1, REFERENCE_CHANGES)
REFERENCE = REFERENCE_VERSIONS[max(REFERENCE_VERSIONS)]

VEMOCLAP = Recipe(
    name="vemoclap",
    version=1,
    description="vemoclap's own extraction settings, for classifiers trained with this project",
    frames=FrameSettings(tolerance=0.25, short_side=360, upscale=False, random_when_training=True),
    extractors={
        "beats": {"chunk_selection": "equidistant", "chunk_end": "inclusive", "silence": "missing"},
        "face_emotion": {"detector": "auto", "min_face_size": 20, "conf": 0.6, "iou": 0.5},
        "asr_sentiment": {
            "whisper_model": "auto",
            "backend": "auto",
            "task": "translate",
            "long_form": "sequential",
            "temperature_fallback": True,
            "no_speech_gating": True,
            "vad": False,
        },
        "ocr_sentiment": {
            "ocr_models": "ppocr-default",
            "text_unit": "line",
            "lowercase": False,
            "min_confidence": 0.5,
            "langid_threshold": 0.9,
            "langid_max_tokens": 128,
            "spelling": "tokens",
            "chinese_code": "zho_Hans",
        },
        "caption": {"captioner": "blip", "frame": "middle"},
    },
    precision={
        "clip": "auto",
        "beats": "auto",
        "face_emotion": "auto",
        "asr_sentiment": "auto",
        "ocr_sentiment": "auto",
        "caption": "auto",
        "classifier": "fp32",
    },
    notes=["today's settings: fp16 extractors on a GPU, frames within a quarter segment of the centre, never upscaled"],
)

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (REFERENCE, VEMOCLAP)}
DEFAULT_RECIPE = "vemoclap"  # with no classifier, or a checkpoint trained on our own features


def names() -> list[str]:
    return list(RECIPES)


VERSIONS: dict[str, dict[int, Recipe]] = {"reference": REFERENCE_VERSIONS, "vemoclap": {VEMOCLAP.version: VEMOCLAP}}


def get_recipe(recipe: "str | Recipe | Mapping[str, Any]", version: int | None = None) -> Recipe:
    """A recipe by name (a fresh copy; its newest version unless ``version`` is given), or a Recipe /
    its dict as is."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(recipe)
    name = str(recipe).strip().lower()
    if name not in RECIPES:
        raise OptionError(f"unknown feature recipe '{recipe}'; choose from {', '.join(RECIPES)}")
    if version is None:
        return copy.deepcopy(RECIPES[name])
    if version not in VERSIONS[name]:
        raise OptionError(
            f"feature recipe '{name}' has no version {version}; it has {', '.join(map(str, VERSIONS[name]))}"
        )
    return copy.deepcopy(VERSIONS[name][version])


def recipe_of_config(config) -> "str | dict[str, Any]":
    """The recipe a classifier config names (a name, or the whole recipe as a dict, which is what
    ``vemoclap train`` writes); without one, ``reference`` for a reference-layout checkpoint (the
    reference's five features at its widths) and ``vemoclap`` otherwise."""
    named = getattr(config, "recipe", None)
    if isinstance(named, Mapping) and named:
        return dict(named)
    if named:
        return str(named)
    from .registry import FEATURES, reference_features

    dims = dict(getattr(config, "feature_dims", {}) or {})
    if sorted(dims) == sorted(reference_features()) and all(dims[n] == FEATURES[n].dim for n in dims):
        return "reference"
    return DEFAULT_RECIPE


def choose(recipe=None, classifier=None) -> Recipe:
    """The recipe an Analyzer runs: the one given, else its classifier's, else ``vemoclap``."""
    if recipe is not None:
        return get_recipe(recipe)
    if classifier is not None:
        return get_recipe(recipe_of_config(classifier.config))
    return get_recipe(DEFAULT_RECIPE)


# ---- what an Analyzer runs ----------------------------------------------------------------------


@dataclass
class Plan:
    """The resolved recipe with each extractor's options and the frame-sampling keywords."""

    recipe: Recipe
    extractor_options: dict[str, dict[str, Any]]
    media_options: dict[str, Any]


def plan(
    recipe: Recipe,
    extractors,
    *,
    device="auto",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    n_frames: int | None = None,
    short_side: Any = "recipe",
) -> Plan:
    """Resolve ``recipe`` for ``device`` with the user's extractor ``overrides`` (and frame count
    / short side when given), and split it into constructor options. An option the extractor's
    ``Options`` does not have, the user's or the recipe's, is an OptionError naming the valid ones."""
    from .extractors import check

    overrides = {name: dict(opts) for name, opts in (overrides or {}).items()}
    for name in extractors:
        check(name, overrides.get(name, {}))
    resolved = recipe.resolve(device, overrides)
    running = set(extractors) | {"frames", "classifier"}  # a change to an extractor that does not run is none
    resolved.deviations = [d for d in resolved.deviations if d.setting.split(".")[0] in running]
    device_type = _device_type(device)
    for key, value in (("n_frames", n_frames), ("short_side", short_side)):
        if value not in (None, "recipe") or (key == "short_side" and value is None):
            if getattr(resolved.frames, key) != value:
                resolved.deviations.append(
                    Deviation(f"frames.{key}", getattr(resolved.frames, key), value, "set by the user")
                )
            setattr(resolved.frames, key, value)
    options = {name: resolved.options_for(name, device_type) for name in extractors}
    for name, given in options.items():
        try:
            check(name, given)
        except OptionError as exc:
            raise OptionError(f"recipe {resolved.label}: {exc}") from None
    for deviation in resolved.deviations:
        log.info("recipe %s: %s", resolved.label, deviation.line())  # said once, in the report
    media_options = resolved.frames.media_options()
    return Plan(resolved, options, media_options)


__all__ = [
    "plan",
    "Plan",
    "Recipe",
    "FrameSettings",
    "Deviation",
    "RECIPES",
    "REFERENCE",
    "VEMOCLAP",
    "DEFAULT_RECIPE",
    "get_recipe",
    "names",
    "recipe_of_config",
    "choose",
    "CPU_WHISPER",
    "TRAINING_ERA_SAMPLER",
]
