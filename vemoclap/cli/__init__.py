"""The ``vemoclap`` command: one subcommand per verb, all listed in :data:`COMMANDS`.

Bad input (a :class:`vemoclap.errors.UserError`) ends with exit code 2 and a one-line reason on
stderr, never a traceback. Anything else is a bug: one short line on stderr naming the log file that
holds the full traceback, exit code 1 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .._util import cache_root
from ..app.launch import add_commands as add_app
from ..errors import one_line, user_errors
from ..quiet import mute_libraries
from .analysis import add_analyze, add_demo, add_live
from .classifier import add_ablate, add_evaluate, add_parity, add_train
from .dataset import add_blacklist, add_extract, add_import_features
from .model_files import add_download_models, add_models
from .prediction import add_predict
from .reproduce import add_reproduce

log = logging.getLogger("vemoclap")

EXIT_BAD_INPUT = 2
EXIT_BUG = 1
LOG_DIR_ENV = "VEMOCLAP_LOG_DIR"

# Every subcommand, in the order `vemoclap --help` lists them; each adds its own parser.
COMMANDS = (
    add_analyze,
    add_live,
    add_download_models,
    add_models,
    add_demo,
    add_app,
    add_extract,
    add_blacklist,
    add_import_features,
    add_predict,
    add_train,
    add_evaluate,
    add_parity,
    add_ablate,
    add_reproduce,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vemoclap", description="Tell the emotion of a video (Ekman-6).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show info logs and the libraries' own messages (muted by default)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not (args.debug or args.verbose):
        mute_libraries()
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
    """Write the traceback to a log file (``$VEMOCLAP_LOG_DIR``, else ``logs`` in vemoclap's cache) and
    return its path."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    folder = Path(os.environ.get(LOG_DIR_ENV) or cache_root() / "logs")
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


__all__ = ["COMMANDS", "build_parser", "main"]
