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
(``gpus_per_worker`` GPUs each on a GPU cluster); see :mod:`vemoclap.training.cluster`.
The reference's published features are imported into the same layout by
:mod:`vemoclap.training.reference_features`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .._util import atomic_write_bytes, atomic_write_json, to_jsonable
from ..errors import NotFound
from .cluster import run_on_ray
from .dataset import Video
from .loop import VideoLoop, clean_temporary, exclusive_lock, read_csv, write_csv
from .store import (
    FORMAT,
    FORMAT_VERSION,
    SUFFIX,
    FeatureFileError,
    VideoFeatures,
    feature_path,
    read_metadata,
    typed_one_line,
)
from .worker import (
    DEFAULT_MAX_POSITIONS,
    DEFAULT_MIN_POSITIONS,
    INFERENCE_FRAMES,
    ExtractionConfig,
    ExtractionError,
    FeatureWorker,
    effective_options,
    feature_extractors,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "extraction.json"
MANIFEST_FILE = "manifest.csv"
FAILURES_FILE = "failures.csv"
LOCK_FILE = ".lock"

MANIFEST_COLUMNS = ("id", "name", "path", "label", "split", "feature_file", "duration", "frames", "missing")
FAILURE_COLUMNS = ("id", "name", "path", "label", "split", "reason", "attempts", "time")


# ---- the output folder -------------------------------------------------------------------------


def locked_folder(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder; a second run gets a one-line error."""
    return exclusive_lock(
        out_dir / LOCK_FILE,
        f"{out_dir}: another extraction is writing to this folder; wait for it or choose another --out",
        ExtractionError,
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vemoclap")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def check_config(out_dir: Path, config: ExtractionConfig) -> None:
    path = out_dir / CONFIG_FILE
    wanted = config.to_dict()
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ExtractionError(
                f"{path}: unreadable ({typed_one_line(exc)}); delete it only if the folder's "
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


def manifest_row(video: Video, meta: Mapping[str, Any]) -> dict[str, Any]:
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
    rows = read_csv(path)
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
        row = manifest_row(video, meta)
        row["name"] = meta.get("name", video.name)
        rows.append(row)
    rows.sort(key=lambda row: row["id"])
    write_csv(out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
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


def _config(
    names: tuple[str, ...],
    extractor_options: Mapping[str, Mapping[str, Any]] | None,
    face_detector: str | None,
    whisper_model: str | None,
    **settings: Any,
) -> ExtractionConfig:
    """The run's config, the shortcut options filled in; unknown extractors or options fail here."""
    from ..registry import with_shortcuts

    # shortcuts apply only to extractors that run
    options = with_shortcuts(extractor_options, names, face_detector=face_detector, whisper_model=whisper_model)
    config = ExtractionConfig(names, extractor_options=options, **settings)
    effective_options(config)  # before any work
    return config


def _check_videos(videos: Sequence[Video]) -> list[str]:
    """The videos' ids, which must be there and unique."""
    if not videos:
        raise ExtractionError("no videos to extract (an empty dataset, or the blacklist removed them all)")
    ids = [v.id for v in videos]
    if len(set(ids)) != len(ids):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise ExtractionError(f"video ids are not unique ({', '.join(duplicated)} …); load videos with load_dataset")
    return ids


class _Folder:
    """The output folder's state during a run: finished videos (their metadata), failures, and
    the manifest and failures files kept up to date as videos finish."""

    def __init__(self, out_dir: Path, videos: Sequence[Video], manifest_every: int):
        self.out_dir = out_dir
        self.ids = [v.id for v in videos]
        self.by_id = {v.id: v for v in videos}
        self.manifest_every = max(1, manifest_every)
        self.since_manifest = 0
        self.failures = {row["id"]: row for row in read_csv(out_dir / FAILURES_FILE) if row.get("id")}
        self.done: dict[str, dict[str, Any]] = {}
        self.todo: list[Video] = []
        for video in videos:
            path = feature_path(out_dir, video.id)
            if path.is_file():
                try:
                    self.done[video.id] = read_metadata(path)
                    continue
                except FeatureFileError as exc:  # cannot happen with atomic writes, but never trust a file
                    log.warning("%s; extracting it again", exc)
            self.todo.append(video)
        self.skipped = len(self.done)

    def write_manifest(self) -> None:
        rows = [manifest_row(self.by_id[i], self.done[i]) for i in self.ids if i in self.done]
        write_csv(self.out_dir / MANIFEST_FILE, MANIFEST_COLUMNS, rows)

    def write_failures(self) -> None:
        write_csv(self.out_dir / FAILURES_FILE, FAILURE_COLUMNS, list(self.failures.values()))

    def record(self, video: Video, result: VideoFeatures | None, reason: str | None) -> None:
        if result is not None:
            atomic_write_bytes(feature_path(self.out_dir, video.id), result.to_bytes())
            self.done[video.id] = result.metadata
            if self.failures.pop(video.id, None) is not None:
                self.write_failures()
            log.debug("%s: %s", video.id, ", ".join(result.metadata.get("features", [])) or "no features")
        else:
            previous = self.failures.get(video.id, {})
            self.failures[video.id] = {
                "id": video.id,
                "name": video.name,
                "path": str(video.path),
                "label": video.label,
                "split": video.split or "",
                "reason": reason,
                "attempts": int(previous.get("attempts") or 0) + 1,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            self.write_failures()
        self.since_manifest += 1
        if self.since_manifest >= self.manifest_every:
            self.write_manifest()
            self.since_manifest = 0

    def missing_counts(self) -> dict[str, int]:
        """Feature → finished videos without it."""
        missing: dict[str, int] = {}
        for meta in self.done.values():
            for name in meta.get("missing") or {}:
                missing[name] = missing.get(name, 0) + 1
        return missing


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
    config = _config(
        tuple(extractors) if extractors else feature_extractors(),
        extractor_options,
        face_detector,
        whisper_model,
        positions=positions,
        min_positions=min_positions,
        max_positions=max_positions,
        single_frames=single_frames,
        short_side=short_side,
        recipe=recipe,
    )
    ids = _check_videos(videos)
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)

    with locked_folder(out_dir):
        clean_temporary(out_dir)
        check_config(out_dir, config)
        folder = _Folder(out_dir, videos, manifest_every)
        todo = folder.todo
        log.info("%d videos: %d already extracted, %d to do", len(videos), folder.skipped, len(todo))
        workers = 1
        ray_used = bool(use_ray or ray_address)
        loop = VideoLoop(len(todo), folder.record, desc="extract", progress=progress, on_video=on_video)
        try:
            with loop:
                if todo and ray_used:
                    workers = run_on_ray(
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
                    worker = FeatureWorker(config, device=device, models_dir=models_dir)
                    loop.run(todo, worker.extract, prefetch=worker.read)
        finally:
            folder.write_manifest()  # whatever happened, the manifest lists every finished video

    failed = {i: folder.failures[i]["reason"] for i in ids if i in folder.failures}
    report = ExtractionReport(
        out_dir,
        len(videos),
        loop.finished,
        folder.skipped,
        failed,
        folder.missing_counts(),
        time.perf_counter() - start,
        workers,
        ray_used,
    )
    log.info("%s", report.summary())
    return report


__all__ = [
    "CONFIG_FILE",
    "FAILURES_FILE",
    "MANIFEST_FILE",
    "ExtractionReport",
    "check_config",
    "extract_dataset",
    "locked_folder",
    "manifest_row",
    "read_manifest",
    "rebuild_manifest",
]
