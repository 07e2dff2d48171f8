"""End-to-end seconds per stage for a 60-s video: media, each extractor, classifier; and the same video
under a reference-like configuration and under full parity, in the same process, as ratios.

    python benchmarks/analyze.py [--device cpu|cuda] [--video PATH | --seconds 60] [--runs 2] [--recipe NAME]
                                 [--whisper-model SIZE] [--asr-backend auto|faster-whisper|openai-whisper]
                                 [--configs default,reference-like,parity] [--extractors clip,beats,...]
    python benchmarks/analyze.py --explanation-only [--device cpu|cuda] [--runs 20]

The "explanation" stage is why this emotion (vemoclap.fusion.explain: leave-one-out per input and
attention per row); the default's line after the table gives its cost as a ratio to the rest of the
analysis. ``--explanation-only`` times just the classifier and the explanation, on the
reference-layout classifier (random weights) and random features, in seconds: no extractor models
are built.

Full-size architectures with random weights (or --models-dir with real ones). Every configuration is
loaded first (loading time printed), then the runs go round the configurations in turn (--runs
rounds), so all of them meet the same machine load; the median of each is printed. The configurations:

* default: what a user gets: the recipe of the (reference-layout) classifier, resolved for the
  device, printed with the table (its Whisper size, backend and decoding; its deviations).
* reference-like: how the reference ran the same models: one extractor at a time, Whisper on
  openai-whisper (fp32 on a CPU), float32 text decoders (no int8 NLLB / T5), the `reference`
  recipe's OCR settings; the Whisper size is the default's, so only the runtime differs.
* parity: the `reference` recipe with its own Whisper, large-v3, instead of the CPU's small (the
  default on a GPU already runs large-v3, so there it is the default and is not run twice).

Absolute seconds differ ~1.6× between machines of the same kind; the ratios printed at the end
("default vs reference-like: N.N×") come from one process on one video and compare across machines.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, median, sixty_second_video, table  # noqa: E402
from full_size import WHISPER_DIMS, build_full_size_models  # noqa: E402

CONFIGS = ("default", "reference-like", "parity")
PARITY_WHISPER = "large-v3"  # the reference recipe's own Whisper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=60.0, help="the generated sample's length (no --video)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--recipe", default=None, help="feature recipe (default: the classifier's)")
    parser.add_argument("--whisper-model", default=None, help="default: the recipe's, resolved for the device")
    parser.add_argument("--asr-backend", default=None, help="default: the recipe's (auto)")
    parser.add_argument("--face-detector", default=None, help="default: the recipe's (YOLO)")
    parser.add_argument("--extractors", default=None, help="comma-separated (default: every default extractor)")
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"which configurations to run, comma-separated, the default first ({', '.join(CONFIGS)})",
    )
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
    configs = [c for c in CONFIGS if c in {c.strip() for c in args.configs.split(",")}]  # the default first
    unknown = sorted({c.strip() for c in args.configs.split(",") if c.strip()} - set(CONFIGS))
    if unknown or "default" not in configs:
        parser.error(f"--configs takes default (required) and any of {', '.join(CONFIGS[1:])}; not {unknown}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.explanation_only:
        explanation_only(args.device, args.runs)
        return

    wanted = ["small", args.whisper_model] + ([PARITY_WHISPER] if "parity" in configs else [])
    sizes = tuple(dict.fromkeys(size for size in wanted if size in WHISPER_DIMS))
    models = args.models_dir or build_full_size_models(whisper_sizes=sizes)
    video = args.video or sixty_second_video(args.seconds)
    analyzers, load_s = {}, {}
    for name in configs:
        kwargs = analyzer_options(name, args, models)
        if name == "parity" and analyzers["default"].extractors.get("asr_sentiment") is not None:
            if analyzers["default"].extractors["asr_sentiment"].whisper_model == PARITY_WHISPER:
                print(f"parity: the default already runs Whisper {PARITY_WHISPER} here (not run twice)")
                continue
        t0 = time.perf_counter()
        analyzers[name] = build_analyzer(models, kwargs)
        load_s[name] = time.perf_counter() - t0
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in analyzers}
    totals: dict[str, list[float]] = {name: [] for name in analyzers}
    results = {}
    for _ in range(args.runs):  # the configurations in turn, so each round meets the same load
        for name, analyzer in analyzers.items():
            gc.collect()
            t0 = time.perf_counter()
            results[name] = analyzer.analyze(video)
            totals[name].append(time.perf_counter() - t0)
            for stage, seconds in results[name].timings.items():
                stages[name].setdefault(stage, []).append(seconds)
    report(args, video, analyzers, load_s, stages, totals, results)


def analyzer_options(name: str, args, models: Path) -> dict:
    """The Analyzer's arguments for one configuration (see the module's docstring)."""
    options: dict[str, dict] = {}
    if args.asr_backend:
        options["asr_sentiment"] = {"backend": args.asr_backend}
    if args.models_dir is None and args.random_yolo_faces and args.face_detector in (None, "yolo"):
        options["face_emotion"] = {"conf": 0.01, "max_faces": args.random_yolo_faces}
    kwargs = dict(
        models_dir=models,
        device=args.device,
        classifier=models / "classifier",
        face_detector=args.face_detector,
        whisper_model=args.whisper_model,
        recipe=args.recipe,
        parallel=args.parallel,
        extractors=args.extractors,
    )
    if name == "reference-like":
        options["asr_sentiment"] = {"backend": "openai-whisper"}  # fp32 on a CPU (the recipe's fp16 on CUDA)
        options["ocr_sentiment"] = {"int8_decoders": False}  # float32 NLLB and T5
        kwargs.update(recipe="reference", parallel=1)  # the reference's OCR settings; one extractor at a time
    elif name == "parity":
        kwargs.update(recipe="reference", whisper_model=PARITY_WHISPER)
    kwargs["extractor_options"] = options or None
    return kwargs


def build_analyzer(models: Path, kwargs: dict):
    from vemoclap.pipeline import Analyzer

    return Analyzer(**kwargs).load()


def describe(name: str, analyzer) -> str:
    lines = [f"[{name}] {analyzer.recipe.summary()}"]
    whisper = analyzer.extractors.get("asr_sentiment")
    if whisper is not None:
        lines.append(
            f"[{name}] asr_sentiment: Whisper {whisper.whisper_model} on {whisper.backend}"
            f"{' ' + whisper.compute_type if whisper.backend == 'faster-whisper' else ''}, long form "
            f"{whisper.long_form}, max_new_tokens {whisper.max_new_tokens}, temperature {whisper.temperature}, "
            f"VAD {'on' if whisper.vad else 'off'}"
        )
    ocr = analyzer.extractors.get("ocr_sentiment")
    if ocr is not None:
        lines.append(
            f"[{name}] ocr_sentiment: detection {ocr.detection}, NLLB and T5 "
            f"{'int8' if ocr.int8_decoders else 'float32' if ocr.device.type == 'cpu' else 'at the recipe precision'}"
        )
    lines.append(f"[{name}] {analyzer.parallel} extractor(s) at a time")
    return "\n".join(lines)


def report(args, video: Path, analyzers: dict, load_s: dict, stages: dict, totals: dict, results: dict) -> None:
    import torch

    default = results["default"]
    duration = default.info.duration
    load = os.getloadavg()
    loading = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in load_s.items())
    print(
        f"video: {video.name} ({duration:.0f} s), device: {device_name(args.device)}, "
        f"{torch.get_num_threads()} threads; model loading: {loading}; runs: {args.runs} (round robin); "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    for name, analyzer in analyzers.items():
        print(describe(name, analyzer))
    if analyzers["default"].parallel > 1:
        print("stages run two or more at a time in the default: its stage seconds add up to more than its total")
    for name, result in results.items():
        print(f"[{name}] {work_done(result)}")
    names = list(analyzers)
    order = list(dict.fromkeys(stage for name in names for stage in stages[name]))
    rows = [
        {"stage": stage, **{name: f"{median(stages[name].get(stage, [])):.2f}" for name in names}} for stage in order
    ]
    rows.append({"stage": "**total**", **{name: f"**{median(totals[name]):.2f}**" for name in names}})
    rows.append({"stage": "real-time factor", **{name: f"{median(totals[name]) / duration:.2f}" for name in names}})
    print(table(rows, ["stage", *names]))
    if "explanation" in stages["default"]:
        why, rest = median(stages["default"]["explanation"]), median(totals["default"])
        print(f"why this emotion (explanation): {why:.3f} s, {why / (rest - why):.2%} of the rest of the analysis")
    base = median(totals["default"])
    for name in names[1:]:
        label = f"full parity (Whisper {PARITY_WHISPER})" if name == "parity" else name
        print(f"default vs {label}: {median(totals[name]) / base:.1f}×")
    print(
        f"real-time factor (default): {base / duration:.2f} s of compute per s of video "
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
