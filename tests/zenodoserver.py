"""A local stand-in for Zenodo's record API, for offline tests of ``vemoclap reproduce``.

``ZenodoServer`` is a threaded ``http.server`` on 127.0.0.1 (a free port) that serves, like
zenodo.org, ``GET /api/records/<id>`` (JSON: ``id``, ``conceptrecid``, ``revision``, ``metadata``
and ``files``, each ``{"key", "size", "checksum": "md5:<hex>", "links": {"self": ...}}``) and
``GET /api/records/<id>/files/<key>/content`` (with HTTP Range). Its base URL goes into
``VEMOCLAP_ZENODO_URL``.

Usage::

    with ZenodoServer({17159328: {"ekman6_features.pkl": data}}) as zenodo:
        zenodo.base_url                    # http://127.0.0.1:PORT
        zenodo.corrupt("ekman6_features.pkl")   # content no longer matches the listed md5
        zenodo.cut_after("ekman6_features.pkl", 1000)  # the next GET stops after 1000 bytes
        zenodo.answer_as(17159328, 99)     # the record answers with another version's id
        zenodo.requests                    # [(method, path, Range header), ...]
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping


class ZenodoServer:
    def __init__(self, records: Mapping[int, Mapping[str, bytes]], title: str = "Ekman-6 (stand-in)") -> None:
        self.records = {int(k): dict(v) for k, v in records.items()}
        self.title = title
        self.corrupted: set[str] = set()
        self.cuts: dict[str, int] = {}
        self.ids: dict[int, int] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._server: ThreadingHTTPServer | None = None

    # ---- faults ----
    def corrupt(self, key: str) -> None:
        self.corrupted.add(key)

    def cut_after(self, key: str, n_bytes: int) -> None:
        self.cuts[key] = n_bytes

    def answer_as(self, record_id: int, other_id: int) -> None:
        self.ids[record_id] = other_id

    # ---- lifecycle ----
    def __enter__(self) -> "ZenodoServer":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record_json(self, record_id: int) -> dict:
        files = self.records[record_id]
        return {
            "id": self.ids.get(record_id, record_id),
            "conceptrecid": str(record_id - 1),
            "revision": 1,
            "metadata": {"title": self.title, "version": "v1", "publication_date": "2025-09-19"},
            "files": [
                {
                    "key": key,
                    "size": len(data),
                    "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                    "links": {"self": f"{self.base_url}/api/records/{record_id}/files/{key}/content"},
                }
                for key, data in files.items()
            ],
        }


def _handler(server: ZenodoServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # noqa: A002 - base class signature
            pass

        def do_GET(self) -> None:
            server.requests.append(("GET", self.path, self.headers.get("Range")))
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 3 and parts[:2] == ["api", "records"] and parts[2].isdigit():
                if int(parts[2]) not in server.records:
                    return self._send(404, b'{"status": 404, "message": "PID does not exist."}')
                return self._send(200, json.dumps(server.record_json(int(parts[2]))).encode(), "application/json")
            if len(parts) == 6 and parts[:2] == ["api", "records"] and parts[3] == "files" and parts[5] == "content":
                data = server.records.get(int(parts[2]), {}).get(parts[4])
                if data is None:
                    return self._send(404, b"not found")
                if parts[4] in server.corrupted:
                    data = bytes(b ^ 0xFF for b in data)
                return self._content(parts[4], data)
            self._send(404, b"not found")

        def _content(self, key: str, data: bytes) -> None:
            start = 0
            header = self.headers.get("Range")
            if header and header.startswith("bytes=") and header.endswith("-"):
                start = int(header[6:-1])
                if start >= len(data):
                    return self._send(416, b"")
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cut = server.cuts.pop(key, None)
            self.wfile.write(body if cut is None else body[:cut])
            if cut is not None:
                self.close_connection = True

        def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


__all__ = ["ZenodoServer"]
