"""The notebook's step-1 installer: its repository is the one pyproject declares; bad sources say what to set."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vemoclap_install", ROOT / "vemoclap" / "app" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)


def test_repository_is_pyprojects():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert install.REPOSITORY == urls["Repository"]
    assert install.DEFAULT_SOURCE == f"git+{urls['Repository']}.git"


def test_missing_source_says_what_to_set(tmp_path):
    with pytest.raises(install.InstallError) as err:
        install.install(str(tmp_path / "nope.whl"))
    message = str(err.value)
    assert "\n" not in message and install.SOURCE_ENV in message


def test_snapshot_lists_this_environment():
    snap = install.snapshot()
    assert "pytest" in snap["dists"] and "cv2" in snap
