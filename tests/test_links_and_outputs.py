"""Dataset manifests with links go through the guarded download path; output folders are checked
before any work (``vemoclap extract --out``)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vemoclap.training.dataset import DatasetError, load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A loopback web server with two videos; it records every path it is asked for."""
    from vemoclap.testing import make_video

    root = tmp_path_factory.mktemp("www")
    make_video(root / "a.mp4", duration=1.0, size=(64, 48), audio=None)
    make_video(root / "b.mp4", duration=1.5, size=(64, 48), audio=None)
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            asked.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", asked, root
    httpd.shutdown()


def _manifest(folder: Path, rows: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "videos.csv"
    path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    return path


def test_links_in_a_manifest_are_refused_on_private_addresses(served, tmp_path):
    url, asked, _ = served
    before = len(asked)
    manifest = _manifest(tmp_path / "ds", [(f"{url}/a.mp4", "joy"), (f"{url}/b.mp4", "fear")])
    with pytest.raises(DatasetError) as info:
        load_dataset(manifest)
    message = str(info.value)
    assert "\n" not in message and "line 2" in message and "private or local address" in message
    assert len(asked) == before  # nothing was fetched
    assert not (tmp_path / "ds" / "downloads").exists() or not any((tmp_path / "ds" / "downloads").iterdir())


def test_links_in_a_manifest_are_downloaded_once_beside_it(served, tmp_path):
    url, asked, root = served
    manifest = _manifest(tmp_path / "ds", [(f"{url}/a.mp4", "joy"), (f"{url}/b.mp4", "fear"), ("local.mp4", "joy")])
    from vemoclap.testing import make_video

    make_video(tmp_path / "ds" / "local.mp4", duration=1.0, size=(64, 48), audio=None)
    videos = load_dataset(manifest, allow_private=True, test_size=0.5, val_size=0)
    downloaded = {v.path.name.split("-")[0]: v for v in videos if v.path.parent == tmp_path / "ds" / "downloads"}
    assert sorted(downloaded) == ["a", "b"] and len(videos) == 3
    for stem, video in downloaded.items():
        assert video.path.read_bytes() == (root / f"{stem}.mp4").read_bytes()
    fetched = len(asked)
    again = load_dataset(manifest, allow_private=True, test_size=0.5, val_size=0)
    assert [v.id for v in again] == [v.id for v in videos]  # stable ids: a resumed extraction matches
    assert len(asked) == fetched  # the second load reused the downloads


@pytest.mark.parametrize("kind", ["file", "inside_a_file"])
def test_extract_out_is_checked_before_any_work(served, tmp_path, kind):
    url, asked, _ = served
    before = len(asked)
    manifest = _manifest(tmp_path / "ds", [(f"{url}/a.mp4", "joy")])
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
    else:
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "features"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vemoclap.cli",
            "extract",
            str(manifest),
            "--out",
            str(out),
            "--extractors",
            "clip",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "--out" in lines[0], done.stderr
    assert len(asked) == before  # refused before the manifest's link was even looked at
