"""The one guard every network read of a video goes through.

While :func:`guarded` is active in a thread, every TCP/UDP ``connect`` made from that thread (by
yt-dlp, requests, urllib3, http.client) is checked against the address actually being connected
to, after DNS: so redirects, URLs a page or extractor yields and DNS rebinding cannot reach a
private, loopback, link-local or metadata address. Bytes read on those sockets count against a
budget, so a body without a Content-Length stops at the limit too, and so do the bytes a gzip or
deflate answer inflates to (``zlib`` is counted the same way, inert outside a guard); a
:class:`Pace` adds a total deadline and a minimum rate. The check lives in
``socket.socket.connect`` (installed once, inert outside a guard) because yt-dlp's request
handlers each resolve and connect on their own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from . import addresses
from .errors import UserError


class AddressRefused(ConnectionRefusedError):
    """A connection to a private or local address was refused by the guard."""


class BudgetExceeded(ConnectionAbortedError):
    """More bytes were read than the guard's budget allows."""


class TooSlow(TimeoutError):
    """The guarded work ran past its total deadline, or its server sends below the minimum rate."""


@dataclass(frozen=True)
class Pace:
    """Time bounds of a guarded fetch: a total deadline, and a minimum average rate once
    ``grace_s`` has passed (a server sending a byte every few seconds, in headers or body, is cut off)."""

    deadline_s: float | None = 30 * 60.0
    min_rate: float = 8 * 1024.0  # bytes per second, averaged since the start
    grace_s: float = 30.0


def is_public(address: str) -> bool:
    """True for addresses a download may reach: explicit tables, IPv6 forms of IPv4 judged by the
    IPv4 address inside (see :mod:`vemoclap.addresses`)."""
    return addresses.is_public(address)


@dataclass
class Guard:
    allow_private: bool = False
    max_bytes: int | None = None
    allowed_hosts: frozenset[str] = frozenset()  # addresses allowed even when private (fixed mirror lists)
    pace: Pace | None = None
    read: int = 0
    decoded: int = 0
    started: float = field(default_factory=time.monotonic)
    stopped: str | None = None  # why the guard cut the reads off (over budget, too slow), once it did
    refused: list[str] = field(default_factory=list)
    connected: list[str] = field(default_factory=list)

    def check(self, address: str, port) -> None:
        where = f"{address}:{port}" if ":" not in address else f"[{address}]:{port}"
        if not self.allow_private and not is_public(address) and address not in self.allowed_hosts:
            self.refused.append(where)
            raise AddressRefused(f"connection to the private or local address {where} refused")
        self.connected.append(where)

    def count(self, n: int) -> None:
        self.read += max(0, n)
        if self.max_bytes is not None and self.read > self.max_bytes:
            self.stopped = f"more than {self.max_bytes:,} bytes downloaded; stopped there"
            raise BudgetExceeded(self.stopped)
        self.check_pace()

    def check_pace(self) -> None:
        """Raise :class:`TooSlow` past the deadline, or below the minimum rate after the grace time."""
        if self.pace is None:
            return
        elapsed = time.monotonic() - self.started
        if self.pace.deadline_s is not None and elapsed > self.pace.deadline_s:
            self.stopped = f"the download took longer than its {self.pace.deadline_s:.0f} s deadline; stopped"
            raise TooSlow(self.stopped)
        if elapsed > self.pace.grace_s and self.read < self.pace.min_rate * elapsed:
            self.stopped = (
                f"the server sent {self.read:,} bytes in {elapsed:.0f} s, below the minimum rate of "
                f"{self.pace.min_rate / 1024:.0f} KB/s; stopped"
            )
            raise TooSlow(self.stopped)

    def count_decoded(self, n: int) -> None:
        """Bytes a gzip/deflate body inflated to: the same budget as the bytes on the socket."""
        self.decoded += max(0, n)
        if self.max_bytes is not None and self.decoded > self.max_bytes:
            self.stopped = f"the compressed answer inflates to more than {self.max_bytes:,} bytes; stopped there"
            raise BudgetExceeded(self.stopped)

    @property
    def over_budget(self) -> bool:
        return self.max_bytes is not None and max(self.read, self.decoded) > self.max_bytes


_local = threading.local()
_install_lock = threading.Lock()
_installed = False


def current() -> Guard | None:
    return getattr(_local, "guard", None)


def _check_address(sock, address) -> None:
    guard = current()
    if guard is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host, port = address[0], address[1]
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:  # a name given to connect() directly: resolve it here and check every answer
        infos = socket.getaddrinfo(host, port, sock.family, sock.type)
        for info in infos:
            guard.check(info[4][0], port)
        return
    guard.check(str(host), port)


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        plain_connect, plain_connect_ex = socket.socket.connect, socket.socket.connect_ex
        plain_recv_into, plain_recv = socket.socket.recv_into, socket.socket.recv
        ssl_recv_into, ssl_recv, ssl_read = ssl.SSLSocket.recv_into, ssl.SSLSocket.recv, ssl.SSLSocket.read

        def connect(self, address):
            _check_address(self, address)
            return plain_connect(self, address)

        def connect_ex(self, address):
            _check_address(self, address)
            return plain_connect_ex(self, address)

        def counted(method):
            def wrapper(self, *args, **kwargs):
                result = method(self, *args, **kwargs)
                guard = current()
                if guard is not None and self.family in (socket.AF_INET, socket.AF_INET6):
                    guard.count(result if isinstance(result, int) else len(result))
                return result

            return wrapper

        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
        socket.socket.recv_into, socket.socket.recv = counted(plain_recv_into), counted(plain_recv)
        # SSLSocket.recv/recv_into call self.read(); count once, at read().
        ssl.SSLSocket.read = counted(ssl_read)
        del ssl_recv_into, ssl_recv
        _install_inflate_counting()
        _installed = True


# ---- decoded bytes ---------------------------------------------------------------------------------
# A gzip/deflate body is inflated by the HTTP client (urllib3 with zlib.decompressobj, yt-dlp's urllib
# handler with zlib.decompress): 3 MB on the socket can be 2 GB decoded. Inside a guard both count
# their output, in bounded steps, against the same budget as the socket bytes.

_INFLATE_STEP = 1 << 20


class _CountedInflater:
    """A ``zlib.decompressobj`` whose output counts against the thread's guard, made in bounded steps."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):  # eof, unused_data, unconsumed_tail, copy
        return getattr(self._inner, name)

    def decompress(self, data, max_length=0):
        guard = current()
        if guard is None:
            return self._inner.decompress(data, max_length)
        if max_length:
            out = self._inner.decompress(data, max_length)
            guard.count_decoded(len(out))
            return out
        parts, pending = [], data
        while True:
            out = self._inner.decompress(pending, _INFLATE_STEP)
            guard.count_decoded(len(out))
            parts.append(out)
            pending = self._inner.unconsumed_tail
            if not pending or self._inner.eof:
                return b"".join(parts)

    def flush(self, *args):
        out = self._inner.flush(*args)
        guard = current()
        if guard is not None:
            guard.count_decoded(len(out))
        return out


def _install_inflate_counting() -> None:
    plain_decompressobj, plain_decompress = zlib.decompressobj, zlib.decompress

    def decompressobj(*args, **kwargs):
        inner = plain_decompressobj(*args, **kwargs)
        return _CountedInflater(inner) if current() is not None else inner

    def decompress(data, /, wbits=zlib.MAX_WBITS, bufsize=zlib.DEF_BUF_SIZE):
        if current() is None:
            return plain_decompress(data, wbits, bufsize)
        inflater = _CountedInflater(plain_decompressobj(wbits))
        out = inflater.decompress(data)
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
        return out

    zlib.decompressobj, zlib.decompress = decompressobj, decompress


@contextlib.contextmanager
def guarded(
    *,
    allow_private: bool = False,
    max_bytes: int | None = None,
    allowed_hosts: frozenset[str] | set[str] = frozenset(),
    pace: Pace | None = None,
) -> Iterator[Guard]:
    """Check every connection this thread makes, and count the bytes it reads (and how fast, with
    ``pace``), until the block ends."""
    _install()
    previous = current()
    guard = Guard(allow_private=allow_private, max_bytes=max_bytes, allowed_hosts=frozenset(allowed_hosts), pace=pace)
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = previous


def resolve_public(host: str, port: int, *, allow_private: bool = False, what: str | None = None) -> str:
    """Resolve ``host`` once and return one address to connect to, refusing private ones (UserError)."""
    what = what or host
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"{what}: the host '{host}' could not be found; check the link") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        if not allow_private and not is_public(address):
            raise UserError(
                f"{what}: '{host}' is a private or local address ({address}); such links are "
                f"refused (pass allow_private / --allow-private if you trust it)"
            )
    return addresses[0]


MODEL_PACE = Pace(deadline_s=6 * 3600.0, min_rate=8 * 1024.0, grace_s=60.0)


def _endpoint(base: str) -> tuple[str, int] | None:
    parsed = urllib.parse.urlsplit(base if "://" in base else f"//{base}")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return None
    return (parsed.hostname, port) if parsed.hostname else None


@contextlib.contextmanager
def mirror_guard(
    bases: Iterable[str], *, max_bytes: int | None = None, pace: Pace | None = MODEL_PACE
) -> Iterator[Guard]:
    """For model and sample downloads: connections only to the configured mirrors (each base URL's
    host resolved once here, at its port; private ones too, so a mirror on a local network works)
    and to public addresses (a hub's CDN). A redirect to any other private, loopback, link-local or
    metadata address is refused before a byte is sent; reads count against ``max_bytes`` and ``pace``.
    """
    allowed: set[str] = set()
    for base in bases:
        where = _endpoint(base)
        if where is None:
            continue
        with contextlib.suppress(OSError, UnicodeError):
            allowed.update(f"{info[4][0]}|{where[1]}" for info in socket.getaddrinfo(where[0], where[1]))
    _install()
    previous = current()
    guard = _MirrorGuard(max_bytes=max_bytes, allowed_hosts=frozenset(allowed), pace=pace)
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = previous


class _MirrorGuard(Guard):
    def check(self, address: str, port) -> None:
        where = f"{address}:{port}" if ":" not in address else f"[{address}]:{port}"
        if f"{address}|{port}" not in self.allowed_hosts and not is_public(address):
            self.refused.append(where)
            raise AddressRefused(
                f"connection to the private or local address {where} refused: not one of the configured mirrors"
            )
        self.connected.append(where)
