"""The notebook's step-1 installer: it installs the wheel the notebook carries (no invented repository);
bad sources say what to set."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vemoclap_install", ROOT / "vemoclap" / "app" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)


def test_no_remote_default():
    """No placeholder repository: without a source the installer needs the notebook's own wheel."""
    assert not hasattr(install, "DEFAULT_SOURCE") and not hasattr(install, "REPOSITORY")
    assert "[project.urls]" not in (ROOT / "pyproject.toml").read_text().split("# No [project.urls]")[0]


def test_embedded_wheel_is_written_back_byte_for_byte(tmp_path):
    """What step 1 writes from the notebook's cell is the wheel the generator embedded."""
    import hashlib

    import nbformat

    from vemoclap.app.notebook import embedded_wheel

    notebook = nbformat.read(ROOT / "notebooks" / "vemoclap.ipynb", as_version=4)
    cell = next(c.source for c in notebook.cells if "VEMOCLAP_WHEEL = (" in c.source)
    namespace: dict = {}
    exec(cell, namespace)  # the cell as the kernel runs it
    name, data = embedded_wheel(notebook)
    path = Path(install.write_wheel(*namespace["VEMOCLAP_WHEEL"], folder=str(tmp_path)))
    assert path.name == name and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    import zipfile

    assert zipfile.ZipFile(path).testzip() is None


def test_no_wheel_cell_run_says_what_to_run(monkeypatch):
    """Step 1 run without the cell that carries vemoclap (and vemoclap not installed): one line saying so."""
    monkeypatch.delenv(install.SOURCE_ENV, raising=False)
    with pytest.raises(install.InstallError) as err:
        install.install(python="/nonexistent/python", embedded=None)
    assert "\n" not in str(err.value) and "cell that carries it" in str(err.value)


def test_damaged_wheel_is_one_line(tmp_path):
    with pytest.raises(install.InstallError) as err:
        install.write_wheel("vemoclap-0.1.0-py3-none-any.whl", "not base64 !", folder=str(tmp_path))
    assert "\n" not in str(err.value) and "damaged" in str(err.value)
    with pytest.raises(install.InstallError):
        install.write_wheel("../evil.whl", "", folder=str(tmp_path))


def test_missing_source_says_what_to_set(tmp_path):
    with pytest.raises(install.InstallError) as err:
        install.install(str(tmp_path / "nope.whl"))
    message = str(err.value)
    assert "\n" not in message and install.SOURCE_ENV in message


def test_snapshot_lists_this_environment():
    snap = install.snapshot()
    assert "pytest" in snap["dists"] and "cv2" in snap
