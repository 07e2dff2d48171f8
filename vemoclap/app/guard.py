"""Who may reach the local app page, and how many kernels it may start.

`vemoclap app` serves the page on 127.0.0.1; any web page the user visits can still send requests
there (``<img src="http://127.0.0.1:8866/">``) and a DNS-rebinding name can resolve to it. So, as
Jupyter does (jupyter_server's ``IdentityProvider.token``), each launch makes a secret token that
only the printed URL holds: without it a request gets the login page, never a kernel. The ``Host``
header must name this machine (jupyter_server's ``allow_remote_access``/``local_hostnames`` check,
which Voila turns off by default), and kernels are capped and idle ones culled
(:mod:`vemoclap.app.kernels`). Imports nothing heavy: the CLI loads this module.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import webbrowser
from dataclasses import dataclass

TOKEN_ENV = "JUPYTER_TOKEN"  # read by jupyter_server's IdentityProvider; an environment is private to the user
LOCAL_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class PageGuard:
    """The page's access settings: its token, the Host names it answers, its kernel limits."""

    token: str
    max_kernels: int = 3  # pages open at once (each page is one kernel of ~0.5 GB or more)
    cull_idle_s: int = 1800  # a kernel no page has talked to for this long is shut down
    cull_interval_s: int = 60

    @classmethod
    def new(cls, **options) -> "PageGuard":
        return cls(token=secrets.token_urlsafe(32), **options)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/?token={self.token}"

    def voila_arguments(self) -> list[str]:
        """Voila's command-line settings that enforce this guard (the token itself goes through the
        environment, :meth:`environment`, so that it is not on the process list)."""
        return [
            "--Voila.auto_token=True",  # the identity provider takes $JUPYTER_TOKEN
            "--VoilaConfiguration.multi_kernel_manager_class=vemoclap.app.kernels.CappedKernelManager",
            f"--CappedKernelManager.max_kernels={self.max_kernels}",
            f"--MappingKernelManager.cull_idle_timeout={self.cull_idle_s}",
            f"--MappingKernelManager.cull_interval={self.cull_interval_s}",
            "--MappingKernelManager.cull_connected=False",
        ]

    def tornado_settings(self) -> dict:
        """Settings laid over Voila's tornado application: Host must name this machine."""
        return {"allow_remote_access": False, "local_hostnames": list(LOCAL_HOSTNAMES)}

    def environment(self) -> dict[str, str]:
        return {TOKEN_ENV: self.token}


def open_when_ready(url: str, port: int, timeout_s: float = 60.0) -> threading.Thread:
    """Open ``url`` (with its token) in a browser once something listens on ``port``."""

    def wait_and_open() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            return
        try:
            webbrowser.open(url)
        except webbrowser.Error:
            pass

    thread = threading.Thread(target=wait_and_open, name="vemoclap-open-browser", daemon=True)
    thread.start()
    return thread


__all__ = ["LOCAL_HOSTNAMES", "PageGuard", "TOKEN_ENV", "open_when_ready"]
