"""The ``vemoclap`` command: one subcommand per verb.

Bad input (a :class:`vemoclap.errors.UserError`) ends with exit code 2 and a one-line reason on
stderr, never a traceback. Anything else is a bug: one short line on stderr naming the log file that
holds the full traceback, exit code 1 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import one_line, user_errors
from .media import MAX_FRAMES

log = logging.getLogger("vemoclap")

EXIT_BAD_INPUT = 2
EXIT_BUG = 1
LOG_DIR_ENV = "VEMOCLAP_LOG_DIR"


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="directory searched first for every model (also $VEMOCLAP_MODELS_DIR)",
    )


def _check_analyze_outputs(args: argparse.Namespace) -> None:
    from .outputs import check_dir_output, check_file_output

    if args.json:
        check_file_output(args.json, "--json")
    if args.save:
        check_dir_output(args.save, "--save")
    if args.annotated_video:
        check_file_output(args.annotated_video, "--annotated-video")
    if args.clips:
        check_file_output(args.clips[1], "--clips")


def _video_first(args: argparse.Namespace) -> Path:
    """The local video (a link downloaded, a sample fetched), probed: a source that cannot be a
    video is said before any model is fetched or loaded."""
    from .media import probe
    from .sources import resolve_source

    path = resolve_source(
        args.source, allow_private=args.allow_private, cookies=args.cookies, models_dir=args.models_dir
    )
    probe(path)
    return path


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .outputs import write_or_keep
    from .pipeline import Analyzer

    _check_analyze_outputs(args)  # before any model loads or video downloads
    path = _video_first(args)
    extractors = args.extractors.split(",") if args.extractors else None
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
    )
    result = analyzer.analyze(path, progress=not args.quiet)
    result.source = args.source
    print(result.summary())
    if args.json:
        write_or_keep(result, "--json", args.json, lambda: result.to_json(args.json))
        print(f"wrote {args.json}")
    if args.save:
        write_or_keep(result, "--save", args.save, lambda: analyzer.save(result, args.save))
        print(f"saved JSON, CSV and plots to {args.save}")
    if args.annotated_video:
        video = write_or_keep(
            result,
            "--annotated-video",
            args.annotated_video,
            lambda: analyzer.export_annotated_video(result, args.annotated_video, progress=not args.quiet),
        )
        print(f"wrote {video.path} ({video.frames} frames) and per-frame labels to {video.csv_path}")
    if args.clips:
        emotion, out = args.clips
        path, segments = write_or_keep(
            result, "--clips", out, lambda: analyzer.export_emotion_clips(result, emotion, out, progress=not args.quiet)
        )
        spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments) or "none"
        print(f"{emotion} segments: {spans}" + (f"; wrote {path}" if path else ""))
    if analyzer.bugs:  # the run finished and was reported, but an extractor hit a bug
        name, exc = analyzer.bugs[0]
        raise RuntimeError(f"extractor {name} failed: {type(exc).__name__}: {one_line(exc)}") from exc
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    from .extractors import get
    from .live import camera_frames, file_frames, run_live

    # the source first (a refused link is one line before any model loads), then the face model
    if args.source is not None:
        from .sources import resolve_source

        # a link is fetched through the guarded download path and played from the local copy
        frames = file_frames(str(resolve_source(args.source, allow_private=args.allow_private, cookies=args.cookies)))
    elif args.stream is not None:
        from .streams import stream_frames

        frames = stream_frames(args.stream, allow_private=args.allow_private)
    else:
        frames = camera_frames(args.camera)
    faces = get(
        "face_emotion",
        device=args.device,
        models_dir=args.models_dir,
        **({"detector": args.face_detector} if args.face_detector else {}),
    ).load()
    show = False if args.no_window else None
    stats = run_live(frames, faces.analyze_image, show=show, every=args.every, max_frames=args.max_frames)
    print(f"{stats['frames']} frames at {stats['fps']:.1f} FPS")
    return 0


def _cmd_download_models(args: argparse.Namespace) -> int:
    from .fetch import download_models

    only = args.only.split(",") if args.only else None
    written = download_models(
        args.dir,
        only=only,
        whisper_sizes=tuple(args.whisper.split(",")),
        progress=not args.quiet,
        announce=lambda line: print(line, file=sys.stderr),
    )
    for key, path in written.items():
        print(f"{key:<16} {path}")
    where = f" --models-dir {args.dir}" if args.dir else ""
    print(
        f"done; use them with `vemoclap analyze VIDEO{where}`"
        if where
        else "done; `vemoclap analyze VIDEO` finds them in the default models dir"
    )
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import models_root, table

    rows = table(args.models_dir, whisper_size=args.whisper)
    print(f"models dir: {models_root(args.models_dir)}")
    print(f"{'key':<16} {'size':>7}  {'licence':<13} {'used by':<26} {'state':<16} source")
    for row in rows:
        state = "random weights" if row["origin"] == "random" else "local" if row["local"] else "not local"
        print(
            f"{row['key']:<16} {row['size_mb']:>4} MB  {row['license']:<13} {', '.join(row['used_by']):<26} "
            f"{state:<16} {row['source']}"
        )
    print("licence 'unknown': read from the hub's metadata when the model is downloaded")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline import Analyzer
    from .tiny import tiny_models_dir

    print(
        "vemoclap demo: tiny RANDOM models, built here without any download — it shows the whole path "
        "(extractors → classifier → report), and its emotion means nothing",
        file=sys.stderr,
    )
    models_dir = tiny_models_dir(args.models_dir)
    analyzer = Analyzer(device=args.device, models_dir=models_dir, frames=args.frames)
    result = analyzer.analyze(args.source, progress=not args.quiet)
    print(result.summary())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vemoclap", description="Tell the emotion of a video (Ekman-6).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="analyze one video and print a report")
    analyze.add_argument(
        "source",
        help="a video file, an http(s) link (YouTube or any yt-dlp site), sample:NAME "
        "(the reference's samples: anger, disgust, fear, joy, sadness, surprise, "
        'sample) or "sample" (generated, offline)',
    )
    analyze.add_argument("--frames", type=int, default=16, help=f"frames sampled (default 16, at most {MAX_FRAMES})")
    _add_model_options(analyze)
    analyze.add_argument(
        "--classifier",
        default="reference",
        help="emotion classifier: 'reference' (default: the reference's trained classifier, "
        "fetched and verified on first use) or a checkpoint folder (ours or the reference's)",
    )
    analyze.add_argument("--no-classifier", action="store_true", help="no emotion: only the extractors' outputs")
    analyze.add_argument(
        "--extractors", default=None, help="comma-separated extractors to run (default: all of the reference's)"
    )
    analyze.add_argument("--whisper-model", default=None, help="Whisper size or checkpoint path")
    analyze.add_argument(
        "--face-detector",
        default=None,
        choices=["auto", "yolo", "lbp", "haar", "opencv"],
        help="face detector: yolo (YOLOv8-face), lbp (offline, scikit-image), haar (OpenCV 4 only), opencv (haar, else lbp), auto (yolo, else lbp)",
    )
    analyze.add_argument(
        "--skip-unavailable", action="store_true", help="go on without models that cannot be loaded, and list them"
    )
    analyze.add_argument(
        "--parallel",
        type=int,
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
        help="also write every frame with face boxes and expressions (audio kept)",
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
    analyze.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    analyze.set_defaults(func=_cmd_analyze)

    live = sub.add_parser("live", help="per-frame faces and expressions from a camera, stream or file, FPS shown")
    live.add_argument(
        "source",
        nargs="?",
        default=None,
        help="a video file or an http(s) link, downloaded first (default: the camera)",
    )
    live.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
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
    live.add_argument("--every", type=int, default=1, help="run the face model on every N-th frame")
    live.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: never)")
    live.add_argument("--no-window", action="store_true", help="print lines even when a display exists")
    live.add_argument(
        "--face-detector",
        default=None,
        choices=["auto", "yolo", "lbp", "haar", "opencv"],
        help="face detector: yolo (YOLOv8-face), lbp (offline, scikit-image), haar (OpenCV 4 only), opencv (haar, else lbp), auto (yolo, else lbp)",
    )
    live.add_argument(
        "--allow-private",
        action="store_true",
        help="allow links and streams on private/loopback addresses (off by default)",
    )
    _add_model_options(live)
    live.set_defaults(func=_cmd_live)

    download = sub.add_parser(
        "download-models", help="fetch the pretrained models and the reference classifier, verified (needs internet)"
    )
    download.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="target folder (default: $VEMOCLAP_MODELS_DIR, else ~/.cache/vemoclap/models)",
    )
    download.add_argument(
        "--only",
        default=None,
        help="comma-separated model keys (see `vemoclap models`; 'samples' fetches the reference's sample videos)",
    )
    download.add_argument("--whisper", default="small,medium", help="Whisper sizes to fetch (default small,medium)")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    download.set_defaults(func=_cmd_download_models)

    models = sub.add_parser("models", help="list every model vemoclap uses: source, size, licence, users, state")
    models.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="the models dir to look in (default: $VEMOCLAP_MODELS_DIR, else ~/.cache/vemoclap/models)",
    )
    models.add_argument("--whisper", default="small", help="the Whisper size whose file is shown (default small)")
    models.set_defaults(func=_cmd_models)

    demo = sub.add_parser(
        "demo", help="offline: analyze on tiny random models built here (no download); its emotion means nothing"
    )
    demo.add_argument("source", nargs="?", default="sample", help="a video (default: the generated sample)")
    demo.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where to build the tiny models (default ~/.cache/vemoclap/tiny-models)",
    )
    demo.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    demo.add_argument("--frames", type=int, default=None, help="frames sampled (default: the recipe's 16)")
    demo.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)

    from .app import add_commands as add_app_commands
    from .training.commands import add_commands as add_dataset_commands
    from .training.train_commands import add_commands as add_training_commands

    add_app_commands(sub)
    add_dataset_commands(sub)
    add_training_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vemoclap: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if args.debug:
            raise
        for line in getattr(exc, "lines", None) or [one_line(exc)]:  # MissingModels: one line per model
            print(f"vemoclap: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: keep its traceback where it can be read and reported
        if args.debug:
            raise
        where = _write_traceback(exc)
        print(
            f"vemoclap: internal error ({type(exc).__name__}: {one_line(exc, limit=200)}); "
            f"this is a bug, not bad input: the traceback is in {where}",
            file=sys.stderr,
        )
        return EXIT_BUG


def _write_traceback(exc: BaseException) -> str:
    """Write the traceback to a log file (``$VEMOCLAP_LOG_DIR`` or the user cache) and return its path."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path.home() / ".cache" / "vemoclap" / "logs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(f"vemoclap {' '.join(sys.argv[1:])}\n\n{text}")
        return str(path)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="vemoclap-error-", suffix=".log")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return name


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
