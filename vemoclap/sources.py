"""Turn what a user gives (a path, "sample", an http(s) link, uploaded bytes) into a local video file.

Safety rules: only http(s) links; every connection a download makes (the link, each redirect,
each URL a page or yt-dlp extractor yields) goes through :mod:`vemoclap.netguard`, which refuses
private, loopback, link-local and metadata addresses after DNS unless ``allow_private=True``;
downloads have duration and byte limits enforced while reading; formats that only FFmpeg's own
HLS/DASH downloader could fetch are refused. Each download works in one per-run temp folder that
is removed at the end (kept with ``keep_temp=True`` or ``VEMOCLAP_KEEP_TEMP=1``); the finished
file moves into a download cache with a size cap. A cookies file is a login: yt-dlp gets a
private copy (it writes cookies back on close) that is deleted after the run, even when the
temp folder is kept, and never logged. Proxy settings (HTTP(S)_PROXY, ALL_PROXY) are ignored for
video links: through a proxy the only address a guard can check is the proxy's, while the proxy
would connect anywhere the link leads (a redirect to 169.254.169.254 included); where only a proxy
reaches the internet, download the video another way and give the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from . import netguard, samples
from ._util import atomic_write_bytes, cache_root
from .errors import SourceError, UserError, one_line
from .media import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

CACHE_CAP_ENV = "VEMOCLAP_DOWNLOAD_CACHE_MB"
KEEP_TEMP_ENV = "VEMOCLAP_KEEP_TEMP"
DEFAULT_CACHE_CAP_MB = 2048


@dataclass(frozen=True)
class DownloadLimits:
    max_duration_s: float = 30 * 60  # longer videos are refused before downloading
    max_bytes: int = 500 * 1024 * 1024
    height: int = 360  # the reference decodes at 360p; smaller downloads
    timeout_s: float = 30.0  # per socket operation
    deadline_s: float = 30 * 60.0  # the whole download, pages and media
    min_rate: float = 8 * 1024.0  # bytes/s on average once grace_s has passed: a drip is cut off
    grace_s: float = 30.0

    @property
    def pace(self) -> netguard.Pace:
        return netguard.Pace(deadline_s=self.deadline_s, min_rate=self.min_rate, grace_s=self.grace_s)


def is_url(source) -> bool:
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def redact(url: str) -> str:
    """The link with any user name and password taken out, for messages and logs."""
    try:
        parsed = urlparse(url)
    except ValueError:
        return "<link>"
    if parsed.username is None and parsed.password is None:
        return url
    host = parsed.hostname or ""
    netloc = f"***@{host}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def shown(value) -> str:
    """A path or link as it may appear in a one-line message: no credentials, no line breaks."""
    text = redact(value) if is_url(value) else str(value)
    return text.encode("unicode_escape").decode("ascii") if any(c in text for c in "\r\n\t") else text


def resolve_source(
    source,
    *,
    directory: str | Path | None = None,
    allow_private: bool = False,
    limits: DownloadLimits = DownloadLimits(),
    filename: str = "upload.mp4",
    cookies: str | Path | None = None,
    keep_temp: bool | None = None,
    models_dir: str | Path | None = None,
    progress=None,
) -> Path:
    """A local video file for ``source``: a path, a sample (``"sample"``, ``"sample:joy"``), an
    http(s) URL, or raw bytes.

    Uploads and downloads land in ``directory`` when given, else in the download cache
    (:func:`cache_dir`, size-capped) so that exports can read them after the analysis. A reference
    sample is fetched into ``models_dir`` (``progress(stage, done, total)`` told its bytes).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        target = Path(directory) if directory else cache_dir() / "uploads"
        # in the shared cache the name carries the content's hash: concurrent same-name uploads never collide
        path = save_upload(bytes(source), filename, target, unique=not directory)
        if not directory:
            trim_cache()
        return path
    if isinstance(source, Path):
        source = str(source)
    if not isinstance(source, str):
        raise SourceError(f"{type(source).__name__}: not a video source; give a file path, a link or bytes")
    if not source.strip():
        raise SourceError("no source given; give a video file, an http(s) link or 'sample'")
    sample = samples.local_copy(source, models_dir, progress)
    if sample is not None:
        return sample
    if is_url(source):
        return download(
            source, directory, allow_private=allow_private, limits=limits, cookies=cookies, keep_temp=keep_temp
        )
    return check_local(Path(source).expanduser())


def check_local(path: Path) -> Path:
    """``path`` if it is a regular, readable, non-empty file; otherwise a SourceError saying what it is."""
    name = shown(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise SourceError(f"{name}: a broken symbolic link (its target does not exist)") from None
        raise SourceError(f"{name}: no such file; give a video file, an http(s) link or 'sample'") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise SourceError(f"{name}: a symbolic link loop; point to the video file itself") from None
        raise SourceError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SourceError(f"{name}: is a folder; give a video file inside it")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a named pipe (FIFO)"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise SourceError(f"{name}: {kind}, not a video file; save the video to a file first")
    if str(path.resolve()).startswith(("/proc/", "/sys/")):
        raise SourceError(f"{name}: a system file, not a video file")
    if info.st_size == 0:
        raise SourceError(f"{name}: the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{name}: permission denied; make the file readable")
    return path


def cache_dir() -> Path:
    """Where downloaded and uploaded copies live (``$VEMOCLAP_CACHE/downloads``), capped in size."""
    return cache_root() / "downloads"


def trim_cache(cap_bytes: int | None = None, keep: Path | None = None) -> None:
    """Remove the oldest cached copies until the cache is under its cap (``$VEMOCLAP_DOWNLOAD_CACHE_MB``)."""
    if cap_bytes is None:
        try:
            cap_bytes = int(float(os.environ.get(CACHE_CAP_ENV, DEFAULT_CACHE_CAP_MB)) * 2**20)
        except ValueError:
            cap_bytes = DEFAULT_CACHE_CAP_MB * 2**20
    root = cache_dir()
    if not root.is_dir():
        return
    files = []
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                info = path.stat()
                files.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= cap_bytes:
            break
        if keep is not None and path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size


@contextlib.contextmanager
def run_folder(keep: bool | None = None):
    """One temp folder for this run: removed at the end, kept when asked (``VEMOCLAP_KEEP_TEMP=1``)."""
    keep = os.environ.get(KEEP_TEMP_ENV, "") not in ("", "0") if keep is None else keep
    folder = Path(tempfile.mkdtemp(prefix="vemoclap-run-"))
    try:
        yield folder
    finally:
        if keep:
            log.info("kept the run's temp folder %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def safe_filename(name: str, default_stem: str = "upload") -> str:
    """A file name made only of safe characters, keeping a known video extension."""
    base = Path(str(name).replace("\\", "/")).name  # drop any directories, Windows ones too
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or default_stem
    if suffix not in VIDEO_EXTENSIONS:
        raise SourceError(
            f"{base or name!r}: not an allowed video type; use one of {', '.join(sorted(VIDEO_EXTENSIONS))}"
        )
    return stem + suffix


def save_upload(
    data: bytes,
    filename: str,
    directory: str | Path,
    *,
    max_bytes: int = DownloadLimits.max_bytes,
    unique: bool = False,
) -> Path:
    """Write uploaded bytes under a sanitized name in ``directory`` (atomically).

    An upload never replaces a different file: when the name is taken by other bytes (or always,
    with ``unique=True``) the name gets the content's hash (``clip-1a2b3c4d5e6f.mp4``), so the same
    bytes land on the same file and different bytes never overwrite each other.
    """
    name = safe_filename(filename)
    if not data:
        raise SourceError(f"{name}: the upload is empty; choose a video file")
    if len(data) > max_bytes:
        raise SourceError(f"{name}: {len(data) / 2**20:.0f} MB is over the {max_bytes / 2**20:.0f} MB upload limit")
    path = Path(directory) / name
    if unique or (path.exists() and not _same_bytes(path, data)):
        digest = hashlib.sha256(data).hexdigest()[:12]
        path = path.with_name(f"{path.stem}-{digest}{path.suffix}")
    atomic_write_bytes(path, data)
    return path


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def parse_link(url: str):
    """(the link as shown to people, its parsed parts); a one-line SourceError for a malformed link."""
    name = shown(url)
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 (urllib checks the port only when it is read)
    except ValueError:
        raise SourceError(f"{name}: not a valid link") from None
    return name, parsed


def check_url(url: str, *, allow_private: bool = False) -> str:
    """Refuse non-http(s) links and hosts on private/loopback/reserved addresses; return the host.

    This only checks the link as typed, for an early clear reason; the download itself is guarded
    connection by connection (:mod:`vemoclap.netguard`).
    """
    name, parsed = parse_link(url)
    port = parsed.port
    if parsed.scheme not in ("http", "https"):
        raise SourceError(f"{name}: only http(s) links are accepted")
    host = parsed.hostname
    if not host:
        raise SourceError(f"{name}: the link has no host name")
    if allow_private:
        return host
    try:
        netguard.resolve_public(host, port or (443 if parsed.scheme == "https" else 80), what=name)
    except UserError as exc:
        raise SourceError(str(exc)) from None
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
    (
        "requested format is not available",
        "the site offers no format this tool downloads (one http(s) file with the video; no HLS/DASH "
        "streams); download the video yourself and give the file",
    ),
    ("no connection adapters", "the link or one it leads to is not an http(s) address; such links are refused"),
    ("unsupported protocol", "the link or one it leads to is not an http(s) address; such links are refused"),
    (
        "content too short",
        "the server closed the connection before sending the whole file (it announced more bytes than it "
        "sent); try again later",
    ),
    ("incompleteread", "the server closed the connection before sending the whole file; try again later"),
    ("more expected", "the server closed the connection before sending the whole file it announced; try again later"),
    ("timed out", "the server stopped answering (timed out); try again later"),
    (
        "not a bot",
        "the site asks to sign in to confirm this is not a bot (it blocks many datacenter and "
        "Colab addresses); pass a cookies file of a logged-in browser (--cookies FILE, "
        "cookies=) or upload the video instead",
    ),
    (
        "sign in to confirm",
        "the site asks to sign in; pass a cookies file of a logged-in browser "
        "(--cookies FILE, cookies=) or upload the video instead",
    ),
]


def _reason(message: str) -> str:
    lowered = message.lower()
    for needle, reason in _DOWNLOAD_REASONS:
        if needle in lowered:
            return reason
    text = " ".join(re.sub(r"\bERROR:|\[[a-z_:]+\]", " ", message).split())  # yt-dlp's prefixes, \r and all
    return one_line(text) or "the download failed without a reason; try again, or download the video yourself"


def _js_runtimes() -> dict | None:
    """yt-dlp's JavaScript runtime for YouTube: deno beside this Python (the ``deno`` package) if installed."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        for name in ("deno", "deno.exe"):
            if (folder / name).is_file() and os.access(folder / name, os.X_OK):
                return {"deno": {"path": str(folder / name)}}
    found = shutil.which("deno")
    return {"deno": {"path": found}} if found else None


def _private_cookies(cookies: str | Path, folder: Path) -> Path:
    source = Path(cookies).expanduser()
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{shown(source)}: no such cookies file") from None
    except OSError as exc:
        raise SourceError(f"{shown(source)}: the cookies file cannot be read ({exc.strerror or exc})") from None
    copy = folder / "cookies.txt"
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return copy


def download(
    url: str,
    directory: str | Path | None = None,
    *,
    allow_private: bool = False,
    limits: DownloadLimits = DownloadLimits(),
    cookies: str | Path | None = None,
    keep_temp: bool | None = None,
) -> Path:
    """Download one progressive (audio+video in one file, so no ffmpeg muxing) ≤360p file with yt-dlp.

    Every connection is checked by the guard; the byte budget counts every byte read; the file is
    fetched into a per-run temp folder and moved into ``directory`` (default: the download cache).
    """
    name = shown(url)
    check_url(url, allow_private=allow_private)
    try:
        import yt_dlp
    except ImportError:
        raise SourceError("links need yt-dlp: pip install yt-dlp") from None

    target = Path(directory) if directory is not None else cache_dir()
    with (
        run_folder(keep_temp) as work,
        netguard.guarded(allow_private=allow_private, max_bytes=limits.max_bytes, pace=limits.pace) as guard,
    ):
        path, info = _yt_dlp_fetch(yt_dlp, url, name, work, limits, cookies, guard)
        suffix = path.suffix.lower() if path.suffix.lower() in VIDEO_EXTENSIONS else _content_suffix(path, name)
        stem = safe_filename(path.stem + suffix, default_stem="video").rsplit(".", 1)[0][:60]
        target.mkdir(parents=True, exist_ok=True)
        final = target / f"{stem}-{_link_key(url)}{suffix}"
        shutil.move(str(path), final)
    if directory is None:
        trim_cache(keep=final)
    return final


# The first bytes of the containers a download may be (a server may call any of them
# application/octet-stream, and a link may have no extension): (offset, bytes, suffix).
_SIGNATURES = (
    (4, b"ftyp", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", ".mkv"),  # Matroska / WebM (PyAV reads both)
    (0, b"FLV", ".flv"),
    (0, b"OggS", ".ogv"),
    (8, b"AVI ", ".avi"),
    (0, b"\x00\x00\x01\xba", ".mpg"),
    (0, b"\x30\x26\xb2\x75", ".wmv"),
)


def _content_suffix(path: Path, name: str) -> str:
    """The video extension a downloaded file's content says it has (its own name had none we know)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    for offset, magic, suffix in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic and suffix in VIDEO_EXTENSIONS:
            return suffix
    if len(head) >= 376 and head[0] == head[188] == 0x47 and ".ts" in VIDEO_EXTENSIONS:  # MPEG-TS packets
        return ".ts"
    looks = "an HTML page" if head.lstrip()[:1] == b"<" else "not a video container this tool reads"
    raise SourceError(f"{name}: the link's content is {looks}; give the link of a video file")


def _link_key(url: str) -> str:
    return hashlib.sha256(redact(url).encode()).hexdigest()[:12]


def fetch_link(
    url: str, directory: str | Path, *, allow_private: bool = False, limits: DownloadLimits = DownloadLimits()
) -> Path:
    """A link's video in ``directory``, downloaded through :func:`download` (the guarded path) only
    when an earlier run did not already leave it there (dataset manifests, resumable runs)."""
    check_url(url, allow_private=allow_private)
    folder = Path(directory)
    if folder.is_dir():
        for earlier in sorted(folder.glob(f"*-{_link_key(url)}.*")):
            if earlier.is_file() and earlier.stat().st_size > 0 and not earlier.name.startswith("."):
                return earlier
    return download(url, folder, allow_private=allow_private, limits=limits)


def _yt_dlp_fetch(yt_dlp, url: str, name: str, work: Path, limits: DownloadLimits, cookies, guard) -> tuple[Path, dict]:
    h = limits.height

    def refuse(info, *, incomplete=False):
        duration = info.get("duration")
        if duration and duration > limits.max_duration_s:
            return f"the video is {duration / 60:.0f} min long; the limit is {limits.max_duration_s / 60:.0f} min"
        return None

    # Only plain http(s) formats: HLS/DASH would be fetched by FFmpeg or in fragments; one file, no muxing.
    plain = "[protocol^=http][protocol!*=dash][protocol!*=m3u8]"
    options = {
        "format": (
            f"best{plain}[height<={h}][vcodec!=none][acodec!=none]/best{plain}[vcodec!=none][acodec!=none]"
            f"/best{plain}[height<={h}]/best{plain}"
        ),
        "outtmpl": str(work / "%(id).60s.%(ext)s"),
        "paths": {"home": str(work), "temp": str(work)},
        "restrictfilenames": True,
        "noplaylist": True,
        "extract_flat": "in_playlist",  # a feed's or playlist's entries are never resolved (it is refused)
        # Media are asked for unencoded; a compressed answer anyway is counted as it inflates (netguard).
        "http_headers": {"Accept-Encoding": "identity"},
        "max_filesize": limits.max_bytes,
        "match_filter": refuse,
        "socket_timeout": limits.timeout_s,
        "retries": 1,
        "fragment_retries": 1,
        "concurrent_fragment_downloads": 1,  # the guard is per thread
        "hls_prefer_native": True,
        "external_downloader": {},
        "fixup": "never",
        "cachedir": False,
        # Direct connections only: through a proxy the guard would see the proxy's address, never
        # the site's, so HTTP(S)_PROXY / ALL_PROXY are ignored for video links (documented).
        "proxy": "",
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
    }
    runtimes = _js_runtimes()
    if runtimes:
        options["js_runtimes"] = runtimes
    cookie_copy = None
    if cookies is not None:
        cookie_copy = _private_cookies(cookies, work)
        options["cookiefile"] = str(cookie_copy)
    try:
        return _run_yt_dlp(yt_dlp, options, url, name, limits, guard, refuse)
    finally:  # a login: gone after the run, even from a temp folder kept for debugging
        if cookie_copy is not None:
            cookie_copy.unlink(missing_ok=True)


def _run_yt_dlp(yt_dlp, options: dict, url: str, name: str, limits: DownloadLimits, guard, refuse) -> tuple[Path, dict]:
    info = None
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            first = ydl.extract_info(url, download=False, process=False)  # refuse a playlist before its entries
            _refuse_playlist(first, name)
            info = ydl.process_ie_result(first, download=False)
            _refuse_playlist(info, name)
            chosen = info.get("requested_formats") or [info]
            if any(
                not str(f.get("protocol", "")).startswith("http")
                or "dash" in str(f.get("protocol", ""))
                or "m3u8" in str(f.get("protocol", ""))
                for f in chosen
            ):
                raise SourceError(
                    f"{name}: the site offers only streaming formats (HLS/DASH) here; "
                    f"download the video yourself and give the file"
                )
            for fmt in chosen:  # the media URL the extractor yields gets the same early check
                if fmt.get("url"):
                    _check_media_url(fmt["url"], name, guard)
            done = ydl.process_ie_result(info, download=True)
            downloads = (done or {}).get("requested_downloads") or [{}]
            path = Path(downloads[0].get("filepath") or ydl.prepare_filename(done or info))
    except SourceError:
        raise
    except Exception as exc:  # yt-dlp wraps the guard's refusals; say what really happened
        raise SourceError(f"{name}: {_failure(exc, guard, limits)}") from None
    if guard.refused:
        raise SourceError(f"{name}: {_refused_reason(guard)}")
    if not path.is_file():
        reason = (refuse(info) if info else None) or "nothing was downloaded (over the size or length limit?)"
        raise SourceError(f"{name}: {reason}")
    return path, info


def _refuse_playlist(info, name: str) -> None:
    if info is None:
        raise SourceError(f"{name}: no video was found at this link")
    if info.get("_type") in ("playlist", "multi_video") or "entries" in info:
        raise SourceError(f"{name}: this is a playlist or feed; give the link of one video")


def _check_media_url(media_url: str, name: str, guard) -> None:
    parsed = urlparse(media_url)
    if parsed.scheme not in ("http", "https"):
        raise SourceError(f"{name}: the video's address is not an http(s) link; such links are refused")
    if guard.allow_private or not parsed.hostname:
        return
    try:
        netguard.resolve_public(parsed.hostname, parsed.port or 443)
    except UserError:
        guard.refused.append(parsed.hostname)
        raise SourceError(f"{name}: {_refused_reason(guard)}") from None


def _refused_reason(guard) -> str:
    return (
        f"the link leads to a private or local address ({guard.refused[0]}) through a redirect, an "
        f"embedded video or its DNS answer; such links are refused unless allow_private / --allow-private"
    )


def _failure(exc: BaseException, guard, limits: DownloadLimits) -> str:
    if guard.refused:
        return _refused_reason(guard)
    if guard.over_budget:
        return f"the download is over the {limits.max_bytes / 2**20:.0f} MB limit; stopped there"
    if guard.stopped:
        return guard.stopped
    text = str(exc)
    if "cookie" in text.lower() and ("load" in text.lower() or "netscape" in text.lower()):
        return "the cookies file is not a Netscape-format cookies.txt; export one from a logged-in browser"
    return redact_text(_reason(text))


def redact_text(text: str) -> str:
    """Any link inside ``text`` with its credentials removed, on one line."""
    text = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+", lambda m: redact(m.group(0)), text)
    return " ".join(text.split())


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
