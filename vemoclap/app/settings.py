"""The app's settings from VEMOCLAP_* environment variables (how `vemoclap app` and CI configure it)."""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..errors import OptionError

SETTINGS_ENV = {
    "models_dir": "VEMOCLAP_MODELS_DIR",
    "classifier": "VEMOCLAP_CLASSIFIER",
    "device": "VEMOCLAP_DEVICE",
    "extractors": "VEMOCLAP_EXTRACTORS",  # comma-separated
    "face_detector": "VEMOCLAP_FACE_DETECTOR",
    "whisper_model": "VEMOCLAP_WHISPER_MODEL",
    "frames": "VEMOCLAP_FRAMES",
    "output_dir": "VEMOCLAP_OUTPUT_DIR",
    # links to loopback/private addresses (off by default); CI serves its test video from 127.0.0.1
    "allow_private": "VEMOCLAP_ALLOW_PRIVATE",
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """App keyword arguments from the VEMOCLAP_* environment variables (unset ones left out)."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for key in ("models_dir", "classifier", "device", "output_dir"):
        value = env.get(SETTINGS_ENV[key], "").strip()
        if value:
            settings[key] = value
    if env.get(SETTINGS_ENV["allow_private"], "").strip().lower() in ("1", "true", "yes"):
        settings["allow_private"] = True
    names = env.get(SETTINGS_ENV["extractors"], "").strip()
    if names:
        settings["extractors"] = [n.strip() for n in names.split(",") if n.strip()]
    options: dict[str, Any] = {}
    for key in ("face_detector", "whisper_model"):
        value = env.get(SETTINGS_ENV[key], "").strip()
        if value:
            options[key] = value
    frames = env.get(SETTINGS_ENV["frames"], "").strip()
    if frames:
        try:
            options["frames"] = int(frames)
        except ValueError:
            raise OptionError(f"{SETTINGS_ENV['frames']}={frames!r}: give a whole number of frames") from None
    if options:
        settings["analyzer_options"] = options
    return settings
