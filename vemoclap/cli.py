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
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="directory searched first for every model (also $VEMOCLAP_MODELS_DIR)")


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


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .outputs import write_or_keep
    from .pipeline import Analyzer

    _check_analyze_outputs(args)  # before any model loads or video downloads
    extractors = args.extractors.split(",") if args.extractors else None
    analyzer = Analyzer(extractors, frames=args.frames, device=args.device, models_dir=args.models_dir,
                        classifier=args.classifier, skip_unavailable=args.skip_unavailable,
                        whisper_model=args.whisper_model, face_detector=args.face_detector)
    result = analyzer.analyze(args.source, progress=not args.quiet, allow_private=args.allow_private,
                              cookies=args.cookies)
    print(result.summary())
    if args.json:
        write_or_keep(result, "--json", args.json, lambda: result.to_json(args.json))
        print(f"wrote {args.json}")
    if args.save:
        write_or_keep(result, "--save", args.save, lambda: analyzer.save(result, args.save))
        print(f"saved JSON, CSV and plots to {args.save}")
    if args.annotated_video:
        video = write_or_keep(result, "--annotated-video", args.annotated_video,
                              lambda: analyzer.export_annotated_video(result, args.annotated_video,
                                                                      progress=not args.quiet))
        print(f"wrote {video.path} ({video.frames} frames) and per-frame labels to {video.csv_path}")
    if args.clips:
        emotion, out = args.clips
        path, segments = write_or_keep(result, "--clips", out,
                                       lambda: analyzer.export_emotion_clips(result, emotion, out,
                                                                             progress=not args.quiet))
        spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments) or "none"
        print(f"{emotion} segments: {spans}" + (f"; wrote {path}" if path else ""))
    if analyzer.bugs:  # the run finished and was reported, but an extractor hit a bug
        name, exc = analyzer.bugs[0]
        raise RuntimeError(f"extractor {name} failed: {type(exc).__name__}: {one_line(exc)}") from exc
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    from .extractors import get
    from .live import camera_frames, file_frames, run_live

    faces = get("face_emotion", device=args.device, models_dir=args.models_dir,
                **({"detector": args.face_detector} if args.face_detector else {})).load()
    if args.source is not None:
        from .sources import resolve_source

        # a link is fetched through the guarded download path and played from the local copy
        frames = file_frames(str(resolve_source(args.source, allow_private=args.allow_private,
                                                cookies=args.cookies)))
    elif args.stream is not None:
        from .live import stream_frames

        frames = stream_frames(args.stream, allow_private=args.allow_private)
    else:
        frames = camera_frames(args.camera)
    show = False if args.no_window else None
    stats = run_live(frames, faces.analyze_image, show=show, every=args.every, max_frames=args.max_frames)
    print(f"{stats['frames']} frames at {stats['fps']:.1f} FPS")
    return 0


def _cmd_download_models(args: argparse.Namespace) -> int:
    from .models import download_models

    only = args.only.split(",") if args.only else None
    written = download_models(args.dir, only=only, whisper_sizes=tuple(args.whisper.split(",")))
    for key, path in written.items():
        print(f"{key:<16} {path}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import MODELS, local_path

    for key, ref in MODELS.items():
        where = ref.hub_id or ref.filename
        local = local_path(key, args.models_dir, name="small") if ref.kind != "whisper" else None
        state = f"local: {local}" if local else "not local"
        print(f"{key:<16} {where:<52} {ref.size_mb:>5} MB  {state}  — {ref.purpose}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vemoclap", description="Tell the emotion of a video (Ekman-6).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="analyze one video and print a report")
    analyze.add_argument("source", help="a video file, an http(s) link (YouTube or any yt-dlp site) or \"sample\"")
    analyze.add_argument("--frames", type=int, default=16, help=f"frames sampled (default 16, at most {MAX_FRAMES})")
    _add_model_options(analyze)
    analyze.add_argument("--classifier", type=Path, default=None,
                         help="emotion classifier checkpoint (ours or the reference's); without it only "
                              "the extractors' outputs are shown")
    analyze.add_argument("--extractors", default=None,
                         help="comma-separated extractors to run (default: all of the reference's)")
    analyze.add_argument("--whisper-model", default=None, help="Whisper size or checkpoint path")
    analyze.add_argument("--face-detector", default=None, choices=["auto", "yolo", "lbp", "haar", "opencv"],
                         help="face detector: yolo (YOLOv8-face), lbp (offline, scikit-image), haar (OpenCV 4 only), opencv (haar, else lbp), auto (yolo, else lbp)")
    analyze.add_argument("--skip-unavailable", action="store_true",
                         help="go on without models that cannot be loaded, and list them")
    analyze.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    analyze.add_argument("--save", type=Path, default=None, help="write JSON, CSV and plots into this folder")
    analyze.add_argument("--annotated-video", type=Path, default=None, metavar="FILE",
                         help="also write every frame with face boxes and expressions (audio kept)")
    analyze.add_argument("--clips", nargs=2, metavar=("EMOTION", "FILE"), default=None,
                         help="also write one video of the segments where EMOTION dominates")
    analyze.add_argument("--allow-private", action="store_true",
                         help="allow links to private/loopback addresses (off by default)")
    analyze.add_argument("--cookies", type=Path, default=None, metavar="FILE",
                         help="a Netscape cookies.txt of a logged-in browser, for sites that ask to sign in "
                              "(\"confirm you're not a bot\"); it is a login: keep it private")
    analyze.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    analyze.set_defaults(func=_cmd_analyze)

    live = sub.add_parser("live", help="per-frame faces and expressions from a camera, stream or file, FPS shown")
    live.add_argument("source", nargs="?", default=None,
                      help="a video file or an http(s) link, downloaded first (default: the camera)")
    live.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    live.add_argument("--stream", default=None,
                      help="a live stream: http(s) (read through the address guard) or rtsp:// (its address "
                           "checked, connected by address, no redirects)")
    live.add_argument("--cookies", type=Path, default=None, metavar="FILE",
                      help="a cookies.txt for a link that asks to sign in (a login: keep it private)")
    live.add_argument("--every", type=int, default=1, help="run the face model on every N-th frame")
    live.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: never)")
    live.add_argument("--no-window", action="store_true", help="print lines even when a display exists")
    live.add_argument("--face-detector", default=None, choices=["auto", "yolo", "lbp", "haar", "opencv"],
                      help="face detector: yolo (YOLOv8-face), lbp (offline, scikit-image), haar (OpenCV 4 only), opencv (haar, else lbp), auto (yolo, else lbp)")
    live.add_argument("--allow-private", action="store_true",
                      help="allow links and streams on private/loopback addresses (off by default)")
    _add_model_options(live)
    live.set_defaults(func=_cmd_live)

    download = sub.add_parser("download-models", help="fetch the pretrained models into a folder (needs internet)")
    download.add_argument("--dir", type=Path, default=Path("weights"), help="target folder (default weights)")
    download.add_argument("--only", default=None, help="comma-separated model keys (see `vemoclap models`)")
    download.add_argument("--whisper", default="small,medium", help="Whisper sizes to fetch (default small,medium)")
    download.set_defaults(func=_cmd_download_models)

    models = sub.add_parser("models", help="list every model vemoclap uses and whether it is local")
    models.add_argument("--models-dir", type=Path, default=None,
                        help="directory to look for the models in (also $VEMOCLAP_MODELS_DIR)")
    models.set_defaults(func=_cmd_models)

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
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vemoclap: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if args.debug:
            raise
        print(f"vemoclap: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: keep its traceback where it can be read and reported
        if args.debug:
            raise
        where = _write_traceback(exc)
        print(f"vemoclap: internal error ({type(exc).__name__}: {one_line(exc, limit=200)}); "
              f"this is a bug, not bad input: the traceback is in {where}", file=sys.stderr)
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
