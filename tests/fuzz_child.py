"""Run by tests/test_fuzz.py in a child process under an RLIMIT_AS: the media layer on one file.

Exit 0 and one JSON line on stdout (what was read, its warnings, peak memory); exit 2 and one
line on stderr for a :class:`vemoclap.errors.UserError`; anything else is a bug and keeps its
traceback (exit 1), which the test reports.
"""

from __future__ import annotations

import json
import logging
import sys


def main(path: str) -> int:
    logging.disable(logging.WARNING)  # warnings must reach the result, not only the log
    from vemoclap.errors import UserError
    from vemoclap.media import probe, read_audio, sample_frames
    from vemoclap.testing import peak_rss_mb

    report, refused = {}, []
    try:
        info = probe(path)
    except UserError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    report["probe"] = {"duration": info.duration, "width": info.width, "height": info.height}
    # frames and audio each: a result, or a one-line reason (the other part may still be usable)
    try:
        frames = sample_frames(path, 8)
        report["frames"] = {"shape": list(frames.images.shape), "warnings": list(frames.warnings)}
    except UserError as exc:
        refused.append(f"frames: {exc}")
    try:
        audio = read_audio(path, max_seconds=120)
        report["audio"] = {"samples": int(audio.samples.size), "warnings": list(audio.warnings)}
    except UserError as exc:
        refused.append(f"audio: {exc}")
    if "frames" not in report and not report.get("audio", {}).get("samples"):
        print(refused[0] if refused else "nothing to use", file=sys.stderr)
        return 2
    report["refused"] = refused
    report["max_rss_mb"] = peak_rss_mb()  # its own peak: ru_maxrss would be pytest's
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
