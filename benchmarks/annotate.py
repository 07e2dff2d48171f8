"""What annotating a video costs next to analyzing it: the ratio behind ``--every auto``.

    python benchmarks/annotate.py [--seconds 20] [--size 640x360] [--models-dir DIR] [--face-detector NAME]

Analyzes the generated sample scene (a real face) once to load and warm the models, then times a
second analysis (A), then annotates the same video with the face model on every frame
(``--every 1``), on every K-th frame with K chosen by ``--every auto``, and with no face model at
all (decode, draw, encode only: the per-frame cost behind ``FRAME_SECONDS_PER_MPX``). Prints each
run's estimate (printed by the CLI before it starts), its seconds and its ratio to A. Default
models: the tiny random ones (``vemoclap demo``'s), whose face detector is the real one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the generated video")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: the tiny random models")
    parser.add_argument("--face-detector", default=None, help="default: the recipe's")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from vemoclap.generated_video import make_sample
    from vemoclap.pipeline import Analyzer
    from vemoclap.tiny import tiny_models_dir
    from vemoclap.video_export import FRAME_SECONDS_PER_MPX, annotation_cost, export_annotated_video

    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="vemoclap-annotate-"))
    video = make_sample(work / "sample.mp4", seconds=args.seconds, size=(width, height))
    analyzer = Analyzer(
        models_dir=args.models_dir or tiny_models_dir(), device=args.device, face_detector=args.face_detector
    )
    analyzer.analyze(video)  # loads and warms the models
    began = time.perf_counter()
    result = analyzer.analyze(video)
    analysis = time.perf_counter() - began

    columns = ["run", "K", "estimate s", "seconds", "× analysis"]
    rows = [dict(zip(columns, ["analysis (second run)", "", "", f"{analysis:.2f}", "1.00"]))]
    auto = annotation_cost(result)
    for label, every in (("annotate --every 1", 1), (f"annotate --every auto (K={auto.every})", auto.every)):
        cost = annotation_cost(result, every)
        began = time.perf_counter()
        analyzer.export_annotated_video(result, work / f"every{every}.mp4", every=every, progress=False)
        took = time.perf_counter() - began
        rows.append(
            dict(zip(columns, [label, str(every), f"{cost.seconds:.2f}", f"{took:.2f}", f"{took / analysis:.2f}"]))
        )
    began = time.perf_counter()
    done = export_annotated_video(video, work / "none.mp4", lambda image: [], progress=False)
    took = time.perf_counter() - began
    per_mpx = took / done.frames / (width * height / 1e6)
    rows.append(dict(zip(columns, ["decode + draw + encode only", "", "", f"{took:.2f}", f"{took / analysis:.2f}"])))

    print(f"{device_name(args.device)}; {args.seconds:.0f}-s {width}×{height} video, {done.frames} frames")
    print(f"face model per frame (from the analysis): {auto.face_seconds * 1000:.1f} ms")
    print(
        f"decode + draw + encode: {per_mpx * 1000:.1f} ms per frame per megapixel "
        f"(FRAME_SECONDS_PER_MPX: {FRAME_SECONDS_PER_MPX * 1000:.1f} ms)"
    )
    print(table(rows, columns))


if __name__ == "__main__":
    main()
