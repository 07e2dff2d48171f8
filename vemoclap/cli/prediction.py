"""The ``predict`` subcommand: the emotion of many videos into one CSV (:mod:`vemoclap.prediction`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_extractor_options, add_model_options, add_quiet, csv_list
from .report import show


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..outputs import check_file_output
    from ..prediction import predict

    check_file_output(args.out, "--out")  # before any model loads
    options = dict(
        extractors=csv_list(args.extractors),
        frames=args.frames,
        device=args.device,
        models_dir=args.models_dir,
        skip_unavailable=args.skip_unavailable,
        whisper_model=args.whisper_model,
        face_detector=args.face_detector,
    )
    if args.classifier is not None:  # otherwise the Analyzer's default classifier
        options["classifier"] = args.classifier
    report = predict(args.videos, args.out, progress=not args.quiet, retry_failed=args.retry_failed, **options)
    show(report.summary())
    return 1 if report.failed or report.bad_input else 0


def add_predict(subparsers) -> None:
    from ..media import MAX_FRAMES

    predict = subparsers.add_parser("predict", help="the emotion of many videos into one CSV (resumable)")
    predict.add_argument(
        "videos", type=Path, help="a folder of videos (searched recursively) or a CSV with a path column"
    )
    predict.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the CSV to write, one row per video (a rerun adds the videos not in it yet)",
    )
    predict.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="emotion classifier checkpoint (ours or the reference's; default: the default "
        "classifier of `vemoclap analyze`)",
    )
    predict.add_argument(
        "--frames",
        type=int,
        default=None,
        help=f"frames sampled per video (default: the feature recipe's, 16; at most {MAX_FRAMES})",
    )
    add_model_options(predict)
    add_extractor_options(predict)
    predict.add_argument(
        "--skip-unavailable",
        action="store_true",
        help="go on without models that cannot be loaded (each row lists them as missing)",
    )
    predict.add_argument(
        "--retry-failed",
        action="store_true",
        help="also analyze again the videos a previous run found unreadable (status=bad_input; skipped otherwise)",
    )
    add_quiet(predict)
    predict.set_defaults(func=_cmd_predict)


__all__ = ["add_predict"]
