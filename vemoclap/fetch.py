"""Fetch models into the models dir, every file verified before it is used.

* Hub models (``hf`` folders and single hub files) at a pinned revision: the hub's own metadata
  (``model_info(files_metadata=True)``) gives each file's git blob id, or its SHA-256 for LFS
  files; every downloaded file is checked against it. The revision is the table's ``revision``,
  else the manifest's (``VEMOCLAP_DOWNLOAD_MANIFEST`` ``{"hub": {repo: revision}}``), else the
  hub's current commit of ``main``, which is recorded in the provenance file.
* Whisper checkpoints with the SHA-256 that openai-whisper publishes in their URLs.
* The reference's files (classifier, samples) against their pinned git blob ids.

Everything downloads into a ``.part`` name first and is renamed into place only after it verified,
so an interrupted run never leaves a file that looks complete; a rerun continues it. Base URLs
are settings: ``HF_ENDPOINT`` (the hub, read at each call), ``VEMOCLAP_REFERENCE_BASE_URL`` and
``VEMOCLAP_WHISPER_BASE_URL`` (a mirror, a ``file://`` folder or a test server can stand in).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import downloads
from .errors import ModelUnavailable, OptionError, one_line
from .models import (
    DEFAULT_DOWNLOADS,
    DEFAULT_WHISPER_SIZES,
    MODELS,
    OFFLINE_ENV,
    RANDOM,
    ModelRef,
    ct2_hub_id,
    downloads_allowed,
    local_path,
    models_root,
    read_provenance,
    reference_target,
    target_path,
    unavailable,
    whisper_ct2_dir,
    whisper_names,
    write_provenance,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
WHISPER_BASE_ENV = "VEMOCLAP_WHISPER_BASE_URL"
WHISPER_URL_PREFIX = "https://openaipublic.azureedge.net/main/whisper/models/"
ASSUMED_MB_PER_S = 10.0  # for the time said up front; the bars show the real rate

# Files of a hub model folder that from_pretrained needs (weights: safetensors, else PyTorch .bin).
_CONFIG_SUFFIXES = (".json", ".txt", ".model", ".spm", ".tiktoken")


def hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _hub_info(ref: ModelRef, hub_id: str | None = None):
    from huggingface_hub import HfApi

    repo = hub_id or ref.hub_id
    revision = ref.revision or downloads._manifest().get("hub", {}).get(repo)
    return HfApi(endpoint=hub_endpoint()).model_info(repo, revision=revision, files_metadata=True)


def _license(info) -> str | None:
    card = getattr(info, "card_data", None)
    value = getattr(card, "license", None) if card is not None else None
    if not value:
        value = next((t.split(":", 1)[1] for t in (info.tags or []) if t.startswith("license:")), None)
    return str(value) if value else None


def hf_files(siblings) -> list:
    """The siblings ``from_pretrained`` needs: top-level configs/tokenizers and one weights format."""
    top = [s for s in siblings if "/" not in s.rfilename]
    configs = [s for s in top if s.rfilename.endswith(_CONFIG_SUFFIXES) and not s.rfilename.startswith(".")]
    weights = [s for s in top if s.rfilename.endswith(".safetensors")]
    if not weights:
        weights = [s for s in top if s.rfilename.startswith("pytorch_model") and s.rfilename.endswith(".bin")]
    return configs + weights


def _verify_sibling(path: Path, sibling) -> str:
    """Check one downloaded hub file against the hub's metadata; returns the hash kind used."""
    if sibling.lfs is not None:
        downloads.verify(path, sibling.lfs["sha256"] if isinstance(sibling.lfs, dict) else sibling.lfs.sha256, "sha256")
        return "sha256"
    if sibling.blob_id:
        downloads.verify(path, sibling.blob_id, "git-sha1")
        return "git-sha1"
    raise downloads.VerificationError(f"{path.name}: the hub gave no hash for it; not used")


@dataclass
class Planned:
    """One model to fetch: its key, the file stem (Whisper size) and its size in bytes when known."""

    key: str
    name: str | None = None
    bytes: int | None = None


def missing(keys, models_dir=None, whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES) -> list[Planned]:
    """The models among ``keys`` that are not in the models dir yet."""
    out = []
    for key in keys:
        ref = MODELS[key]
        if ref.kind == "whisper":
            out += [
                Planned(key, size)
                for size in whisper_sizes
                if not any(local_path(key, models_dir, name=n) for n in whisper_names(size))
            ]
        elif ref.kind == "ct2":
            out += [Planned(key, size) for size in whisper_sizes if whisper_ct2_dir(size, models_dir) is None]
        elif local_path(key, models_dir) is None:
            out.append(Planned(key))
    return out


def _whisper_url(size: str) -> tuple[str, str]:
    import whisper

    try:
        url = whisper._MODELS[size]
    except KeyError:
        raise OptionError(
            f"unknown Whisper size {size!r}; choose from {', '.join(whisper.available_models())}"
        ) from None
    sha = downloads.expected_sha256("whisper", size, url.split("/")[-2])
    base = os.environ.get(WHISPER_BASE_ENV)
    if base and url.startswith(WHISPER_URL_PREFIX):
        url = base.rstrip("/") + "/" + url[len(WHISPER_URL_PREFIX) :]
    return url, sha


def size_of(item: Planned) -> int | None:
    """Bytes to download for one planned model (asked of the server; None when it does not say)."""
    ref = MODELS[item.key]
    try:
        if ref.kind == "hf":
            return sum(s.size or 0 for s in hf_files(_hub_info(ref).siblings))
        if ref.kind == "ct2":
            return sum(s.size or 0 for s in _hub_info(ref, ct2_hub_id(item.name)).siblings if "/" not in s.rfilename)
        if ref.kind == "file" and ref.hub_id:
            name = Path(ref.filename).name
            return next((s.size for s in _hub_info(ref).siblings if s.rfilename == name), None)
        if ref.kind == "whisper":
            return downloads.remote_size(_whisper_url(item.name)[0])
        if ref.kind == "reference":
            sizes = [downloads.remote_size(downloads.reference_base_url() + f) for f in ref.files]
            return sum(sizes) if all(s is not None for s in sizes) else None
    except Exception as exc:  # the server is asked only to say sizes up front; the download says why it fails
        log.debug("size of %s unknown: %s", item.key, exc)
    return None


def describe_plan(plan: list[Planned]) -> str:
    """One line: what will be downloaded, how much, and about how long it takes."""
    sizes = [item.bytes if item.bytes is not None else MODELS[item.key].size_mb * 1e6 for item in plan]
    total_mb = sum(sizes) / 1e6
    names = ", ".join(item.key + (f" {item.name}" if item.name else "") for item in plan)
    minutes = total_mb / ASSUMED_MB_PER_S / 60
    exact = "" if all(item.bytes is not None for item in plan) else "about "
    return (
        f"downloading {len(plan)} model(s) ({names}): {exact}{total_mb:,.0f} MB, "
        f"≈{max(minutes, 0.1):.1f} min at {ASSUMED_MB_PER_S:.0f} MB/s"
    )


def reachable(timeout: float = 3.0) -> bool:
    """Whether the hub (or its configured stand-in) answers a TCP connection, checked once, quickly."""
    parsed = urllib.parse.urlparse(hub_endpoint() or "https://huggingface.co")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- fetching ------------------------------------------------------------------------------------


def fetch_model(key: str, models_dir=None, *, name: str | None = None, progress: ProgressFn | None = None) -> Path:
    """Fetch one model into the models dir (verified); returns its local path."""
    if not downloads_allowed():
        raise unavailable(key, models_dir, f"downloads are off ({OFFLINE_ENV}/HF_HUB_OFFLINE)", name=name or "small")
    ref = MODELS[key]
    started = time.perf_counter()
    if ref.kind == "hf":
        path = _fetch_hf(ref, target_path(key, models_dir), progress)
    elif ref.kind == "file" and ref.hub_id:
        path = _fetch_hub_file(ref, target_path(key, models_dir), progress)
    elif ref.kind == "file":  # a plain URL with no published hash: its SHA-256 is recorded, unverified
        path = downloads.download_file(ref.url, target_path(key, models_dir), progress=progress, stage=key)
        write_provenance(
            path,
            {
                "origin": "download",
                "source": ref.url,
                "verified": None,
                "sha256": downloads.sha256_file(path),
                "license": ref.license,
            },
        )
    elif ref.kind == "whisper":
        path = _fetch_whisper(name or DEFAULT_WHISPER_SIZES[0], models_dir, progress)
    elif ref.kind == "ct2":  # a whole CTranslate2 folder of the hub (model.bin, config, tokenizer, vocabulary)
        size = name or DEFAULT_WHISPER_SIZES[0]
        path = _fetch_hf(
            ref,
            target_path(key, models_dir, name=size),
            progress,
            hub_id=ct2_hub_id(size),
            select=lambda siblings: [s for s in siblings if "/" not in s.rfilename and not s.rfilename.startswith(".")],
            needs="model.bin",
        )
    else:
        path = _fetch_reference(ref, models_dir, progress)
    log.info("fetched %s in %.0f s → %s", key, time.perf_counter() - started, path)
    return path


def fetch_reference_file(path: str, models_dir=None, progress: ProgressFn | None = None) -> Path:
    """One file of the reference repository (e.g. a sample video), fetched once and verified."""
    target = reference_target(path, models_dir)
    if target.is_file():
        return target
    if not downloads_allowed():
        raise ModelUnavailable(
            f"{path} of the reference repository is not in {target.parent} and downloads are "
            f"off ({OFFLINE_ENV}/HF_HUB_OFFLINE); run `vemoclap download-models --only samples` "
            f"where there is internet"
        )
    return downloads.fetch_reference_file(path, target, progress=progress)


def _fetch_reference(ref: ModelRef, models_dir, progress: ProgressFn | None) -> Path:
    def report(stage: str, done: int, total: int) -> None:
        progress(f"{ref.key} ({Path(stage).name})", done, total)

    for path in ref.files:
        fetch_reference_file(path, models_dir, report if progress else None)
    folder = target_path(ref.key, models_dir)
    write_provenance(
        folder,
        {
            "origin": "download",
            "source": downloads.REFERENCE_REPO,
            "commit": downloads.REFERENCE_COMMIT,
            "verified": "git-blob",
            "files": {f: downloads.reference_blob(f) for f in ref.files},
            "license": ref.license,
        },
    )
    return folder


def _part_dir(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _fetch_hf(
    ref: ModelRef,
    target: Path,
    progress: ProgressFn | None,
    *,
    hub_id: str | None = None,
    select=hf_files,
    needs: str = "config.json",
) -> Path:
    from huggingface_hub import hf_hub_download

    repo = hub_id or ref.hub_id
    info = _hub_info(ref, repo)
    files = select(info.siblings)
    if not any(s.rfilename == needs for s in files):
        raise ModelUnavailable(f"{repo}@{info.sha[:7]}: the hub repository has no {needs}; is the revision right?")
    part = _part_dir(target)  # kept between runs: files already there and verified are not fetched again
    total = sum(s.size or 0 for s in files)
    done = 0
    verified: dict[str, str] = {}
    for sibling in files:
        local = part / sibling.rfilename
        if not local.is_file():
            hf_hub_download(repo, sibling.rfilename, revision=info.sha, local_dir=part, endpoint=hub_endpoint())
        verified[sibling.rfilename] = _verify_sibling(local, sibling)
        done += sibling.size or 0
        if progress:
            progress(ref.key, done, total)
    shutil.rmtree(part / ".cache", ignore_errors=True)  # huggingface_hub's own bookkeeping
    served = read_provenance(part)  # a mirror of vemoclap.tiny's models serves their "random" marker too
    write_provenance(
        part,
        {
            "origin": RANDOM if served.get("origin") == RANDOM else "download",
            "source": repo,
            "revision": info.sha,
            "endpoint": hub_endpoint() or "https://huggingface.co",
            "verified": verified,
            "license": ref.license or _license(info),
        },
    )
    if target.exists():  # an incomplete folder from an older version: replaced whole
        shutil.rmtree(target)
    os.replace(part, target)
    return target


def _fetch_hub_file(ref: ModelRef, target: Path, progress: ProgressFn | None) -> Path:
    from huggingface_hub import hf_hub_download

    info = _hub_info(ref)
    name = Path(ref.filename).name
    sibling = next((s for s in info.siblings if s.rfilename == name), None)
    if sibling is None:
        raise ModelUnavailable(f"{ref.hub_id}@{info.sha[:7]}: no file {name} in the hub repository")
    part = _part_dir(target)
    local = part / name
    if not local.is_file():
        hf_hub_download(ref.hub_id, name, revision=info.sha, local_dir=part, endpoint=hub_endpoint())
    how = _verify_sibling(local, sibling)
    if progress:
        progress(ref.key, sibling.size or 1, sibling.size or 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(local, target)
    shutil.rmtree(part, ignore_errors=True)
    write_provenance(
        target,
        {
            "origin": "download",
            "source": f"{ref.hub_id}/{name}",
            "revision": info.sha,
            "verified": how,
            "license": ref.license or _license(info),
        },
    )
    return target


def _fetch_whisper(size: str, models_dir, progress: ProgressFn | None) -> Path:
    url, sha = _whisper_url(size)
    target = target_path("whisper", models_dir, name=Path(urllib.parse.urlparse(url).path).stem)
    if not target.is_file():
        downloads.download_file(url, target, sha256=sha, progress=progress, stage=f"whisper {size}")
    write_provenance(
        target,
        {
            "origin": "download",
            "source": url,
            "verified": "sha256",
            "sha256": sha,
            "license": MODELS["whisper"].license,
        },
    )
    return target


def download_models(
    directory=None,
    only: list[str] | None = None,
    whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES,
    progress: bool | ProgressFn = True,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fetch every model (or ``only`` these keys) into ``directory`` (default: the models dir in use).

    Models already there are skipped, so an interrupted run can be repeated; ``announce`` gets one
    line up front with the total size and the expected time. Returns key → local path.
    """
    keys = list(only) if only else list(DEFAULT_DOWNLOADS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise OptionError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    report = _byte_bars() if progress is True else (progress or None)
    plan = missing(keys, directory, whisper_sizes)
    if plan and not downloads_allowed():
        raise ModelUnavailable(
            f"{', '.join(item.key for item in plan)} missing and downloads are off "
            f"({OFFLINE_ENV}=1 or HF_HUB_OFFLINE=1); unset it to download"
        )
    written: dict[str, Path] = {}
    for key in keys:
        if MODELS[key].kind not in ("whisper", "ct2") and local_path(key, directory) is not None:
            written[key] = local_path(key, directory)
    if plan:
        for item in plan:
            item.bytes = size_of(item)
        (announce or log.warning)(describe_plan(plan))
    for item in plan:
        try:
            written[item.key] = fetch_model(item.key, directory, name=item.name, progress=report)
        except ModelUnavailable:
            raise
        except downloads.DownloadError as exc:
            raise unavailable(item.key, directory, str(exc), name=item.name or "small") from None
        except Exception as exc:  # network and hub errors come in many types: one line, the model and the fix
            raise unavailable(
                item.key, directory, f"download failed: {one_line(exc)}", name=item.name or "small"
            ) from exc
    for key in ("whisper", "whisper_ct2"):
        if key in keys and key not in written:
            written[key] = target_path(key, directory, name=whisper_sizes[0]).parent
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


__all__ = [
    "download_models",
    "fetch_model",
    "fetch_reference_file",
    "missing",
    "describe_plan",
    "reachable",
    "hf_files",
    "Planned",
    "models_root",
]
