"""The resumable loop around per-video work, shared by dataset extraction and ``vemoclap predict``.

Each video's work runs through :func:`safe_run`, so a broken video is one failure with a one-line
reason and the run goes on; :class:`VideoLoop` counts, logs and shows progress; the output
folder's helpers (a lock, leftover temporary files, CSV files written atomically) make a rerun
resume where a killed run stopped.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .._util import atomic_write_text
from ..errors import UserError, one_line
from .dataset import Video
from .store import typed_one_line

log = logging.getLogger(__name__)


def seed_video(video_id: str) -> None:
    """Seed every generator from the video's id: same numbers in any order, process or worker."""
    import torch

    seed = zlib.crc32(video_id.encode("utf-8"))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
        return video, None, one_line(exc) if isinstance(exc, UserError) else typed_one_line(exc)


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
def exclusive_lock(lock_path: Path, busy: str, error: type[UserError]) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX); when another run holds it, ``error(busy)``."""
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
            raise error(busy) from None
        yield
    finally:
        handle.close()


def clean_temporary(out_dir: Path, pattern: str = ".*.tmp", recursive: bool = True) -> int:
    """Remove temporary files a killed run left (``.<name>.<random>.tmp``, see _util)."""
    removed = 0
    for path in out_dir.rglob(pattern) if recursive else out_dir.glob(pattern):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d temporary files left by an interrupted run", removed)
    return removed


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, typed_one_line(exc))
        return []


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


__all__ = [
    "VideoLoop",
    "clean_temporary",
    "exclusive_lock",
    "read_csv",
    "run_on_read",
    "safe_run",
    "seed_video",
    "write_csv",
]
