"""What a dataset's features depend on (:class:`ExtractionConfig`, stored as ``extraction.json``)
and the worker that turns one video into its feature file with it (:class:`FeatureWorker`), in
this process or inside a Ray actor.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .._util import to_jsonable
from ..errors import UserError
from .dataset import Video
from .loop import safe_run, seed_video
from .store import VideoFeatures

DEFAULT_MIN_POSITIONS = 16
DEFAULT_MAX_POSITIONS = 64
INFERENCE_FRAMES = 16  # what the app samples; single-vector frame features use this many


class ExtractionError(UserError):
    """Extraction cannot start or go on (options, output folder); the message is one line."""


# ---- options -------------------------------------------------------------------------------------

_FPS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*fps\s*$", re.IGNORECASE)


@dataclass
class ExtractionConfig:
    """What the features depend on; stored as ``extraction.json`` and checked on resume."""

    extractors: tuple[str, ...]
    positions: str | int = "1fps"  # "<rate>fps" or a fixed number of frames
    min_positions: int = DEFAULT_MIN_POSITIONS
    max_positions: int = DEFAULT_MAX_POSITIONS
    single_frames: int = INFERENCE_FRAMES
    short_side: int | None = 360
    extractor_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipe: str | None = None  # the feature recipe the extractors are built from (None: vemoclap's default)

    def __post_init__(self) -> None:
        self.extractors = tuple(self.extractors)
        if not self.extractors:
            raise ExtractionError("no extractors chosen")
        if isinstance(self.positions, str) and self.positions.strip().isdigit():
            self.positions = int(self.positions)
        if isinstance(self.positions, int):
            if self.positions < 1:
                raise ExtractionError(f"positions must be at least 1, not {self.positions}")
        elif not _FPS.match(str(self.positions)) or float(_FPS.match(self.positions).group(1)) <= 0:
            raise ExtractionError(f"positions must be like '1fps' or a number of frames, not '{self.positions}'")
        if not 1 <= self.min_positions <= self.max_positions:
            raise ExtractionError(
                f"need 1 ≤ min_positions ≤ max_positions, got {self.min_positions} and {self.max_positions}"
            )
        self.extractor_options = {name: dict(opts) for name, opts in self.extractor_options.items()}

    @property
    def position_cap(self) -> int:
        """Most rows of any sequence feature (frames and audio chunks)."""
        return self.positions if isinstance(self.positions, int) else self.max_positions

    def n_frames(self, duration: float) -> int:
        if isinstance(self.positions, int):
            return self.positions
        rate = float(_FPS.match(self.positions).group(1))
        wanted = int(math.floor(max(duration, 0.0) * rate + 0.5)) if math.isfinite(duration) else 0
        return int(min(self.max_positions, max(self.min_positions, wanted)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "extractors": list(self.extractors),
            "positions": self.positions,
            "min_positions": self.min_positions,
            "max_positions": self.max_positions,
            "single_frames": self.single_frames,
            "short_side": self.short_side,
            "extractor_options": to_jsonable(self.extractor_options),
            **({"recipe": self.recipe} if self.recipe else {}),
        }  # absent: folders from before recipes resume

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "ExtractionConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


def feature_extractors() -> tuple[str, ...]:
    """The default extractors for a dataset: the reference's set minus readable-only ones (caption)."""
    from ..registry import EXTRACTORS, default_extractors

    return tuple(name for name in default_extractors() if EXTRACTORS[name].feature)


def effective_options(config: ExtractionConfig) -> dict[str, dict[str, Any]]:
    """Per-extractor options with the audio chunk cap filled in where an extractor takes one."""
    from ..extractors import check, option_names, options_type

    options: dict[str, dict[str, Any]] = {}
    for name in config.extractors:
        opts = dict(config.extractor_options.get(name, {}))
        check(name, opts)
        if "n_chunks" in option_names(options_type(name)):
            opts.setdefault("n_chunks", config.position_cap)
        options[name] = opts
    unknown = sorted(set(config.extractor_options) - set(config.extractors))
    if unknown:
        raise ExtractionError(f"options given for extractors that do not run: {', '.join(unknown)}")
    return options


# ---- one video ---------------------------------------------------------------------------------


class FeatureWorker:
    """One set of loaded models (an :class:`~vemoclap.pipeline.Analyzer`) turning videos into
    :class:`VideoFeatures`: the same engine run as ``analyze``, in the feature-file view. Runs in
    the driver or inside a Ray actor: the same code either way."""

    def __init__(self, config: ExtractionConfig, *, device: str = "auto", models_dir=None):
        from ..pipeline import Analyzer

        self.config = config
        self.options = effective_options(config)
        self.analyzer = Analyzer(
            config.extractors,
            frames=config.single_frames,
            device=device,
            models_dir=models_dir,
            short_side=config.short_side,
            extractor_options=self.options,
            recipe=config.recipe,
            classifier=None,
            parallel=1,  # one extractor after another: the seeded random numbers are drawn in one order
        )  # features only
        self.analyzer.load()
        self.description = self._describe()

    def _describe(self) -> dict[str, Any]:
        from ..models import MODELS

        described = {}
        for name, extractor in self.analyzer.extractors.items():
            cls = type(extractor)
            described[name] = {
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "feature": cls.feature_name,
                "options": self.options.get(name, {}),
                "models": {key: MODELS[key].hub_id or MODELS[key].filename for key in cls.model_keys if key in MODELS},
            }
        return described

    def read(self, video: Video):
        """(probe, frame count, clip) of one video: the decoding, which may run ahead in a thread."""
        from .. import media

        info = media.probe(video.path)
        n = self.config.n_frames(info.duration)
        return info, n, self.analyzer.read_clip(video.path, n_frames=n)

    def extract(self, video: Video, read=None) -> VideoFeatures:
        """All features of one video (``read``: what :meth:`read` gave, when it was read ahead);
        raises on a broken file or a failing extractor. The engine's outputs, in the feature-file view."""
        from ..engine import feature_rows

        info, n, clip = read if read is not None else self.read(video)
        seed_video(video.id)
        single = None
        if len(clip.frames) and n != self.config.single_frames:  # the frames inference reads, audio shared
            single = functools.partial(
                self.analyzer.with_frames, clip, video.path, self.config.single_frames
            )  # decoded when an extractor needs it
        outputs = self.analyzer.run(clip, single=single, strict=True)
        rows = feature_rows(outputs, self.analyzer.extractors)
        features, times, missing = rows.features, rows.times, rows.missing
        seconds = {name: round(output.seconds, 4) for name, output in outputs.items()}
        readable = {
            name: {k: v for k, v in output.readable().items() if k not in ("name", "seconds")}
            for name, output in outputs.items()
        }
        metadata = {
            "id": video.id,
            "label": video.label,
            "split": video.split or "",
            "name": video.name,
            "source": os.path.abspath(video.path),
            "duration": float(info.duration),
            "frames": int(len(clip.frames)),
            "features": sorted(features),
            "missing": missing,
            "extractors": self.description,
            "readable": readable,
            "seconds": seconds,
            "recipe": self.analyzer.recipe.to_dict(),
        }
        return VideoFeatures(features, times, metadata)

    def extract_safe(self, video: Video) -> tuple[Video, VideoFeatures | None, str | None]:
        """(video, features, None) or (video, None, one-line reason): never raises for a video."""
        return safe_run(self.extract, video)


__all__ = [
    "DEFAULT_MAX_POSITIONS",
    "DEFAULT_MIN_POSITIONS",
    "INFERENCE_FRAMES",
    "ExtractionConfig",
    "ExtractionError",
    "FeatureWorker",
    "effective_options",
    "feature_extractors",
]
