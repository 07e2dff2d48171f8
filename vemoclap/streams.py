"""Frames from a live stream link (http(s), rtsp), every address it leads to checked first.

http(s) streams are read in Python through :mod:`vemoclap.netguard` and handed to FFmpeg as bytes;
rtsp streams go through :class:`RtspRelay`, a loopback relay that holds the one checked connection
and ends the session at any redirect. The frames feed :func:`vemoclap.live.analyze_stream`.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np

from .live import file_frames

log = logging.getLogger(__name__)


def stream_frames(url: str, *, allow_private: bool = False, max_side: int | None = 640) -> Iterator[np.ndarray]:
    """Check ``url`` now (a one-line SourceError before any model loads) and return its frames;
    see :func:`_stream_frames`."""
    from .sources import SourceError, check_url, parse_link

    name, parsed = parse_link(url)
    scheme = parsed.scheme.lower()
    if not allow_private:
        if not parsed.hostname:
            raise SourceError(f"{name}: the link has no host name")
        if scheme in ("http", "https"):
            check_url(url)  # the link as typed; every connection is checked again while reading
        elif scheme == "rtsp":
            from . import netguard
            from .errors import UserError

            try:  # the address is resolved and checked again when the relay connects
                netguard.resolve_public(parsed.hostname, parsed.port or 554, what=name)
            except UserError as exc:
                raise SourceError(str(exc)) from None
        elif scheme == "rtsps":
            raise SourceError(
                f"{name}: rtsps streams are not opened (their redirects cannot be seen inside TLS); "
                f"use rtsp:// or http(s), or --allow-private if you trust every address"
            )
        else:
            raise SourceError(f"{name}: only http(s) and rtsp streams are opened; others need --allow-private")
    return _stream_frames(url, allow_private=allow_private, max_side=max_side)


def _stream_frames(url: str, *, allow_private: bool = False, max_side: int | None = 640) -> Iterator[np.ndarray]:
    """RGB frames from a live stream, with its addresses checked like every other network read.

    http(s): read in Python through :mod:`vemoclap.netguard` (each redirect and the address really
    connected to are checked) and handed to FFmpeg as a byte stream, so FFmpeg itself opens no
    connection; HLS playlists are refused, since FFmpeg would fetch their segments unchecked.
    rtsp: the host is resolved once and checked; FFmpeg talks RTSP over TCP to a loopback relay that
    holds the one connection to that address and ends the session at any redirect (FFmpeg would
    follow it unchecked). rtsps is refused: its redirects cannot be seen inside TLS.
    """
    from . import netguard
    from .errors import UserError
    from .sources import SourceError, parse_link

    name, parsed = parse_link(url)
    port = parsed.port
    scheme = parsed.scheme.lower()
    if allow_private:  # the person trusts every address this stream may lead to
        yield from file_frames(url, max_side)
        return
    if not parsed.hostname:
        raise SourceError(f"{name}: the link has no host name")
    if scheme in ("http", "https"):
        yield from _http_stream_frames(url, name, max_side)
        return
    if scheme == "rtsp":
        port = port or 554
        try:
            address = netguard.resolve_public(parsed.hostname, port, what=name)
        except UserError as exc:
            raise SourceError(str(exc)) from None
        yield from _rtsp_frames(parsed, address, port, name, max_side)
        return
    if scheme == "rtsps":
        raise SourceError(
            f"{name}: rtsps streams are not opened (their redirects cannot be checked); "
            f"use rtsp:// or http(s), or --allow-private if you trust every address"
        )
    raise SourceError(f"{name}: only http(s) and rtsp streams are opened; others need --allow-private")


def _rtsp_frames(parsed, address: str, port: int, name: str, max_side: int | None) -> Iterator[np.ndarray]:
    """FFmpeg speaks RTSP over TCP to a loopback relay that holds the one checked connection.

    FFmpeg follows RTSP 3xx replies on its own and has no option to stop it, so the relay reads
    every message the server sends and ends the session at a redirect (or a REDIRECT request)
    before FFmpeg sees it. Over TCP, RTSP, RTP and RTCP all share that one connection.
    """
    from urllib.parse import urlunparse

    from .media import MediaError
    from .sources import SourceError

    relay = RtspRelay(address, port)
    userinfo = parsed.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{relay.port}"
    options = {"rtsp_transport": "tcp", "timeout": "30000000"}  # µs; TCP only: no UDP ports opened
    try:
        yield from file_frames(urlunparse(parsed._replace(netloc=netloc)), max_side, options=options)
    except MediaError as exc:
        if relay.refused:
            raise SourceError(f"{name}: {relay.refused}; redirects of live streams are not followed") from None
        reason = str(exc).split(": ", 1)[-1]
        raise SourceError(f"{name}: {reason}") from None
    finally:
        relay.close()
    if relay.refused:
        raise SourceError(f"{name}: {relay.refused}; redirects of live streams are not followed")


class RtspRelay:
    """Loopback listener relaying RTSP-over-TCP to one checked address, refusing redirects."""

    MAX_HEADER = 64 * 1024

    def __init__(self, address: str, port: int, *, timeout: float = 30.0):
        import socket
        import threading

        self.address, self.target_port, self.timeout = address, port, timeout
        self.refused: str | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(timeout)
        self.port = self._listener.getsockname()[1]
        self._sockets: list = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="rtsp-relay").start()

    def close(self) -> None:
        self._closed = True
        for sock in [self._listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        import socket
        import threading

        from . import netguard

        while not self._closed and not self.refused:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                with netguard.guarded():  # the address was checked; the guard checks it again at connect
                    family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
                    upstream = socket.socket(family, socket.SOCK_STREAM)
                    upstream.settimeout(self.timeout)
                    upstream.connect((self.address, self.target_port))
            except OSError as exc:
                log.info("rtsp relay: cannot connect to %s:%s (%s)", self.address, self.target_port, exc)
                client.close()
                continue
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    def _pump(self, source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._shut(source, sink)

    def _replies(self, upstream, client) -> None:
        """Forward the server's messages one at a time: interleaved ``$`` data frames as they are,
        RTSP replies and requests only after their headers were read and found not to redirect."""
        buffer = b""
        try:
            while data := upstream.recv(65536):
                buffer += data
                while buffer:
                    if buffer[:1] == b"$":
                        if len(buffer) < 4 or len(buffer) < 4 + int.from_bytes(buffer[2:4], "big"):
                            break
                        size = 4 + int.from_bytes(buffer[2:4], "big")
                    else:
                        end = buffer.find(b"\r\n\r\n")
                        if end < 0:
                            if len(buffer) > self.MAX_HEADER:
                                self.refused = "the server sent a malformed RTSP message"
                            break
                        head = buffer[:end].decode("latin-1", "replace")
                        refusal = _rtsp_redirect(head)
                        if refusal:
                            self.refused = refusal
                            break
                        size = end + 4 + _content_length(head)
                        if len(buffer) < size:
                            break
                    client.sendall(buffer[:size])
                    buffer = buffer[size:]
                if self.refused:
                    break
        except OSError:
            pass
        self._shut(upstream, client)

    @staticmethod
    def _shut(*sockets) -> None:
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass


def _rtsp_redirect(head: str) -> str | None:
    lines = head.split("\r\n")
    first = lines[0].split()
    location = next(
        (line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("location:")), "another address"
    )
    if len(first) >= 2 and first[0].upper().startswith("RTSP/") and first[1][:1] == "3":
        from .sources import redact

        return f"the stream redirects (RTSP {first[1]}) to {redact(location)}"
    if first and first[0].upper() == "REDIRECT":
        return "the server asked to move the stream to another address (RTSP REDIRECT)"
    return None


def _content_length(head: str) -> int:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def _http_stream_frames(url: str, name: str, max_side: int | None) -> Iterator[np.ndarray]:
    import io
    import urllib.error
    import urllib.request

    from . import netguard
    from .sources import SourceError, redact_text

    # No proxy (as for downloads): through one, the guard would check the proxy's address only.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with netguard.guarded() as guard:
        try:
            response = opener.open(urllib.request.Request(url, headers={"User-Agent": "vemoclap"}), timeout=30)
        except (urllib.error.URLError, OSError) as exc:
            if guard.refused:
                raise SourceError(
                    f"{name}: the stream leads to a private or local address ({guard.refused[0]}); "
                    f"such links are refused unless --allow-private"
                ) from None
            raise SourceError(f"{name}: the stream could not be opened ({redact_text(str(exc))})") from None
        with response:
            reader = io.BufferedReader(response, buffer_size=1 << 16)
            kind = (response.headers.get("Content-Type") or "").lower()
            if "mpegurl" in kind or reader.peek(7)[:7] == b"#EXTM3U":
                raise SourceError(
                    f"{name}: an HLS playlist; its segments would be fetched by FFmpeg unchecked, "
                    f"so it is not opened (use --allow-private only if you trust every address)"
                )
            yield from file_frames(reader, max_side, shown_name=name)
