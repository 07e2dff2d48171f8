"""Subcommands about the model files: ``download-models`` (fetch and verify) and ``models`` (list)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_models_dir, add_quiet


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _cmd_download_models(args: argparse.Namespace) -> int:
    from ..models import DEFAULT_WHISPER_SIZES, default_downloads, download_models

    whisper = tuple(args.whisper.split(",")) if args.whisper else None
    if args.only or args.all:
        only = args.only.split(",") if args.only else list(default_downloads())
    else:  # what `vemoclap analyze` needs on this device, and no more
        from ..needs import default_cost

        cost = default_cost(args.dir)
        _say(cost.line())
        only = list(dict.fromkeys(key for key, _ in cost.wanted))
        whisper = whisper or tuple(name for _, name in cost.wanted if name) or None
    written = download_models(
        args.dir,
        only=only,
        whisper_sizes=whisper or DEFAULT_WHISPER_SIZES,
        progress=not args.quiet,
        announce=_say,
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
    from ..needs import default_cost

    cost = default_cost(args.models_dir)
    whisper = args.whisper or next((name for _, name in cost.wanted if name), "small")
    needed = {key for key, _ in cost.wanted}
    rows = table(args.models_dir, whisper_size=whisper)
    users = {row["key"]: ", ".join(row["used_by"]) or "-" for row in rows}
    width = max(len("used by"), *map(len, users.values()))
    print(f"models dir: {models_root(args.models_dir)}")
    print(f"{'key':<16} {'size':>9}  {'licence':<13} {'used by':<{width}}  {'default':<7}  {'state':<14}  source")
    for row in rows:
        state = "random weights" if row["origin"] == "random" else "local" if row["local"] else "not local"
        default = "yes" if row["key"] in needed else ""
        print(
            f"{row['key']:<16} {row['size_mib']:>5,} MiB  {row['license']:<13} {users[row['key']]:<{width}}  "
            f"{default:<7}  {state:<14}  {row['source']}"
        )
    print(f"default: {cost.line()} (`vemoclap download-models` fetches these)")
    print(f"Whisper rows: size {whisper} (--whisper SIZE shows another)")
    print(
        "licence 'unknown': read from the hub's metadata when the model is downloaded; "
        "CC-BY-NC-4.0 is non-commercial, GPL-3.0 and AGPL-3.0 are copyleft"
    )
    return 0


def add_download_models(subparsers) -> None:
    download = subparsers.add_parser(
        "download-models",
        help="fetch, verified, the models `vemoclap analyze` needs on this device (needs internet; says the size first)",
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
    download.add_argument(
        "--all",
        action="store_true",
        help="every model any default extractor may load (not only what the default run on this device needs)",
    )
    download.add_argument(
        "--whisper",
        default=None,
        help="Whisper sizes to fetch, comma-separated (default: the one the default run uses on this device; "
        "with --all: small,medium)",
    )
    add_quiet(download, "no progress bars")
    download.set_defaults(func=_cmd_download_models)


def add_models(subparsers) -> None:
    models = subparsers.add_parser("models", help="list every model vemoclap uses: source, size, licence, users, state")
    add_models_dir(models, "the models dir to look in (default: $VEMOCLAP_MODELS_DIR, else ~/.cache/vemoclap/models)")
    models.add_argument(
        "--whisper", default=None, help="the Whisper size whose file is shown (default: the one the default run uses)"
    )
    models.set_defaults(func=_cmd_models)


__all__ = ["add_download_models", "add_models"]
