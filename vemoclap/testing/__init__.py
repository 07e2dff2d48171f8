"""Helpers for tests and benchmarks only (product code never imports this package).

Generated media comes from :mod:`vemoclap.synth`, tiny models from :mod:`vemoclap.tiny`.
"""

from __future__ import annotations

from ..synth import make_video, read_frame_index, speech_like, write_text_file
from ..tiny import make_tiny_classifier, make_tiny_models

__all__ = [
    "make_video",
    "read_frame_index",
    "speech_like",
    "write_text_file",
    "make_tiny_models",
    "make_tiny_classifier",
]
