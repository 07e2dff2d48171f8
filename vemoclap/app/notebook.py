"""The app notebook's cells: one source of truth for notebooks/vemoclap.ipynb and for the page that
`vemoclap app` serves. The two differ in their words: the notebook installs vemoclap and talks of
cells, the page does neither.

The notebook carries vemoclap itself: the package's own wheel, built here from the source tree (pip's
setuptools build of a clean copy, with fixed file times), base64 in the cell before step 1. Step 1 installs
that wheel, so the notebook file alone is enough (tests/test_notebook.py checks the wheel against the tree)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .step_table import STEP, STEPS

NOTEBOOK_NAME = "vemoclap.ipynb"
INSTALLER = Path(__file__).with_name("install.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python -c \"from vemoclap.app import write_notebook; write_notebook('notebooks/vemoclap.ipynb')\""
_WHEEL_TITLE = "# @title The vemoclap package, carried in this notebook (its wheel; step 1 installs it)"
_WHEEL_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry holds: the same tree gives the same wheel

_INTRO = """# vemoclap — what emotion does this video carry?

Run the cells in order (on Colab: *Runtime → Run all*, then use the buttons). Step 1 installs
vemoclap (on Colab, next to Colab's own packages) and checks the machine, step 2 fetches and loads
the models once, steps 3–4 choose a video (a sample, a YouTube link, an upload, or a file on this
machine or on Google Drive), step 5 analyzes it and shows the six Ekman emotions (anger, disgust,
fear, joy, sadness, surprise), what every model found, and downloads. The cells at the end explore
the last result (`app.result`)."""

_PAGE_INTRO = """# vemoclap — what emotion does this video carry?

Load the models, choose a video (a sample, a YouTube link, a file from your computer, or a path on
the machine running this page) and press **Run**. You get the six Ekman emotions (anger, disgust,
fear, joy, sadness, surprise) for the whole video, what every model found, a timeline, downloads,
and videos of the parts where an emotion is on top. The views at the bottom of the page show every
sampled frame, the faces found and the features, for the last video analyzed."""

_WHEEL_TEXT = """The cell below holds vemoclap itself (its wheel, base64): run it, and step 1 installs it
with the packages it needs from the package index, keeping the ones this machine already has."""

_SETUP_TAIL = """
# Empty: the wheel this notebook carries (the cell above). Or a wheel, a folder or a git URL of vemoclap.
INSTALL_SOURCE = os.environ.get("VEMOCLAP_INSTALL_SOURCE") or None
print(install(INSTALL_SOURCE, embedded=globals().get("VEMOCLAP_WHEEL")))

# Optional settings; the environment variables let CI point the notebook at tiny test models.
MODELS_DIR = os.environ.get("VEMOCLAP_MODELS_DIR", "")  # folder of models; empty: the default place
CLASSIFIER = os.environ.get("VEMOCLAP_CLASSIFIER", "")  # a trained emotion classifier; empty: the default

from vemoclap.app import VemoclapApp

app = VemoclapApp.from_env(models_dir=MODELS_DIR, classifier=CLASSIFIER)
app.setup_step()"""

_COLAB_UPLOAD_TEXT = """### Upload on Colab

On Colab, uploads go through Colab's own file chooser, which runs in the cell below and not from a
button: it is not known whether it works from inside a widget's callback, and ipywidgets' upload
button drops files of 1 MB or more there. Choose *Upload* in step 3, then run the cell below and pick
the file (up to 200 MB: the whole file is held in memory while it uploads; for bigger files put the
video on Google Drive and choose *File on this machine or Google Drive*). Outside Colab this cell does
nothing: use the *Choose video* button of step 4."""

_COLAB_UPLOAD = """# Colab's uploader (blocks until a file is chosen); VEMOCLAP_SOURCE=upload runs it headless.
if app.on_colab and (app.steps["source"].toggle.value == "upload" or os.environ.get("VEMOCLAP_SOURCE") == "upload"):
    app.colab_upload()"""

_EXPLORE = """## Explore the result

Each view below redraws after every run of step 5. `app.result` is the last result
(`.summary()`, `.to_frame()`, `.plot()`, `.save(folder)`, `.export_emotion_clips(emotion, path)`, ...)."""

_PAGE_EXPLORE = """## Explore the result

These views redraw after every run: every sampled frame, the faces found, and the features the
emotion classifier reads."""

_FRAMES = """# The sampled frames, with faces and on-screen text boxes.
app.explore_frames()"""

_FACES = """# The detected faces and their expressions.
app.explore_faces()"""

_FEATURES = """# The features the emotion classifier reads: shapes and values.
app.explore_features()"""


_REPRODUCE_TEXT = """## The paper's table (optional)

Nothing above needs this. The button below reproduces the paper's Ekman-6 result, as
`vemoclap reproduce ekman6` does: it downloads the published features from Zenodo (each file checked
against the checksum the record lists; the sizes show in the progress bars), trains the fusion classifier
with the paper's protocol once per seed, evaluates it, and prints the table beside the paper's figures
(65.28 % accuracy), with the verdict on the reference classifier's attention heads (4 or 8). Training
on the features is small: minutes on a GPU, longer on a CPU. See docs/reproduce.md."""

_REPRODUCE = """# The paper's Ekman-6 table from the published features (downloads, then trains; the button starts it).
app.reproduce_step()"""


def installer_source() -> str:
    """vemoclap/app/install.py as text, without a ``__main__`` block (a notebook's ``__name__`` is
    ``__main__``, so such a block would run)."""
    text = INSTALLER.read_text(encoding="utf-8")
    text = re.split(r"^if __name__ == [\"']__main__[\"']:", text, flags=re.M)[0]
    return text.strip()


def package_files(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """{path: sha256} of what the package's wheel carries from the tree: vemoclap's modules and data."""
    files = sorted(root.joinpath("vemoclap").rglob("*.py")) + sorted(root.joinpath("vemoclap", "data").glob("*"))
    return {
        f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if f.is_file() and "__pycache__" not in f.parts
    }


def wheel_files(wheel: bytes) -> dict[str, str]:
    """{path: sha256} of the vemoclap files inside a wheel (its .dist-info left out)."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        return {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
            if name.startswith("vemoclap/") and not name.endswith("/")
        }


def wheel_metadata(wheel: bytes) -> str:
    """The METADATA file of a wheel (name, version, requirements per extra)."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode("utf-8")


def build_wheel(root: Path = PROJECT_ROOT) -> tuple[str, bytes]:
    """(file name, bytes) of vemoclap's wheel, built by pip from a clean copy of the tree at ``root``
    (no stale build/ folder can leak into it)."""
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(f"{root}: no pyproject.toml; the notebook is generated from a source checkout")
    with tempfile.TemporaryDirectory(prefix="vemoclap-wheel-") as tmp:
        src, out = Path(tmp, "src"), Path(tmp, "out")
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copyfile(root / name, src / name)
        for relative in package_files(root):
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, src / relative)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q", "-w", str(out)]
        try:
            import setuptools  # noqa: F401  (here: build without fetching a build environment)

            command.append("--no-build-isolation")
        except ImportError:
            pass
        env = {**os.environ, "SOURCE_DATE_EPOCH": _WHEEL_EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        proc = subprocess.run([*command, str(src)], capture_output=True, text=True, env=env)
        wheels = sorted(out.glob("vemoclap-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"building vemoclap's wheel failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        return wheels[0].name, wheels[0].read_bytes()


def _wheel_cell(wheel: tuple[str, bytes]) -> str:
    name, data = wheel
    payload = base64.encodebytes(data).decode("ascii")
    return f'{_WHEEL_TITLE}\nVEMOCLAP_WHEEL = ({name!r}, """\n{payload}""")'


def embedded_wheel(nb) -> tuple[str, bytes]:
    """(file name, bytes) of the wheel an app notebook (an nbformat object) carries."""
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(_WHEEL_TITLE):
            found = re.search(r"VEMOCLAP_WHEEL = \('([^']+)', \"\"\"\n(.*?)\"\"\"\)", cell.source, re.S)
            if found:
                return found.group(1), base64.b64decode("".join(found.group(2).split()))
    raise ValueError(f"the notebook carries no vemoclap wheel; regenerate with: {REGENERATE}")


def _setup_cell() -> str:
    # The installer's source comes first: a `from __future__` import must open the cell.
    note = (
        ". Installs vemoclap where it is missing (on Colab, keeping Colab's own packages),\n"
        "# then checks the machine. The installer is inlined: vemoclap cannot be imported before it is installed."
    )
    return f"{STEP['setup'].comment(note)}\n{installer_source()}\n\nimport os\n{_SETUP_TAIL}"


def notebook_cells(page: bool = False, wheel: tuple[str, bytes] | None = None) -> list[tuple[str, str]]:
    """(cell type, source) of the app notebook, or of the page `vemoclap app` serves: a heading and a
    cell per step of :data:`~vemoclap.app.step_table.STEPS`. The notebook carries ``wheel`` (file name,
    bytes), built from the tree when not given."""
    cells: list[tuple[str, str]] = [("markdown", _PAGE_INTRO if page else _INTRO)]
    for step in STEPS:
        cells.append(("markdown", f"## {step.heading}"))
        if step.key == "setup" and not page:
            cells += [("markdown", _WHEEL_TEXT), ("code", _wheel_cell(wheel or build_wheel())), ("code", _setup_cell())]
            continue
        cells.append(("code", step.cell(page)))
        if step.key == "pick" and not page:
            cells += [("markdown", _COLAB_UPLOAD_TEXT), ("code", _COLAB_UPLOAD)]
    explore = [("code", _FRAMES), ("code", _FACES), ("code", _FEATURES)]
    cells += [("markdown", _PAGE_EXPLORE if page else _EXPLORE), *explore]
    return cells if page else [*cells, ("markdown", _REPRODUCE_TEXT), ("code", _REPRODUCE)]


def build_notebook(page: bool = False, wheel: tuple[str, bytes] | None = None):
    """The app notebook (or the page's) as an nbformat object; ``wheel`` as in :func:`notebook_cells`."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    if not page:
        nb.metadata.update({"colab": {"provenance": [], "name": NOTEBOOK_NAME}, "accelerator": "GPU"})
    for kind, source in notebook_cells(page, wheel):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.pop("id", None)
        if source.startswith(_WHEEL_TITLE):
            cell.metadata["cellView"] = "form"  # Colab shows the title, not the base64
        nb.cells.append(cell)
    nb.nbformat_minor = 4  # no cell ids: the file stays byte-stable when regenerated
    return nb


def write_notebook(path, page: bool = False, wheel: tuple[str, bytes] | None = None) -> Path:
    """Write the app notebook (or the page's) to ``path``."""
    import nbformat

    from .._util import atomic_write_text

    path = Path(path)
    atomic_write_text(path, nbformat.writes(build_notebook(page, wheel)) + "\n")
    return path
