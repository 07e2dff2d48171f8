"""End-to-end seconds per stage for a 60-s video: media, each extractor, classifier.

    python benchmarks/analyze.py [--device cpu|cuda] [--video PATH] [--runs 2]

Full-size architectures with random weights (or --models-dir with real ones). The first run
includes model loading; later runs show what a notebook user waits for on a rerun.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, median, sixty_second_video, table  # noqa: E402
from full_size import build_full_size_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()

    from vemoclap.pipeline import Analyzer

    models = args.models_dir or build_full_size_models()
    video = args.video or sixty_second_video()
    t0 = time.perf_counter()
    analyzer = Analyzer(models_dir=models, device=args.device, classifier=models / "classifier",
                        face_detector="opencv", whisper_model="small",
                        extractor_options={"asr_sentiment": {"temperature": 0.0}}).load()
    load_s = time.perf_counter() - t0
    stages: dict[str, list[float]] = {}
    totals = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = analyzer.analyze(video)
        totals.append(time.perf_counter() - t0)
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(seconds)
    total = median(totals)
    rows = [{"stage": stage, "median s": f"{median(values):.2f}", "share": f"{median(values) / total:.0%}"}
            for stage, values in stages.items()]
    rows.append({"stage": "total", "median s": f"{total:.2f}", "share": "100%"})
    duration = result.info.duration
    print(f"video: {video.name} ({duration:.0f} s), device: {device_name(args.device)}; "
          f"model loading: {load_s:.1f} s; runs: {args.runs}")
    print(table(rows, ["stage", "median s", "share"]))
    print(f"real-time factor: {total / duration:.2f} s of compute per s of video "
          f"(the reference: ≈30 s for a 60-s video on a Colab T4, i.e. 0.5)")


if __name__ == "__main__":
    main()
