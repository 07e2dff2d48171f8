"""`vemoclap app`: the page served by Voila on 127.0.0.1. Imports no widgets (the CLI loads this)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import OptionError, one_line, user_errors
from .guard import PageGuard, open_when_ready
from .notebook import NOTEBOOK_NAME, write_notebook
from .settings import SETTINGS_ENV

log = logging.getLogger(__name__)


# ipywidgets 8 sends a FileUpload's whole file in one websocket message, and tornado drops messages over
# 10 MB by default (the page then never hears of the upload): room for the app's 200 MB upload limit.
WEBSOCKET_MAX_MESSAGE_BYTES = 256 * 2**20


def voila_command(notebook: Path, port: int, guard: PageGuard) -> list[str]:
    """The Voila command line that serves ``notebook`` on 127.0.0.1 only, behind ``guard`` (its
    token, Host check and kernel cap). Voila's own browser opening knows no token: it is off."""
    tornado = {"websocket_max_message_size": WEBSOCKET_MAX_MESSAGE_BYTES, **guard.tornado_settings()}
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--VoilaConfiguration.show_tracebacks=False",
        "--theme=light",
        f"--Voila.tornado_settings={tornado!r}",
        *guard.voila_arguments(),
        "--no-browser",
    ]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8866, help="local port (default 8866)")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="directory searched first for every model (also $VEMOCLAP_MODELS_DIR)",
    )
    parser.add_argument(
        "--classifier", type=Path, default=None, help="emotion classifier checkpoint (also $VEMOCLAP_CLASSIFIER)"
    )
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda ...")
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where uploads and exports go (default ./vemoclap_outputs)"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def page_environment(args: argparse.Namespace, environ=None) -> dict[str, str]:
    """The environment the page's kernel reads its settings from (paths made absolute and checked)."""
    env = dict(os.environ if environ is None else environ)
    for key, value in (("models_dir", args.models_dir), ("classifier", args.classifier)):
        if value:
            env[SETTINGS_ENV[key]] = str(Path(value).expanduser().resolve())
    if args.device:
        env[SETTINGS_ENV["device"]] = args.device
    if args.output_dir or not env.get(SETTINGS_ENV["output_dir"]):
        output_dir = args.output_dir or Path.cwd() / "vemoclap_outputs"
        env[SETTINGS_ENV["output_dir"]] = str(output_dir.expanduser().resolve())
    for key in ("models_dir", "classifier"):  # a wrong path is one line now, not a broken page later
        value = env.get(SETTINGS_ENV[key])
        if value and not Path(value).exists():
            raise OptionError(f"{value}: no such file or folder (--{key.replace('_', '-')})")
    return env


def cmd_app(args: argparse.Namespace) -> int:
    try:
        import voila  # noqa: F401
    except ImportError:
        raise OptionError("the app page needs Voila: pip install 'vemoclap[app]'") from None
    env = page_environment(args)
    folder = Path(tempfile.mkdtemp(prefix="vemoclap-app-"))
    try:
        notebook = write_notebook(folder / NOTEBOOK_NAME, page=True)  # the page's own words
        guard = PageGuard.new()
        env.update(guard.environment())
        command = voila_command(notebook, args.port, guard)
        print(f"vemoclap app: {guard.url(args.port)} (open this address; Ctrl+C stops it)", flush=True)
        log.info("running %s", " ".join(command))
        if not args.no_browser:
            open_when_ready(guard.url(args.port), args.port)
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def add_commands(subparsers) -> None:
    """Add ``vemoclap app`` to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "app",
        help="the notebook app as a local web page (Voila, 127.0.0.1 only)",
        description="Serve the five-step app as a page on this machine (Voila on 127.0.0.1).",
    )
    _add_arguments(parser)
    parser.set_defaults(func=cmd_app)


def main(argv: list[str] | None = None) -> int:
    """``python -m vemoclap.app`` — the same as ``vemoclap app``."""
    parser = argparse.ArgumentParser(prog="vemoclap app", description="Serve the notebook app as a local page.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return cmd_app(args)
    except user_errors() as exc:
        print(f"vemoclap: {one_line(exc)}", file=sys.stderr)
        return 2
