"""``vemoclap reproduce ekman6``: the paper's Ekman-6 table from the published features, and the heads verdict.

The work is :func:`vemoclap.training.reproduce.reproduce_ekman6`; this module only parses options.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .options import add_device, add_models_dir, add_quiet

log = logging.getLogger(__name__)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from ..training.reproduce import ReproduceOptions, reproduce_ekman6

    protocols = ("paper", "cleaned") if args.both else ("cleaned",) if args.cleaned else ("paper",)
    options = ReproduceOptions(
        out=args.out,
        runs=args.runs,
        protocols=protocols,
        epochs=args.epochs,
        device=args.device,
        models_dir=args.models_dir,
        features_dir=args.features,
        recipe=args.recipe,
        blacklist=args.blacklist,
        progress=not args.quiet,
    )
    report = reproduce_ekman6(options)
    print(report.text())
    print(f"table: {options.out / 'table.md'}; runs and reports under {options.out}")
    return 0


def add_reproduce(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce a published result in one command: fetch, import, train N seeds, evaluate, "
        "print the table beside the paper's",
    )
    parser.add_argument("dataset", choices=["ekman6"], help="the published result (ekman6: VEMOCLAP's paper)")
    parser.add_argument("--runs", type=int, default=3, help="seeds to train per protocol (default 3): mean ± std")
    parser.add_argument(
        "--out", type=Path, default=Path("reproduce/ekman6"), help="work folder (default reproduce/ekman6)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--cleaned", action="store_true", help="only the cleaned protocol (the blacklist on both splits)"
    )
    which.add_argument("--both", action="store_true", help="the paper's protocol and the cleaned one")
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        metavar="DIR",
        help="train on this folder of `vemoclap extract` features instead of the published ones",
    )
    parser.add_argument(
        "--recipe", default=None, help="the recipe the --features folder must have been made with (checked)"
    )
    parser.add_argument(
        "--blacklist", type=Path, default=None, help="blacklist for --cleaned (default: the record's own)"
    )
    parser.add_argument(
        "--epochs", type=int, default=200, help="most epochs per run (default 200; early stopping ends sooner)"
    )
    add_device(parser)
    add_models_dir(parser, "where the shipped reference classifier is, for the heads verdict")
    add_quiet(parser)
    parser.set_defaults(func=_cmd_reproduce)


__all__ = ["add_reproduce"]
