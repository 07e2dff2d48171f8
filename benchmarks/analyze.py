"""End-to-end seconds per stage for a 60-s video: media, each extractor, classifier.

    python benchmarks/analyze.py [--device cpu|cuda] [--video PATH] [--runs 2] [--recipe NAME]
                                 [--whisper-model SIZE] [--asr-backend auto|faster-whisper|openai-whisper]
    python benchmarks/analyze.py --explanation-only [--device cpu|cuda] [--runs 20]

The "explanation" stage is why this emotion (vemoclap.fusion.explain: leave-one-out per input and
attention per row); the table ends with its cost as a ratio to the rest of the analysis.
``--explanation-only`` times just the classifier and the explanation, on the reference-layout
classifier (random weights) and random features in seconds: no extractor models are built.

Full-size architectures with random weights (or --models-dir with real ones). The first run
includes model loading; later runs show what a notebook user waits for on a rerun. The
configuration is the default one: the recipe of the (reference-layout) classifier, resolved for
the device, printed with the table (its Whisper size, backend and decoding; its deviations).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, median, sixty_second_video, table  # noqa: E402
from full_size import WHISPER_DIMS, build_full_size_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--recipe", default=None, help="feature recipe (default: the classifier's)")
    parser.add_argument("--whisper-model", default=None, help="default: the recipe's, resolved for the device")
    parser.add_argument("--asr-backend", default=None, help="default: the recipe's (auto)")
    parser.add_argument("--face-detector", default=None, help="default: the recipe's (YOLO)")
    parser.add_argument(
        "--random-yolo-faces",
        type=int,
        default=1,
        help="random YOLO weights find no face at the recipe's confidence (0.6), so the expression ViT "
        "would never run: with the random full-size models, YOLO keeps this many of its boxes per frame "
        "at confidence 0.01 (1: the scene shows one face per frame); 0 keeps the recipe's settings",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch (and CTranslate2) threads")
    parser.add_argument("--parallel", type=int, default=None, help="extractors at once (default: the Analyzer's)")
    parser.add_argument(
        "--explanation-only", action="store_true", help="time only the classifier and its explanation (seconds)"
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.explanation_only:
        explanation_only(args.device, args.runs)
        return

    from vemoclap.pipeline import Analyzer

    sizes = ("small",) + ((args.whisper_model,) if args.whisper_model in WHISPER_DIMS else ())
    models = args.models_dir or build_full_size_models(whisper_sizes=tuple(dict.fromkeys(sizes)))
    video = args.video or sixty_second_video()
    t0 = time.perf_counter()
    options: dict[str, dict] = {}
    if args.asr_backend:
        options["asr_sentiment"] = {"backend": args.asr_backend}
    if args.models_dir is None and args.random_yolo_faces and args.face_detector in (None, "yolo"):
        options["face_emotion"] = {"conf": 0.01, "max_faces": args.random_yolo_faces}
    analyzer = Analyzer(
        models_dir=models,
        device=args.device,
        classifier=models / "classifier",
        face_detector=args.face_detector,
        whisper_model=args.whisper_model,
        recipe=args.recipe,
        extractor_options=options or None,
        parallel=args.parallel,
    ).load()
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
    rows = [
        {"stage": stage, "median s": f"{median(values):.2f}", "share": f"{median(values) / total:.0%}"}
        for stage, values in stages.items()
    ]
    rows.append({"stage": "total", "median s": f"{total:.2f}", "share": "100%"})
    duration = result.info.duration
    load = os.getloadavg()
    import torch

    print(
        f"video: {video.name} ({duration:.0f} s), device: {device_name(args.device)}, "
        f"{torch.get_num_threads()} threads; "
        f"model loading: {load_s:.1f} s; runs: {args.runs}; load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}"
    )
    print(analyzer.recipe.summary())
    whisper = analyzer.extractors.get("asr_sentiment")
    if whisper is not None:
        print(
            f"asr_sentiment: Whisper {whisper.whisper_model} on {whisper.backend}"
            f"{' ' + whisper.compute_type if whisper.backend == 'faster-whisper' else ''}, long form "
            f"{whisper.long_form}, max_new_tokens {whisper.max_new_tokens}, temperature {whisper.temperature}, "
            f"VAD {'on' if whisper.vad else 'off'}"
        )
    if analyzer.parallel > 1:
        print(f"stages run {analyzer.parallel} at a time: the shares add up to more than 100 %")
    print(work_done(result))
    print(table(rows, ["stage", "median s", "share"]))
    if "explanation" in stages:
        why = median(stages["explanation"])
        print(f"why this emotion (explanation): {why:.3f} s, {why / (total - why):.2%} of the rest of the analysis")
    print(
        f"real-time factor: {total / duration:.2f} s of compute per s of video "
        f"(the reference: ≈30 s for a 60-s video on a Colab T4, i.e. 0.5)"
    )


def explanation_only(device: str, runs: int) -> None:
    """The classifier once (what predict costs) against the explanation, on one video's features."""
    import numpy as np
    import torch

    from vemoclap.fusion import FEATURES, AttentionClassifier, EmotionClassifier, default_config, explain

    torch.manual_seed(0)
    config = default_config()
    classifier = EmotionClassifier(AttentionClassifier.from_config(config), config, device)
    rng = np.random.default_rng(0)
    features = {name: rng.normal(size=(FEATURES[name].length, FEATURES[name].dim)) for name in config.features}
    timed: dict[str, list[float]] = {"classifier (predict)": [], "explanation": []}
    for _ in range(runs + 1):  # the first run warms up and is dropped
        for stage, work in (("classifier (predict)", classifier.predict), ("explanation", explain)):
            t0 = time.perf_counter()
            work(features) if stage != "explanation" else work(classifier, features)
            timed[stage].append(time.perf_counter() - t0)
    predict_s, explain_s = median(timed["classifier (predict)"][1:]), median(timed["explanation"][1:])
    rows = [{"stage": stage, "median s": f"{median(values[1:]):.4f}"} for stage, values in timed.items()]
    print(
        f"reference-layout classifier (d_model {config.d_model}, {config.num_heads} heads, "
        f"{len(config.features)} inputs), device: {device_name(device)}, {torch.get_num_threads()} threads, "
        f"median of {runs} runs"
    )
    print(table(rows, ["stage", "median s"]))
    print(f"explanation / classifier: {explain_s / predict_s:.1f}×")


def work_done(result) -> str:
    """What the stages had to work on in the last run (random weights decide some of it)."""
    out = result.outputs
    parts = []
    if "face_emotion" in out:
        faces = out["face_emotion"]
        parts.append(f"{faces.n_faces} faces classified ({faces.detector})")
    if "ocr_sentiment" in out:
        ocr = out["ocr_sentiment"]
        parts.append(
            f"OCR read {ocr.frames_read} frames (reused {ocr.frames_reused}), {len(ocr.unique_lines)} unique texts"
        )
    if "asr_sentiment" in out:
        parts.append(f"transcript {len(out['asr_sentiment'].text.split())} words")
    if "caption" in out:
        parts.append(f"caption {len(getattr(out['caption'], 'text', '').split())} words")
    return "work: " + "; ".join(parts)


if __name__ == "__main__":
    main()
