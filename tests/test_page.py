"""`vemoclap app`: it owns Voila and its kernels (stopping or killing the app ends them all; a busy port is
an error naming it), and, end to end in a real browser, it serves the notebook with Voila on 127.0.0.1:
headless Chromium (Debian's package, driven by Playwright) picks the sample, clicks Load and Run, and sees
the probability chart and the report.

CI installs the browser with `apt-get install -y --no-install-recommends chromium`; Playwright never
downloads one. Without it the browser tests are skipped with a reason that says so. The page may load only
from 127.0.0.1: every other request is aborted.
"""

from __future__ import annotations

import os
import re
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

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="BROWSER TEST NOT RUN: no Chromium at /usr/bin/chromium; install it to run the app page in a "
    "browser: apt-get install -y --no-install-recommends chromium (README, 'For developers')",
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


def _printed_url(log: Path, port: int, timeout: float = 60.0) -> str:
    """The address `vemoclap app` prints: the page with its per-launch token (nothing opens without it)."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"(http://127\.0\.0\.1:{port}/\?token=[\w-]+)")
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"vemoclap app printed no address with a token:\n{log.read_text(errors='replace')[-2000:]}")


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
        yield _printed_url(log, port), root, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the app, Voila and its kernel: our own group
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@needs_chromium
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


@needs_chromium
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


def _app_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "VEMOCLAP_CACHE": str(root / "cache"),
            "MPLBACKEND": "Agg",
            "JUPYTER_PLATFORM_DIRS": "1",
            "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
            "IPYTHONDIR": str(root / "ipython"),
            "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        }
    )
    return env


def _start_app(root: Path, port: int) -> tuple[subprocess.Popen, Path]:
    log = root / "app.log"
    command = [sys.executable, "-m", "vemoclap.app", "--no-browser", "--port", str(port)]
    command += ["--output-dir", str(root / "out")]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, env=_app_env(root), stdout=handle, stderr=subprocess.STDOUT, cwd=root)
    _wait_for_port(port, process, log)
    return process, log


def _running(pids) -> list[str]:
    """The command lines of those of ``pids`` still running (zombies count as gone)."""
    from vemoclap.app.launch import _alive

    alive = []
    for pid in pids:
        if _alive(pid):
            try:
                alive.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
            except OSError:
                alive.append(str(pid))
    return alive


def _wait_gone(pids, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while _running(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _running(pids)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_the_app_ends_voila_and_its_kernel(tmp_path, signum):
    """SIGTERM or SIGINT (Ctrl+C) to `vemoclap app`, with the page open so that a kernel runs, leaves no
    Voila, no kernel, and the port free."""
    import threading
    import urllib.request

    from vemoclap.app.launch import check_port, descendants

    port = _free_port()
    process, log = _start_app(tmp_path, port)
    try:
        url = _printed_url(log, port)  # the page with its token: without it no kernel starts

        # opening the page starts a kernel that runs the page's notebook
        def open_page():
            try:
                urllib.request.urlopen(url, timeout=120).read()
            except Exception:  # the app is stopped while the page may still be loading
                pass

        threading.Thread(target=open_page, daemon=True).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tree = descendants(process.pid)
            if any("ipykernel" in line for line in _running(tree)):
                break
            time.sleep(0.3)
        commands = _running(tree)
        assert any("voila" in line for line in commands), commands
        assert any("ipykernel" in line for line in commands), (commands, log.read_text()[-2000:])
        process.send_signal(signum)
        assert process.wait(timeout=60) == 128 + signum
        assert _wait_gone(tree, 10) == [], log.read_text()[-2000:]
        check_port(port)  # free again: the next app gets this port
    finally:
        if process.poll() is None:
            process.kill()


@needs_proc
@pytest.mark.slow
def test_voila_follows_an_app_that_dies(tmp_path):
    """The app killed outright (SIGKILL: no handler runs) still takes Voila with it (PR_SET_PDEATHSIG)."""
    from vemoclap.app.launch import descendants

    port = _free_port()
    process, log = _start_app(tmp_path, port)
    tree = descendants(process.pid)
    assert any("voila" in line for line in _running(tree)), _running(tree)
    process.kill()
    process.wait(timeout=10)
    assert _wait_gone(tree, 30) == [], log.read_text()[-2000:]


@pytest.mark.slow
def test_busy_port_is_an_error_naming_it(tmp_path):
    """A port something already listens on: exit 2 and one line naming it; Voila is never started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "vemoclap.app", "--no-browser", "--port", str(port)],
            env=_app_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0], proc.stderr
    assert "http://" not in proc.stdout  # no address printed for a page that is not served


def test_voila_never_moves_to_another_port():
    from vemoclap.app.guard import PageGuard
    from vemoclap.app.launch import voila_command

    assert "--Voila.port_retries=0" in voila_command(Path("page.ipynb"), 8866, PageGuard.new())
