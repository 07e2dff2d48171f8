"""The Hugging Face hub side of fetching: every file checked against the hub's own metadata.

``model_info(files_metadata=True)`` gives each file's git blob id, or its SHA-256 for LFS files, at
a pinned revision: the row's ``revision``, else the manifest's (``VEMOCLAP_DOWNLOAD_MANIFEST``
``{"hub": {repo: revision}}``), else the hub's current commit of ``main``, which is recorded in the
provenance file. ``HF_ENDPOINT`` (read at each call) names the hub or a stand-in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import urllib.parse
from pathlib import Path

from .. import netguard
from ..errors import ModelUnavailable
from . import connection, download
from .provenance import RANDOM, read_provenance, write_provenance
from .table import ModelRef

ProgressFn = download.ProgressFn

# Files of a hub model folder that from_pretrained needs (weights: safetensors, else PyTorch .bin).
_CONFIG_SUFFIXES = (".json", ".txt", ".model", ".spm", ".tiktoken")
METADATA_MAX_BYTES = 16 << 20  # a model_info answer with files metadata
SIZE_MARGIN, SIZE_SLACK = 1.05, 1 << 20  # a download may read its listed size plus this much


HUB_URL = "https://huggingface.co"


def hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def reachable() -> bool:
    """Whether the hub (or its configured stand-in) answers a TCP connection, checked once, quickly."""
    return connection.unreachable(hub_endpoint() or HUB_URL) is None


def hub_info(ref: ModelRef, hub_id: str | None = None):
    from huggingface_hub import HfApi

    repo = hub_id or ref.hub_id
    revision = ref.revision or download.manifest().get("hub", {}).get(repo)
    with _guard(max_bytes=METADATA_MAX_BYTES):
        return HfApi(endpoint=hub_endpoint()).model_info(repo, revision=revision, files_metadata=True)


def _guard(max_bytes: int | None = None):
    """The mirror guard for the hub: its endpoint (a local mirror may be private) and public addresses."""
    return download.guard(hub_endpoint() or "https://huggingface.co", max_bytes=max_bytes)


def size_bound(size: int | None) -> int | None:
    """Bytes a download of a file the hub lists at ``size`` may read (headers and redirects included)."""
    return None if not size else int(size * SIZE_MARGIN) + SIZE_SLACK


def _hub_download(repo: str, sibling, revision: str, part: Path) -> None:
    from huggingface_hub import hf_hub_download

    _quiet_guarded_retries()
    with _guard(max_bytes=size_bound(sibling.size)), _plain_http():
        hf_hub_download(repo, sibling.rfilename, revision=revision, local_dir=part, endpoint=hub_endpoint())


_XET_LOCK = threading.Lock()
_xet_off = {"running": 0, "before": False}  # downloads may run in threads: the first sets, the last restores


@contextlib.contextmanager
def _plain_http():
    """Every byte over Python's HTTP, where the guard sees it: hf_xet downloads in Rust, outside its
    address, size and deadline checks, when the hub (or a mirror) offers Xet storage. huggingface_hub
    reads ``HF_HUB_DISABLE_XET`` once, at import, so its constant is set while any download runs."""
    from huggingface_hub import constants

    with _XET_LOCK:
        if not _xet_off["running"]:
            _xet_off["before"] = constants.HF_HUB_DISABLE_XET
        _xet_off["running"] += 1
        constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        with _XET_LOCK:
            _xet_off["running"] -= 1
            if not _xet_off["running"]:
                constants.HF_HUB_DISABLE_XET = _xet_off["before"]


def _guard_has_stopped(record: logging.LogRecord) -> bool:
    guard = netguard.current()
    return not (guard is not None and (guard.refused or guard.stopped))


def _quiet_guarded_retries() -> None:
    """huggingface_hub retries a refused or cut-off download and logs each try; once the guard has
    refused or stopped it, that is said once, in the error, not in five warnings."""
    hub_log = logging.getLogger("huggingface_hub.file_download")
    if _guard_has_stopped not in hub_log.filters:
        hub_log.addFilter(_guard_has_stopped)


def redacted_endpoint() -> str:
    """The hub endpoint as recorded in provenance files: no user name or password."""
    endpoint = hub_endpoint() or "https://huggingface.co"
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.username is None and parsed.password is None:
        return endpoint
    host = parsed.hostname or ""
    netloc = host + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


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


def top_files(siblings) -> list:
    """Every top-level file of a repository (a CTranslate2 folder needs them all)."""
    return [s for s in siblings if "/" not in s.rfilename and not s.rfilename.startswith(".")]


def _verify_sibling(path: Path, sibling) -> str:
    """Check one downloaded hub file against the hub's metadata; returns the hash kind used."""
    if sibling.lfs is not None:
        download.verify(path, sibling.lfs["sha256"] if isinstance(sibling.lfs, dict) else sibling.lfs.sha256, "sha256")
        return "sha256"
    if sibling.blob_id:
        download.verify(path, sibling.blob_id, "git-sha1")
        return "git-sha1"
    raise download.VerificationError(f"{path.name}: the hub gave no hash for it; not used")


def _part_dir(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch_folder(
    ref: ModelRef,
    target: Path,
    progress: ProgressFn | None,
    *,
    hub_id: str | None = None,
    select=hf_files,
    needs: str = "config.json",
) -> Path:
    """A hub repository's files (those ``select`` picks) into the folder ``target``, verified."""
    repo = hub_id or ref.hub_id
    info = hub_info(ref, repo)
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
            _hub_download(repo, sibling, info.sha, part)
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
            "endpoint": redacted_endpoint(),
            "verified": verified,
            "license": ref.license or _license(info),
        },
    )
    if target.exists():  # an incomplete folder from an older version: replaced whole
        shutil.rmtree(target)
    os.replace(part, target)
    return target


def fetch_file(ref: ModelRef, target: Path, progress: ProgressFn | None) -> Path:
    """One file of a hub repository (the row's ``filename``, by its base name) to ``target``, verified."""
    info = hub_info(ref)
    name = Path(ref.filename).name
    sibling = next((s for s in info.siblings if s.rfilename == name), None)
    if sibling is None:
        raise ModelUnavailable(f"{ref.hub_id}@{info.sha[:7]}: no file {name} in the hub repository")
    part = _part_dir(target)
    local = part / name
    if not local.is_file():
        _hub_download(ref.hub_id, sibling, info.sha, part)
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
