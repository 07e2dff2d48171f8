"""End to end in a real browser: `vemoclap app` serves the notebook with Voila on 127.0.0.1, headless
Chromium (Debian's package, driven by Playwright) picks the sample, clicks Load and Run, and sees the
probability chart and the report.

CI installs the browser with `apt-get install -y --no-install-recommends chromium`; Playwright never
downloads one. The page may load only from 127.0.0.1: every other request is aborted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y --no-install-recommends chromium)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"the app did not listen on port {port}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_models):
    """`python -m vemoclap.app` (= `vemoclap app`) on a free port, pointed at tiny models."""
    root = tmp_path_factory.mktemp("page")
    models = tiny_models
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "VEMOCLAP_CACHE": str(root / "cache"),
            "VEMOCLAP_EXTRACTORS": "clip,face_emotion",
            "VEMOCLAP_FACE_DETECTOR": "opencv",
            "VEMOCLAP_FRAMES": "4",
            "MPLBACKEND": "Agg",
            # Jupyter's own files go to the temp dir, not the home folder
            "JUPYTER_PLATFORM_DIRS": "1",
            "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
            "IPYTHONDIR": str(root / "ipython"),
            "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        }
    )
    log = root / "voila.log"
    command = [
        sys.executable,
        "-m",
        "vemoclap.app",
        "--no-browser",
        "--port",
        str(port),
        "--models-dir",
        str(models),
        "--classifier",
        str(models / "classifier"),
        "--output-dir",
        str(root / "out"),
    ]
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=root, start_new_session=True
        )
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}/", root, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the app, Voila and its kernel: our own group
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_page_runs_the_app_in_a_browser(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, root, log = served
    blocked: list[str] = []

    def local_only(route):
        target = urlparse(route.request.url)
        if target.scheme in ("data", "blob") or target.hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", local_only)
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            load = page.locator("button.vemoclap-load")
            load.wait_for(timeout=180_000)  # Voila runs the notebook before showing it

            page.get_by_role("button", name="Sample video").click()
            assert "sample" in page.locator("select").first.input_value()
            load.click()
            page.get_by_text("all models are loaded").wait_for(timeout=180_000)
            assert page.locator(".vemoclap-model-row").count() == 3  # classifier, clip, face_emotion

            page.locator("button.vemoclap-run").click()
            chart = page.locator(".vemoclap-chart")
            chart.wait_for(state="visible", timeout=300_000)
            page.wait_for_function(
                "() => { const i = document.querySelector('.vemoclap-chart');"
                " return i && i.complete && i.naturalWidth > 200; }",
                timeout=60_000,
            )
            summary = page.locator(".vemoclap-summary").inner_text()
            assert "Emotion:" in summary, summary
            page.locator(".vemoclap-summary summary").click()  # open the text report
            report = page.locator(".vemoclap-report").inner_text()
            assert "vemoclap result for sample" in report and "clip: 4×512" in report, report
            assert page.locator(".vemoclap-frame").is_visible()
            details = page.locator(".vemoclap-details").inner_text()
            assert "faces (haar)" in details or "faces (lbp)" in details, details
            body = page.locator("body").inner_text()
            assert "Traceback" not in body and "Error" not in body.split("Emotion:")[0]

            # Voila scrolls inside #rendered_cells, so grow the window to the page to see it all
            height = page.evaluate("() => (document.querySelector('#rendered_cells') || document.body).scrollHeight")
            page.set_viewport_size({"width": 1200, "height": min(int(height) + 40, 8000)})
            page.wait_for_timeout(500)
            shot = tmp_path / "vemoclap_page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert all(urlparse(u).hostname != "127.0.0.1" for u in blocked)


def _big_video(path: Path, min_mb: float = 50) -> Path:
    from vemoclap.testing.media import make_noise_video

    make_noise_video(path, seed=1)
    assert path.stat().st_size >= min_mb * 2**20, path.stat().st_size
    return path


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_page_upload_of_50mb_reaches_the_analyzer_intact(served, tmp_path):
    """A 50 MB file chosen in the page's FileUpload (ipywidgets 8, the browser's own file input, as a
    person picks it) arrives in the kernel byte for byte and is what step 5 analyzes."""
    playwright = pytest.importorskip("playwright.sync_api")
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) < 8:
        pytest.skip("the page runs ipywidgets 8 (Colab's 7.7 never serves this page)")
    url, root, log = served
    video = _big_video(tmp_path / "holiday at sea.mp4")
    uploads = root / "out" / "uploads"
    before = set(uploads.rglob("*.mp4")) if uploads.exists() else set()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if urlparse(route.request.url).scheme in ("data", "blob")
                    or urlparse(route.request.url).hostname == "127.0.0.1"
                    else route.abort()
                ),
            )
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.locator("button.vemoclap-load").wait_for(timeout=180_000)
            page.get_by_role("button", name="Upload", exact=True).click()
            # ipywidgets 8's FileUpload is a button that clicks a file input kept outside the page's DOM:
            # Playwright answers the browser's file chooser that this opens, as a person would.
            with page.expect_file_chooser(timeout=30_000) as chosen:
                page.locator("button.widget-upload").click()
            chosen.value.set_files(str(video))
            page.get_by_text("holiday at sea.mp4 is ready").wait_for(timeout=300_000)

            saved = sorted(set(uploads.rglob("*.mp4")) - before)
            assert len(saved) == 1, saved
            assert saved[0].stat().st_size == video.stat().st_size
            assert _sha256(saved[0]) == _sha256(video)

            page.locator("button.vemoclap-run").click()
            page.locator(".vemoclap-chart").wait_for(state="visible", timeout=300_000)
            page.locator(".vemoclap-summary summary").click()
            report = page.locator(".vemoclap-report").inner_text()
            assert "holiday" in report, report
            assert "Emotion:" in page.locator(".vemoclap-summary").inner_text()
        finally:
            browser.close()
