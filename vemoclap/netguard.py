"""The one guard every network read of a video goes through.

While :func:`guarded` is active in a thread, every TCP/UDP ``connect`` made from that thread (by
yt-dlp, requests, urllib3, http.client) is checked against the address actually being connected
to, after DNS: so redirects, URLs a page or extractor yields and DNS rebinding cannot reach a
private, loopback, link-local or metadata address. Bytes read on those sockets count against a
budget, so a body without a Content-Length stops at the limit too. The check lives in
``socket.socket.connect`` (installed once, inert outside a guard) because yt-dlp's request
handlers each resolve and connect on their own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Iterator

from .errors import UserError


class AddressRefused(ConnectionRefusedError):
    """A connection to a private or local address was refused by the guard."""


class BudgetExceeded(ConnectionAbortedError):
    """More bytes were read than the guard's budget allows."""


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses (IPv4-mapped IPv6 judged as its IPv4)."""
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass
class Guard:
    allow_private: bool = False
    max_bytes: int | None = None
    allowed_hosts: frozenset[str] = frozenset()  # addresses allowed even when private (fixed mirror lists)
    read: int = 0
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
            raise BudgetExceeded(f"more than {self.max_bytes} bytes downloaded")

    @property
    def over_budget(self) -> bool:
        return self.max_bytes is not None and self.read > self.max_bytes


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
        _installed = True


@contextlib.contextmanager
def guarded(
    *, allow_private: bool = False, max_bytes: int | None = None, allowed_hosts: frozenset[str] | set[str] = frozenset()
) -> Iterator[Guard]:
    """Check every connection this thread makes, and count the bytes it reads, until the block ends."""
    _install()
    previous = current()
    guard = Guard(allow_private=allow_private, max_bytes=max_bytes, allowed_hosts=frozenset(allowed_hosts))
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


@contextlib.contextmanager
def mirror_guard(hosts: set[str] | frozenset[str], *, max_bytes: int | None = None) -> Iterator[Guard]:
    """For model and sample downloads: connections only to the addresses of a fixed list of hosts.

    The models module calls this around its downloads with its mirror's host names; each name is
    resolved once here and only those addresses may be connected to (private ones too, so a
    mirror on a local network works), nothing else.
    """
    addresses: set[str] = set()
    for host in hosts:
        with contextlib.suppress(socket.gaierror, UnicodeError):
            addresses.update(info[4][0] for info in socket.getaddrinfo(host, None))
    _install()
    previous = current()
    guard = _MirrorGuard(max_bytes=max_bytes, allowed_hosts=frozenset(addresses))
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = previous


class _MirrorGuard(Guard):
    def check(self, address: str, port) -> None:
        if address not in self.allowed_hosts:
            self.refused.append(f"{address}:{port}")
            raise AddressRefused(f"connection to {address}:{port} refused: not one of the model mirror's hosts")
        self.connected.append(f"{address}:{port}")
