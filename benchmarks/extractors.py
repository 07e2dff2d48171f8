"""Seconds per extractor on a 60-s video with full-size architectures (random weights).

    python benchmarks/extractors.py [--device cpu|cuda] [--video PATH] [--extractors a,b]

Prints one row per extractor: load time, first run, second (warm) run, and the share of the
total. Random-weight decoders (Whisper, BLIP, NLLB) run towards their length limits, so their
rows are upper bounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, sixty_second_video, table  # noqa: E402
from full_size import build_full_size_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--extractors", default="clip,beats,face_emotion,asr_sentiment,ocr_sentiment,caption")
    parser.add_argument("--models-dir", type=Path, default=None, help="real models instead of random full-size")
    args = parser.parse_args()

    from vemoclap.extractors import Clip, get

    models = args.models_dir or build_full_size_models()
    video = args.video or sixty_second_video()
    start = time.perf_counter()
    clip = Clip.from_file(video)
    media_s = time.perf_counter() - start
    # Random Whisper weights fail every decoding check and would retry at 5 more temperatures;
    # real weights rarely do, so one greedy pass is the honest cost.
    options = {"face_emotion": {"detector": "opencv"}, "asr_sentiment": {"whisper_model": "small", "temperature": 0.0}}
    rows = []
    for name in args.extractors.split(","):
        extractor = get(name, device=args.device, models_dir=models, **options.get(name, {}))
        t0 = time.perf_counter()
        extractor.load()
        load_s = time.perf_counter() - t0
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            output = extractor(clip)
            runs.append(time.perf_counter() - t0)
        shape = "×".join(map(str, output.feature.shape)) if output.feature is not None else (output.missing or "-")
        rows.append(
            {
                "extractor": name,
                "load s": f"{load_s:.1f}",
                "first run s": f"{runs[0]:.2f}",
                "warm run s": f"{runs[1]:.2f}",
                "output": shape,
                "_warm": runs[1],
            }
        )
        del extractor
    total = sum(r["_warm"] for r in rows)
    for row in rows:
        row["share"] = f"{row['_warm'] / total:.0%}" if total else "-"
    print(
        f"video: {video.name} ({clip.duration:.0f} s), device: {device_name(args.device)}; "
        f"media (16 frames + audio): {media_s:.2f} s"
    )
    print(table(rows, ["extractor", "load s", "first run s", "warm run s", "share", "output"]))
    print(f"total warm extractor time: {total:.1f} s")


if __name__ == "__main__":
    main()
