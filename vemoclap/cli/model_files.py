"""Subcommands about the model files: ``download-models`` (fetch and verify) and ``models`` (list)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_models_dir, add_quiet


def _cmd_download_models(args: argparse.Namespace) -> int:
    from ..models import download_models

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
    from ..models import models_root, table

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


def add_download_models(subparsers) -> None:
    download = subparsers.add_parser(
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
    add_quiet(download, "no progress bars")
    download.set_defaults(func=_cmd_download_models)


def add_models(subparsers) -> None:
    models = subparsers.add_parser("models", help="list every model vemoclap uses: source, size, licence, users, state")
    add_models_dir(models, "the models dir to look in (default: $VEMOCLAP_MODELS_DIR, else ~/.cache/vemoclap/models)")
    models.add_argument("--whisper", default="small", help="the Whisper size whose file is shown (default small)")
    models.set_defaults(func=_cmd_models)


__all__ = ["add_download_models", "add_models"]
