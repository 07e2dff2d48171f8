"""The notebook on the Colab-like venv (run by that venv's Python; scripts/colab/check.py starts it).

Run 1 executes a copy of notebooks/vemoclap.ipynb, alone in the work folder, in a fresh kernel with no
install source set and no checkout on its path: its step-1 cell installs the wheel the notebook carries,
exactly as a user's would, then the same kernel goes on to analyze the generated sample. The preinstalled set is compared before and after.
Runs 2-4 execute it again (step 1 now finds vemoclap installed) through the other sources: an upload of a
generated video of at least 50 MB through Colab's upload path (the stand-in google.colab in
tests/standins; bytes compared by sha256), a path, and a link served from 127.0.0.1.

The tiny models (WORK/models) are made beforehand by scripts/colab/check.py. One cell is added, and only
here: a last one that prints what the kernel's ``app`` holds. Every run must end with an emotion and no
error output.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import importlib.util
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import nbclient
import nbformat

EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")

CHECK = r"""
# (added by the Colab-like check) what the kernel's app holds after step 5
import hashlib, json, sys, importlib.metadata as md
import cv2
try:  # the faster Whisper backend step 1 brings: CTranslate2's library loads, and "auto" picks it
    import ctranslate2, faster_whisper
    from vemoclap.extractors import whisper_backends
    fast_asr = {"faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
                "backend": whisper_backends.choose()}
except Exception as exc:
    fast_asr = {"error": type(exc).__name__ + ": " + str(exc)}
uploaded = app.controller.uploaded_path
print("CHECK " + json.dumps({
    "python": sys.version.split()[0],
    "top_label": app.result.top_label if app.result else None,
    "probabilities": app.result.scores if app.result else {},
    "source": str(app.result.source) if app.result else None,
    "outputs": sorted(app.result.outputs) if app.result else [],
    "message": app.steps["run"].message.value,
    "rows": {name: row.status.value for name, row in app.steps["load"].rows.items()},
    "uploaded_sha256": hashlib.sha256(uploaded.read_bytes()).hexdigest() if uploaded and uploaded.is_file() else None,
    "versions": {n: md.version(n) for n in ("torch", "numpy", "transformers", "ipywidgets", "vemoclap")},
    "cv2": cv2.__version__,
    "fast_asr": fast_asr,
}))
"""


def _load_installer(notebook: Path):
    """The installer as the notebook's step-1 cell inlines it (the cell up to its own settings), for snapshots."""
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c.source for c in nb.cells if c.cell_type == "code" and "def install(" in c.source)
    code, found, _ = cell.partition("\n\nimport os\n\n#")
    assert found, "the notebook's step-1 cell no longer ends with its settings after `import os`"
    module = type(sys)("vemoclap_install")
    exec(compile(code, f"{notebook}:step-1", "exec"), module.__dict__)
    return module


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_videos(work: Path) -> dict[str, Path]:
    """Generated videos (PyAV, installed by step 1): a small one for the path and the link, and one of
    at least 50 MB (lossless noise) for the upload."""
    importlib.invalidate_caches()  # vemoclap was installed after this process started
    from vemoclap.synth import make_video
    from vemoclap.testing.media import make_noise_video

    videos = {
        "small": make_video(work / "media" / "clip.mp4", duration=3.0, audio="tone"),
        "big": make_noise_video(work / "media" / "big upload.mp4", duration=5.0),
    }
    size = videos["big"].stat().st_size
    assert size >= 50 * 2**20, f"the generated upload is only {size / 2**20:.1f} MB"
    return videos


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the requests are not news
        pass


class _Server(threading.Thread):
    """A plain HTTP server on 127.0.0.1 for the link source (a direct .mp4 link; yt-dlp's generic extractor)."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        super().__init__(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def run_notebook(notebook: Path, work: Path, name: str, env: dict[str, str], timeout: int) -> dict:
    """Execute the notebook (a check cell added) in a fresh kernel; returns the
    CHECK line, the step-1 output and the saved executed notebook's path. Fails on any error output."""
    nb = nbformat.read(notebook, as_version=4)
    n_cells = len(nb.cells)
    setup_index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "install(" in c.source)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    cwd = work / f"run-{name}"  # the kernel's working directory: Colab's upload writes there
    cwd.mkdir(parents=True)
    saved = work / f"executed-{name}.ipynb"
    old = dict(os.environ)
    os.environ.update(env)
    start = time.monotonic()
    try:
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(cwd)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
        nbformat.write(nb, saved)
    seconds = time.monotonic() - start
    errors = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + json.dumps(output.get("data", {}))
            if output.get("output_type") == "error":
                trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))
                errors.append(f"cell {i}: {output.get('ename')}: {output.get('evalue')}\n{trace[-2500:]}")
            elif "Traceback" in text:
                errors.append(f"cell {i}: a traceback in the output: {text[-1500:]}")
    assert not errors, f"run {name}: error outputs (see {saved}):\n" + "\n".join(errors)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next((ln for ln in printed.splitlines() if ln.startswith("CHECK ")), None)
    assert line, f"run {name}: the check cell printed nothing (see {saved})"
    check = json.loads(line[len("CHECK ") :])
    check["step1"] = "".join(
        o.get("text", "") for o in nb.cells[setup_index].outputs if o.get("output_type") == "stream"
    )
    check["seconds"] = round(seconds, 1)
    check["cells"] = n_cells
    return check


def _assert_result(name: str, check: dict) -> None:
    assert check["top_label"] in EMOTIONS, f"run {name}: no emotion in the result: {check['message']}"
    assert abs(sum(check["probabilities"].values()) - 1) < 1e-3, check["probabilities"]
    assert check["outputs"] == ["clip", "face_emotion", "ocr_sentiment"], check["outputs"]
    assert all("loaded" in status for status in check["rows"].values()), check["rows"]
    assert check["message"] == "", f"run {name}: the app says {check['message']}"
    assert check["fast_asr"].get("backend") == "faster-whisper", f"run {name}: {check['fast_asr']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, help="the notebook file (a copy outside any checkout)")
    parser.add_argument("work", type=Path)
    parser.add_argument("--standins", type=Path, required=True, help="the stand-in google.colab package's folder")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    notebook, work = args.notebook.resolve(), args.work.resolve()
    installer = _load_installer(notebook)

    base = {
        "PYTHONPATH": str(args.standins.resolve()),  # google.colab: the stand-in (never a checkout)
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "VEMOCLAP_MODELS_DIR": str(work / "models"),
        "VEMOCLAP_AUTORUN": "1",
        "VEMOCLAP_CACHE": str(work / "cache"),
        "VEMOCLAP_OUTPUT_DIR": str(work / "out"),
        "VEMOCLAP_DRIVE": str(work / "drive"),
        "VEMOCLAP_EXTRACTORS": "clip,face_emotion,ocr_sentiment",
        "VEMOCLAP_FACE_DETECTOR": "opencv",
        "VEMOCLAP_FRAMES": "4",
        "VEMOCLAP_LOG_DIR": str(work / "logs"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(work / "hf"),
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(work / "ultralytics"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(work / "matplotlib"),
        "TQDM_DISABLE": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
        "IPYTHONDIR": str(work / "ipython"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel 6.17's debugger warns about frozen modules
    }
    report: dict = {"runs": {}}

    # Run 1: step 1 installs the wheel the notebook carries, then the sample is analyzed in the same kernel.
    before = installer.snapshot()
    assert "vemoclap" not in before["dists"], "vemoclap is installed before step 1"
    os.environ.pop("VEMOCLAP_INSTALL_SOURCE", None)
    check = run_notebook(notebook, work, "sample", base, args.timeout)
    after = installer.snapshot()
    print(check["step1"].strip(), flush=True)
    changed = {
        n: f"{v} -> {after['dists'].get(n, 'removed')}"
        for n, v in before["dists"].items()
        if after["dists"].get(n) != v
    }
    assert not changed, f"step 1 changed preinstalled packages: {changed}"
    assert before["cv2"] == after["cv2"], f"step 1 changed cv2: {before['cv2']} -> {after['cv2']}"
    assert "changed 0: nothing" in check["step1"] and "OpenCV unchanged" in check["step1"], check["step1"]
    assert "installed from the wheel this notebook carries" in check["step1"], check["step1"]
    assert "vemoclap" in after["dists"] and "vemoclap" not in before["dists"]
    assert {"faster-whisper", "ctranslate2"} <= set(after["dists"]) - set(before["dists"]), "no faster-whisper"
    _assert_result("sample", check)
    assert check["source"] and "sample" in check["source"], check["source"]
    added = sorted(set(after["dists"]) - set(before["dists"]))
    report.update(preinstalled=len(before["dists"]), added=added, cv2=after["cv2"], versions=check["versions"])
    report["runs"]["sample"] = check
    print(
        f"run sample: {check['top_label']} in {check['seconds']} s; step 1 added {len(added)} distributions, "
        f"changed none; cv2 {after['cv2']['version']} build {after['cv2']['build']} unchanged; faster-whisper "
        f"{check['fast_asr']['faster_whisper']} (ctranslate2 {check['fast_asr']['ctranslate2']}) imports and is chosen",
        flush=True,
    )

    videos = make_videos(work)
    for name in ("upload", "path", "link"):
        env = dict(base)
        server = None
        if name == "upload":
            env.update(VEMOCLAP_SOURCE="upload", VEMOCLAP_STANDIN_UPLOAD=str(videos["big"]))
        elif name == "path":
            env["VEMOCLAP_SOURCE"] = str(videos["small"])
        else:
            server = _Server(videos["small"].parent)
            server.start()
            env.update(
                VEMOCLAP_SOURCE=f"http://127.0.0.1:{server.port}/{videos['small'].name}", VEMOCLAP_ALLOW_PRIVATE="1"
            )
        try:
            check = run_notebook(notebook, work, name, env, args.timeout)
        finally:
            if server is not None:
                server.stop()
        assert "already installed" in check["step1"], check["step1"]
        _assert_result(name, check)
        if name == "upload":
            assert check["uploaded_sha256"] == _sha256(videos["big"]), "the uploaded bytes differ from the file"
            left = list((work / "run-upload").iterdir())
            assert not left, f"Colab's copy in the working directory was not moved away: {left}"
            check["upload_mb"] = round(videos["big"].stat().st_size / 2**20, 1)
        report["runs"][name] = check
        extra = f" ({check['upload_mb']} MB through Colab's upload cell, sha256 equal)" if name == "upload" else ""
        print(f"run {name}: {check['top_label']} in {check['seconds']} s{extra}", flush=True)
    final = installer.snapshot()
    assert final == after, "the later runs changed the environment"
    (work / "notebook-runs.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
