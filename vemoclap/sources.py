"""Turn what a user gives (a path, "sample", an http(s) link, uploaded bytes) into a local video file.

Safety rules: only http(s) links; hosts that resolve to private, loopback, link-local or reserved
addresses are refused unless ``allow_private=True`` (tests serve files from 127.0.0.1); downloads
have duration and size limits; an uploaded file's name never reaches a path unchecked.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ._util import atomic_write_bytes
from .errors import UserError, one_line
from .media import VIDEO_EXTENSIONS  # noqa: F401  (the one list; re-exported for the app)

log = logging.getLogger(__name__)

SAMPLE = "sample"


class SourceError(UserError):
    """A source that cannot be used, with a one-line reason and what to do."""


@dataclass(frozen=True)
class DownloadLimits:
    max_duration_s: float = 30 * 60  # longer videos are refused before downloading
    max_bytes: int = 500 * 1024 * 1024
    height: int = 360  # the reference decodes at 360p; smaller downloads
    timeout_s: float = 30.0


def is_url(source) -> bool:
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def resolve_source(source, *, directory: str | Path | None = None, allow_private: bool = False,
                   limits: DownloadLimits = DownloadLimits(), filename: str = "upload.mp4") -> Path:
    """A local video file for ``source``: a path, ``"sample"``, an http(s) URL, or raw bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return save_upload(bytes(source), filename, directory or _workdir())
    if isinstance(source, str) and source == SAMPLE and not Path(source).exists():
        from .sample import sample_video

        return sample_video()
    if is_url(source):
        return download(source, directory or _workdir(), allow_private=allow_private, limits=limits)
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file; give a video file, an http(s) link or 'sample'")
    return path


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="vemoclap-"))


def safe_filename(name: str, default_stem: str = "upload") -> str:
    """A file name made only of safe characters, keeping a known video extension."""
    base = Path(str(name).replace("\\", "/")).name  # drop any directories, Windows ones too
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or default_stem
    if suffix not in VIDEO_EXTENSIONS:
        raise SourceError(f"{base or name!r}: not an allowed video type; use one of "
                          f"{', '.join(sorted(VIDEO_EXTENSIONS))}")
    return stem + suffix


def save_upload(data: bytes, filename: str, directory: str | Path, *, max_bytes: int = DownloadLimits.max_bytes
                ) -> Path:
    """Write uploaded bytes under a sanitized name in ``directory`` (atomically)."""
    name = safe_filename(filename)
    if not data:
        raise SourceError(f"{name}: the upload is empty; choose a video file")
    if len(data) > max_bytes:
        raise SourceError(f"{name}: {len(data) / 2**20:.0f} MB is over the {max_bytes / 2**20:.0f} MB upload limit")
    path = Path(directory) / name
    atomic_write_bytes(path, data)
    return path


def check_url(url: str, *, allow_private: bool = False) -> str:
    """Refuse non-http(s) links and hosts on private/loopback/reserved addresses; return the host."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise SourceError(f"{url}: only http(s) links are accepted")
    host = parsed.hostname
    if not host:
        raise SourceError(f"{url}: the link has no host name")
    if allow_private:
        return host
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parsed.port or 443)}
    except socket.gaierror:
        raise SourceError(f"{url}: the host '{host}' could not be found; check the link") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast \
                or ip.is_unspecified:
            raise SourceError(f"{url}: '{host}' is a private or local address ({ip}); such links are refused")
    return host


# yt-dlp error text → the reason people should read.
_DOWNLOAD_REASONS = [
    ("private video", "the video is private"),
    ("sign in to confirm your age", "the video is age-restricted"),
    ("video unavailable", "the video is unavailable (removed or never existed)"),
    ("has been removed", "the video was removed"),
    ("not available in your country", "the video is blocked in this country"),
    ("geo restriction", "the video is blocked in this country"),
    ("unsupported url", "no video was found at this link"),
    ("http error 404", "the page was not found (HTTP 404)"),
    ("http error 403", "access was refused (HTTP 403)"),
    ("unable to download webpage", "the page could not be downloaded"),
    ("is larger than max-filesize", "the video is over the size limit"),
]


def _reason(message: str) -> str:
    lowered = message.lower()
    for needle, reason in _DOWNLOAD_REASONS:
        if needle in lowered:
            return reason
    first = one_line(message) or "download failed"
    return re.sub(r"^ERROR:\s*", "", first)


def download(url: str, directory: str | Path, *, allow_private: bool = False,
             limits: DownloadLimits = DownloadLimits()) -> Path:
    """Download one progressive (audio+video in one file, so no ffmpeg muxing) ≤360p file with yt-dlp."""
    check_url(url, allow_private=allow_private)
    try:
        import yt_dlp
    except ImportError:
        raise SourceError("links need yt-dlp: pip install yt-dlp") from None

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    h = limits.height

    def too_long(info, *, incomplete=False):
        duration = info.get("duration")
        if duration and duration > limits.max_duration_s:
            return f"the video is {duration / 60:.0f} min long; the limit is {limits.max_duration_s / 60:.0f} min"
        return None

    options = {
        # progressive formats first (one file with both streams), smallest sensible height
        "format": (f"best[height<={h}][vcodec!=none][acodec!=none]/best[vcodec!=none][acodec!=none]"
                   f"/best[height<={h}]/best"),
        "outtmpl": str(directory / "%(id).80s.%(ext)s"),
        "restrictfilenames": True,
        "noplaylist": True,
        "max_filesize": limits.max_bytes,
        "match_filter": too_long,
        "socket_timeout": limits.timeout_s,
        "retries": 2,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
            if info is None:
                raise SourceError(f"{url}: no video was found at this link")
            if info.get("_type") == "playlist":
                raise SourceError(f"{url}: this is a playlist; give the link of one video")
            path = Path(ydl.prepare_filename(info))
    except yt_dlp.utils.DownloadError as exc:
        raise SourceError(f"{url}: {_reason(str(exc))}") from None
    except yt_dlp.utils.YoutubeDLError as exc:
        raise SourceError(f"{url}: {_reason(str(exc))}") from None
    if not path.is_file():
        reason = too_long(info) or "nothing was downloaded (over the size or length limit?)"
        raise SourceError(f"{url}: {reason}")
    return path


class _QuietLogger:
    """yt-dlp logger that sends its chatter to logging instead of the terminal."""

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info(msg)

    def error(self, msg: str) -> None:
        log.debug(msg)  # raised as DownloadError and reported once by download()
