"""Run inside a private network namespace by tests/test_netguard.py (never on its own).

Starts, on addresses the test added to this namespace's loopback device:
- a "public" web server (an address Python judges globally routable) with a video, redirects to
  private addresses, a page embedding a private video and a body without Content-Length;
- canary servers on 127.0.0.1, 169.254.169.254 and 10.0.0.1 that log every request they get, and
  one on every IPv6 address of this namespace (``[::]``, IPv6 only) standing in for the IPv6 forms
  of 10.0.0.1 (NAT64, 6to4, SIIT, IPv4-compatible, Teredo) and site-local ``fec0::1``;
- a tiny DNS server on 127.0.0.1:53 (resolv.conf points at it) whose ``rebind.test`` answers the
  public address once and 127.0.0.1 after that, and whose ``nat64.test`` has only an AAAA answer,
  the NAT64 form of 10.0.0.1.
Then runs each case of the config (a command line, run in this namespace) and writes a JSON report
of exit codes, output, the canaries' and the public server's request logs and the DNS queries.
"""

from __future__ import annotations

import http.server
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

PORT = 8080
RTSP_PORT = 8554
LOOPBACK, METADATA, PRIVATE = "127.0.0.1", "169.254.169.254", "10.0.0.1"
NAT64 = "64:ff9b::a00:1"  # 64:ff9b::10.0.0.1
# IPv6 forms of 10.0.0.1 (and site-local) the test adds to this namespace's loopback
V6_FORMS = {
    "nat64": NAT64,
    "6to4": "2002:a00:1::1",
    "siit": "::ffff:0:a00:1",
    "compatible": "::a00:1",
    "teredo": "2001:0:a00:1::1",
    "site_local": "fec0::1",
}


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    public, video = config["public"], Path(config["video"]).read_bytes()
    logs: dict[str, list] = {"public": [], "loopback": [], "metadata": [], "private": [], "v6": []}
    sent = {"endless": 0}
    servers = [
        _serve(public, _public_handler(logs["public"], video, public, config["endless_bytes"], sent, config["stream"])),
        _serve(LOOPBACK, _canary_handler(logs["loopback"], video)),
        _serve(METADATA, _canary_handler(logs["metadata"], video)),
        _serve(PRIVATE, _canary_handler(logs["private"], video)),
        _serve("::", _canary_handler(logs["v6"], video), ipv6=True),
    ]
    rtsp = {"canary": []}
    threading.Thread(target=_rtsp_redirector, args=(public,), daemon=True).start()
    threading.Thread(target=_tcp_canary, args=(LOOPBACK, RTSP_PORT, rtsp["canary"]), daemon=True).start()
    dns = _DNS(public)
    report = {"cases": {}, "logs": logs, "sent": sent, "dns": dns.queries, "rtsp": rtsp}
    for name, case in config["cases"].items():
        start = time.monotonic()
        try:
            done = subprocess.run(
                case["argv"], capture_output=True, text=True, timeout=case.get("timeout", 120), env={**case["env"]}
            )
            report["cases"][name] = {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        except subprocess.TimeoutExpired as exc:
            report["cases"][name] = {"rc": "timeout", "stdout": str(exc.stdout), "stderr": str(exc.stderr)}
        report["cases"][name]["seconds"] = round(time.monotonic() - start, 1)
    for server in servers:
        server.shutdown()
    dns.stop()
    Path(config["report"]).write_text(json.dumps(report, indent=1))


class _V6OnlyServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # beside the IPv4 servers on PORT
        super().server_bind()


def _serve(address: str, handler, ipv6: bool = False) -> http.server.ThreadingHTTPServer:
    server = (_V6OnlyServer if ipv6 else http.server.ThreadingHTTPServer)((address, PORT), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def send_video(self, video: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(video)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(video)


def _canary_handler(log: list, video: bytes):
    class Canary(_Quiet):
        def do_GET(self):
            log.append(f"{self.command} {self.path}")
            self.send_video(video)  # if anything gets here, the run would "work": the test sees it

        do_HEAD = do_GET

    return Canary


def _public_handler(log: list, video: bytes, public: str, endless_bytes: int, sent: dict, stream_path: str):
    pages = {
        "/embed.html": f'<html><body><video src="http://{LOOPBACK}:{PORT}/clip.mp4"></video></body></html>',
        "/embed-metadata.html": f'<html><body><video controls><source src="http://{METADATA}:{PORT}/'
        f'latest/clip.mp4" type="video/mp4"></video></body></html>',
        "/embed-nat64.html": f'<html><body><video src="http://[{NAT64}]:{PORT}/clip.mp4"></video></body></html>',
    }
    redirects = {
        "/to-loopback.mp4": f"http://{LOOPBACK}:{PORT}/clip.mp4",
        "/to-metadata.mp4": f"http://{METADATA}:{PORT}/latest/meta-data/clip.mp4",
        "/to-localhost-name.mp4": f"http://localhost:{PORT}/clip.mp4",
        "/hop.mp4": f"http://{public}:{PORT}/to-loopback.mp4",  # a public hop first, then private
        "/opt-in.mp4": f"http://{LOOPBACK}:{PORT}/opt-in-target.mp4",  # only for the allow_private run
        **{f"/to-{form}.mp4": f"http://[{address}]:{PORT}/clip.mp4" for form, address in V6_FORMS.items()},
        "/to-nat64-name.mp4": f"http://nat64.test:{PORT}/clip.mp4",
    }

    class Public(_Quiet):
        def do_GET(self):
            log.append(f"{self.command} {self.path}")
            path = self.path.split("?")[0]
            if path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path in pages:
                body = pages[path].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            elif path == "/endless.mp4":  # no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.end_headers()
                if self.command == "HEAD":
                    return
                chunk = video[:65536].ljust(65536, b"\0")
                try:
                    while sent["endless"] < endless_bytes:
                        self.wfile.write(chunk)
                        sent["endless"] += len(chunk)
                except OSError:
                    pass
            elif path == "/live.ts":  # MPEG-TS: readable front to back, as a live stream is
                body = Path(stream_path).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path.endswith(".mp4"):
                self.send_video(video)
            else:
                self.send_error(404)

        do_HEAD = do_GET

    return Public


def _rtsp_redirector(public: str) -> None:
    """An RTSP server on the public address that answers every request with a 302 to 127.0.0.1."""
    listener = socket.create_server((public, RTSP_PORT))
    while True:
        client, _ = listener.accept()
        with client:
            client.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                request = data.split(b"\r\n")[0].decode("latin-1").split()
                path = request[1].split(str(RTSP_PORT), 1)[-1] if len(request) > 1 else "/"
                cseq = next(
                    (
                        line.split(b":", 1)[1].strip()
                        for line in data.split(b"\r\n")
                        if line.lower().startswith(b"cseq:")
                    ),
                    b"1",
                )
                client.sendall(
                    b"RTSP/1.0 302 Moved Temporarily\r\nCSeq: "
                    + cseq
                    + f"\r\nLocation: rtsp://{LOOPBACK}:{RTSP_PORT}{path}-target\r\n\r\n".encode()
                )
            except OSError:
                continue


def _tcp_canary(address: str, port: int, log: list) -> None:
    """Logs the first line every connection sends, then closes it."""
    listener = socket.create_server((address, port))
    while True:
        client, _ = listener.accept()
        with client:
            client.settimeout(5)
            try:
                log.append(client.recv(4096).split(b"\r\n")[0].decode("latin-1"))
            except OSError:
                log.append("(connected)")


class _DNS:
    """Answers A queries: ``*.test`` names → the public address; ``rebind.test`` only the first time."""

    def __init__(self, public: str):
        self.public = public
        self.queries: list[list] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 53))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()

    def _loop(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except (OSError, ValueError, IndexError, struct.error):
                continue

    def _answer(self, query: bytes) -> bytes:
        ident = struct.unpack(">H", query[:2])[0]
        labels, pos = [], 12
        while query[pos]:
            labels.append(query[pos + 1 : pos + 1 + query[pos]].decode("ascii", "replace").lower())
            pos += 1 + query[pos]
        qtype = struct.unpack(">H", query[pos + 1 : pos + 3])[0]
        question = query[12 : pos + 5]
        name = ".".join(labels)
        address = None
        if qtype == 1 and name.endswith(".test") and name != "nat64.test":
            earlier = sum(1 for q in self.queries if q[0] == name and q[1] == "A")
            address = LOOPBACK if name == "rebind.test" and earlier >= 1 else self.public
        if qtype == 28 and name == "nat64.test":
            address = NAT64
        self.queries.append([name, {1: "A", 28: "AAAA"}.get(qtype, str(qtype)), address])
        known = name.endswith(".test")
        flags = 0x8180 if known else 0x8183  # a response, recursion available; NXDOMAIN for unknown names
        answers = b""
        if address and qtype == 28:
            answers = struct.pack(">HHHIH", 0xC00C, 28, 1, 0, 16) + socket.inet_pton(socket.AF_INET6, address)
        elif address:
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
        return struct.pack(">HHHHHH", ident, flags, 1, 1 if address else 0, 0, 0) + question + answers


if __name__ == "__main__":
    main(sys.argv[1])
