"""Which IP addresses a download may connect to: explicit tables, the same on every Python.

What :mod:`ipaddress` calls private or global changed between Python 3.11 and 3.13, and its
``is_global`` is True for IPv6 forms that carry a private IPv4 address inside (NAT64
``64:ff9b::10.0.0.1``, 6to4 ``2002:a00:1::``, ``::ffff:0:10.0.0.1``). So the rules are written out
here: an IPv4 address is public unless it lies in :data:`BLOCKED_V4`; an IPv6 address that embeds
an IPv4 address (:data:`EMBEDDING_V6`) is judged by that IPv4 address; any other IPv6 address is
public only inside the global unicast range ``2000::/3`` and outside :data:`BLOCKED_V6`.

Ranges: the IANA IPv4 and IPv6 special-purpose address registries (RFC 6890), RFC 6052 / 8215
(NAT64), RFC 3056 (6to4), RFC 4380 (Teredo), RFC 2765 / 4291 (SIIT, mapped and compatible forms).
This module uses the standard library only, so its rules can be tested on any Python.
"""

from __future__ import annotations

import ipaddress

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IPv4 ranges no download may reach (each with what it is, for the reason given).
BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (_V4(net), what)
    for net, what in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
    )
)

# IPv6 ranges whose last 32 bits (or, for 6to4 and Teredo, other bits) are an IPv4 address.
EMBEDDING_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (_V6(net), what)
    for net, what in (
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::ffff:0:0:0/96", "SIIT IPv4-translated"),
        ("64:ff9b::/96", "NAT64"),
        ("2002::/16", "6to4"),
        ("2001::/32", "Teredo"),
        ("::/96", "IPv4-compatible"),  # after the others: '::' and '::1' are judged as 0.0.0.0 and 0.0.0.1
    )
)

GLOBAL_UNICAST_V6 = _V6("2000::/3")

# Inside 2000::/3 but not to be reached.
BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (_V6(net), what)
    for net, what in (
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
    )
)


def embedded_v4(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of its form (empty: none)."""
    value = int(ip)
    for net, what in EMBEDDING_V6:
        if ip not in net:
            continue
        if what == "6to4":
            return [(ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF), what)]
        if what == "Teredo":  # the server's address, and the client's (stored inverted)
            server = ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF)
            client = ipaddress.IPv4Address(~value & 0xFFFFFFFF)
            return [(server, "Teredo server"), (client, "Teredo client")]
        return [(ipaddress.IPv4Address(value & 0xFFFFFFFF), what)]
    return []


def _v4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for net, what in BLOCKED_V4:
        if ip in net:
            return f"{what} ({net})"
    return None


def refusal(address: str) -> str | None:
    """Why ``address`` may not be connected to (a short phrase), or None when it is public."""
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_reason(ip)
    inner = embedded_v4(ip)
    if inner:
        for v4, form in inner:
            why = _v4_reason(v4)
            if why:
                return f"{form} form of {v4}, {why}"
        return None
    if ip not in GLOBAL_UNICAST_V6:
        if ip in _V6("64:ff9b:1::/48"):
            return "local-use NAT64 (64:ff9b:1::/48)"
        return "not a global unicast IPv6 address (outside 2000::/3: loopback, link-local, site-local, ULA, multicast…)"
    for net, what in BLOCKED_V6:
        if ip in net:
            return f"{what} ({net})"
    return None


def is_public(address: str) -> bool:
    """True for addresses a download may connect to (see :func:`refusal`)."""
    return refusal(address) is None
