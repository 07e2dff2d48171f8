"""Sources: local paths, the sample, uploads and links through yt-dlp served from 127.0.0.1."""
from __future__ import annotations

import functools
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
