"""Sources: local paths, the sample, uploads and links through yt-dlp served from 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest

from vemoclap.sources import SourceError, check_url, resolve_source, safe_filename, save_upload
from vemoclap.testing import make_video


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A loopback web server with a video, a plain page and nothing else."""
    root = tmp_path_factory.mktemp("www")
    make_video(root / "clip.mp4", duration=1.0, audio="tone")
    (root / "page.html").write_text("<html><body><p>No video here.</p></body></html>")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    url_root = type("Served", (str,), {"root": root})(url)  # the URL, which also knows its folder
    yield url_root
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_through_yt_dlp_from_loopback(server, tmp_path):
    path = resolve_source(f"{server}/clip.mp4", directory=tmp_path, allow_private=True)
    assert path.is_file() and path.parent == tmp_path
    assert path.read_bytes() == (server.root / "clip.mp4").read_bytes()
    import av

    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio


def test_loopback_refused_unless_allowed(server, tmp_path):
    with pytest.raises(SourceError, match="private or local address"):
        resolve_source(f"{server}/clip.mp4", directory=tmp_path)


@pytest.mark.parametrize("url", ["ftp://example.com/a.mp4", "file:///etc/passwd", "javascript://alert(1)"])
def test_non_http_links_refused(url):
    with pytest.raises(SourceError, match="only http"):
        check_url(url)


@pytest.mark.slow
def test_page_without_video_gives_one_line_reason(server, tmp_path):
    with pytest.raises(SourceError) as info:
        resolve_source(f"{server}/page.html", directory=tmp_path, allow_private=True)
    message = str(info.value)
    assert "\n" not in message and "page.html" in message


def test_missing_page_gives_404_reason(server, tmp_path):
    with pytest.raises(SourceError, match="404"):
        resolve_source(f"{server}/nothing.mp4", directory=tmp_path, allow_private=True)


def test_missing_local_file(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        resolve_source(tmp_path / "nope.mp4")


def test_upload_names_are_sanitized(tmp_path):
    assert safe_filename("../../etc/passwd.mp4") == "passwd.mp4"
    assert safe_filename("C:\\Users\\x\\my clip (1).MOV") == "my_clip_1.mov"
    assert safe_filename("ünïcode vidéo.webm") == "n_code_vid_o.webm"
    with pytest.raises(SourceError, match="not an allowed video type"):
        safe_filename("evil.sh")
    path = save_upload(b"\x00" * 10, "../x/../clip.mp4", tmp_path)
    assert path == tmp_path / "clip.mp4" and path.read_bytes() == b"\x00" * 10
    with pytest.raises(SourceError, match="empty"):
        save_upload(b"", "a.mp4", tmp_path)
    with pytest.raises(SourceError, match="limit"):
        save_upload(b"1234", "a.mp4", tmp_path, max_bytes=3)


def test_bytes_become_a_file(tmp_path, short_video):
    data = Path(short_video).read_bytes()
    path = resolve_source(data, directory=tmp_path, filename="my upload.mp4")
    assert path.name == "my_upload.mp4" and path.read_bytes() == data


def test_sample_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.setenv("VEMOCLAP_CACHE", str(tmp_path))
    first = resolve_source("sample")
    assert first == tmp_path / "sample.mp4" and first.stat().st_size > 10_000
    mtime = first.stat().st_mtime_ns
    assert resolve_source("sample").stat().st_mtime_ns == mtime


COOKIES = "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsession\tsecret-login-token\n"


def test_a_kept_temp_folder_keeps_no_copy_of_the_cookies(server, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    path = resolve_source(
        f"{server}/clip.mp4", directory=tmp_path / "out", allow_private=True, cookies=cookies, keep_temp=True
    )
    assert path.is_file()
    kept = list((tmp_path / "tmp").glob("vemoclap-run-*"))
    assert len(kept) == 1 and kept[0].is_dir()  # kept as asked ...
    leftovers = [p for p in kept[0].rglob("*") if p.is_file()]
    assert not any("secret-login-token" in p.read_text(errors="ignore") for p in leftovers), leftovers
    assert "secret-login-token" in cookies.read_text()  # ... and the person's own file is untouched


def test_a_run_folder_is_removed_also_when_the_link_is_refused(server, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(SourceError):
        resolve_source(f"{server}/nothing.mp4", directory=tmp_path / "out", allow_private=True)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_same_name_uploads_never_overwrite_each_other(tmp_path, monkeypatch):
    monkeypatch.setenv("VEMOCLAP_CACHE", str(tmp_path / "cache"))
    first = resolve_source(b"first video bytes", filename="clip.mp4")
    second = resolve_source(b"second video bytes", filename="clip.mp4")
    assert first != second and first.read_bytes() == b"first video bytes"
    assert second.read_bytes() == b"second video bytes"
    assert resolve_source(b"first video bytes", filename="clip.mp4") == first  # same bytes, same file
    # into a chosen folder: the friendly name first, a hashed one when it is taken by other bytes
    one = save_upload(b"one", "a.mp4", tmp_path / "mine")
    two = save_upload(b"two", "a.mp4", tmp_path / "mine")
    assert one.name == "a.mp4" and two.name.startswith("a-") and one.read_bytes() == b"one"


def test_the_download_cache_is_trimmed_to_its_cap_oldest_first(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("VEMOCLAP_CACHE", str(tmp_path))
    monkeypatch.setenv("VEMOCLAP_DOWNLOAD_CACHE_MB", "0.25")  # 256 KiB
    old = [resolve_source(bytes([i]) * 100_000, filename=f"old{i}.mp4") for i in range(2)]
    for age, path in enumerate(old):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    newest = resolve_source(b"n" * 100_000, filename="new.mp4")
    assert newest.is_file() and old[1].is_file() and not old[0].exists()


# What YouTube answers a datacenter address today (yt-dlp passes the site's reason through).
BOT_CHECK = "Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the authentication."

BOT_PLUGIN = f'''
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError


class BotCheckIE(InfoExtractor):
    """A site that refuses as YouTube does from a datacenter (a test plugin, loaded by yt-dlp itself)."""

    _VALID_URL = r"http://127\\.0\\.0\\.1:\\d+/watch-bot.*"

    def _real_extract(self, url):
        raise ExtractorError({BOT_CHECK!r}, expected=True)
'''


def test_a_not_a_bot_refusal_names_the_cookies_option(server, tmp_path):
    import os
    import subprocess
    import sys

    plugins = tmp_path / "plugins" / "yt_dlp_plugins" / "extractor"
    plugins.mkdir(parents=True)
    (plugins / "botcheck.py").write_text(BOT_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugins"), str(Path(__file__).parents[1])])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vemoclap.cli",
            "analyze",
            f"{server}/watch-bot?v=1",
            "--allow-private",
            "-q",
            "--no-classifier",
            "--extractors",
            "clip",
            "--models-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("vemoclap: ")]
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert "not a bot" in lines[0] and "--cookies FILE" in lines[0] and "upload the video" in lines[0]


# ---- hostile links (issue 25): compressed bodies, feeds, drips, short bodies, unnamed content ----------


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    video: bytes = b""
    bomb: bytes = b""  # 64 MB of zeros, gzipped: ~64 KB on the wire
    log: list = []

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, content_type: str, **headers):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", headers.pop("length", str(len(body))))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):  # noqa: C901 (one route per hostile case)
        import time

        self.log.append(self.path)
        self.close_connection = True
        bomb = self.bomb
        if self.path == "/gzip.mp4":
            return self._send(bomb, "video/mp4", Content_Encoding="gzip")
        if self.path == "/gzip.html":
            return self._send(bomb, "text/html", Content_Encoding="gzip")
        if self.path == "/video":
            return self._send(self.video, "application/octet-stream")
        if self.path == "/short.mp4":
            return self._send(self.video[:1000], "video/mp4", length=str(len(self.video)))
        if self.path == "/feed.xml":
            items = "".join(
                f"<item><title>v{i}</title><link>http://{self.headers['Host']}/v{i}.mp4</link>"
                f'<enclosure url="http://{self.headers["Host"]}/v{i}.mp4" type="video/mp4"/></item>'
                for i in range(500)
            )
            feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}</channel></rss>'
            return self._send(feed.encode(), "application/rss+xml")
        if self.path.startswith("/drip"):
            if self.path == "/drip-headers.mp4":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            else:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(1 << 20))
                self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            return None
        self.send_error(404)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    handler = type("Handler", (_HostileHandler,), {"log": []})
    handler.video = make_video(root / "clip.mp4", duration=1.0, audio="tone").read_bytes()
    handler.bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield type("Hostile", (str,), {"handler": handler})(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()


def _one_line_refusal(url: str, tmp_path, **limits):
    from vemoclap.sources import DownloadLimits

    with pytest.raises(SourceError) as info:
        resolve_source(url, directory=tmp_path, allow_private=True, limits=DownloadLimits(**limits))
    message = str(info.value)
    assert "\n" not in message and message.split(": ", 1)[1].strip(), message
    return message


@pytest.mark.parametrize("path", ["/gzip.mp4", "/gzip.html"])
def test_a_gzip_body_counts_its_inflated_bytes_against_the_budget(hostile, tmp_path, path):
    message = _one_line_refusal(hostile + path, tmp_path, max_bytes=4 << 20)
    assert "4 MB limit" in message or "inflates to more than" in message, message
    assert not any(tmp_path.iterdir())


def test_the_guard_caps_what_zlib_inflates_inside_it():
    import gzip
    import zlib

    from vemoclap import netguard

    bomb = gzip.compress(b"\0" * (32 << 20))
    with netguard.guarded(max_bytes=1 << 20) as guard, pytest.raises(netguard.BudgetExceeded):
        zlib.decompress(bomb, zlib.MAX_WBITS | 16)
    assert guard.decoded <= (1 << 20) * 2 and "inflates" in guard.stopped
    assert len(zlib.decompress(bomb, zlib.MAX_WBITS | 16)) == 32 << 20  # outside a guard: unchanged


def test_a_real_mp4_served_as_octet_stream_is_named_by_its_content(hostile, tmp_path):
    path = resolve_source(hostile + "/video", directory=tmp_path, allow_private=True)
    assert path.suffix == ".mp4" and path.read_bytes() == hostile.handler.video


@pytest.mark.slow
def test_a_content_length_longer_than_the_body_gives_a_real_reason(hostile, tmp_path):
    message = _one_line_refusal(hostile + "/short.mp4", tmp_path)
    assert "closed the connection before sending the whole file" in message, message


def test_a_feed_is_refused_before_its_entries_are_resolved(hostile, tmp_path):
    hostile.handler.log.clear()
    message = _one_line_refusal(hostile + "/feed.xml", tmp_path)
    assert "playlist or feed" in message, message
    assert hostile.handler.log == ["/feed.xml"], hostile.handler.log[:5]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/drip.mp4", "/drip-headers.mp4"])
def test_a_server_dripping_bytes_is_cut_off(hostile, tmp_path, path):
    import time

    started = time.monotonic()
    message = _one_line_refusal(hostile + path, tmp_path, min_rate=1000, grace_s=1.5, timeout_s=5)
    assert time.monotonic() - started < 20
    assert "below the minimum rate" in message, message


def test_raw_yt_dlp_and_requests_texts_become_human_lines():
    from vemoclap.sources import _reason

    assert "no format this tool downloads" in _reason(
        "ERROR: [generic] x: Requested format is not available. Use --list-formats for a list of available formats"
    )
    assert "not an http(s) address" in _reason("No connection adapters were found for 'gopher://x'")
