"""The one protocol every extractor follows, with device handling and batching written once.

An extractor is built with options (the fields of its module's ``Options`` frozen dataclass, plus
the common device / models dir / batch size / half; any other name is an OptionError), loads its
models once (lazily, on first use or ``load()``), and is called on a :class:`Clip` to return its
typed output: the feature array in the reference shape (or ``missing`` with a reason) plus
readable results. Subclasses implement ``_load`` and
``_run``; ``_run`` raises :class:`Missing` when the clip has nothing for it (no audio, no face,
no text), which becomes an output with ``missing`` set, never an exception to the caller.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .. import models
from .._util import to_jsonable
from ..errors import OptionError
from ..media import MAX_AUDIO_SECONDS, SAMPLE_RATE, Frames, MediaInfo
from ..registry import EXTRACTORS

log = logging.getLogger(__name__)


class Missing(Exception):
    """Raised inside ``_run`` when a clip has nothing for this extractor; the message is the reason."""


@dataclass
class Clip:
    """What an extractor sees of one video: sampled frames and the whole audio track."""

    frames: Frames
    audio: np.ndarray  # mono float32 in [-1, 1] at ``sample_rate``; empty when the file has no audio
    sample_rate: int = SAMPLE_RATE
    info: MediaInfo | None = None
    audio_warnings: list[str] = dataclasses.field(default_factory=list)  # from media.read_audio

    @property
    def duration(self) -> float:
        if self.info is not None:
            return self.info.duration
        return len(self.audio) / self.sample_rate

    def audio_16k(self) -> np.ndarray:
        """The audio as finite float32 mono at 16 kHz (polyphase resampling for other rates)."""
        audio = np.nan_to_num(np.asarray(self.audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        if self.sample_rate != SAMPLE_RATE and audio.size:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(int(self.sample_rate), SAMPLE_RATE)
            audio = resample_poly(audio, SAMPLE_RATE // g, int(self.sample_rate) // g).astype(np.float32)
        return audio

    @classmethod
    def from_file(
        cls,
        path,
        n_frames: int = 16,
        *,
        random: bool = False,
        seed: int | None = None,
        short_side: int | None = 360,
        upscale: bool = False,
        tolerance: float | None = None,
        max_long_side: int | None = None,
        max_pixels: int | None = None,
        max_audio_seconds: float | None = MAX_AUDIO_SECONDS,
        positions: str = "centre",
        size_rounding: str = "round",
        audio_resampler: str = "swresample",
    ) -> "Clip":
        """Probe, sample frames (``media.sample_frames``'s keywords) and load the audio (up to
        ``max_audio_seconds``); a file without a video stream gives no frames."""
        from .. import media

        info = media.probe(path)
        if info.width and info.height:
            frames = media.sample_frames(
                path,
                n_frames,
                random=random,
                seed=seed,
                short_side=short_side,
                upscale=upscale,
                tolerance=tolerance,
                max_long_side=max_long_side,
                max_pixels=max_pixels,
                positions=positions,
                size_rounding=size_rounding,
            )
        else:
            frames = media.Frames(np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0))
        audio_warnings: list[str] = []
        if info.has_audio:
            track = media.read_audio(path, max_seconds=max_audio_seconds, resampler=audio_resampler)
            audio, audio_warnings = track.samples, track.warnings
        else:
            audio = np.zeros(0, np.float32)
        return cls(frames=frames, audio=audio, info=info, audio_warnings=audio_warnings)

    @property
    def warnings(self) -> list[str]:
        """Everything reading the file noticed: the frames' warnings, then the audio's."""
        return list(self.frames.warnings) + [
            f"audio: {w}" if not w.startswith("audio") else w for w in self.audio_warnings
        ]


@dataclass
class ExtractorOutput:
    """Base of every extractor's output. Subclasses add readable fields, all with defaults."""

    name: str = ""
    feature: np.ndarray | None = None  # float32 in the reference shape; None when missing
    times: np.ndarray | None = None  # seconds of each feature row, for sequence features
    missing: str | None = None  # why there is no feature (None when there is one)
    seconds: float = 0.0  # wall time of the run

    @property
    def ok(self) -> bool:
        return self.feature is not None

    def readable(self) -> dict[str, Any]:
        """The readable results as plain JSON types (no feature arrays)."""
        skip = {"feature", "times"}
        return {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip}

    def describe(self) -> list[str]:
        """Readable report lines; subclasses override with their own readable fields."""
        return [self.summary()]

    def summary(self) -> str:
        if self.missing:
            return f"{self.name}: missing ({self.missing})"
        shape = "×".join(map(str, self.feature.shape)) if self.feature is not None else "-"
        return f"{self.name}: {shape} in {self.seconds:.2f} s"


def as_rgb(image) -> np.ndarray:
    """An H × W × 3 uint8 RGB array from an RGB(A)/gray array or PIL image; a one-line error otherwise."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 RGB image, got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0-255), got {array.dtype}")
    return array[:, :, :3]


def resolve_device(device: str | None = "auto"):
    """'auto' → the first CUDA GPU when there is one, else the CPU."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise OptionError(f"device '{device}' is not a device name; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"device '{device}' was asked for but no CUDA GPU is available; use --device cpu")
    return resolved


def batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), max(1, batch_size)):
        yield items[start : start + batch_size]


# Models shared by several extractors (the sentiment model serves both ASR and OCR) are built once
# per (key, device, dtype, models dir) and kept here.
_SHARED: dict[tuple, Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(key: str, device, dtype, models_dir, build: Callable[[], Any]) -> Any:
    cache_key = (key, str(device), str(dtype), str(models_dir))
    with _SHARED_LOCK:
        if cache_key not in _SHARED:
            with models.recording() as uses:
                built = build()
            _SHARED[cache_key] = built, list(uses)
        model, uses = _SHARED[cache_key]
        models.replay(uses)  # each extractor that shares it reports the weights it runs on
        return model


@dataclass(frozen=True)
class NoOptions:
    """The options of an extractor that takes none beyond the common ones."""


COMMON_OPTIONS = ("device", "models_dir", "batch_size", "half")  # taken by every extractor


def option_names(options_type: type) -> tuple[str, ...]:
    """Every option name an extractor with this ``Options`` dataclass takes."""
    return tuple(f.name for f in dataclasses.fields(options_type)) + COMMON_OPTIONS


def check_options(extractor: str, options_type: type, given: Iterable[str]) -> None:
    """An OptionError naming the extractor, the unknown option(s) and the valid ones."""
    valid = option_names(options_type)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise OptionError(
            f"extractor '{extractor}' has no option {', '.join(map(repr, unknown))}; its options are {', '.join(valid)}"
        )


def make_options(extractor: str, options_type: type, given: Mapping[str, Any]):
    check_options(extractor, options_type, given)
    return options_type(**given)


def bind(cls: type, registration) -> None:
    """Copy what the registration says about an extractor class onto it."""
    cls.feature_name = registration.feature.name if registration.feature else None
    cls.model_keys = registration.models
    cls.reads = registration.reads


class Extractor(abc.ABC):
    """Base class: subclasses set the class attributes and implement ``_load`` and ``_run``."""

    name: ClassVar[str]  # registry name, also the name of its output
    # feature_name, model_keys and reads come from the class's registration in vemoclap.registry.
    feature_name: ClassVar[str | None] = None  # the fusion feature it fills (None: readable only)
    output_type: ClassVar[type[ExtractorOutput]] = ExtractorOutput
    model_keys: ClassVar[tuple[str, ...]] = ()  # keys of vemoclap.models.MODELS it loads
    half_precision_ok: ClassVar[bool] = True  # fp16 on CUDA is safe for this model
    inputs: ClassVar[tuple[str, ...]] = ()  # "frames" and/or "audio": what the clip must have
    reads: ClassVar[tuple[str, ...]] = ()  # extractors whose outputs ``_run_with`` uses (registration)
    options_type: ClassVar[type] = NoOptions  # its module's Options dataclass

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        registration = EXTRACTORS.get(getattr(cls, "name", ""))
        if registration is not None:
            bind(cls, registration)

    def __init__(
        self,
        *,
        device: str | None = "auto",
        models_dir=None,
        batch_size: int = 16,
        half: bool | None = None,
        **options,
    ):
        """The keywords every extractor takes, plus the fields of its ``Options`` (an unknown name is
        an OptionError naming the valid ones)."""
        import torch

        self.options = make_options(self.name, self.options_type, options)
        self.device = resolve_device(device)
        use_half = self.half_precision_ok and self.device.type == "cuda" if half is None else half
        self.dtype = torch.float16 if use_half else torch.float32
        self.models_dir = models_dir
        self.batch_size = batch_size
        self._loaded = False
        self._load_lock = threading.Lock()
        self.weights: list = []  # vemoclap.models.ModelUse of each model loaded

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device}, dtype={self.dtype})"

    @property
    def loaded(self) -> bool:
        return self._loaded

    def needed_models(self) -> dict[str, str | None]:
        """Model-table keys this configuration loads → a file stem (a Whisper size) or None; the
        Analyzer fetches the missing ones up front."""
        return {key: None for key in self.model_keys}

    def optional_models(self) -> set[str]:
        """Keys among :meth:`needed_models` it can go on without (fetched when possible)."""
        return set()

    def alternatives(self) -> dict[str, tuple[str, str | None]]:
        """Key → (key, stem) of a model that stands in for it offline when it cannot be fetched."""
        return {}

    def load(self) -> "Extractor":
        """Load the models (once). Raises vemoclap.models.ModelUnavailable naming what is missing."""
        with self._load_lock:
            if not self._loaded:
                start = time.perf_counter()
                with models.recording() as uses:
                    self._load()
                self.weights = list(uses)  # what was loaded, and whether it was random (vemoclap.tiny)
                self._loaded = True
                log.info("loaded %s on %s in %.1f s", self.name, self.device, time.perf_counter() - start)
        return self

    def __call__(self, clip: Clip, earlier: Mapping[str, ExtractorOutput] | None = None) -> ExtractorOutput:
        """The output for ``clip``; ``earlier``: outputs of extractors that ran on it before (name →
        output), used by those that read them (``reads``)."""
        self.load()
        start = time.perf_counter()
        try:
            if "frames" in self.inputs and len(clip.frames) == 0:
                raise Missing("no video frames")
            if "audio" in self.inputs and clip.audio.size == 0:
                raise Missing("no audio track")
            output = self._run_with(clip, {k: v for k, v in (earlier or {}).items() if k in self.reads})
        except Missing as reason:
            output = self.output_type(missing=str(reason))
        output.name = self.name
        output.seconds = time.perf_counter() - start
        if output.feature is not None:
            output.feature = np.asarray(output.feature, dtype=np.float32)
        return output

    @abc.abstractmethod
    def _load(self) -> None:
        """Build the models on ``self.device`` in ``self.dtype``."""

    @abc.abstractmethod
    def _run(self, clip: Clip) -> ExtractorOutput:
        """Compute the output for one clip; raise Missing when the clip has nothing for it."""

    def _run_with(self, clip: Clip, earlier: Mapping[str, ExtractorOutput]) -> ExtractorOutput:
        """``_run`` for an extractor that reads earlier outputs (those of ``reads`` that ran)."""
        return self._run(clip)
