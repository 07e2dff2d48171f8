"""Dataset extraction throughput: videos per hour in one process, and on Ray with 1 and N workers.

Generated videos, tiny models of the real classes (or real ones with --models-dir), CPU by
default. Prints a table; the Ray rows include starting Ray and loading the models once per
worker ("total"), and the steady rate between the first and the last finished video ("steady").

    python benchmarks/extract.py                       # 12 videos of 10 s, clip+beats+face_emotion
    python benchmarks/extract.py --videos 24 --workers 4 --extractors clip,beats
    python benchmarks/extract.py --models-dir weights --device cuda   # real models
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for name, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VEMOCLAP_OFFLINE": "1",
    "YOLO_OFFLINE": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TQDM_DISABLE": "1",
}.items():
    os.environ.setdefault(name, value)


def make_dataset(root: Path, n: int, duration: float, size: tuple[int, int]) -> list:
    import cv2
    from skimage.data import astronaut

    from vemoclap.testing import make_video
    from vemoclap.training.dataset import load_dataset

    face = cv2.resize(astronaut(), size, interpolation=cv2.INTER_AREA)
    labels = ("anger", "fear", "joy")
    for i in range(n):
        label = labels[i % len(labels)]
        options = dict(frame_fn=lambda index: face, audio="speech") if label == "joy" else dict(audio="tone")
        make_video(root / label / f"{label}_{i:03d}.mp4", duration=duration, size=size, fps=15, **options)
    return load_dataset(root, val_size=0)


def run(videos, out: Path, options: dict, **mode) -> dict:
    from vemoclap.training.extraction import extract_dataset

    finished: list[float] = []
    start = time.perf_counter()
    report = extract_dataset(
        videos,
        out,
        progress=False,
        **options,
        **mode,
        on_video=lambda video, reason: finished.append(time.perf_counter()),
    )
    total = time.perf_counter() - start
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) * 3600 if len(finished) > 2 else float("nan")
    return {
        "seconds": total,
        "per_hour": report.extracted / total * 3600,
        "steady": steady,
        "failed": len(report.failed),
        "workers": report.workers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--extractors", default="clip,beats,face_emotion")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models-dir", type=Path, default=None, help="real models (default: tiny ones, built here)")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    width, height = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="vemoclap-bench-extract-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp / "ultralytics"))
        models = args.models_dir
        if models is None:
            from vemoclap.testing import make_tiny_models

            models = tmp / "models"
            make_tiny_models(models, classifier=False)
        videos = make_dataset(tmp / "data", args.videos, args.duration, (width, height))
        options = dict(
            extractors=args.extractors.split(","), models_dir=models, device=args.device, face_detector="opencv"
        )
        rows = [("1 process", run(videos, tmp / "single", options))]
        if not args.no_ray:
            rows.append(("Ray, 1 worker", run(videos, tmp / "ray1", options, use_ray=True, num_workers=1)))
            rows.append(
                (
                    f"Ray, {args.workers} workers",
                    run(videos, tmp / f"ray{args.workers}", options, use_ray=True, num_workers=args.workers),
                )
            )

    print(
        f"\n{args.videos} videos of {args.duration:g} s at {width}×{height}, extractors {args.extractors}, "
        f"{'tiny' if args.models_dir is None else 'real'} models on {args.device}, {os.cpu_count()} CPUs\n"
    )
    print(f"{'mode':<16} {'total s':>8} {'videos/h total':>15} {'videos/h steady':>16} {'failed':>7}")
    for mode, row in rows:
        print(f"{mode:<16} {row['seconds']:>8.1f} {row['per_hour']:>15.0f} {row['steady']:>16.0f} {row['failed']:>7}")
    if len(rows) == 3:
        one, many = rows[1][1], rows[2][1]
        print(
            f"\nRay {args.workers} workers / 1 worker: {many['per_hour'] / one['per_hour']:.2f}× total, "
            f"{many['steady'] / one['steady']:.2f}× steady"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
