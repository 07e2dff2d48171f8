"""Nothing phones home: the offline demo opens no connection to any host and asks for no outside
name (the socket layer of its process refuses and records every attempt), and the OCR models of
the reference recipe come through the model table (a pinned URL and SHA-256, fetched by our code,
here from the stand-in host tests/hubserver.py on 127.0.0.1), never through rapidocr's own
downloader."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hubserver import HubServer

from vemoclap import models
from vemoclap.extractors import get
from vemoclap.extractors.ocr import ENGLISH_MODELS, english_model_files, fetch_english_models
from vemoclap.models.kinds import PPOCR_BASE_ENV
from vemoclap.models.table import PPOCR_BASE_URL

# A sitecustomize for the child process: every name lookup but localhost and every connection to a
# non-loopback address is recorded (one JSON line each) and refused.
GUARD = textwrap.dedent(
    """
    import ipaddress, json, os, socket

    _LOG = os.environ["VEMOCLAP_NET_GUARD_LOG"]
    _LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}


    def _record(kind, target):
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([kind, repr(target)]) + "\\n")


    def _local_host(host):
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host in _LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False


    def _local_address(address):
        if isinstance(address, (str, bytes)):  # a Unix socket: not the network
            return True
        return _local_host(address[0])


    _getaddrinfo = socket.getaddrinfo


    def getaddrinfo(host, *args, **kwargs):
        if not _local_host(host):
            _record("getaddrinfo", host)
            raise socket.gaierror(socket.EAI_NONAME, "refused by the test's network guard")
        return _getaddrinfo(host, *args, **kwargs)


    def _named(original, kind):
        def lookup(host, *args, **kwargs):
            if not _local_host(host):
                _record(kind, host)
                raise socket.gaierror(socket.EAI_NONAME, "refused by the test's network guard")
            return original(host, *args, **kwargs)

        return lookup


    _connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    _create_connection = socket.create_connection


    def connect(self, address):
        if self.family != socket.AF_UNIX and not _local_address(address):
            _record("connect", address)
            raise ConnectionRefusedError("refused by the test's network guard")
        return _connect(self, address)


    def connect_ex(self, address):
        if self.family != socket.AF_UNIX and not _local_address(address):
            _record("connect_ex", address)
            return 111  # ECONNREFUSED
        return _connect_ex(self, address)


    def sendto(self, data, *args):
        address = args[-1]
        if self.family != socket.AF_UNIX and not _local_address(address):
            _record("sendto", address)
            raise ConnectionRefusedError("refused by the test's network guard")
        return _sendto(self, data, *args)


    def create_connection(address, *args, **kwargs):
        if not _local_address(address):
            _record("create_connection", address)
            raise ConnectionRefusedError("refused by the test's network guard")
        return _create_connection(address, *args, **kwargs)


    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = _named(socket.gethostbyname, "gethostbyname")
    socket.gethostbyname_ex = _named(socket.gethostbyname_ex, "gethostbyname_ex")
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.create_connection = create_connection
    """
)

# What a user's shell would not have: the test suite's own "stay offline" settings.
SUITE_ONLY = ("VEMOCLAP_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ORT_DISABLE_TELEMETRY", "YOLO_OFFLINE")


@pytest.mark.slow
def test_the_offline_demo_asks_for_no_outside_name_and_opens_no_outside_connection(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "attempts.jsonl"
    env = {key: value for key, value in os.environ.items() if key not in SUITE_ONLY}
    checkout = Path(__file__).resolve().parents[1]
    env.update(
        PYTHONPATH=os.pathsep.join([str(guard), str(checkout), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        VEMOCLAP_NET_GUARD_LOG=str(log),
        VEMOCLAP_CACHE=str(tmp_path / "cache"),
        HOME=str(tmp_path / "home"),
    )
    # The guard is live in the child: a lookup of an outside name is refused and recorded.
    probe = subprocess.run(
        [sys.executable, "-c", "import socket\ntry: socket.getaddrinfo('example.org', 443)\nexcept OSError: pass"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert json.loads(log.read_text().splitlines()[0]) == ["getaddrinfo", "'example.org'"]
    log.unlink()
    # Native code (onnxruntime's telemetry is C++) does not go through Python's socket module: where
    # strace works, the system calls of every thread and child are watched too.
    trace = tmp_path / "trace.txt"
    watch = _strace(trace)
    demo = [sys.executable, "-m", "vemoclap.cli", "demo", "--models-dir", tmp_path / "tiny", "--frames", "4", "-q"]
    run = subprocess.run([*watch, *map(str, demo)], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RANDOM WEIGHTS" in run.stdout and "emotion:" in run.stdout
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert attempts == [], attempts
    assert "[ERROR]" not in run.stderr  # rapidocr's downloader never ran
    if watch:
        assert _outside_connections(trace.read_text()) == []


def _strace(trace: Path) -> list[str]:
    """The strace prefix that records every connect/send of every thread and child, or [] where strace
    is missing or not allowed here."""
    import shutil

    if shutil.which("strace") is None:
        return []
    prefix = ["strace", "-f", "-qq", "-s", "128", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=60)
    return prefix if probe.returncode == 0 else []


_INET = re.compile(r'connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\),.*?"([^"]+)"')


def _outside_connections(trace: str) -> list[str]:
    """strace lines that connect to a non-loopback address, or to any DNS resolver (port 53: a name
    lookup, wherever the resolver is)."""
    found = []
    for line in trace.splitlines():
        match = _INET.search(line)
        if match and (match.group(1) == "53" or not ipaddress.ip_address(match.group(2)).is_loopback):
            found.append(line.strip())
    return found


# -- the English PP-OCR pair through the model table ---------------------------------------------


def _served_path(key: str) -> str:
    return "ppocr/" + models.MODELS[key].url[len(PPOCR_BASE_URL) :]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> Path:
    from vemoclap.tiny.text import build

    directory = tmp_path_factory.mktemp("tiny-text-models")
    build(directory)
    return directory


def _models_dir(tiny_text: Path, tmp_path: Path) -> Path:
    """A fresh models dir holding the tiny text models (linked) and no OCR models."""
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    for child in tiny_text.iterdir():
        (models_dir / child.name).symlink_to(child)
    return models_dir


@pytest.fixture
def ppocr_host(tmp_path, monkeypatch):
    """The stand-in host serving the English pair's files (here rapidocr's bundled PP-OCRv6 small
    det/rec, real ONNX models) with a manifest that pins their SHA-256."""
    import rapidocr

    bundled = Path(rapidocr.__file__).parent / "models"
    files = {
        "ppocr_en_det": (bundled / "PP-OCRv6_det_small.onnx").read_bytes(),
        "ppocr_en_rec": (bundled / "PP-OCRv6_rec_small.onnx").read_bytes(),
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"file": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}))
    with HubServer(raw={_served_path(key): data for key, data in files.items()}) as host:
        monkeypatch.setenv("VEMOCLAP_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv(PPOCR_BASE_ENV, host.raw_base + "ppocr")
        monkeypatch.setenv("VEMOCLAP_DOWNLOAD_MANIFEST", str(manifest))
        host.files = files
        yield host


@pytest.mark.slow
def test_the_english_pair_is_fetched_verified_and_handed_to_rapidocr_as_files(ppocr_host, tmp_path, monkeypatch):
    import onnxruntime

    from vemoclap.extractors.ocr import _RapidOcr

    models_dir = tmp_path / "models"
    paths = fetch_english_models(models_dir)
    for part, key in ENGLISH_MODELS.items():
        assert paths[part] == models.target_path(key, models_dir) and paths[part].read_bytes() == ppocr_host.files[key]
        record = models.read_provenance(paths[part])
        assert record["verified"] == "sha256" and record["source"].startswith(ppocr_host.raw_base)
        assert len(ppocr_host.requests_for(_served_path(key).split("/")[-1], "GET")) == 1
    assert english_model_files(models_dir) == paths
    # The engine the extractor builds hands those files to rapidocr: its ONNX sessions load them
    # (with no angle classifier, as the reference ran it: these two files only), and it reads text.
    loaded = []
    original = onnxruntime.InferenceSession.__init__

    def init(self, path, *args, **kwargs):
        loaded.append(Path(path))
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__", init)
    engine = _RapidOcr(False, "ppocr-en", models_dir, "paddleocr", angle_classifier=False)
    assert "en_PP-OCRv3_det_mobile" in engine.description
    frame = np.full((320, 640, 3), 255, np.uint8)
    import cv2

    cv2.putText(frame, "HAPPY BIRTHDAY", (30, 180), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 5, cv2.LINE_AA)
    assert "HAPPY" in " ".join(label for _, label, _ in engine(frame, 0.5)).upper()
    assert sorted(loaded) == sorted(paths.values())  # no other model file, nothing rapidocr downloaded


def test_a_corrupted_ocr_model_is_refused_and_the_bundled_models_run_as_a_named_deviation(
    ppocr_host, tiny_text, tmp_path, caplog
):
    ppocr_host.corrupt(_served_path("ppocr_en_rec").split("/")[-1])
    models_dir = _models_dir(tiny_text, tmp_path)
    try:
        extractor = get("ocr_sentiment", models_dir=models_dir, device="cpu", ocr_models="ppocr-en").load()
    finally:
        ppocr_host.clear_faults()
    assert extractor.engine_note.startswith("ppocr-en unavailable") and "does not match" in extractor.engine_note
    assert "PP-OCRv6" in extractor.engine.description  # the bundled models read the text
    warnings = [r for r in caplog.records if "using the bundled models instead" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert not models.target_path("ppocr_en_rec", models_dir).exists()  # the bad file was deleted
