"""Extract the features of a whole dataset into one file per video: resumable, atomic, on Ray too.

Layout of an output folder::

    <out>/extraction.json            the options the features were made with (checked on resume)
    <out>/<video id>.safetensors     one per video (ids are "<label>/<stem>", so one folder per label)
    <out>/manifest.csv               id, name, path, label, split, feature_file, duration, frames, missing
    <out>/failures.csv               videos that failed, with a one-line reason (retried next run)

A feature file holds, for every feature its extractor produced, ``<feature>`` (k × dim float32;
single vectors 1 × dim) and ``<feature>.times`` (k float64 seconds, for sequence features), plus
string metadata: format, id, label, split, name, source, duration, frames, features and missing
(JSON feature → reason), extractors (JSON: class, options, model ids) and readable (JSON: each
extractor's readable output — transcript, OCR text, audio tags …). A feature with no rows (no
face, no speech …) has no tensor and is listed in ``missing``. Label and split in a file are what
was known when it was written; ``manifest.csv`` carries the current ones.

Positions. Training draws random positions later (``fusion.prepare(random=True)``), so sequence
features are extracted at more positions than the 16 the classifier sees: ``positions="1fps"``
takes one frame per second of video, at least ``min_positions`` (16) and at most
``max_positions`` (64), equidistant; an integer takes exactly that many. Audio features take every
3-s chunk with a 1.5-s hop, at most the same cap (``max_positions``, or the integer), equidistant
beyond it. Single-vector features of frames (OCR sentiment) read the 16 equidistant frames that
inference reads (``single_frames``), so they match what the app computes.

Safety. Every file is written to a temporary file beside it and renamed into place, so a feature
file that exists is complete; finished videos are skipped on the next run; leftover temporary
files are removed at the start; ``manifest.csv`` is rewritten (atomically) every few videos and
at the end, and can always be rebuilt from the feature files. A lock file keeps two runs from
writing one folder. Extraction is deterministic: before each video the random generators are
seeded from its id (Whisper's temperature fallback samples), so a resumed run, a Ray run and a
single-process run write the same numbers.

Ray (``use_ray=True`` or ``ray_address``): one actor per worker, each with its own set of models
(``gpus_per_worker`` GPUs each on a GPU cluster); the driver hands out videos and writes every
file itself, so the output folder needs to be reachable only from the driver — the videos must be
readable by the workers (a shared file system on a multi-node cluster), and vemoclap installed
there. A local Ray is started so that nothing leaves the machine: no dashboard, usage stats off,
bound to 127.0.0.1, and a ``ray_bootstrap_config.yaml`` with ``provider: {type: local}`` in the
Ray processes' home folder (Ray otherwise probes cloud metadata addresses to guess its provider).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import random
import re
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .._util import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable
from ..errors import NotFound, UserError, one_line
from ..labels import EMOTIONS
from .dataset import Video, assign_ids
from .store import (  # noqa: F401
    FORMAT,
    FORMAT_VERSION,
    SUFFIX,
    TIMES,
    FeatureFileError,
    VideoFeatures,
    _one_line,
    feature_path,
    load_features,
    read_metadata,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "extraction.json"
MANIFEST_FILE = "manifest.csv"
FAILURES_FILE = "failures.csv"
LOCK_FILE = ".lock"

DEFAULT_MIN_POSITIONS = 16
DEFAULT_MAX_POSITIONS = 64
INFERENCE_FRAMES = 16  # what the app samples; single-vector frame features use this many

MANIFEST_COLUMNS = ("id", "name", "path", "label", "split", "feature_file", "duration", "frames", "missing")
FAILURE_COLUMNS = ("id", "name", "path", "label", "split", "reason", "attempts", "time")


class ExtractionError(UserError):
    """Extraction cannot start or go on (options, output folder); the message is one line."""


class PickleRefused(ExtractionError):
    """Unpickling was refused because it was not explicitly trusted."""


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


def _effective_options(config: ExtractionConfig) -> dict[str, dict[str, Any]]:
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


def _seed(video_id: str) -> None:
    """Seed every generator from the video's id: same numbers in any order, process or worker."""
    import torch

    seed = zlib.crc32(video_id.encode("utf-8"))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Worker:
    """One set of loaded models (an :class:`~vemoclap.pipeline.Analyzer`) turning videos into
    :class:`VideoFeatures`. Runs in the driver or inside a Ray actor: the same code either way."""

    def __init__(self, config: ExtractionConfig, *, device: str = "auto", models_dir=None):
        from ..pipeline import Analyzer

        self.config = config
        self.options = _effective_options(config)
        self.analyzer = Analyzer(
            config.extractors,
            frames=config.single_frames,
            device=device,
            models_dir=models_dir,
            short_side=config.short_side,
            extractor_options=self.options,
            recipe=config.recipe,
            classifier=None,
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
        raises on a broken file or a failing extractor."""
        from .. import media
        from ..extractors.base import Clip
        from ..fusion import FEATURES

        info, n, clip = read if read is not None else self.read(video)
        _seed(video.id)
        single_clip: Clip | None = None
        features: dict[str, np.ndarray] = {}
        times: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        readable: dict[str, Any] = {}
        seconds: dict[str, float] = {}
        for name, extractor in self.analyzer.extractors.items():
            feature = type(extractor).feature_name
            spec = FEATURES.get(feature) if feature else None
            use = clip
            if (
                spec is not None
                and not spec.sequence
                and "frames" in type(extractor).inputs
                and len(clip.frames)
                and n != self.config.single_frames
            ):
                if single_clip is None:  # the frames inference reads, audio shared
                    frames = media.sample_frames(
                        video.path, self.config.single_frames, short_side=self.config.short_side
                    )
                    single_clip = Clip(frames=frames, audio=clip.audio, sample_rate=clip.sample_rate, info=clip.info)
                use = single_clip
            output = extractor(use)  # Missing becomes output.missing; anything else fails the video
            seconds[name] = round(output.seconds, 4)
            readable[name] = {k: v for k, v in output.readable().items() if k not in ("name", "seconds")}
            if not feature:
                continue
            if output.feature is None or np.asarray(output.feature).size == 0:
                missing[feature] = output.missing or "no rows"
                continue
            array = np.asarray(output.feature, dtype=np.float32)
            if array.ndim == 1:
                array = array[None, :]
            if spec is not None and (array.ndim != 2 or array.shape[1] != spec.dim):
                raise ValueError(f"{name} gave shape {tuple(array.shape)}, expected (k, {spec.dim})")
            features[feature] = array
            if output.times is not None and len(output.times) == len(array):
                times[feature] = np.asarray(output.times, dtype=np.float64)
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


# ---- what every per-video job shares (extract here, ``vemoclap predict``) ----------------------


def run_on_read(work: Callable[..., Any], video: Video, read: tuple[Video, Any, str | None]):
    """``safe_run`` of ``work(video, decoded)`` on what ``safe_run(read, video)`` gave ahead of time:
    a file that could not be read is this video's failure, as it would be without reading ahead."""
    _, decoded, reason = read
    if reason is not None:
        return video, None, reason
    return safe_run(lambda v: work(v, decoded), video)


def safe_run(work: Callable[[Video], Any], video: Video) -> tuple[Video, Any, str | None]:
    """(video, work(video), None) or (video, None, one-line reason): never raises for a video.

    A user error (a broken file …) is said as it is; anything else gets its type name in front.
    """
    try:
        return video, work(video), None
    except Exception as exc:  # any broken file or extractor crash: record it, go on
        log.debug("%s failed", video.id, exc_info=True)
        return video, None, one_line(exc) if isinstance(exc, UserError) else _one_line(exc)


class VideoLoop:
    """The loop around per-video work: ``record(video, result, reason)`` keeps each finished
    (``reason`` None) or failed video; the loop counts them, logs one warning line per failure
    (``describe(video, reason)``), shows a progress bar that counts failures and calls
    ``on_video(video, reason)``. Use it as a context manager (the bar closes, and log lines are
    written above the bar while it runs); ``run`` works in this process, and a Ray driver feeds
    ``finish`` with what its workers return."""

    def __init__(
        self,
        total: int,
        record: Callable[[Video, Any, str | None], None],
        *,
        desc: str,
        progress: bool = True,
        on_video: Callable[[Video, str | None], None] | None = None,
        describe: Callable[[Video, str], str] = lambda video, reason: f"{video.id} failed: {reason}",
        logger: logging.Logger = log,
    ):
        self.record, self.on_video, self.describe, self.log = record, on_video, describe, logger
        self.finished = 0
        self.failed = 0
        self.bar = None
        self._redirect = None
        if progress and total:
            from tqdm.auto import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.bar = tqdm(total=total, desc=desc, unit="video", dynamic_ncols=True)
            self._redirect = logging_redirect_tqdm()

    def __enter__(self) -> "VideoLoop":
        if self._redirect is not None:
            self._redirect.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()
        if self._redirect is not None:
            self._redirect.__exit__(*exc_info)

    def finish(self, video: Video, result: Any, reason: str | None) -> None:
        self.record(video, result, reason)
        if reason is None:
            self.finished += 1
        else:
            self.failed += 1
            self.log.warning("%s", self.describe(video, reason))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed, refresh=False)
        if self.on_video is not None:
            self.on_video(video, reason)

    def run(
        self, todo: Sequence[Video], work: Callable[..., Any], prefetch: Callable[[Video], Any] | None = None
    ) -> None:
        """``work`` on every video in this process, each through :func:`safe_run`. With ``prefetch``
        (the decoding), the next video is read in a thread while ``work(video, read)`` runs on the
        current one: one video ahead, so memory holds at most two decoded videos."""
        if prefetch is None:
            for video in todo:
                self.finish(*safe_run(work, video))
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="vemoclap-read") as pool:
            ahead = pool.submit(safe_run, prefetch, todo[0]) if todo else None
            for i, video in enumerate(todo):
                read = ahead.result()
                ahead = pool.submit(safe_run, prefetch, todo[i + 1]) if i + 1 < len(todo) else None
                self.finish(*run_on_read(work, video, read))


# ---- the output folder -------------------------------------------------------------------------


@contextmanager
def exclusive_lock(lock_path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX); when another run holds it, an
    :class:`ExtractionError` saying ``busy``."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here, go on without
        yield
        return
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExtractionError(busy) from None
        yield
    finally:
        handle.close()


def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder; a second run gets a one-line error."""
    return exclusive_lock(
        out_dir / LOCK_FILE,
        f"{out_dir}: another extraction is writing to this folder; wait for it or choose another --out",
    )


def _clean_temporary(out_dir: Path, pattern: str = ".*.tmp", recursive: bool = True) -> int:
    """Remove temporary files a killed run left (``.<name>.<random>.tmp``, see _util)."""
    removed = 0
    for path in out_dir.rglob(pattern) if recursive else out_dir.glob(pattern):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d temporary files left by an interrupted run", removed)
    return removed


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vemoclap")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def _check_config(out_dir: Path, config: ExtractionConfig) -> None:
    path = out_dir / CONFIG_FILE
    wanted = config.to_dict()
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ExtractionError(
                f"{path}: unreadable ({_one_line(exc)}); delete it only if the folder's "
                f"features were made with the options you are giving now"
            ) from None
        if stored.get("source") == "import":
            raise ExtractionError(
                f"{out_dir}: holds imported features ({stored.get('pickle')}); extract into another --out folder"
            )
        previous = stored.get("config", {})
        if json.loads(json.dumps(previous)) != json.loads(json.dumps(to_jsonable(wanted))):
            diff = sorted(k for k in set(previous) | set(wanted) if previous.get(k) != to_jsonable(wanted).get(k))
            raise ExtractionError(
                f"{out_dir}: features there were extracted with other options "
                f"({', '.join(diff)} differ, see {CONFIG_FILE}); use another --out folder "
                f"or the same options"
            )
        return
    atomic_write_json(
        path,
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "vemoclap": _package_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": wanted,
        },
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, _one_line(exc))
        return []


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _manifest_row(video: Video, meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": video.id,
        "name": video.name,
        "path": str(video.path),
        "label": video.label,
        "split": video.split or "",
        "feature_file": video.id + SUFFIX,
        "duration": f"{float(meta.get('duration', 0.0)):.3f}",
        "frames": meta.get("frames", ""),
        "missing": json.dumps(meta.get("missing") or {}, ensure_ascii=False),
    }


def read_manifest(out_dir) -> list[dict[str, Any]]:
    """Rows of ``manifest.csv`` (missing parsed from JSON, feature_file made a full path)."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        raise NotFound(f"{path}: no manifest; run `vemoclap extract` into {out_dir} first")
    rows = _read_csv(path)
    for row in rows:
        row["missing"] = json.loads(row.get("missing") or "{}")
        row["feature_file"] = out_dir / row["feature_file"]
        row["duration"] = float(row["duration"]) if row.get("duration") else None
    return rows


def rebuild_manifest(out_dir) -> Path:
    """Write ``manifest.csv`` from the feature files alone (their metadata), e.g. after copying a
    folder of feature files without it. Rows are sorted by id."""
    out_dir = Path(out_dir)
    rows = []
    for path in sorted(out_dir.rglob("*" + SUFFIX)):
        if path.name.startswith("."):
            continue
        meta = read_metadata(path)
        video = Video(
            id=meta["id"],
            path=Path(meta.get("source", meta.get("name", ""))),
            label=meta["label"],
            split=meta.get("split") or None,
        )
        row = _manifest_row(video, meta)
        row["name"] = meta.get("name", video.name)
        rows.append(row)
    rows.sort(key=lambda row: row["id"])
    _write_csv(out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
    return out_dir / MANIFEST_FILE


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class ExtractionReport:
    out_dir: Path
    total: int  # videos asked for
    extracted: int  # written by this run
    skipped: int  # already there
    failed: dict[str, str]  # id → reason (in failures.csv)
    missing: dict[str, int]  # feature → videos without it (over every finished video)
    seconds: float
    workers: int = 1
    ray: bool = False

    @property
    def done(self) -> int:
        return self.extracted + self.skipped

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST_FILE

    def summary(self) -> str:
        rate = self.extracted / self.seconds * 3600 if self.seconds > 0 and self.extracted else 0.0
        lines = [
            f"features of {self.done}/{self.total} videos in {self.out_dir} "
            f"({self.extracted} extracted in {self.seconds:.1f} s, {rate:.0f} videos/hour; "
            f"{self.skipped} already there)"
        ]
        if self.missing:
            lines.append("  missing: " + ", ".join(f"{name} in {n}" for name, n in sorted(self.missing.items())))
        if self.failed:
            lines.append(f"  {len(self.failed)} failed (listed in {self.out_dir / FAILURES_FILE}; run again to retry):")
            lines.extend(f"    {vid}: {reason}" for vid, reason in list(self.failed.items())[:20])
            if len(self.failed) > 20:
                lines.append(f"    … and {len(self.failed) - 20} more")
        return "\n".join(lines)


def extract_dataset(
    videos: Sequence[Video],
    out_dir,
    *,
    extractors: Sequence[str] | None = None,
    positions: str | int = "1fps",
    min_positions: int = DEFAULT_MIN_POSITIONS,
    max_positions: int = DEFAULT_MAX_POSITIONS,
    single_frames: int = INFERENCE_FRAMES,
    short_side: int | None = 360,
    device: str = "auto",
    models_dir=None,
    extractor_options: Mapping[str, Mapping[str, Any]] | None = None,
    face_detector: str | None = None,
    whisper_model: str | None = None,
    use_ray: bool = False,
    ray_address: str | None = None,
    num_workers: int | None = None,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float | None = None,
    progress: bool = True,
    manifest_every: int = 20,
    recipe: str | None = None,
    on_video: Callable[[Video, str | None], None] | None = None,
) -> ExtractionReport:
    """Extract every video's features into ``out_dir`` (see the module docstring); resumable.

    ``extractors``: names (default: the reference's feature extractors). ``face_detector`` /
    ``whisper_model`` are shortcuts for those extractors' options. ``use_ray`` / ``ray_address``
    ("auto", "ray://host:10001", or None for a local Ray) run it on Ray with ``num_workers`` actors.
    ``on_video(video, failure reason or None)`` is called after each video is written or failed.
    ``recipe`` names the feature recipe (``vemoclap.recipes``) the extractors are built from
    (default ``vemoclap``); every file records the recipe as run, with its deviations.
    Ray defaults: one worker per GPU, else one per 4 CPUs, and the CPUs shared out among them —
    each worker holds a whole model set in memory (several GB for the reference's), so size
    ``num_workers`` by memory too.
    """
    start = time.perf_counter()
    names = tuple(extractors) if extractors else feature_extractors()
    from ..registry import with_shortcuts

    # shortcuts apply only to extractors that run
    options = with_shortcuts(extractor_options, names, face_detector=face_detector, whisper_model=whisper_model)
    config = ExtractionConfig(
        names,
        positions=positions,
        min_positions=min_positions,
        max_positions=max_positions,
        single_frames=single_frames,
        short_side=short_side,
        extractor_options=options,
        recipe=recipe,
    )
    _effective_options(config)  # unknown extractors / options fail here, before any work
    if not videos:
        raise ExtractionError("no videos to extract (an empty dataset, or the blacklist removed them all)")
    ids = [v.id for v in videos]
    if len(set(ids)) != len(ids):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise ExtractionError(f"video ids are not unique ({', '.join(duplicated)} …); load videos with load_dataset")
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)

    with _locked(out_dir):
        _clean_temporary(out_dir)
        _check_config(out_dir, config)
        failures = {row["id"]: row for row in _read_csv(out_dir / FAILURES_FILE) if row.get("id")}
        done: dict[str, dict[str, Any]] = {}
        todo: list[Video] = []
        for video in videos:
            path = feature_path(out_dir, video.id)
            if path.is_file():
                try:
                    done[video.id] = read_metadata(path)
                    continue
                except FeatureFileError as exc:  # cannot happen with atomic writes, but never trust a file
                    log.warning("%s; extracting it again", exc)
            todo.append(video)
        skipped = len(done)
        log.info("%d videos: %d already extracted, %d to do", len(videos), skipped, len(todo))
        by_id = {v.id: v for v in videos}

        def write_manifest() -> None:
            rows = [_manifest_row(by_id[i], done[i]) for i in ids if i in done]
            _write_csv(out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)

        def write_failures() -> None:
            _write_csv(out_dir / FAILURES_FILE, FAILURE_COLUMNS, list(failures.values()))

        since_manifest = 0

        def record(video: Video, result: VideoFeatures | None, reason: str | None) -> None:
            nonlocal since_manifest
            if result is not None:
                atomic_write_bytes(feature_path(out_dir, video.id), result.to_bytes())
                done[video.id] = result.metadata
                if failures.pop(video.id, None) is not None:
                    write_failures()
                log.debug("%s: %s", video.id, ", ".join(result.metadata.get("features", [])) or "no features")
            else:
                previous = failures.get(video.id, {})
                failures[video.id] = {
                    "id": video.id,
                    "name": video.name,
                    "path": str(video.path),
                    "label": video.label,
                    "split": video.split or "",
                    "reason": reason,
                    "attempts": int(previous.get("attempts") or 0) + 1,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                write_failures()
            since_manifest += 1
            if since_manifest >= max(1, manifest_every):
                write_manifest()
                since_manifest = 0

        workers = 1
        ray_used = bool(use_ray or ray_address)
        loop = VideoLoop(len(todo), record, desc="extract", progress=progress, on_video=on_video)
        try:
            with loop:
                if todo and ray_used:
                    workers = _run_on_ray(
                        todo,
                        config,
                        loop.finish,
                        device=device,
                        models_dir=models_dir,
                        address=ray_address,
                        num_workers=num_workers,
                        cpus_per_worker=cpus_per_worker,
                        gpus_per_worker=gpus_per_worker,
                    )
                elif todo:
                    worker = _Worker(config, device=device, models_dir=models_dir)
                    loop.run(todo, worker.extract, prefetch=worker.read)
        finally:
            write_manifest()  # whatever happened, the manifest lists every finished video

    missing: dict[str, int] = {}
    for meta in done.values():
        for name in meta.get("missing") or {}:
            missing[name] = missing.get(name, 0) + 1
    failed = {i: failures[i]["reason"] for i in ids if i in failures}
    report = ExtractionReport(
        out_dir, len(videos), loop.finished, skipped, failed, missing, time.perf_counter() - start, workers, ray_used
    )
    log.info("%s", report.summary())
    return report


# ---- Ray ---------------------------------------------------------------------------------------


class _RayWorker:
    """The actor: a :class:`_Worker` living in a Ray process. Like :meth:`VideoLoop.run` with
    ``prefetch``, it decodes the video it gets next in a thread while it works on the current one."""

    def __init__(self, config: dict[str, Any], device: str, models_dir, env: dict[str, str]):
        from concurrent.futures import ThreadPoolExecutor

        os.environ.update(env)
        logging.basicConfig(level=logging.WARNING)
        self.worker = _Worker(ExtractionConfig.from_dict(config), device=device, models_dir=models_dir)
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="vemoclap-read")
        self.ahead: dict[str, Any] = {}  # video id → future of safe_run(read): at most one
        self.prefetched = 0  # videos whose decoding was done ahead (for tests and logs)

    def ready(self) -> bool:
        return True

    def extract(self, video: Video, ahead: Video | None = None) -> tuple[Video, VideoFeatures | None, str | None]:
        """The features of ``video``; ``ahead``: the video this actor gets next, read meanwhile."""
        pending = self.ahead.pop(video.id, None)
        self.ahead.clear()  # a read nobody asked for (the driver went another way) is dropped
        if ahead is not None:
            self.ahead[ahead.id] = self.reader.submit(safe_run, self.worker.read, ahead)
        if pending is None:
            return self.worker.extract_safe(video)
        self.prefetched += 1
        return run_on_read(self.worker.extract, video, pending.result())

    def stats(self) -> dict[str, int]:
        return {"prefetched": self.prefetched}


def _actor_failure(exc: BaseException) -> str:
    """The one line that says why an actor could not start (its __init__'s exception)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):  # the original exception's "Type: message" line
        if re.match(r"^[\w.]+(Error|Exception|Unavailable|Missing): ", line):
            return line
    return lines[0] if lines else type(exc).__name__


# Settings the workers share with the driver: offline switches always; folders only on a local Ray
# (on a remote cluster the driver's paths mean nothing).
_FORWARD_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VEMOCLAP_OFFLINE", "YOLO_OFFLINE")
_FORWARD_LOCAL_ENV = ("VEMOCLAP_MODELS_DIR", "YOLO_CONFIG_DIR", "HF_HOME", "TORCH_HOME", "XDG_CACHE_HOME")


@contextmanager
def local_ray(
    num_cpus: int | None = None, num_gpus: int | None = None, *, temp_dir: str | None = None
) -> Iterator[None]:
    """Start a local Ray that talks to nobody but this machine, and shut it down afterwards.

    * no dashboard, usage stats off (``RAY_USAGE_STATS_ENABLED=0``);
    * loopback only: Ray on Linux replaces 127.0.0.1 by the host's address (found with a UDP
      "connect" to 8.8.8.8) and binds that; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` while it
      starts keeps every socket on 127.0.0.1 / ::1 (checked with strace: no other address);
    * Ray's system processes read ``$HOME/ray_bootstrap_config.yaml`` to learn the cluster's
      provider and otherwise probe cloud metadata addresses (169.254.169.254): when the user's
      home has no such file, Ray starts with HOME set to a private folder holding one
      (``provider: {type: local}``, in ``<cache>/vemoclap/ray-home``). Ray keeps its auth token in
      that HOME, so the workers keep it too; their caches (Hugging Face, torch, Whisper,
      ultralytics) stay in the real home through ``XDG_CACHE_HOME`` / ``XDG_CONFIG_HOME``.

    The driver's environment is restored once Ray is up (its processes keep what they started with).
    """
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    real_home = os.environ.get("HOME") or str(Path.home())
    saved = {name: os.environ.get(name) for name in ("HOME", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    private = None
    runtime_env = None
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read by Ray's processes when they start
    # ... and by the driver once, when ray is imported: set the value it read as well, while Ray starts.
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_cluster = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved_cluster is not None:
        constants.ENABLE_RAY_CLUSTER = False
    if not (Path(real_home) / "ray_bootstrap_config.yaml").is_file():
        private = _ray_home(real_home)
        os.environ["HOME"] = str(private)
        runtime_env = {
            "env_vars": {
                "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path(real_home) / ".cache"),
                "XDG_CONFIG_HOME": os.environ.get("XDG_CONFIG_HOME") or str(Path(real_home) / ".config"),
            }
        }
    try:
        ray.init(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
            log_to_driver=True,
            configure_logging=False,
            _temp_dir=temp_dir,
        )
    finally:
        if saved_cluster is not None:
            constants.ENABLE_RAY_CLUSTER = saved_cluster
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield
    finally:
        ray.shutdown()


_RAY_HOME: Path | None = None  # the private home this process gave Ray first


def _ray_home(real_home: str) -> Path:
    """The home folder local Ray runs with: ``<cache>/vemoclap/ray-home`` holding the bootstrap file.

    It is kept between runs, and one process always uses the same one: Ray writes its auth token
    there and a driver keeps the token it first read, so every later Ray it starts must find the
    same token.
    """
    global _RAY_HOME
    if _RAY_HOME is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path(real_home) / ".cache")
        _RAY_HOME = cache / "vemoclap" / "ray-home"
    home = _RAY_HOME
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    bootstrap = home / "ray_bootstrap_config.yaml"
    if not bootstrap.is_file():
        atomic_write_text(bootstrap, "provider:\n  type: local\n")
    return home


def _run_on_ray(
    todo: list[Video],
    config: ExtractionConfig,
    finish,
    *,
    device: str,
    models_dir,
    address: str | None,
    num_workers: int | None,
    cpus_per_worker: float | None,
    gpus_per_worker: float | None,
) -> int:
    try:
        import ray
    except ImportError:
        raise ExtractionError("Ray is not installed: pip install 'vemoclap[ray]' (or run without --ray)") from None

    started_here = False
    context = None
    if not ray.is_initialized():
        if address in (None, "", "local"):
            cpus = os.cpu_count() or 1
            if num_workers:
                cpus = max(cpus, int(math.ceil(num_workers * (cpus_per_worker or 1))))
            context = local_ray(num_cpus=cpus)
            context.__enter__()
        else:
            ray.init(address=address, logging_level=logging.WARNING, configure_logging=False)
        started_here = True
    try:
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        use_gpu = gpus > 0 and device != "cpu"
        cpus = float(resources.get("CPU", 1))
        if num_workers is None:  # one per GPU; on CPUs one per 4 cores (each holds a whole model set)
            num_workers = int(gpus) if use_gpu and gpus >= 1 else max(1, int(cpus // 4))
        num_workers = max(1, min(int(num_workers), len(todo)))
        if cpus_per_worker is None:
            cpus_per_worker = max(1, int(cpus // num_workers))
        if gpus_per_worker is None:
            gpus_per_worker = min(1.0, gpus / num_workers) if use_gpu else 0.0
        forward = _FORWARD_ENV + (_FORWARD_LOCAL_ENV if context is not None else ())
        env = {name: os.environ[name] for name in forward if name in os.environ}
        actor_class = ray.remote(_RayWorker).options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=2)
        # Paths as the driver means them: a worker's home and working folder may differ.
        models = os.path.abspath(os.path.expanduser(str(models_dir))) if models_dir is not None else None
        todo = [dataclasses.replace(v, path=Path(os.path.abspath(v.path))) for v in todo]
        actors = [actor_class.remote(config.to_dict(), device, models, env) for _ in range(num_workers)]
        try:  # models load in each actor's __init__: surface a missing model as its own error
            ray.get([actor.ready.remote() for actor in actors])
        except ray.exceptions.RayError as exc:
            raise ExtractionError(f"a Ray worker could not start: {_actor_failure(exc)}") from None
        log.info(
            "extracting on Ray with %d workers (%s CPU, %s GPU each)", num_workers, cpus_per_worker, gpus_per_worker
        )
        queue = list(reversed(todo))
        pending: dict[Any, tuple[int, Video]] = {}
        following: dict[int, Video] = {}  # actor → the video it gets next, which it decodes ahead

        def submit(index: int) -> None:
            video = following.pop(index) if index in following else queue.pop()
            if queue:
                following[index] = queue.pop()
            pending[actors[index].extract.remote(video, following.get(index))] = (index, video)

        for index in range(len(actors)):  # one in flight per actor; it decodes its next video meanwhile
            if queue:
                submit(index)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, video = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the worker died (e.g. out of memory); it restarts
                result = (video, None, f"worker died: {_one_line(exc)[:200]}")
            except ray.exceptions.RayError as exc:
                result = (video, None, _one_line(exc)[:300])
            finish(*result)
            if queue or index in following:
                submit(index)
        try:
            prefetched = sum(stats["prefetched"] for stats in ray.get([actor.stats.remote() for actor in actors]))
            log.info("Ray workers decoded %d of %d videos ahead", prefetched, len(todo))
        except ray.exceptions.RayError:  # a worker that died and restarted lost its count
            pass
        for actor in actors:
            ray.kill(actor)
        return num_workers
    finally:
        if started_here:
            if context is not None:
                context.__exit__(None, None, None)
            else:
                ray.shutdown()


# ---- the reference's published features --------------------------------------------------------

_LABEL_KEYS = ("label", "emotion", "class", "target")
_SPLIT_KEYS = {"train", "val", "valid", "validation", "test"}


def _as_float_array(value: Any, where: str) -> np.ndarray | None:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise FeatureFileError(f"{where}: not a numeric array ({type(value).__name__})") from None
    if not np.all(np.isfinite(array)):
        raise FeatureFileError(f"{where}: holds NaN or infinite values")
    return array


def _read_published(path: Path, trust_pickle: bool) -> Any:
    import pickle
    import zipfile

    if zipfile.is_zipfile(path):  # a torch.save file: the safe loader needs no trust
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError
            raise FeatureFileError(
                f"{path}: a torch file that the safe loader refuses ({_one_line(exc)[:200]}); "
                f"re-save it with plain dicts, tensors and strings"
            ) from None
    if not trust_pickle:
        raise PickleRefused(
            f"{path}: refusing to unpickle it — loading a pickle can run any code it holds; "
            f"if you trust its source (e.g. the reference's published features), pass "
            f"--trust-pickle (trust_pickle=True)"
        )
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - only with explicit trust, see above
    except FileNotFoundError:
        raise
    except Exception as exc:  # a damaged pickle raises many types
        raise FeatureFileError(f"{path}: not a readable pickle ({_one_line(exc)[:200]})") from None


def import_reference_features(
    pickle_path, out_dir, *, trust_pickle: bool = False, labels: Sequence[str] = EMOTIONS, progress: bool = True
) -> ExtractionReport:
    """Convert the reference's published features (a pickle) into our per-video feature files.

    The layout is not documented, so this assumes and validates strictly: a dict keyed by video
    (file name or id) of dicts holding feature name → array (names from ``fusion.FEATURES``, each
    ``k × dim`` or a ``dim`` vector, ``None`` / empty for a missing one) and the label (``label``,
    ``emotion``, ``class`` or ``target``: a name or an index into ``labels``); or that keyed by
    split first (``{"train": {...}, "test": {...}}``). Other keys of a video are ignored (listed
    once in the log). Anything else is a one-line :class:`FeatureFileError`.

    Unpickling runs code from the file, so it happens only with ``trust_pickle=True``; without it
    this raises :class:`PickleRefused`. (A ``torch.save`` zip file loads safely without trust.)
    """
    from ..fusion import FEATURES

    start = time.perf_counter()
    path = Path(pickle_path).expanduser()
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    data = _read_published(path, trust_pickle)
    if not isinstance(data, Mapping) or not data:
        raise FeatureFileError(
            f"{path}: expected a dict keyed by video (or by split), found "
            f"{type(data).__name__}{' (empty)' if isinstance(data, Mapping) else ''}"
        )
    if set(map(str, data)) <= _SPLIT_KEYS and all(isinstance(v, Mapping) for v in data.values()):
        from .dataset import _split_name

        entries = [
            (str(key), _split_name(str(split), str(path)), value)
            for split, videos in data.items()
            for key, value in videos.items()
        ]
    else:
        entries = [(str(key), None, value) for key, value in data.items()]
    by_lower = {label.lower(): label for label in labels}
    ignored: set[str] = set()
    parsed: list[tuple[str, str, str | None, dict[str, np.ndarray], dict[str, str]]] = []
    for key, split, value in entries:
        where = f"{path}: video '{key}'"
        if not isinstance(value, Mapping):
            raise FeatureFileError(f"{where}: expected a dict of features, found {type(value).__name__}")
        label_key = next((k for k in _LABEL_KEYS if k in value), None)
        if label_key is None:
            raise FeatureFileError(f"{where}: no label (looked for {', '.join(_LABEL_KEYS)})")
        raw_label = value[label_key]
        if hasattr(raw_label, "item"):
            raw_label = raw_label.item()
        if isinstance(raw_label, (int, np.integer)) and not isinstance(raw_label, bool):
            if not 0 <= int(raw_label) < len(labels):
                raise FeatureFileError(f"{where}: label index {raw_label} is outside 0..{len(labels) - 1}")
            label = labels[int(raw_label)]
        elif isinstance(raw_label, str) and raw_label.strip().lower() in by_lower:
            label = by_lower[raw_label.strip().lower()]
        else:
            raise FeatureFileError(f"{where}: label {raw_label!r} is not one of {', '.join(labels)}")
        features: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        for name, item in value.items():
            name = str(name)
            if name in _LABEL_KEYS:
                continue
            if name not in FEATURES:
                ignored.add(name)
                continue
            spec = FEATURES[name]
            array = _as_float_array(item, f"{where}, feature '{name}'")
            if array is None or array.size == 0:
                missing[name] = "missing in the published features"
                continue
            if array.ndim == 1:
                array = array[None, :]
            if array.ndim != 2 or array.shape[1] != spec.dim or (not spec.sequence and array.shape[0] != 1):
                expected = f"(k, {spec.dim})" if spec.sequence else f"({spec.dim},) or (1, {spec.dim})"
                raise FeatureFileError(f"{where}, feature '{name}': shape {tuple(array.shape)}, expected {expected}")
            features[name] = array
        if not features and not missing:
            raise FeatureFileError(f"{where}: no known feature ({', '.join(FEATURES)})")
        parsed.append((key, label, split, features, missing))
    if ignored:
        log.warning("%s: ignored keys that are not features: %s", path, ", ".join(sorted(ignored)))

    ids = assign_ids([(label, key) for key, label, *_ in parsed])
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        _clean_temporary(out_dir)
        config_path = out_dir / CONFIG_FILE
        if config_path.is_file():
            stored = json.loads(config_path.read_text(encoding="utf-8"))
            if stored.get("source") != "import":
                raise ExtractionError(f"{out_dir}: holds extracted features; import into another --out folder")
        atomic_write_json(
            config_path,
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "source": "import",
                "pickle": str(path),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        rows, missing_counts = [], {}
        from tqdm.auto import tqdm

        from ..recipes import get_recipe

        # Made by the reference's own extraction, which the reference recipe reproduces.
        imported_recipe = get_recipe("reference").to_dict()
        imported_recipe["notes"] = [f"imported from {path.name}: made by the reference's own extraction"]

        for vid, (key, label, split, features, missing) in tqdm(
            list(zip(ids, parsed)), desc="import", unit="video", disable=not progress
        ):
            name = Path(key).name
            video = Video(id=vid, path=Path(key), label=label, split=split)
            frames = len(features["clip"]) if "clip" in features else 0
            meta = {
                "id": vid,
                "label": label,
                "split": split or "",
                "name": name,
                "source": f"imported from {path.name}",
                "duration": 0.0,
                "frames": frames,
                "features": sorted(features),
                "missing": missing,
                "extractors": {},
                "readable": {},
                "recipe": imported_recipe,
            }
            atomic_write_bytes(feature_path(out_dir, vid), VideoFeatures(features, {}, meta).to_bytes())
            rows.append(_manifest_row(video, meta))
            for feature in missing:
                missing_counts[feature] = missing_counts.get(feature, 0) + 1
        _write_csv(out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
    return ExtractionReport(out_dir, len(parsed), len(parsed), 0, {}, missing_counts, time.perf_counter() - start)


__all__ = [
    "ExtractionConfig",
    "ExtractionError",
    "ExtractionReport",
    "FeatureFileError",
    "PickleRefused",
    "VideoFeatures",
    "VideoLoop",
    "exclusive_lock",
    "extract_dataset",
    "feature_extractors",
    "feature_path",
    "import_reference_features",
    "load_features",
    "local_ray",
    "read_manifest",
    "read_metadata",
    "rebuild_manifest",
    "safe_run",
]
