"""Subcommands for datasets: ``extract``, ``blacklist suggest``, ``import-features``.

Each handler returns an exit code. Bad input raises :class:`~vemoclap.training.dataset.DatasetError`,
:class:`~vemoclap.training.worker.ExtractionError` (and its
:class:`~vemoclap.training.reference_features.PickleRefused`, a pickle naming a global outside the allow-list) or
:class:`~vemoclap.training.store.FeatureFileError` — one-line messages, all ``UserError``s.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..errors import OptionError
from .options import add_extractor_options, add_model_options, add_quiet, csv_list

log = logging.getLogger(__name__)


def _positions(value: str) -> str | int:
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    if text.endswith("fps"):
        return text
    raise argparse.ArgumentTypeError(f"'{value}' is neither a number of frames nor like '1fps'")


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset",
        type=Path,
        help="a folder of class folders (<root>/<label>/<video>, optionally <root>/<split>/<label>/) "
        "or a CSV manifest with columns path,label[,split]",
    )
    parser.add_argument(
        "--labels", default=None, help="comma-separated label set (default Ekman-6); given, other labels are an error"
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the stratified split (default 0)")
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.5,
        help="test share when the dataset gives no splits (default 0.5, like Ekman-6's 819/818)",
    )
    parser.add_argument(
        "--val-size",
        type=float,
        default=0.1,
        help="share of train held out for validation when none is given (default 0.1)",
    )


def _load(args: argparse.Namespace):
    from ..labels import EMOTIONS
    from ..training.dataset import load_dataset

    labels = csv_list(args.labels)
    return load_dataset(
        args.dataset,
        labels=labels or EMOTIONS,
        test_size=args.test_size,
        val_size=args.val_size,
        seed=args.split_seed,
        strict_labels=labels is not None,
    )


def _cmd_extract(args: argparse.Namespace) -> int:
    from ..outputs import check_dir_output
    from ..training.dataset import apply_blacklist, split_counts
    from ..training.extraction import extract_dataset

    check_dir_output(args.out, "--out")  # before any video is read or downloaded
    try:
        options = json.loads(args.extractor_options) if args.extractor_options else None
    except json.JSONDecodeError as exc:
        raise OptionError(f"--extractor-options is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if options is not None and not isinstance(options, dict):
        raise OptionError('--extractor-options must be a JSON object: {"extractor": {"option": value}}')
    videos = _load(args)
    if args.blacklist:
        from ..training.blacklist import read_blacklist

        videos = apply_blacklist(videos, read_blacklist(args.blacklist), splits=csv_list(args.blacklist_splits))
    counts = split_counts(videos)
    log.info("splits: %s", json.dumps(counts))
    ray_address = args.ray if args.ray not in (None, "local") else None
    report = extract_dataset(
        videos,
        args.out,
        extractors=csv_list(args.extractors),
        positions=args.positions,
        min_positions=args.min_positions,
        max_positions=args.max_positions,
        device=args.device,
        models_dir=args.models_dir,
        extractor_options=options,
        face_detector=args.face_detector,
        whisper_model=args.whisper_model,
        use_ray=args.ray is not None,
        ray_address=ray_address,
        num_workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        progress=not args.quiet,
    )
    print(report.summary())
    return 1 if report.failed else 0


def _cmd_blacklist_suggest(args: argparse.Namespace) -> int:
    from ..training.blacklist import append_suggestions, suggest

    videos = _load(args)
    found = suggest(videos, all_labels=args.all_labels)
    for suggestion in found:
        print(suggestion.line())
    print(f"# {len(found)} of {len(videos)} videos match a problem keyword; confirm each before blacklisting")
    if args.append:
        added = append_suggestions(args.append, found)
        print(f"# added {added} new names to {args.append}")
    return 0


def _cmd_import_features(args: argparse.Namespace) -> int:
    from ..training.reference_features import import_reference_features

    report = import_reference_features(args.pickle, args.out, progress=not args.quiet)
    print(report.summary())
    return 0


def add_extract(subparsers) -> None:
    extract = subparsers.add_parser("extract", help="extract the features of a whole dataset (resumable; Ray)")
    _add_dataset_options(extract)
    extract.add_argument("--out", type=Path, required=True, help="output folder, e.g. features/ekman6")
    extract.add_argument(
        "--positions",
        type=_positions,
        default="1fps",
        help="frames per video: '1fps' (one per second, clamped to --min/--max-positions) or a number (default 1fps)",
    )
    extract.add_argument("--min-positions", type=int, default=16, help="fewest frames with 1fps (default 16)")
    extract.add_argument(
        "--max-positions", type=int, default=64, help="most frames / audio chunks per video (default 64)"
    )
    add_model_options(extract)
    add_extractor_options(extract, "comma-separated extractors (default: the reference's feature extractors)")
    extract.add_argument(
        "--extractor-options",
        default=None,
        help='per-extractor options as JSON, e.g. \'{"ocr_sentiment": {"spell_check": false}}\'',
    )
    extract.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: alone, a local Ray on this machine; or a cluster address "
        "('auto', 'ray://host:10001'); put it after DATASET",
    )
    extract.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray workers, each with its own models (default: one per GPU, else one per 4 CPUs)",
    )
    extract.add_argument(
        "--cpus-per-worker",
        type=float,
        default=None,
        help="CPUs per Ray worker (default: the cluster's CPUs shared out)",
    )
    extract.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        help="GPUs per Ray worker (default: the GPUs shared out, at most 1)",
    )
    extract.add_argument("--blacklist", type=Path, default=None, help="blacklist file (e.g. ekman_blacklist.txt)")
    extract.add_argument(
        "--blacklist-splits",
        default="train,test",
        help="splits the blacklist applies to (default train,test; train covers val)",
    )
    add_quiet(extract)
    extract.set_defaults(func=_cmd_extract)


def add_blacklist(subparsers) -> None:
    blacklist = subparsers.add_parser("blacklist", help="blacklist helpers")
    blacklist_sub = blacklist.add_subparsers(dest="blacklist_command", required=True)
    suggest = blacklist_sub.add_parser("suggest", help="list videos whose file name holds a problem keyword")
    _add_dataset_options(suggest)
    suggest.add_argument(
        "--all-labels",
        action="store_true",
        help="check every class's keywords on every video (default: its own class's)",
    )
    suggest.add_argument(
        "--append",
        type=Path,
        default=None,
        metavar="FILE",
        help="also add the suggested names to this blacklist file, under a dated header",
    )
    suggest.set_defaults(func=_cmd_blacklist_suggest)


def add_import_features(subparsers) -> None:
    imp = subparsers.add_parser(
        "import-features", help="convert the reference's published features (a pickle) to feature files"
    )
    imp.add_argument(
        "pickle",
        type=Path,
        nargs="+",
        help="the published features file(s); pickles load through an allow-list (numpy arrays and "
        "builtins only), torch files through torch's weights_only loader",
    )
    imp.add_argument("--out", type=Path, required=True, help="output folder, e.g. features/reference")
    add_quiet(imp)
    imp.set_defaults(func=_cmd_import_features)


__all__ = ["add_blacklist", "add_extract", "add_import_features"]
