"""Test-wide settings: nothing may reach the network, and generated media is shared per session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Set before anything imports transformers / ultralytics / huggingface_hub; removed at exit, so the
# suite leaves nothing in the home folder or the system temp folder.
_CONFIG = Path(tempfile.mkdtemp(prefix="vemoclap-test-config-"))
atexit.register(shutil.rmtree, _CONFIG, ignore_errors=True)
os.environ.setdefault("MPLCONFIGDIR", str(_CONFIG / "matplotlib"))
os.environ.setdefault("VEMOCLAP_LOG_DIR", str(_CONFIG / "logs"))
os.environ.setdefault("VEMOCLAP_CACHE", str(_CONFIG / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VEMOCLAP_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(_CONFIG / "ultralytics"))
os.environ.setdefault("HF_HOME", str(_CONFIG / "hf"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_CONFIG / "torchinductor"))  # else /tmp/torchinductor_USER
# onnxruntime (rapidocr) otherwise writes a device id to ~/.cache/Microsoft and a .ses file to the temp dir
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def short_video(media_dir) -> Path:
    """3 s, 25 fps, 320×240, with a tone soundtrack."""
    from vemoclap.testing import make_video

    return make_video(media_dir / "short.mp4", duration=3.0, audio="tone")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny models of every kind plus a tiny classifier, built once per test session (read-only)."""
    from vemoclap.testing import make_tiny_models

    directory = tmp_path_factory.mktemp("tiny-models")
    make_tiny_models(directory)
    return directory
