"""The ``vemoclap`` command: one subcommand per verb, all listed in :data:`COMMANDS`.

Bad input (a :class:`vemoclap.errors.UserError`) ends with exit code 2 and a one-line reason on
stderr, never a traceback. Anything else is a bug: one short line on stderr naming the log file that
holds the full traceback, exit code 1 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import pickle
import sys
import warnings
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
from .report import terminal_text
from .reproduce import add_reproduce

log = logging.getLogger("vemoclap")

EXIT_BAD_INPUT = 2
EXIT_BUG = 1
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the place is full or read-only: not a bug
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
    # torch warns on every pickle protocol it did not write; a refused file gets its own line below
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vemoclap: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if args.debug:
            raise
        for line in getattr(exc, "lines", None) or [one_line(exc)]:  # MissingModels: one line per model
            print(f"vemoclap: {terminal_text(line)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `vemoclap models | head`: the reader left, which is not an error
        # Python's documented recipe: point stdout at devnull so the flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command stopped by a closed pipe
    except pickle.UnpicklingError as exc:  # a weights-only load refused a model file: bad input, not a bug
        if args.debug:
            raise
        print(f"vemoclap: {terminal_text(_refused_pickle_line(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if args.debug:
            raise
        if exc.errno not in DISK_ERRNOS:
            return _report_bug(exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"vemoclap: {terminal_text(exc.strerror or str(exc))}{terminal_text(where)}; free some space (or "
            "choose another place) and run it again: what was written before stays as it was",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: keep its traceback where it can be read and reported
        if args.debug:
            raise
        return _report_bug(exc)


def _report_bug(exc: BaseException) -> int:
    """One short line naming the log file that holds the bug's traceback; exit code 1."""
    where = _write_traceback(exc)
    print(
        f"vemoclap: internal error ({type(exc).__name__}: {one_line(exc, limit=200)}); "
        f"this is a bug, not bad input: the traceback is in {where}",
        file=sys.stderr,
    )
    return EXIT_BUG


def _refused_pickle_line(exc: BaseException) -> str:
    """One line for a model file that a safe (weights-only) load refused, naming the file when the
    loader's frames hold it; torch's advice to load it unsafely is never repeated."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        for name in ("checkpoint_file", "checkpoint_path", "resolved_archive_file", "path", "f"):
            value = tb.tb_frame.f_locals.get(name)
            if isinstance(value, (str, os.PathLike)) and str(value).endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")):
                found = str(value)
        tb = tb.tb_next
    where = f"{found}: " if found else "a model file: "
    return (
        f"{where}refused to load: it holds code or objects that a safe (weights-only) load does not run; "
        "it was not loaded. Delete it and fetch the model again from a source you trust"
    )


def _write_traceback(exc: BaseException) -> str:
    """Write the traceback to a log file (``$VEMOCLAP_LOG_DIR``, else ``logs`` in vemoclap's cache) and
    return its path."""
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
