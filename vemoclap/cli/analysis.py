"""Subcommands that analyze videos: ``analyze`` (one video, a report), ``live`` (faces per frame,
FPS shown) and ``demo`` (offline, on tiny random models)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import one_line
from ..media import MAX_FRAMES
from .options import (
    add_device,
    add_extractor_options,
    add_face_detector,
    add_model_options,
    add_models_dir,
    add_quiet,
    nonnegative_int,
    positive_int,
)
from .report import show


def _check_analyze_outputs(args: argparse.Namespace) -> None:
    """Every output checked before the work starts, none of them the video itself (nor through a
    symlink or a ``sub/../`` spelling): writing it would destroy the input."""
    from ..outputs import check_dir_output, check_file_output
    from ..results import EXPORT_FILES

    source = [args.source]
    if args.json:
        check_file_output(args.json, "--json", source)
    if args.save:
        folder = check_dir_output(args.save, "--save", source)
        plots = ("probabilities", "circumplex", "annotated_frame", "timeline")  # Result.figures' file stems
        for name in (*EXPORT_FILES, *(f"{stem}.png" for stem in plots)):
            check_file_output(folder / name, "--save", source)
    if args.annotated_video:
        check_file_output(args.annotated_video, "--annotated-video", source)
        check_file_output(Path(args.annotated_video).with_suffix(".csv"), "--annotated-video (its CSV)", source)
    if args.clips:
        check_file_output(args.clips[1], "--clips", source)


def _video_first(args: argparse.Namespace) -> Path:
    """The local video (a link downloaded, a sample fetched), probed: a source that cannot be a
    video is said before any model is fetched or loaded."""
    from ..media import probe
    from ..sources import resolve_source

    path = resolve_source(
        args.source, allow_private=args.allow_private, cookies=args.cookies, models_dir=args.models_dir
    )
    probe(path)
    return path


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..outputs import write_or_keep
    from ..pipeline import Analyzer

    _check_analyze_outputs(args)  # before any model loads or video downloads
    path = _video_first(args)
    extractors = args.extractors or None  # "clip,face_emotion": the Analyzer splits it
    classifier = None if args.no_classifier else args.classifier
    analyzer = Analyzer(
        extractors,
        frames=args.frames,
        device=args.device,
        models_dir=args.models_dir,
        classifier=classifier,
        skip_unavailable=args.skip_unavailable,
        whisper_model=args.whisper_model,
        face_detector=args.face_detector,
        announce=lambda line: print(line, file=sys.stderr),
        parallel=args.parallel,
        heads=args.heads,
    )
    result = analyzer.analyze(path, progress=not args.quiet)
    result.source = args.source
    show(result.summary())
    if args.json:
        write_or_keep(result, "--json", args.json, lambda: result.to_json(args.json))
        print(f"wrote {args.json}")
    if args.save:
        write_or_keep(result, "--save", args.save, lambda: result.save(args.save))
        print(f"saved JSON, CSV and plots to {args.save}")
    if args.annotated_video:
        _annotate(args, analyzer, result)
    if args.clips:
        _clips(args, result)
    if analyzer.bugs:  # the run finished and was reported, but an extractor hit a bug
        name, exc = analyzer.bugs[0]
        raise RuntimeError(f"extractor {name} failed: {type(exc).__name__}: {one_line(exc)}") from exc
    return 0


def _annotate(args: argparse.Namespace, analyzer, result) -> None:
    from ..outputs import write_or_keep
    from ..video_export import annotation_cost

    cost = annotation_cost(result, args.every)
    print(cost.line(), file=sys.stderr)
    video = write_or_keep(
        result,
        "--annotated-video",
        args.annotated_video,
        lambda: analyzer.export_annotated_video(
            result, args.annotated_video, every=cost.every, progress=not args.quiet
        ),
    )
    print(video.line())


def _clips(args: argparse.Namespace, result) -> None:
    from ..outputs import write_or_keep

    emotion, out = args.clips
    path, segments = write_or_keep(
        result, "--clips", out, lambda: result.export_emotion_clips(emotion, out, progress=not args.quiet)
    )
    if path is None:
        where = "timeline window" if result.windows is not None else "sampled frame's face"
        overall = " although it leads for the whole video" if emotion == result.top_label else ""
        print(
            f"{emotion}: no clip written to {out} — no {where} has {emotion} on top{overall}, so there is nothing to cut"
        )
        return
    spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments)
    print(f"{emotion} segments: {spans}; wrote {path}")


def _every(value: str) -> int | str:
    """``--every``: a whole number of frames, 1 or more, or auto."""
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number of frames, 1 or more, nor auto")
    return int(value)


def _cmd_live(args: argparse.Namespace) -> int:
    from ..extractors import get
    from ..live import camera_frames, file_frames, run_live
    from ..registry import with_shortcuts

    # the source first (a refused link is one line before any model loads), then the face model
    if args.source is not None:
        from ..sources import resolve_source

        # a link is fetched through the guarded download path and played from the local copy
        frames = file_frames(str(resolve_source(args.source, allow_private=args.allow_private, cookies=args.cookies)))
    elif args.stream is not None:
        from ..streams import stream_frames

        frames = stream_frames(args.stream, allow_private=args.allow_private)
    else:
        frames = camera_frames(args.camera)
    options = with_shortcuts(face_detector=args.face_detector).get("face_emotion", {})
    faces = get("face_emotion", device=args.device, models_dir=args.models_dir, **options).load()
    window = False if args.no_window else None
    stats = run_live(
        frames,
        faces.analyze_image,
        show=window,
        every=args.every,
        max_frames=args.max_frames,
        weights=faces.weights,
        out=show,
    )
    print(f"{stats['frames']} frames at {stats['fps']:.1f} FPS")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..models import OFFLINE_ENV
    from ..pipeline import Analyzer
    from ..tiny import tiny_models_dir

    if args.json:
        from ..outputs import check_file_output

        check_file_output(args.json, "--json", [args.source])
    print(
        "vemoclap demo: tiny RANDOM models, built here without any download — it shows the whole path "
        "(extractors → classifier → report), and its emotion means nothing",
        file=sys.stderr,
    )
    os.environ[OFFLINE_ENV] = "1"  # the demo downloads nothing: what the tiny models lack is a named deviation
    models_dir = tiny_models_dir(args.models_dir)
    analyzer = Analyzer(device=args.device, models_dir=models_dir, frames=args.frames)
    result = analyzer.analyze(args.source, progress=not args.quiet)
    show(result.summary())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def add_analyze(subparsers) -> None:
    analyze = subparsers.add_parser("analyze", help="analyze one video and print a report")
    analyze.add_argument(
        "source",
        help="a video file, an http(s) link (YouTube or any yt-dlp site), sample:NAME "
        "(the reference's samples: anger, disgust, fear, joy, sadness, surprise, "
        'sample) or "sample" (generated, offline)',
    )
    analyze.add_argument("--frames", type=int, default=16, help=f"frames sampled (default 16, at most {MAX_FRAMES})")
    add_model_options(analyze)
    analyze.add_argument(
        "--classifier",
        default="reference",
        help="emotion classifier: 'reference' (default: the reference's trained classifier, "
        "fetched and verified on first use) or a checkpoint folder (ours or the reference's)",
    )
    analyze.add_argument("--no-classifier", action="store_true", help="no emotion: only the extractors' outputs")
    analyze.add_argument(
        "--heads",
        type=int,
        default=None,
        help="attention heads of a reference-layout classifier (default 4, the reference app's; "
        "its config says 8; `vemoclap evaluate --heads both` compares them)",
    )
    add_extractor_options(analyze)
    analyze.add_argument(
        "--skip-unavailable", action="store_true", help="go on without models that cannot be loaded, and list them"
    )
    analyze.add_argument(
        "--parallel",
        type=positive_int,
        default=None,
        metavar="N",
        help="extractors run at once (default 2, or $VEMOCLAP_PARALLEL: audio beside vision); 1: one at a time",
    )
    analyze.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    analyze.add_argument("--save", type=Path, default=None, help="write JSON, CSV and plots into this folder")
    analyze.add_argument(
        "--annotated-video",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write every frame with face boxes and expressions (audio kept); the time it "
        "will take is printed before it starts",
    )
    analyze.add_argument(
        "--every",
        type=_every,
        default="auto",
        metavar="K",
        help="with --annotated-video: run the face model on every K-th frame, boxes carried in "
        "between (default auto: the smallest K that keeps annotating within twice the analysis's time)",
    )
    analyze.add_argument(
        "--clips",
        nargs=2,
        metavar=("EMOTION", "FILE"),
        default=None,
        help="also write one video of the segments where EMOTION dominates",
    )
    analyze.add_argument(
        "--allow-private", action="store_true", help="allow links to private/loopback addresses (off by default)"
    )
    analyze.add_argument(
        "--cookies",
        type=Path,
        default=None,
        metavar="FILE",
        help="a Netscape cookies.txt of a logged-in browser, for sites that ask to sign in "
        '("confirm you\'re not a bot"); it is a login: keep it private',
    )
    add_quiet(analyze)
    analyze.set_defaults(func=_cmd_analyze)


def add_live(subparsers) -> None:
    live = subparsers.add_parser(
        "live", help="per-frame faces and expressions from a camera, stream or file, FPS shown"
    )
    live.add_argument(
        "source",
        nargs="?",
        default=None,
        help="a video file or an http(s) link, downloaded first (default: the camera)",
    )
    live.add_argument("--camera", type=nonnegative_int, default=0, help="camera index (default 0)")
    live.add_argument(
        "--stream",
        default=None,
        help="a live stream: http(s) (read through the address guard) or rtsp:// (its address "
        "checked, connected by address, no redirects)",
    )
    live.add_argument(
        "--cookies",
        type=Path,
        default=None,
        metavar="FILE",
        help="a cookies.txt for a link that asks to sign in (a login: keep it private)",
    )
    live.add_argument("--every", type=positive_int, default=1, help="run the face model on every N-th frame")
    live.add_argument(
        "--max-frames", type=positive_int, default=None, help="stop after this many frames (default: never)"
    )
    live.add_argument("--no-window", action="store_true", help="print lines even when a display exists")
    add_face_detector(live)
    live.add_argument(
        "--allow-private",
        action="store_true",
        help="allow links and streams on private/loopback addresses (off by default)",
    )
    add_model_options(live)
    live.set_defaults(func=_cmd_live)


def add_demo(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo", help="offline: analyze on tiny random models built here (no download); its emotion means nothing"
    )
    demo.add_argument("source", nargs="?", default="sample", help="a video (default: the generated sample)")
    add_models_dir(demo, "where to build the tiny models (default ~/.cache/vemoclap/tiny-models)")
    add_device(demo, "cpu", "cpu (default), cuda, auto")
    demo.add_argument("--frames", type=int, default=None, help="frames sampled (default: the recipe's 16)")
    demo.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    add_quiet(demo)
    demo.set_defaults(func=_cmd_demo)


__all__ = ["add_analyze", "add_demo", "add_live"]
