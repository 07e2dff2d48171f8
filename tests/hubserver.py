"""A local stand-in for the Hugging Face hub and for a raw-file host, for offline tests.

``HubServer`` is a threaded ``http.server`` on 127.0.0.1 (a free port) that serves

* model repos the way huggingface_hub reads them: ``/api/models/{repo}[/revision/{rev}]``
  (``model_info``, with ``?blobs=true`` for ``files_metadata``), ``/api/models/{repo}/tree/{rev}``
  (``list_repo_tree``, used by ``snapshot_download``), ``POST /api/models/{repo}/paths-info/{rev}``
  and ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (git blob
  SHA-1, or SHA-256 for LFS files), ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, Range
  requests and the hub's error codes (``X-Error-Code: RepoNotFound | RevisionNotFound |
  EntryNotFound``);
* a raw-file host (like raw.githubusercontent.com) under ``/raw/<path>``.

Each repo is a folder (or a ``{path: bytes}`` dict); its commit id is a fixed fake 40-hex id
derived from the repo id and its files, or the one given in ``commits=``. Revisions ``main`` and
that commit id resolve; anything else is ``RevisionNotFound``.

Usage::

    with HubServer({"openai/clip-vit-base-patch32": folder}, raw=raw_folder) as hub:
        env = hub.client_env(tmp_path / "hf-home")   # HF_ENDPOINT=hub.endpoint, online, no telemetry
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        urllib.request.urlopen(hub.raw_base + "owner/repo/commit/file.pt")
        hub.cut_after("model.safetensors", 1000)      # next GET of it stops after 1000 bytes
        hub.requests                                  # [Request(method, path, headers), ...]

huggingface_hub reads ``HF_ENDPOINT`` when it is imported, so run the client in a subprocess with
``client_env`` (or pass ``endpoint=hub.endpoint`` where the API takes one: ``HfApi(endpoint=...)``,
``hf_hub_download(..., endpoint=...)``, ``snapshot_download(..., endpoint=...)``).

Fault injection (each matches request paths, without the query, ending with ``path_suffix``;
``times=None`` means every matching request from now on; HEAD requests count for
``no_content_length``, ``no_range``, ``fail`` and ``redirect``, never for ``corrupt``, ``cut_after``,
``drip`` and ``endless``; each applies to files served: raw, hub and CDN):

* ``corrupt(suffix)``: GET bodies have every byte flipped; sizes, ETags and listings unchanged.
* ``cut_after(suffix, n_bytes, times=1)``: a GET sends its full ``Content-Length`` but only
  ``n_bytes`` of the body, then closes the connection (the client sees an incomplete read).
* ``no_content_length(suffix)``: HEAD/GET answers carry no ``Content-Length`` (the body ends when
  the connection closes); hub ``X-Linked-Size`` stays.
* ``no_range(suffix)``: ``Range`` is ignored (a full 200 answer), like a server that cannot resume.
* ``fail(suffix, status=500, times=1)``: answer with that HTTP status.
* ``redirect(suffix, location)``: answer ``302`` to ``location`` (a private address, another scheme);
  a hub file's 302 carries the hub's headers, as the real hub's redirect to its CDN does.
* ``drip(suffix, interval_s, where="body")``: send one byte every ``interval_s`` seconds, in the
  body (after headers announcing 1 MB) or in the headers, until the client hangs up.
* ``endless(suffix)``: a 200 answer with no ``Content-Length`` whose body never ends.
* ``clear_faults()`` removes them all.

With ``cdn_redirect=True``, LFS files on ``/resolve`` answer ``302`` to
``http://localhost:PORT/cdn/...`` (another host name, as the real hub redirects to its CDN), the
redirect carrying the ``X-Linked-*`` headers; huggingface_hub then downloads from that location.
With ``xet=True``, LFS files on ``/resolve`` also carry ``X-Xet-Hash`` and ``X-Xet-Refresh-Route`` (a
route this server does not serve), as the real hub offers Xet storage: a client that took the offer
would ask that route for a token and then download in hf_xet's Rust code, outside Python.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import posixpath
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Mapping, NamedTuple, Union
from urllib.parse import parse_qs, quote, unquote, urlsplit

log = logging.getLogger(__name__)

# The hub's default .gitattributes sends these to LFS.
LFS_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.onnx",
    "*.h5",
    "*.msgpack",
    "*.model",
    "*.npy",
    "*.npz",
    "*.pkl",
    "*.pickle",
    "*.tflite",
    "*.ot",
    "*.joblib",
    "*.gz",
    "*.zip",
    "*.zst",
    "*.tar",
    "*.tgz",
    "*.xz",
    "*.7z",
    "*.arrow",
    "*.parquet",
    "*.wasm",
    "*.mlmodel",
    "*.pb",
    "*tfevents*",
)
LFS_MIN_SIZE = 10 * 1024 * 1024  # the hub refuses bigger non-LFS files
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
CHUNK = 64 * 1024

Source = Union[str, os.PathLike, Mapping[str, bytes]]


class Headers(dict):
    """Request headers; keys are looked up without regard to case, as HTTP means them."""

    def __init__(self, items=()):
        super().__init__((str(k).lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default=None):
        return super().get(key.lower(), default)


class Request(NamedTuple):
    method: str
    path: str  # as sent: quoted, with the query
    headers: Headers  # case-insensitive


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class RepoFile:
    path: str
    size: int
    blob_id: str  # git blob id of what git stores: the content, or the LFS pointer
    sha256: str
    lfs: bool
    source: Path | bytes

    def read(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))


@dataclass
class Repo:
    repo_id: str
    commit: str
    files: dict[str, RepoFile]
    license: str | None = None

    @property
    def folders(self) -> list[str]:
        found = {posixpath.dirname(p) for p in self.files}
        for path in list(found):
            while path:
                found.add(path)
                path = posixpath.dirname(path)
        found.discard("")
        return sorted(found)


@dataclass
class _Fault:
    kind: str
    suffix: str
    times: int | None
    n_bytes: int = 0
    status: int = 500
    location: str = ""
    interval_s: float = 0.0
    where: str = "body"


def _entries(source: Source) -> dict[str, Path | bytes]:
    """path → file (or bytes) of a folder or dict; .git and .cache (a local_dir's metadata) skipped."""
    if isinstance(source, Mapping):
        return {str(k).replace(os.sep, "/"): bytes(v) for k, v in source.items()}
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    out: dict[str, Path | bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel.split("/")[0] not in (".git", ".cache"):
            out[rel] = path
    return out


def _front_matter(readme: bytes) -> dict:
    import yaml

    match = re.match(rb"^---\s*\n(.*?)\n---\s*(\n|$)", readme, re.S)
    if not match:
        return {}
    data = yaml.safe_load(match.group(1).decode("utf-8", "replace"))
    return data if isinstance(data, dict) else {}


class HubServer:
    """Serves ``repos`` (repo id → folder or {path: bytes}) as a hub and ``raw`` as a raw-file host."""

    def __init__(
        self,
        repos: Mapping[str, Source] | None = None,
        raw: Source | None = None,
        *,
        commits: Mapping[str, str] | None = None,
        licenses: Mapping[str, str] | None = None,
        lfs_patterns: tuple[str, ...] = LFS_PATTERNS,
        cdn_redirect: bool = False,
        xet: bool = False,
    ):
        self.lfs_patterns = lfs_patterns
        self.cdn_redirect = cdn_redirect
        self.xet = xet
        self.repos: dict[str, Repo] = {}
        for repo_id, source in (repos or {}).items():
            self.add_repo(repo_id, source, commit=(commits or {}).get(repo_id), license=(licenses or {}).get(repo_id))
        self.raw: dict[str, RepoFile] = (
            {p: self._file(p, s, lfs=False) for p, s in _entries(raw).items()} if raw is not None else {}
        )
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- content -----------------------------------------------------------------------------

    def _file(self, path: str, source: Path | bytes, lfs: bool | None = None) -> RepoFile:
        data = source if isinstance(source, bytes) else source.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if lfs is None:
            name = posixpath.basename(path)
            lfs = len(data) >= LFS_MIN_SIZE or any(fnmatch.fnmatch(name, p) for p in self.lfs_patterns)
        blob = git_blob_sha1(lfs_pointer(sha256, len(data)) if lfs else data)
        return RepoFile(path, len(data), blob, sha256, lfs, source)

    def add_repo(self, repo_id: str, source: Source, *, commit: str | None = None, license: str | None = None) -> Repo:
        """Serve (or replace) a repo; its files are hashed now, read again on each download."""
        files = {p: self._file(p, s) for p, s in _entries(source).items()}
        if commit is None:
            listing = "".join(f"{p}\0{f.blob_id}\n" for p, f in sorted(files.items()))
            commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise ValueError(f"commit id for {repo_id} must be 40 lowercase hex digits: {commit!r}")
        repo = Repo(repo_id, commit, files, license)
        self.repos[repo_id] = repo
        return repo

    def commit(self, repo_id: str) -> str:
        return self.repos[repo_id].commit

    def card_data(self, repo: Repo) -> dict | None:
        readme = repo.files.get("README.md")
        data = _front_matter(readme.read()) if readme else {}
        if repo.license:
            data["license"] = repo.license
        return data or None

    # ---- faults ------------------------------------------------------------------------------

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def corrupt(self, path_suffix: str, times: int | None = None) -> None:
        self._add_fault(_Fault("corrupt", path_suffix, times))

    def cut_after(self, path_suffix: str, n_bytes: int, times: int | None = 1) -> None:
        self._add_fault(_Fault("cut", path_suffix, times, n_bytes=n_bytes))

    def no_content_length(self, path_suffix: str, times: int | None = None) -> None:
        self._add_fault(_Fault("no_length", path_suffix, times))

    def no_range(self, path_suffix: str, times: int | None = None) -> None:
        self._add_fault(_Fault("no_range", path_suffix, times))

    def fail(self, path_suffix: str, status: int = 500, times: int | None = 1) -> None:
        self._add_fault(_Fault("fail", path_suffix, times, status=status))

    def redirect(self, path_suffix: str, location: str, times: int | None = None) -> None:
        self._add_fault(_Fault("redirect", path_suffix, times, location=location))

    def drip(self, path_suffix: str, interval_s: float, where: str = "body", times: int | None = None) -> None:
        self._add_fault(_Fault("drip", path_suffix, times, interval_s=interval_s, where=where))

    def endless(self, path_suffix: str, times: int | None = None) -> None:
        self._add_fault(_Fault("endless", path_suffix, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, path: str, method: str) -> dict[str, _Fault]:
        """The faults that apply to this request (one per kind), counting down their ``times``."""
        taken: dict[str, _Fault] = {}
        with self._lock:
            for fault in list(self._faults):
                if fault.kind in taken or not path.endswith(fault.suffix):
                    continue
                if method == "HEAD" and fault.kind in ("corrupt", "cut", "drip", "endless"):
                    continue
                taken[fault.kind] = fault
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "HubServer":
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="hubserver", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started (use it as a context manager or call start())")
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def raw_base(self) -> str:
        return self.endpoint + "/raw/"

    @property
    def cdn_base(self) -> str:
        return f"http://localhost:{self.port}/cdn/"

    def url(self, repo_id: str, path: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"

    def client_env(self, hf_home: str | os.PathLike, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a huggingface_hub / transformers client process that talks to this server."""
        env = dict(os.environ if base is None else base)
        for key in (
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE",
            "HF_DATASETS_OFFLINE",
            "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE",
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "HF_HUB_ENABLE_HF_TRANSFER",
        ):
            env.pop(key, None)
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(hf_home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
            HF_HUB_DISABLE_UPDATE_CHECK="1",
            HF_HUB_DOWNLOAD_TIMEOUT="10",
            HF_HUB_ETAG_TIMEOUT="10",
        )
        return env

    def requests_for(self, path_suffix: str, method: str | None = None) -> list[Request]:
        """Logged requests whose path (without the query) ends with ``path_suffix``."""
        with self._lock:
            logged = list(self.requests)
        return [
            r
            for r in logged
            if unquote(urlsplit(r.path).path).endswith(path_suffix) and (method is None or r.method == method)
        ]

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive) of a single ``bytes=`` range; None without one; "bad" if unsatisfiable."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or match.groups() == ("", ""):
        return None  # several ranges or another unit: ignored, as servers may
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return "bad"
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "bad"
    return start, end


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        hub = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"
    hub: HubServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (base class signature)
        log.debug("%s %s", self.address_string(), format % args)

    # ---- dispatch ----------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        self.hub._log(Request(method, self.path, Headers(self.headers.items())))
        path = unquote(urlsplit(self.path).path)
        query = parse_qs(urlsplit(self.path).query)
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        faults = self.hub._take_faults(path, method)
        if "fail" in faults:
            return self._error(faults["fail"].status, None, f"injected failure for {path}")
        try:
            if "redirect" in faults and "/resolve/" not in path:  # a hub file's redirect carries its headers
                return self._redirect(faults["redirect"].location)
            if path.startswith("/raw/"):
                return self._raw(method, path[len("/raw/") :], faults)
            if path.startswith("/cdn/"):
                return self._cdn(method, path[len("/cdn/") :], faults)
            if path.startswith("/api/models/"):
                return self._api(method, path[len("/api/models/") :], query, body)
            if "/resolve/" in path and method in ("GET", "HEAD"):
                return self._resolve(method, path.lstrip("/"), faults)
            self._error(404, None, f"no route for {method} {path}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- answers -----------------------------------------------------------------------------

    def _error(self, status: int, code: str | None, message: str, extra: Mapping[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message.encode("ascii", "replace").decode())
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_file(self, method: str, file: RepoFile, faults: Mapping[str, _Fault], headers: Mapping[str, str]) -> None:
        if "drip" in faults or "endless" in faults:
            return self._stream(faults, headers)
        size = file.size
        wanted = None if "no_range" in faults else _parse_range(self.headers.get("Range"), size)
        if wanted == "bad":
            return self._error(
                416, None, f"range not satisfiable for {file.path}", {"Content-Range": f"bytes */{size}", **headers}
            )
        start, end = wanted if wanted else (0, size - 1)
        length = end - start + 1
        self.send_response(206 if wanted else 200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if "no_length" in faults:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if method == "HEAD":
            return
        data = file.read()
        if "corrupt" in faults:
            data = data.translate(bytes(255 - b for b in range(256)))
        data = data[start : end + 1]
        if "cut" in faults:
            data = data[: faults["cut"].n_bytes]
            self.close_connection = True
        for offset in range(0, len(data), CHUNK):
            self.wfile.write(data[offset : offset + CHUNK])
        if "cut" in faults:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, faults: Mapping[str, _Fault], headers: Mapping[str, str]) -> None:
        """A drip (one byte per interval, in the headers or the body) or an endless body."""
        self.close_connection = True
        drip = faults.get("drip")
        if drip is not None and drip.where == "headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                self.wfile.write(b"X")
                self.wfile.flush()
                threading.Event().wait(drip.interval_s)
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        if drip is not None:
            self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        block = b"x" if drip is not None else b"\0" * CHUNK
        while True:
            self.wfile.write(block)
            self.wfile.flush()
            if drip is not None:
                threading.Event().wait(drip.interval_s)

    # ---- raw host ----------------------------------------------------------------------------

    def _raw(self, method: str, path: str, faults: Mapping[str, _Fault]) -> None:
        file = self.hub.raw.get(path)
        if file is None or method == "POST":
            return self._error(404, None, f"404: Not Found ({path})")
        self._send_file(method, file, faults, {"ETag": f'"{file.blob_id}"'})

    # ---- hub ---------------------------------------------------------------------------------

    def _split_repo(self, rest: str) -> tuple[Repo | None, str]:
        """The served repo ``rest`` starts with (longest id first) and what follows it."""
        for repo_id in sorted(self.hub.repos, key=len, reverse=True):
            if rest == repo_id or rest.startswith(repo_id + "/"):
                return self.hub.repos[repo_id], rest[len(repo_id) :].lstrip("/")
        return None, rest

    def _revision_ok(self, repo: Repo, revision: str) -> bool:
        if revision in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", {"X-Repo-Commit": repo.commit})
        return False

    def _resolve(self, method: str, path: str, faults: Mapping[str, _Fault]) -> None:
        repo, rest = self._split_repo(path)
        if repo is None or not rest.startswith("resolve/"):
            return self._error(401, "RepoNotFound", "Repository not found")
        revision, _, filename = rest[len("resolve/") :].partition("/")
        if not self._revision_ok(repo, revision):
            return
        file = repo.files.get(filename)
        if file is None:
            return self._error(404, "EntryNotFound", f"Entry not found: {filename}", {"X-Repo-Commit": repo.commit})
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{file.etag}"'}
        if file.lfs:
            headers.update({"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(file.size)})
        if file.lfs and self.hub.xet:  # the headers by which the real hub offers Xet storage (hf_xet)
            route = f"{self.hub.endpoint}/api/models/{repo.repo_id}/xet-read-token/{repo.commit}"
            headers.update({"X-Xet-Hash": file.sha256, "X-Xet-Refresh-Route": route})
        if "redirect" in faults or (file.lfs and self.hub.cdn_redirect):
            headers["ETag"] = f'"{file.blob_id}"'
            headers["Location"] = (
                faults["redirect"].location
                if "redirect" in faults
                else f"{self.hub.cdn_base}{repo.repo_id}/{repo.commit}/{quote(filename)}"
            )
            self.send_response(302)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_file(method, file, faults, headers)

    def _cdn(self, method: str, path: str, faults: Mapping[str, _Fault]) -> None:
        repo, rest = self._split_repo(path)
        commit, _, filename = rest.partition("/")
        file = repo.files.get(filename) if repo is not None and commit == repo.commit else None
        if file is None or method == "POST":
            return self._error(404, None, "NoSuchKey")
        self._send_file(method, file, faults, {"ETag": f'"{file.sha256}"'})

    def _api(self, method: str, rest: str, query: Mapping[str, list[str]], body: bytes) -> None:
        repo, tail = self._split_repo(rest)
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        parts = tail.split("/", 2) if tail else []
        if not parts and method == "GET":
            return self._json(self._model_info(repo, query))
        if len(parts) >= 2 and parts[0] == "revision" and method == "GET":
            if self._revision_ok(repo, "/".join(parts[1:])):
                self._json(self._model_info(repo, query))
            return
        if len(parts) >= 2 and parts[0] == "tree" and method == "GET":
            if not self._revision_ok(repo, parts[1]):
                return
            recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
            return self._tree(repo, parts[2] if len(parts) > 2 else "", recursive)
        if len(parts) == 2 and parts[0] == "paths-info" and method == "POST":
            if not self._revision_ok(repo, parts[1]):
                return
            wanted = parse_qs(body.decode()).get("paths", [])
            entries = [e for e in (self._entry(repo, p.strip("/")) for p in wanted) if e]
            return self._json(entries)
        self._error(404, None, f"no API route for {method} /api/models/{rest}")

    def _entry(self, repo: Repo, path: str) -> dict | None:
        file = repo.files.get(path)
        if file is not None:
            entry = {"type": "file", "oid": file.blob_id, "size": file.size, "path": path}
            if file.lfs:
                entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
            return entry
        if path in repo.folders:
            inside = "".join(f"{p}\0{f.blob_id}\n" for p, f in sorted(repo.files.items()) if p.startswith(path + "/"))
            return {"type": "directory", "oid": hashlib.sha1(inside.encode()).hexdigest(), "size": 0, "path": path}
        return None

    def _tree(self, repo: Repo, under: str, recursive: bool) -> None:
        under = under.strip("/")
        if under and under not in repo.folders:
            return self._error(
                404, "EntryNotFound", f'{under} does not exist on "main"', {"X-Repo-Commit": repo.commit}
            )
        prefix = under + "/" if under else ""
        paths = [p for p in repo.folders + sorted(repo.files) if p.startswith(prefix)]
        if not recursive:
            paths = [p for p in paths if "/" not in p[len(prefix) :]]
        self._json([self._entry(repo, p) for p in paths])

    def _model_info(self, repo: Repo, query: Mapping[str, list[str]]) -> dict:
        blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        siblings = []
        for path, file in sorted(repo.files.items()):
            sibling: dict = {"rfilename": path}
            if blobs:
                sibling.update(size=file.size, blobId=file.blob_id)
                if file.lfs:
                    sibling["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
            siblings.append(sibling)
        author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        info: dict = {
            "_id": repo.commit[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": author,
            "sha": repo.commit,
            "lastModified": LAST_MODIFIED,
            "createdAt": LAST_MODIFIED,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(f.size for f in repo.files.values()),
        }
        card = self.hub.card_data(repo)
        if card:
            info["cardData"] = card
            if card.get("license"):
                info["tags"].append(f"license:{card['license']}")
        config = repo.files.get("config.json")
        if config is not None:
            try:
                data = json.loads(config.read())
            except ValueError:
                data = {}
            if isinstance(data, dict):
                info["config"] = {k: data[k] for k in ("architectures", "model_type") if k in data}
                info["library_name"] = "transformers"
                info["tags"].insert(0, "transformers")
        return info


__all__ = ["HubServer", "Request", "Headers", "RepoFile", "Repo", "git_blob_sha1", "lfs_pointer", "LFS_PATTERNS"]
