"""vemoclap: tell the emotion of any video (Ekman-6) from frozen pretrained models fused by a
small trained network.

    >>> import vemoclap
    >>> result = vemoclap.analyze("video.mp4", classifier="weights/vemoclap")
    >>> print(result.summary()); result.plot()
"""

from __future__ import annotations

import os

from .labels import EMOTIONS

# onnxruntime (rapidocr's engine) looks up its telemetry host (mobile.events.data.microsoft.com) from
# a background thread unless this is set when it is imported; its disable_telemetry_events() does
# not stop that lookup. Set before anything of vemoclap imports onnxruntime.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

__all__ = ["EMOTIONS", "Analyzer", "Result", "analyze", "__version__"]


def __getattr__(name: str):
    # Heavy modules (torch, transformers) load only when their names are used.
    if name in ("Analyzer", "analyze"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "Result":
        from .results import Result

        return Result
    raise AttributeError(f"module 'vemoclap' has no attribute {name!r}")
