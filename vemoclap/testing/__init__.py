"""Helpers for tests and benchmarks only (product code never imports this package).

Generated media comes from :mod:`vemoclap.synth` and :mod:`vemoclap.testing.media`, tiny models
from :mod:`vemoclap.tiny`.
"""

from __future__ import annotations

from ..synth import make_video, speech_like
from ..tiny import make_tiny_classifier, make_tiny_models
from .media import read_frame_index, write_text_file


def peak_rss_mb() -> float:
    """This process's own peak memory in MB: ``VmHWM``, which Linux resets at exec. ``ru_maxrss``
    survives exec, so a child of a large process (pytest, a benchmark) would report its parent's."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = [
    "make_video",
    "read_frame_index",
    "speech_like",
    "write_text_file",
    "make_tiny_models",
    "make_tiny_classifier",
    "peak_rss_mb",
]
