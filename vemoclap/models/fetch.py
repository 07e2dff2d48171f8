"""Fetch models into the models dir, every file verified before it is used (see each kind in
:mod:`vemoclap.models.kinds`), and plan what a run needs: what is missing, how much it is, and what to
say when it cannot be downloaded.

Everything downloads into a ``.part`` name first and is renamed into place only after it verified,
so an interrupted run never leaves a file that looks complete; a rerun continues it. Base URLs
are settings: ``HF_ENDPOINT`` (the hub, read at each call), ``VEMOCLAP_REFERENCE_BASE_URL`` and
``VEMOCLAP_WHISPER_BASE_URL`` (a mirror, a ``file://`` folder or a test server can stand in).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelUnavailable, OptionError, UserError, one_line
from . import download
from .advice import MissingModels, offline_lines, unavailable
from .connection import Offline, host_name, unreachable
from .hub import hub_endpoint, size_bound
from .kinds import PPOCR_BASE_ENV, WHISPER_BASE_ENV, kind_of, local_path
from .layout import OFFLINE_ENV, downloads_allowed, models_root
from .table import DEFAULT_WHISPER_SIZES, MIB, MODELS, default_downloads, size_mib

log = logging.getLogger(__name__)

ProgressFn = download.ProgressFn
ASSUMED_MB_PER_S = 10.0  # for the time said up front; the bars show the real rate
TABLE_SIZE_MARGIN = 1.25  # the model table's sizes are approximate
UNKNOWN_SIZE_CAP = 4 << 30  # no listed size: no model is bigger (Whisper large is 2.9 GB)
CLASSIFIER_USER = "classifier"  # the user of the classifier's models: a run cannot go on without them


@dataclass
class Planned:
    """One model to fetch: its key, the file stem (Whisper size) and its size in bytes when known."""

    key: str
    name: str | None = None
    bytes: int | None = None


def missing(keys, models_dir=None, whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES) -> list[Planned]:
    """The models among ``keys`` that are not in the models dir yet (per Whisper size, for the kinds
    with one copy per size)."""
    out = []
    for key in keys:
        ref, kind = kind_of(key)
        sizes = whisper_sizes if kind.sized else (None,)
        out += [Planned(key, size) for size in sizes if kind.present(ref, models_root(models_dir), size) is None]
    return out


def size_of(item: Planned) -> int | None:
    """Bytes to download for one planned model (asked of the server; None when it does not say)."""
    ref, kind = kind_of(item.key)
    try:
        return kind.download_size(ref, item.name)
    except Exception as exc:  # the server is asked only to say sizes up front; the download says why it fails
        log.debug("size of %s unknown: %s", item.key, exc)
    return None


def describe_plan(plan: list[Planned]) -> str:
    """One line: what will be downloaded, how much, and about how long it takes."""
    sizes = [item.bytes if item.bytes is not None else size_mib(item.key, item.name) * MIB for item in plan]
    total_mib = sum(sizes) / MIB
    names = ", ".join(item.key + (f" {item.name}" if item.name else "") for item in plan)
    minutes = sum(sizes) / 1e6 / ASSUMED_MB_PER_S / 60
    exact = "" if all(item.bytes is not None for item in plan) else "about "
    return (
        f"downloading {len(plan)} model(s) ({names}): {exact}{total_mib:,.0f} MiB (as much disk), "
        f"≈{max(minutes, 0.1):.1f} min at {ASSUMED_MB_PER_S:.0f} MB/s"
    )


def fetch_model(
    key: str,
    models_dir=None,
    *,
    name: str | None = None,
    progress: ProgressFn | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Fetch one model into the models dir (verified); returns its local path. Every connection goes
    through the mirror guard (a redirect to a private address is refused before it is made), and
    all reads stop past ``max_bytes`` (:func:`size_limit`), past the deadline or below the minimum rate."""
    if not downloads_allowed():
        raise unavailable(key, models_dir, f"downloads are off ({OFFLINE_ENV}/HF_HUB_OFFLINE)", name=name)
    ref, kind = kind_of(key)
    started = time.perf_counter()
    with download.guard(*mirror_bases(), max_bytes=max_bytes) as guard:
        try:
            path = kind.fetch(ref, models_root(models_dir), name or DEFAULT_WHISPER_SIZES[0], progress)
        except Exception as exc:
            why = _guarded_reason(exc, guard)
            if why:
                raise download.DownloadError(f"{key}: {why}; check the mirror / download base URL settings") from exc
            raise
    log.info("fetched %s in %.0f s → %s", key, time.perf_counter() - started, path)
    return path


def _guarded_reason(exc: BaseException, guard) -> str | None:
    """The guard's own reason (whatever the client wrapped it in), or a redirect to another scheme."""
    if guard.stopped or guard.refused:
        return guard.stopped or f"a connection to the private or local address {guard.refused[0]} was refused"
    text = f"{type(exc).__name__}: {exc}".lower()
    if "unsupported protocol" in text or "no connection adapters" in text or "invalidschema" in text:
        return "the server redirects to an address that is not http(s); only http(s) redirects are followed"
    return None


def mirror_bases() -> list[str]:
    """The configured download hosts (a local mirror among them may have a private address)."""
    bases = [hub_endpoint() or "https://huggingface.co", download.reference_base_url()]
    return bases + [os.environ[env] for env in (WHISPER_BASE_ENV, PPOCR_BASE_ENV) if os.environ.get(env)]


def size_limit(item: Planned) -> int | None:
    """Bytes a model's download may read: the size the server lists, else the model table's (not
    for Whisper-sized rows, whose table size is one size's), plus a margin; a fixed cap otherwise."""
    ref, kind = kind_of(item.key)
    if item.bytes:
        return size_bound(item.bytes)
    if ref.size_mb and not kind.sized:
        return size_bound(int(ref.size_mb * 1e6 * TABLE_SIZE_MARGIN))
    return UNKNOWN_SIZE_CAP


def download_models(
    directory=None,
    only: list[str] | None = None,
    whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES,
    progress: bool | ProgressFn | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fetch the default models (or ``only`` these keys) into ``directory`` (default: the models dir in use).

    Models already there are skipped, so an interrupted run can be repeated; ``announce`` gets one
    line up front with the total size and the expected time. ``progress``: None or True for progress
    bars, False for none, or ``progress(stage, bytes, total)``. Returns key → local path.
    """
    keys = list(only) if only else list(default_downloads())
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise OptionError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    report = _byte_bars() if progress is None or progress is True else (progress or None)
    plan = missing(keys, directory, whisper_sizes)
    if plan and not downloads_allowed():
        raise ModelUnavailable(
            f"{', '.join(item.key for item in plan)} missing and downloads are off "
            f"({OFFLINE_ENV}=1 or HF_HUB_OFFLINE=1); unset it to download"
        )
    cut = no_connection([(item.key, item.name) for item in plan])
    if cut:
        hosts = sorted(set(cut.values()))
        raise Offline(
            f"{'; '.join(hosts)}: cannot download {', '.join(dict.fromkeys(key for key, _ in cut))}; "
            "run this again where there is internet (`vemoclap demo` runs offline on tiny random models)"
        )
    written: dict[str, Path] = {}
    for key in keys:
        if not kind_of(key)[1].sized and local_path(key, directory) is not None:
            written[key] = local_path(key, directory)
    if plan:
        for item in plan:
            item.bytes = size_of(item)
        (announce or log.warning)(describe_plan(plan))
    for item in plan:
        try:
            written[item.key] = fetch_model(
                item.key, directory, name=item.name, progress=report, max_bytes=size_limit(item)
            )
        except ModelUnavailable:
            raise
        except download.DownloadError as exc:
            raise unavailable(item.key, directory, str(exc), name=item.name) from None
        except Exception as exc:  # network and hub errors come in many types: one line, the model and the fix
            raise unavailable(item.key, directory, f"download failed: {one_line(exc)}", name=item.name) from exc
    for key in keys:
        ref, kind = kind_of(key)
        if kind.sized and key not in written:
            written[key] = kind.target(ref, models_root(directory), whisper_sizes[0]).parent
    return written


def _byte_bars() -> ProgressFn:
    from tqdm.auto import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total or None, desc=stage, unit="B", unit_scale=True, leave=True)
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return update


# ---- what a run needs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One model a run needs: who loads it, and whether that user can do without it."""

    key: str
    name: str | None = None  # the Whisper size, for the kinds with one copy per size
    user: str = CLASSIFIER_USER  # the extractor that loads it, or the classifier
    optional: bool = False  # the user goes on without it
    stand_in: tuple[str, str | None] | None = None  # (key, size) of a model that serves offline in its place


def fetch_needed(
    needs: list[Need],
    models_dir=None,
    *,
    skip: bool = False,
    progress: ProgressFn | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Download (verified) the needed models that are not in the models dir yet, saying the total
    size and the expected time first. Offline — downloads off, or a model's host unreachable (each asked once,
    in seconds) — a model that is required and missing is a :class:`MissingModels` error with one
    line per model and the command that fetches them. With ``skip``, the users (extractors) of what
    cannot be had are returned instead (user → why), unless the classifier needs it too."""
    todo: dict[tuple[str, str | None], list[Need]] = {}
    for need in needs:
        if need.name is None and kind_of(need.key)[1].sized:
            continue  # the user loads whichever size it is given; nothing to fetch up front
        if missing([need.key], models_dir, (need.name,)):
            todo.setdefault((need.key, need.name), []).append(need)
    required = {k: users for k, users in todo.items() if any(not n.optional for n in users)}
    if not todo:
        return {}
    if not downloads_allowed():
        why = f"downloads are off ({OFFLINE_ENV} / HF_HUB_OFFLINE)"
        return _offline(required, models_dir, skip, dict.fromkeys(required, why))
    cut = no_connection(todo)
    skipped = _offline({k: v for k, v in required.items() if k in cut}, models_dir, skip, cut) if cut else {}
    for wanted in cut:
        todo.pop(wanted)
    if not todo:
        return skipped
    plan = [Planned(key, name) for key, name in todo]
    for item in plan:
        item.bytes = size_of(item)
    (announce or log.warning)(describe_plan(plan))
    for item in plan:
        users = [need.user for need in todo[(item.key, item.name)]]
        try:
            fetch_model(item.key, models_dir, name=item.name, progress=progress, max_bytes=size_limit(item))
        except UserError as exc:
            if (item.key, item.name) not in required:
                log.warning("optional model %s not fetched: %s", item.key, one_line(exc))
                continue
            if CLASSIFIER_USER in users or not skip:
                raise
            for user in users:
                skipped.setdefault(user, str(exc))
    return skipped


def no_connection(wanted) -> dict[tuple[str, str | None], str]:
    """(key, Whisper size) → why its host cannot be reached, for those of ``wanted`` whose host does
    not answer (each host asked once per process, within seconds)."""
    out = {}
    for key, name in wanted:
        ref, kind = kind_of(key)
        url = kind.source_url(ref, name or DEFAULT_WHISPER_SIZES[0])
        why = unreachable(url)
        if why:
            out[(key, name)] = f"offline: no connection to {host_name(url)} ({why})"
    return out


def _offline(required: dict[tuple[str, str | None], list[Need]], models_dir, skip: bool, whys: dict) -> dict[str, str]:
    """The users to skip offline (user → why), or :class:`MissingModels` when the run cannot go on."""
    for wanted, needs in list(required.items()):  # a model whose stand-in is here is not missing now
        if all(n.stand_in and not missing([n.stand_in[0]], models_dir, (n.stand_in[1],)) for n in needs):
            del required[wanted]
    if not required:
        return {}
    lines = offline_lines(list(required), models_dir, whys)
    users = [need.user for needs in required.values() for need in needs]
    if CLASSIFIER_USER in users or not skip:
        raise MissingModels(lines)
    skipped: dict[str, str] = {}
    for line, needs in zip(lines, required.values()):
        for need in needs:
            skipped.setdefault(need.user, f"{line}; {lines[-1][5:]}")
    return skipped
