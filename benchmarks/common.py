"""Shared set-up for the benchmarks: offline environment, a 60-s test video, printing tables."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
from pathlib import Path

for key, value in {"HF_HUB_OFFLINE": "1", "VEMOCLAP_OFFLINE": "1", "YOLO_OFFLINE": "1", "TQDM_DISABLE": "1"}.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "vemoclap-bench-yolo"))


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def sixty_second_video(seconds: float = 60.0) -> Path:
    """The project's sample scene (a real face, on-screen text, speech-like audio) at 60 s, cached."""
    from full_size import CACHE

    from vemoclap.generated_video import make_sample

    path = CACHE / f"sample-{int(seconds)}s.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_sample(path, seconds=seconds, size=(1280, 720))
    return path


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(f"{r.get(c, '')}") for r in rows)) for c in columns}
    line = " | ".join(c.ljust(widths[c]) for c in columns)
    rule = "-|-".join("-" * widths[c] for c in columns)
    body = "\n".join(" | ".join(f"{r.get(c, '')}".ljust(widths[c]) for c in columns) for r in rows)
    return f"| {line} |\n|-{rule}-|\n" + "\n".join(f"| {row} |" for row in body.splitlines())
