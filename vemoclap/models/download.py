"""Verified downloads: every file is checked against a published hash before it is used.

* Files of the reference repository (github.com/serkansulun/video-emotion at a pinned commit)
  are checked against their git blob id, ``sha1(b"blob <size>\\0" + content)``.
* Hub files against the hub's own ETag (git SHA-1, or SHA-256 for LFS files) — see
  :mod:`vemoclap.models.hub`.
* Any URL with a known SHA-256 (Whisper checkpoints: the hash is part of their URL; rapidocr
  models: the hash in its model list) with :func:`download_file` ``(sha256=...)``.
* A file with no published hash gets its SHA-256 recorded on first download and is reported as
  unverified.

A download is written to ``<name>.part`` beside its target and renamed into place only after it
is verified, so a file under its final name is always complete; an interrupted download is
continued (HTTP Range) on the next run, or restarted when the server cannot continue it. A file
that fails verification is deleted and the error says so in one line.

Base URLs are settings (environment variable, or an argument): ``VEMOCLAP_REFERENCE_BASE_URL``
for the reference repository's raw files (a mirror, a local folder as ``file://`` or a test
server can stand in) and the hub's own ``HF_ENDPOINT``. ``VEMOCLAP_DOWNLOAD_MANIFEST`` names a
JSON file ``{"reference": {path: blob id}, "whisper": {name: sha256}, "file": {key: sha256}}`` that replaces pinned
hashes (for a mirror with other files, and for tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from .. import netguard
from ..errors import ModelUnavailable, UserError, one_line
from . import connection
from .layout import OFFLINE_ENV, downloads_allowed, reference_target

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

REFERENCE_REPO = "serkansulun/video-emotion"
REFERENCE_COMMIT = "312f80204f001d611564a2c8405999080829cae3"
REFERENCE_BASE_ENV = "VEMOCLAP_REFERENCE_BASE_URL"
MANIFEST_ENV = "VEMOCLAP_DOWNLOAD_MANIFEST"
REFERENCE_LICENSE = "GPL-3.0"

# git blob ids of the reference's files at REFERENCE_COMMIT (`git ls-tree -r REFERENCE_COMMIT` in that repository).
REFERENCE_BLOBS: dict[str, str] = {
    "weights/classifier/model.pt": "02f7ebf5c5a063315aaa98100604491c03df2268",
    "weights/classifier/model_config.pt": "198f633eb8649cab3865693876a4bd888bc430e6",
    "stats.pt": "2ba76319ea81a219019043d610f6611f7be259be",
    "sample_data/anger.mp4": "16f3405a9efabf992053c12d49ed620846e0540f",
    "sample_data/disgust.mp4": "efa089dee7f1bd32d17af47db53680f538aa2454",
    "sample_data/fear.mp4": "fc40dcbcc04c607ec5999f77dec36019cd1075f8",
    "sample_data/joy.mp4": "9e3b7894024b4dd5281db00a826f8819fb78190d",
    "sample_data/sadness.mp4": "633691608c26e631a884c1cb463adab3eb8b5df3",
    "sample_data/surprise.mp4": "0ab89506c123e48841ce7149a60806a914f8fdb3",
    "sample_data/sample.mp4": "5092f55e8610fe66a3a9c292278b1920dc8ad461",
}

CHUNK = 1 << 20
TIMEOUT_S = 30.0


class DownloadError(UserError):
    """A download that failed or did not verify; one line naming the file and what to do."""


class VerificationError(DownloadError):
    """Downloaded content does not match its published hash (the file was deleted)."""


# ---- hashes --------------------------------------------------------------------------------------


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git blob id of a file: SHA-1 of ``b"blob <size>\\0"`` + content."""
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """MD5 of a file: what Zenodo's record API lists as each file's checksum (``md5:<hex>``)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


HASHERS: dict[str, Callable[[str | os.PathLike], str]] = {
    "git-sha1": git_blob_sha1,
    "sha256": sha256_file,
    "md5": md5_file,
}


def verify(path: str | os.PathLike, expected: str, kind: str = "sha256", *, delete: bool = True) -> None:
    """Raise :class:`VerificationError` (deleting the file) unless its ``kind`` hash is ``expected``."""
    found = HASHERS[kind](path)
    if found.lower() != expected.lower():
        if delete:
            Path(path).unlink(missing_ok=True)
        raise VerificationError(
            f"{Path(path).name}: downloaded content does not match its published {kind} "
            f"({found[:12]}… ≠ {expected[:12]}…); the file was deleted — run the command "
            f"again, or check the download base URL"
        )


def verify_sha256(path: str | os.PathLike, expected: str, *, delete: bool = True) -> None:
    """:func:`verify` with SHA-256 (what rapidocr's and Whisper's model lists publish)."""
    verify(path, expected, "sha256", delete=delete)


# ---- settings ------------------------------------------------------------------------------------


MANIFEST_MAX_BYTES = 1 << 20
_HEX = re.compile(r"^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$")


def manifest() -> dict:
    """The hash manifest named by ``$VEMOCLAP_DOWNLOAD_MANIFEST`` ({} when unset): read only from a
    regular file of at most 1 MB, and every hash in it a hex digest (a ``null`` would turn the
    check off, so it is refused like any other malformed entry)."""
    name = os.environ.get(MANIFEST_ENV)
    if not name:
        return {}
    where = f"{name} (${MANIFEST_ENV})"
    try:
        with open(name, "rb", opener=_no_block_opener) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DownloadError(f"{where}: not a regular file; name a JSON file of hashes")
            data = handle.read(MANIFEST_MAX_BYTES + 1)
        if len(data) > MANIFEST_MAX_BYTES:
            raise DownloadError(f"{where}: over {MANIFEST_MAX_BYTES >> 20} MB; a hash manifest is a small JSON file")
        value = json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{where}: unreadable hash manifest ({one_line(exc)})") from None
    problem = _manifest_problem(value)
    if problem:
        raise DownloadError(f"{where}: {problem}; fix the file or unset ${MANIFEST_ENV}")
    return value


def _no_block_opener(path, flags):
    return os.open(path, flags | os.O_NONBLOCK)  # a FIFO opens at once (then fails as not regular)


def _manifest_problem(value) -> str | None:
    if not isinstance(value, dict):
        return f"the manifest must be a JSON object of groups, not a {type(value).__name__}"
    for group, entries in value.items():
        if not isinstance(entries, dict):
            return f"'{group}' must map names to hashes"
        for key, digest in entries.items():
            if not isinstance(digest, str) or not digest.strip():
                return f"'{group}' → '{key}' is {json.dumps(digest)}, not a hash (verification cannot be turned off)"
            if group != "hub" and not _HEX.match(digest):
                return f"'{group}' → '{key}' is not a 40- or 64-digit hex hash"
    return None


def reference_base_url(base: str | None = None) -> str:
    """Where the reference repository's raw files are read from (ends with '/')."""
    value = (
        base
        or os.environ.get(REFERENCE_BASE_ENV)
        or f"https://raw.githubusercontent.com/{REFERENCE_REPO}/{REFERENCE_COMMIT}/"
    )
    return value if value.endswith("/") else value + "/"


def reference_blob(path: str) -> str:
    """The pinned blob id of a reference file (or the manifest's replacement)."""
    override = manifest().get("reference", {})
    if path in override:
        return override[path]
    return REFERENCE_BLOBS[path]


def expected_sha256(group: str, name: str, default: str | None) -> str | None:
    """A pinned SHA-256 (``group`` e.g. "whisper"), or the manifest's replacement."""
    return manifest().get(group, {}).get(name, default)


# ---- downloading ---------------------------------------------------------------------------------


def remote_size(url: str, timeout: float = TIMEOUT_S) -> int | None:
    """Content-Length of a URL from a HEAD request (None when unknown or unreachable)."""
    if url.startswith("file://") or "://" not in url:
        path = Path(url[len("file://") :] if url.startswith("file://") else url)
        return path.stat().st_size if path.is_file() else None
    try:
        with guard(url, max_bytes=1 << 20), _open(urllib.request.Request(url, method="HEAD"), timeout) as response:
            value = response.headers.get("Content-Length")
            return int(value) if value else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


@contextlib.contextmanager
def guard(*bases: str, max_bytes: int | None = None):
    """The mirror guard (:func:`vemoclap.netguard.mirror_guard`) around a model or sample download:
    connections only to the configured mirrors and to public addresses, so a redirect to a private
    or metadata address is refused before the request is sent. Inside an active guard (the one
    :func:`vemoclap.models.fetch.fetch_model` opens with the model's size bound) nothing is added."""
    active = netguard.current()
    if active is not None:
        yield active
        return
    with netguard.mirror_guard(bases, max_bytes=max_bytes) as opened:
        yield opened


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects to ftp:// too; a download follows only http(s) ones."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise DownloadError(
                f"the server redirects to {scheme or 'a schemeless'}://…; only http(s) redirects are followed"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(request: urllib.request.Request, timeout: float):
    return urllib.request.build_opener(_HttpOnlyRedirects).open(request, timeout=timeout)


def download_file(
    url: str,
    target: str | os.PathLike,
    *,
    sha256: str | None = None,
    git_sha1: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: ProgressFn | None = None,
    stage: str | None = None,
    timeout: float = TIMEOUT_S,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``target`` through ``<target>.part``, verify, then rename into place.

    With ``sha256`` / ``git_sha1`` / ``md5`` (and ``size``, when given) the file must match (else it is deleted and
    :class:`VerificationError` raised); with neither, its SHA-256 is recorded in
    ``<target>.sha256`` and the file counts as unverified. An existing ``.part`` is continued with
    an HTTP Range request when the server allows it. ``progress(stage, done, total)`` is called as
    bytes arrive. ``url`` may be ``file://`` or a local path (a mirror folder). The download goes
    through :func:`guard`; it stops past ``max_bytes`` (or past a Content-Length the server gave).
    """
    target = Path(target)
    stage = stage or target.name
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        if url.startswith("file://") or "://" not in url:
            source = Path(url[len("file://") :] if url.startswith("file://") else url)
            if not source.is_file():
                raise DownloadError(f"{source}: not found in the local mirror; check the base URL setting")
            shutil.copyfile(source, part)
            size = part.stat().st_size
            if progress:
                progress(stage, size, size)
        else:
            connection.check(stage, url)
            with guard(url):
                _fetch(url, part, progress, stage, timeout, max_bytes)
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; check the base URL setting") from None
    except netguard.AddressRefused as exc:
        raise DownloadError(f"{url}: {exc}; check the download base URL setting") from None
    except netguard.BudgetExceeded:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: the server sent more than the file's size; stopped and deleted") from None
    except urllib.error.URLError as exc:  # no connection at all (a cut after bytes came is an OSError)
        if isinstance(exc.reason, netguard.AddressRefused):  # urllib wraps the refusal
            raise DownloadError(f"{url}: {exc.reason}; check the download base URL setting") from None
        raise connection.offline_error(stage, url, one_line(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        # the .part stays: the next run continues it
        raise DownloadError(
            f"{url}: download interrupted ({one_line(exc)}); run the command again to continue"
        ) from None
    if size is not None and part.stat().st_size != size:
        found = part.stat().st_size
        part.unlink(missing_ok=True)
        raise VerificationError(
            f"{target.name}: downloaded {found} bytes, its published size is {size}; the file was deleted "
            f"— run the command again, or check the download base URL"
        )
    for expected, kind in ((git_sha1, "git-sha1"), (sha256, "sha256"), (md5, "md5")):
        if expected:
            verify(part, expected, kind)
    if not (git_sha1 or sha256 or md5):
        (target.with_name(target.name + ".sha256")).write_text(sha256_file(part) + "\n")
        log.warning("%s has no published hash: recorded its SHA-256, unverified", target.name)
    os.replace(part, target)
    return target


def _fetch(url: str, part: Path, progress: ProgressFn | None, stage: str, timeout: float, max_bytes=None) -> None:
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _open(request, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch or a stale part: restart cleanly
            part.unlink(missing_ok=True)
            return _fetch(url, part, progress, stage, timeout, max_bytes)
        raise
    with response:
        if have and response.status != 206:  # the server cannot continue: restart
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else 0
        done = have
        with open(part, "ab" if have else "wb") as handle:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as exc:
                    block, total = exc.partial, total or done + len(exc.partial) + (exc.expected or 0)
                    handle.write(block)
                    done += len(block)
                    break
                if not block:
                    break
                handle.write(block)
                done += len(block)
                if max_bytes is not None and done > max_bytes:
                    raise netguard.BudgetExceeded(f"more than {max_bytes} bytes")
                if progress:
                    progress(stage, done, total or done)
        if total and done < total:
            raise OSError(f"the server closed the connection after {done} of the {total} bytes it announced")


def fetch_reference_file(path: str, models_dir=None, progress: ProgressFn | None = None) -> Path:
    """One file of the reference repository (e.g. a sample video) in the models dir, fetched once and
    verified against its pinned git blob id."""
    target = reference_target(path, models_dir)
    if target.is_file():
        return target
    if not downloads_allowed():
        raise ModelUnavailable(
            f"{path} of the reference repository is not in {target.parent} and downloads are "
            f"off ({OFFLINE_ENV}/HF_HUB_OFFLINE); run `vemoclap download-models --only samples` "
            f"where there is internet"
        )
    blob = reference_blob(path)
    log.info("fetching %s of %s@%s", path, REFERENCE_REPO, REFERENCE_COMMIT[:7])
    folder = path.split("/")[0]
    connection.check(
        f"{path} of the reference repository",
        reference_base_url() + path,
        "`vemoclap demo` runs offline on tiny random models; run `vemoclap download-models"
        + (" --only samples" if folder == "sample_data" else "")
        + "` where there is internet",
    )
    return download_file(reference_base_url() + path, target, git_sha1=blob, progress=progress, stage=path)


__all__ = [
    "DownloadError",
    "VerificationError",
    "git_blob_sha1",
    "sha256_file",
    "md5_file",
    "verify",
    "verify_sha256",
    "download_file",
    "fetch_reference_file",
    "reference_base_url",
    "reference_blob",
    "expected_sha256",
    "remote_size",
    "REFERENCE_BLOBS",
    "REFERENCE_COMMIT",
    "REFERENCE_REPO",
    "REFERENCE_LICENSE",
]
