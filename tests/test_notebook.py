"""notebooks/vemoclap.ipynb runs top to bottom in a real kernel and really analyzes the sample.

VEMOCLAP_AUTORUN=1 makes step 5 press Load and Run (buttons cannot be clicked headlessly); the
environment points the notebook at tiny models. A last cell, added here only, reads the kernel's
``app`` to check that the analysis happened and that the widgets hold its results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "vemoclap.ipynb"

CHECK = r"""
import json
texts = [getattr(w, "value", "") for w in app.all_widgets() if isinstance(getattr(w, "value", None), str)]
print("CHECK " + json.dumps({
    "top_label": app.result.top_label if app.result else None,
    "summary": app.result.summary() if app.result else None,
    "outputs": sorted(app.result.outputs) if app.result else [],
    "faces": app.result.outputs["face_emotion"].n_faces if app.result else 0,
    "chart": len(app.steps["run"].chart.value),
    "explorers": {name: [type(c).__name__ for c in e.box.children] for name, e in app.explorers.items()},
    "frames_png": len(app.explorers["frames"].box.children[0].value),
    "summary_html": app.steps["run"].summary.value,
    "rows": {name: row.status.value for name, row in app.steps["load"].rows.items()},
    "message": app.steps["run"].message.value,
    "traceback": any("Traceback" in t for t in texts),
}))
"""


def _required(pyproject: dict) -> set[str]:
    """pyproject's requirements as a wheel's METADATA lists them (one ``extra == ...`` marker per extra)."""
    from packaging.requirements import Requirement

    project = pyproject["project"]
    wanted = {str(Requirement(r)) for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        wanted |= {str(Requirement(f'{r}; extra == "{extra}"')) for r in requirements}
    return wanted


def test_notebook_file_is_the_generated_one():
    """The committed notebook is exactly what vemoclap.app generates, and the wheel it carries is this
    tree's package: its files' hashes are the tree's, its requirements pyproject's (a stale notebook
    fails here with the command that regenerates it)."""
    import tomllib
    from email.parser import Parser

    from vemoclap.app import build_notebook
    from vemoclap.app.notebook import REGENERATE, embedded_wheel, package_files, wheel_files, wheel_metadata

    assert NOTEBOOK.is_file()
    committed = nbformat.read(NOTEBOOK, as_version=4)
    name, wheel = embedded_wheel(committed)
    stale = f"the wheel in {NOTEBOOK.name} is not this tree's vemoclap; regenerate with: {REGENERATE}"
    assert wheel_files(wheel) == package_files(), stale
    pyproject = tomllib.loads((NOTEBOOK.parent.parent / "pyproject.toml").read_text())
    metadata = Parser().parsestr(wheel_metadata(wheel))
    assert metadata["Version"] == pyproject["project"]["version"], stale
    assert name == f"vemoclap-{metadata['Version']}-py3-none-any.whl", stale
    from packaging.requirements import Requirement

    assert {str(Requirement(r)) for r in metadata.get_all("Requires-Dist")} == _required(pyproject), stale
    assert NOTEBOOK.stat().st_size < 1_000_000 and len(wheel) < 600_000
    assert NOTEBOOK.read_text() == nbformat.writes(build_notebook(wheel=(name, wheel))) + "\n", stale
    nbformat.validate(committed)


def test_notebook_has_no_placeholder_source():
    """What users meet names no invented repository: no placeholder git install, no OWNER/REPO badge."""
    root = NOTEBOOK.parent.parent
    publish = "**For whoever publishes the repository**"
    for path in (NOTEBOOK, root / "README.md", root / "notebooks" / "README.md", root / "pyproject.toml"):
        text = path.read_text()
        assert "git+https://github.com/vemoclap" not in text, path
        assert "github.com/vemoclap/vemoclap" not in text, path
        # the badge is a documented step for the publisher, never a link users meet
        met = text.split(publish)[0] if path.name == "README.md" and path.parent.name == "notebooks" else text
        assert "OWNER/REPO" not in met, path
    assert "OWNER/REPO" in (root / "notebooks" / "README.md").read_text().split(publish)[1]


@pytest.mark.slow
def test_build_wheel_is_reproducible_and_is_the_tree():
    """The generator's wheel holds the tree's files, and the same tree gives the same bytes (a regenerated
    notebook differs only where the package did)."""
    from vemoclap.app.notebook import build_wheel, package_files, wheel_files

    name, first = build_wheel()
    assert name.startswith("vemoclap-") and wheel_files(first) == package_files()
    assert build_wheel()[1] == first


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch, tiny_models):
    models = tiny_models
    env = {
        "VEMOCLAP_MODELS_DIR": str(models),
        "VEMOCLAP_AUTORUN": "1",
        "VEMOCLAP_CACHE": str(tmp_path / "cache"),
        "VEMOCLAP_OUTPUT_DIR": str(tmp_path / "out"),
        "VEMOCLAP_EXTRACTORS": "clip,face_emotion,ocr_sentiment",
        "VEMOCLAP_FACE_DETECTOR": "opencv",
        "VEMOCLAP_FRAMES": "4",
        "MPLBACKEND": "Agg",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        # the kernel must be this venv's Python whatever PATH says
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, allow_errors=False, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any error cell

    for cell in nb.cells[:n_cells]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error"
            text = output.get("text", "") + json.dumps(output.get("data", {}))
            assert "Traceback" not in text, text
    # every step cell shows its widget
    step_cells = [
        c
        for c in nb.cells[:n_cells]
        if c.cell_type == "code" and "app.colab_upload()" not in c.source and "VEMOCLAP_WHEEL = (" not in c.source[:200]
    ]
    for cell in step_cells:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs), cell.source

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next(line for line in printed.splitlines() if line.startswith("CHECK "))
    check = json.loads(line[len("CHECK ") :])
    assert check["top_label"] in ("anger", "disgust", "fear", "joy", "sadness", "surprise"), check["message"]
    assert check["outputs"] == ["clip", "face_emotion", "ocr_sentiment"]
    assert check["faces"] >= 1 and check["chart"] > 5000
    assert f">{check['top_label']}</span>" in check["summary_html"]
    assert all("loaded" in status for status in check["rows"].values())
    assert not check["traceback"] and check["message"] == ""
    assert check["explorers"] == {"frames": ["Image"], "faces": ["HTML", "Image"], "features": ["HTML", "Image"]}
    assert check["frames_png"] > 5000
    assert (tmp_path / "cache" / "sample.mp4").is_file()  # the generated sample was analyzed


def _big_video(path: Path, min_mb: float = 50) -> Path:
    from vemoclap.testing.media import make_noise_video

    make_noise_video(path, seed=0)
    assert path.stat().st_size >= min_mb * 2**20, path.stat().st_size
    return path


def test_colab_upload_cell_delivers_50mb_intact(tmp_path, monkeypatch, tiny_models):
    """What the notebook's Colab upload cell runs (``app.colab_upload()``), through the stand-in
    google.colab: a 50 MB file reaches step 5's source byte for byte, and Colab's copy in the working
    directory does not stay behind."""
    import hashlib

    from vemoclap.app import VemoclapApp, colab

    standins = Path(__file__).resolve().parent / "standins"
    monkeypatch.syspath_prepend(str(standins))
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("VEMOCLAP_DRIVE", str(tmp_path / "drive"))
    monkeypatch.setenv("VEMOCLAP_CACHE", str(tmp_path / "cache"))
    picked = _big_video(tmp_path / "chosen" / "family trip.mp4")
    monkeypatch.setenv("VEMOCLAP_STANDIN_UPLOAD", str(picked))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert colab.on_colab()

    app = VemoclapApp(
        models_dir=tiny_models,
        extractors=["face_emotion"],
        output_dir=tmp_path / "out",
        analyzer_options={"face_detector": "opencv", "frames": 4},
    )
    app.source_step()
    app.pick_step()
    path = app.colab_upload()
    assert path is not None, app.steps["pick"].upload_message.value
    text = app.steps["pick"].upload_message.value
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(picked.read_bytes()).hexdigest()
    assert "family trip.mp4 is ready" in text and f"{picked.stat().st_size / 2**20:.1f} MB" in text
    assert list(work.iterdir()) == []  # Colab wrote the file into the cwd; it was moved to the output dir
    assert app.controller.source_kind == "upload" and app.controller.chosen_source() == path


def test_link_source_on_this_machine_needs_allow_private(tmp_path):
    """The Colab-like check serves its link from 127.0.0.1 and says so with VEMOCLAP_ALLOW_PRIVATE=1;
    without it the app refuses loopback links."""
    from vemoclap.app.settings import settings_from_env

    assert "allow_private" not in settings_from_env({})
    assert "allow_private" not in settings_from_env({"VEMOCLAP_ALLOW_PRIVATE": "0"})
    assert settings_from_env({"VEMOCLAP_ALLOW_PRIVATE": "1"})["allow_private"] is True

    from vemoclap.app.controller import Controller
    from vemoclap.errors import UserError

    link = "http://127.0.0.1:9/clip.mp4"
    for allow in (False, True):
        controller = Controller(models_dir=tmp_path, extractors=[], output_dir=tmp_path / "out", allow_private=allow)
        controller.source_kind, controller.url = "link", link
        if allow:
            assert controller.chosen_source() == link
        else:
            with pytest.raises(UserError):
                controller.chosen_source()
