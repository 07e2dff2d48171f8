"""`vemoclap app`: the page served by Voila on 127.0.0.1. Imports no widgets (the CLI loads this).

The app owns Voila and its kernels: Voila runs in its own process group, and SIGTERM or SIGINT to the app
stops Voila (which shuts its kernels down), then ends whatever of that process tree is left. If the app
itself dies, Linux sends Voila SIGTERM (prctl PR_SET_PDEATHSIG), and the kernels, which poll their
parent, follow it. A busy port is an error naming it: Voila must not move to another port silently.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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
        "--Voila.port_retries=0",  # a busy port is an error, never a silent move to the next one
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


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """OptionError naming ``port`` when something on this machine already listens there."""
    if not 0 < port < 65536:
        raise OptionError(f"--port {port}: a port is a number from 1 to 65535")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tornado binds: TIME_WAIT is free
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                reason = "is in use" if exc.errno == errno.EADDRINUSE else "is not allowed"
                raise OptionError(
                    f"port {port} on {host} {reason} (another vemoclap app?): stop that or choose another with --port"
                ) from None
            raise


def descendants(pid: int) -> list[int]:
    """The ids of every process below ``pid`` (its children, theirs, ...), read from /proc; [] elsewhere."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces or ')'
        parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _die_with_parent():
    """A preexec_fn for Linux: the child gets SIGTERM when the app dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the app died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class _Stop(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _end(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop Voila (SIGTERM: it shuts its kernels down), then kill what is left of its process tree."""
    tree = {pid: _started(pid) for pid in descendants(process.pid)}
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM) if hasattr(os, "killpg") else process.terminate()
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("Voila did not stop within %.0f s: killing it", grace)
    deadline = time.monotonic() + 5
    for pid, started in tree.items():  # kernels live in sessions of their own: each by its id
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid) and _started(pid) == started:  # the same process, not a new one given its id
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), to tell it from a later process with its id."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        if sys.platform.startswith("linux"):
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` (Voila) as a child the app owns; its exit code, or 128 + the signal that stopped the app."""

    def stop(signum, frame):
        raise _Stop(signum)

    import threading

    main_thread = threading.current_thread() is threading.main_thread()  # only there can handlers be set
    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
    process = None
    try:
        process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent())
        return process.wait()
    except _Stop as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130
    finally:
        for sig in handlers:  # a second Ctrl+C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        try:
            if process is not None:
                _end(process)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def cmd_app(args: argparse.Namespace) -> int:
    try:
        import voila  # noqa: F401
    except ImportError:
        raise OptionError("the app page needs Voila: pip install 'vemoclap[app]'") from None
    env = page_environment(args)
    check_port(args.port)
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
        return serve(command, env)
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
