"""Whether this machine can reach a download host: asked once per host, within seconds, and
remembered (a host that did not answer is asked again after a minute, for a long-lived app), so that
an offline machine is told so at once (naming what runs offline) instead of "download interrupted"
after retries."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
import urllib.parse

from ..errors import ModelUnavailable, one_line

CONNECT_TIMEOUT_S = 2.0  # name lookup, then the TCP connection: each at most this long
ASK_AGAIN_S = 60.0  # a host that did not answer is asked again after this long
OFFLINE_FIX = (
    "`vemoclap demo` runs offline on tiny random models; run `vemoclap download-models` where there is "
    "internet (or pass --models-dir DIR with the models)"
)

_known: dict[tuple[str, int], tuple[str | None, float]] = {}  # (host, port) → (None or why not, when asked)
_lock = threading.Lock()


class Offline(ModelUnavailable):
    """A file that must be downloaded, on a machine that cannot reach its host."""


def host_of(url: str) -> tuple[str, int] | None:
    """(host, port) of a network URL; None for a local path or ``file://``."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def host_name(url: str) -> str:
    """The host part of a URL as people read it (``huggingface.co``, ``127.0.0.1:9``)."""
    parsed = urllib.parse.urlparse(url)
    if not parsed.netloc:
        return url
    port = f":{parsed.port}" if parsed.port else ""
    return (parsed.hostname or "") + port  # never a user name or password from the URL


def _resolve(host: str, port: int, timeout: float):
    """getaddrinfo bounded by ``timeout`` (a machine with no DNS server can wait far longer)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise OSError(f"looking up {host} took over {timeout:.0f} s") from None
    finally:
        pool.shutdown(wait=False)


def _probe(host: str, port: int, timeout: float) -> str | None:
    try:
        addresses = _resolve(host, port, timeout)
    except socket.gaierror:
        return f"the name {host} does not resolve"
    except OSError as exc:
        return one_line(exc)
    why = "no address"
    for family, kind, proto, _, address in addresses[:3]:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return None
        except ConnectionRefusedError:
            why = "connection refused"
        except TimeoutError:
            why = f"no answer in {timeout:.0f} s"
        except OSError as exc:
            why = exc.strerror or one_line(exc)
    return why


def unreachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the host of ``url`` cannot be reached (asked once per host per process), else None.
    Local paths and ``file://`` are always reachable."""
    host = host_of(url)
    if host is None:
        return None
    with _lock:
        why, asked = _known.get(host, ("never asked", -ASK_AGAIN_S))
        if why is not None and time.monotonic() - asked >= ASK_AGAIN_S:
            why = _probe(*host, timeout)
            _known[host] = (why, time.monotonic())
        return why


def forget() -> None:
    """Ask every host again (a connection that came back)."""
    with _lock:
        _known.clear()


def offline_error(what: str, url: str, why: str, fix: str = OFFLINE_FIX) -> Offline:
    """The one line for a file that cannot be downloaded because its host cannot be reached."""
    return Offline(f"offline: {what} must be downloaded from {host_name(url)}, which cannot be reached ({why}); {fix}")


def check(what: str, url: str, fix: str = OFFLINE_FIX) -> None:
    """Raise :class:`Offline` when the host of ``url`` cannot be reached."""
    why = unreachable(url)
    if why:
        raise offline_error(what, url, why, fix)
