"""Verified downloads from a local stand-in for the internet (tests/hubserver.py on 127.0.0.1): the
hub serves the tiny models, a raw-file host the reference's classifier and a sample; the CLI a user
runs fetches them into an empty folder, verifies every file and prints an emotion."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubServer, git_blob_sha1

from vemoclap import models
from vemoclap.labels import EMOTIONS

WHISPER_SHA_SMALL = "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794"  # in whisper's URL


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def internet(tiny_models, tmp_path_factory):
    """The hub, the reference repository and Whisper's host, all served from the tiny models."""
    from vemoclap.synth import make_video

    root = tmp_path_factory.mktemp("internet")
    repos = {}
    for key, ref in models.MODELS.items():
        if ref.kind == "hf":
            repos[ref.hub_id] = tiny_models / ref.hub_id
        elif ref.kind == "file" and ref.hub_id:  # one checkpoint in a hub repo
            folder = root / "repos" / ref.hub_id
            folder.mkdir(parents=True)
            shutil.copy(tiny_models / ref.filename, folder / Path(ref.filename).name)
            repos[ref.hub_id] = folder
    for size in ("small", "medium"):  # faster-whisper's folders, converted from the same tiny weights
        repos[models.ct2_hub_id(size)] = tiny_models / "whisper-ct2" / size
    raw = root / "raw"
    shutil.copytree(tiny_models / "reference" / "weights", raw / "weights")
    make_video(raw / "sample_data" / "joy.mp4", duration=3.0, audio="speech")
    (raw / "whisper" / WHISPER_SHA_SMALL).mkdir(parents=True)
    shutil.copy(tiny_models / "whisper" / "small.pt", raw / "whisper" / WHISPER_SHA_SMALL / "small.pt")
    # the English PP-OCR pair: rapidocr's bundled det/rec (real ONNX models) stand in for its files
    import rapidocr

    from vemoclap.models.table import PPOCR_BASE_URL

    bundled, ocr = Path(rapidocr.__file__).parent / "models", {}
    for key, name in (("ppocr_en_det", "PP-OCRv6_det_small.onnx"), ("ppocr_en_rec", "PP-OCRv6_rec_small.onnx")):
        target = raw / "ppocr" / models.MODELS[key].url[len(PPOCR_BASE_URL) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bundled / name, target)
        ocr[key] = _sha256(target)
    manifest = root / "manifest.json"
    reference = {p: git_blob_sha1((raw / p).read_bytes()) for p in [*models.CLASSIFIER_FILES, "sample_data/joy.mp4"]}
    manifest.write_text(
        json.dumps(
            {
                "reference": reference,
                "whisper": {"small": _sha256(raw / "whisper" / WHISPER_SHA_SMALL / "small.pt")},
                "file": ocr,
            }
        )
    )
    with HubServer(repos, raw=raw) as hub:
        hub.manifest = manifest
        yield hub


def _env(hub, tmp_path, **extra) -> dict[str, str]:
    env = hub.client_env(tmp_path / "hf-home")
    env.pop("VEMOCLAP_MODELS_DIR", None)
    env.update(
        VEMOCLAP_OFFLINE="0",
        VEMOCLAP_REFERENCE_BASE_URL=hub.raw_base,
        VEMOCLAP_WHISPER_BASE_URL=hub.raw_base + "whisper",
        VEMOCLAP_PPOCR_BASE_URL=hub.raw_base + "ppocr",
        VEMOCLAP_DOWNLOAD_MANIFEST=str(hub.manifest),
        VEMOCLAP_CACHE=str(tmp_path / "cache"),
        YOLO_OFFLINE="1",
        **extra,
    )
    return env


def _cli(*args, env, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "vemoclap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
def test_readme_third_command_fetches_everything_and_prints_an_emotion(internet, tmp_path):
    models_dir = tmp_path / "models"  # empty: a fresh machine
    run = _cli("analyze", "sample:joy", "-q", env=_env(internet, tmp_path, VEMOCLAP_MODELS_DIR=str(models_dir)))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "emotion: " in run.stdout and any(label in run.stdout for label in EMOTIONS)
    assert "RANDOM WEIGHTS" in run.stdout  # the served classifier is the tiny one, and says so
    announced = [line for line in run.stderr.splitlines() if line.startswith("downloading ")]
    assert len(announced) == 1 and " MiB" in announced[0] and "min at" in announced[0]  # size and time up front
    assert "classifier" in announced[0] and ("whisper small" in announced[0] or "whisper_ct2 small" in announced[0])
    folder = models.local_path("classifier", models_dir)
    record = models.read_provenance(folder)
    assert record["verified"] == "git-blob" and record["commit"]
    clip = models.read_provenance(models_dir / "openai" / "clip-vit-base-patch32")
    assert clip["verified"]["model.safetensors"] == "sha256" and clip["verified"]["config.json"] == "git-sha1"
    assert clip["revision"] == internet.commit("openai/clip-vit-base-patch32")
    assert (models_dir / "reference" / "sample_data" / "joy.mp4").is_file()  # cached for the next run
    assert not list(models_dir.rglob("*.part"))


@pytest.mark.slow
def test_download_models_then_analyze_offline(internet, tmp_path):
    models_dir = tmp_path / "weights"
    env = _env(internet, tmp_path)
    run = _cli("download-models", "--dir", models_dir, "-q", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    # what the default run needs on this device, said (size and disk) before it is fetched, and no more
    from vemoclap.needs import default_cost

    wanted = {key for key, _ in default_cost(tmp_path / "empty").wanted}
    assert "MiB on disk" in run.stderr.splitlines()[0]
    assert {line.split()[0] for line in run.stdout.splitlines()[:-1]} == wanted
    assert len(wanted & {"whisper", "whisper_ct2"}) == 1 and "ast" not in wanted
    rows = {r["key"]: r for r in models.table(models_dir)}
    assert all(rows[k]["local"] for k in wanted)
    assert not (models_dir / "whisper-ct2" / "medium").exists() and not (models_dir / "whisper" / "medium.pt").exists()
    assert rows["sentiment"]["license"] != ""  # read from the hub's metadata (no card: "unknown")
    # now nothing more is needed: offline, no classifier flag, an emotion
    offline = {**env, "VEMOCLAP_OFFLINE": "1"}
    video = internet_video(tmp_path)
    run = _cli("analyze", video, "--models-dir", models_dir, "--frames", "4", "-q", env=offline)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "emotion: " in run.stdout


def internet_video(tmp_path: Path) -> Path:
    from vemoclap.synth import make_video

    return make_video(tmp_path / "clip.mp4", duration=2.0, audio="tone")


def test_a_corrupted_hub_file_is_refused_removed_and_a_rerun_succeeds(internet, tmp_path):
    models_dir = tmp_path / "weights"
    env = _env(internet, tmp_path)
    internet.corrupt(
        "clip-vit-base-patch32/resolve/" + internet.commit("openai/clip-vit-base-patch32") + "/model.safetensors"
    )
    try:
        run = _cli("download-models", "--dir", models_dir, "--only", "clip", "-q", env=env)
    finally:
        internet.clear_faults()
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith("vemoclap: ")]
    assert len(lines) == 1 and "does not match" in lines[0] and "deleted" in lines[0]
    assert models.local_path("clip", models_dir) is None  # nothing under the final name
    assert not list(models_dir.rglob("model.safetensors"))  # the bad file is gone
    run = _cli("download-models", "--dir", models_dir, "--only", "clip", "-q", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert models.local_path("clip", models_dir) is not None


def test_a_cut_reference_download_leaves_no_final_file_and_a_rerun_continues(internet, tmp_path):
    models_dir = tmp_path / "weights"
    env = _env(internet, tmp_path)
    internet.cut_after("weights/classifier/model.pt", 2000)
    run = _cli("download-models", "--dir", models_dir, "--only", "classifier", "-q", env=env)
    assert run.returncode == 2 and "interrupted" in run.stderr
    final = models.reference_target("weights/classifier/model.pt", models_dir)
    assert not final.exists() and final.with_name("model.pt.part").is_file()
    assert models.local_path("classifier", models_dir) is None
    run = _cli("download-models", "--dir", models_dir, "--only", "classifier", "-q", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (
        final.is_file()
        and git_blob_sha1(final.read_bytes())
        == json.loads(internet.manifest.read_text())["reference"]["weights/classifier/model.pt"]
    )
    ranges = [r for r in internet.requests_for("weights/classifier/model.pt", "GET") if r.headers.get("Range")]
    assert ranges and ranges[-1].headers.get("Range") == "bytes=2000-"  # continued, not restarted


def test_a_corrupted_reference_file_is_refused_and_removed(internet, tmp_path):
    models_dir = tmp_path / "weights"
    internet.corrupt("weights/classifier/model_config.pt")
    try:
        run = _cli("download-models", "--dir", models_dir, "--only", "classifier", "-q", env=_env(internet, tmp_path))
    finally:
        internet.clear_faults()
    assert run.returncode == 2 and "does not match its published git-sha1" in run.stderr
    assert not models.reference_target("weights/classifier/model_config.pt", models_dir).exists()
    assert not list(models_dir.rglob("model_config.pt*"))


@pytest.mark.slow
def test_whisper_checkpoint_is_checked_against_its_sha256(internet, tmp_path):
    models_dir = tmp_path / "weights"
    env = _env(internet, tmp_path)
    internet.corrupt("whisper/" + WHISPER_SHA_SMALL + "/small.pt")
    try:
        run = _cli("download-models", "--dir", models_dir, "--only", "whisper", "--whisper", "small", "-q", env=env)
    finally:
        internet.clear_faults()
    assert run.returncode == 2 and "sha256" in run.stderr
    assert not (models_dir / "whisper" / "small.pt").exists()


def test_the_sample_list_offers_the_reference_samples():
    from vemoclap import samples
    from vemoclap.app.controller import Controller

    assert samples.names() == ["sample", "anger", "disgust", "fear", "joy", "sadness", "surprise", "sample"]
    offered = Controller(models_dir=None).samples
    values = list(offered.values())
    assert values[0] == "sample" and [v for v in values if v.startswith("sample:")] == [
        f"sample:{n}" for n in models.SAMPLE_NAMES
    ]


@pytest.mark.slow
def test_app_step_two_fetches_with_progress_and_loads_the_reference_classifier(internet, tmp_path):
    code = f"""
import json, sys
from vemoclap.app.controller import Controller
c = Controller(models_dir={str(tmp_path / "models")!r}, extractors=["clip"], fetch_models=True)
seen = []
c.fetch(lambda p: seen.append((p.text, p.fraction)))
states = {{}}
c.load(on_model=lambda name, state: states.__setitem__(name, state.status))
print(json.dumps({{"seen": seen, "states": states, "keys": [k for k, _ in c.cost().wanted],
                  "classifier": c.loaded_classifier() is not None}}))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=_env(internet, tmp_path)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(run.stdout.strip().splitlines()[-1])
    assert data["keys"][0] == "classifier" and data["classifier"]
    assert data["states"]["classifier"] == "loaded" and data["states"]["clip"] == "loaded"
    texts = [text for text, _ in data["seen"]]
    assert any(t.startswith("fetching classifier") for t in texts) and any(t.startswith("fetching clip") for t in texts)
    assert data["seen"][-1][1] == 1.0


# ---- the mirror guard, size bounds, deadlines and the manifest (issue 25) ------------------------------


class Canary:
    """A TCP listener on 127.0.0.1 that counts the connections made to it (none may be)."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


def _small_internet(tmp_path: Path, **kwargs) -> HubServer:
    from vemoclap.synth import make_video

    raw = tmp_path / "raw"
    make_video(raw / "sample_data" / "joy.mp4", duration=1.0, audio="tone")
    (raw / "whisper" / WHISPER_SHA_SMALL).mkdir(parents=True)
    (raw / "whisper" / WHISPER_SHA_SMALL / "small.pt").write_bytes(b"not really whisper")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "reference": {"sample_data/joy.mp4": git_blob_sha1((raw / "sample_data" / "joy.mp4").read_bytes())},
                "whisper": {"small": _sha256(raw / "whisper" / WHISPER_SHA_SMALL / "small.pt")},
            }
        )
    )
    repo = {"config.json": b"{}", "model.safetensors": b"\0" * 4096}
    hub = HubServer({models.MODELS["clip"].hub_id: repo}, raw=raw, **kwargs)
    hub.manifest = manifest
    return hub


REDIRECTS = {
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "private": "http://10.0.0.1/model.bin",
    "loopback_other_port": "http://127.0.0.1:{canary}/x",
    "ftp": "ftp://127.0.0.1:{canary}/",
}


@pytest.mark.slow
@pytest.mark.parametrize("where", sorted(REDIRECTS))
def test_a_mirror_redirect_to_a_private_address_or_another_scheme_is_never_followed(tmp_path, canary, where):
    location = REDIRECTS[where].format(canary=canary.port)
    with _small_internet(tmp_path) as hub:
        env = _env(hub, tmp_path, VEMOCLAP_MODELS_DIR=str(tmp_path / "models"))
        hub.redirect("sample_data/joy.mp4", location)
        sample = _cli("analyze", "sample:joy", "--extractors", "clip", "--no-classifier", "-q", env=env, timeout=120)
        hub.clear_faults()
        hub.redirect("model.safetensors", location)
        clip = _cli("download-models", "--dir", tmp_path / "w", "--only", "clip", "-q", env=env, timeout=120)
        hub.clear_faults()
        hub.redirect("small.pt", location)
        whisper = _cli(
            "download-models", "--dir", tmp_path / "w", "--only", "whisper", "--whisper", "small", "-q",
            env=env, timeout=120,
        )  # fmt: skip
    for run in (sample, clip, whisper):
        lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("downloading ")]
        assert run.returncode == 2, run.stderr[-2000:]
        assert len(lines) == 1 and lines[0].startswith("vemoclap: "), lines
        assert "private or local address" in lines[0] or "only http(s) redirects are followed" in lines[0], lines
        assert "Traceback" not in run.stderr
    assert canary.accepted == 0  # nothing reached the listener the redirects pointed at
    assert not list((tmp_path / "models").rglob("joy.mp4")) and not list((tmp_path / "w").rglob("*.safetensors"))


@pytest.mark.slow
def test_an_endless_model_body_stops_at_the_listed_size_plus_a_margin(tmp_path):
    with _small_internet(tmp_path) as hub:
        env = _env(hub, tmp_path)
        hub.endless("model.safetensors")
        run = _cli("download-models", "--dir", tmp_path / "w", "--only", "clip", "-q", env=env, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("downloading ")]
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert "bytes downloaded; stopped there" in lines[0], lines
    assert sum(p.stat().st_size for p in (tmp_path / "w").rglob("*") if p.is_file()) < 4 << 20


@pytest.mark.slow
@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_server_sending_a_byte_every_so_often_is_cut_off(tmp_path, where):
    import time
    import urllib.request

    from vemoclap import netguard

    with _small_internet(tmp_path) as hub:
        hub.drip("sample_data/joy.mp4", 0.3, where=where)
        started = time.monotonic()
        pace = netguard.Pace(deadline_s=30, min_rate=1000, grace_s=1.0)
        with netguard.guarded(allow_private=True, pace=pace) as guard, pytest.raises(Exception):
            with urllib.request.urlopen(hub.raw_base + "sample_data/joy.mp4", timeout=10) as response:
                response.read()
    assert time.monotonic() - started < 8
    assert guard.stopped and "below the minimum rate" in guard.stopped


def test_a_total_deadline_stops_even_a_steady_trickle(tmp_path):
    import urllib.request

    from vemoclap import netguard

    with _small_internet(tmp_path) as hub:
        hub.drip("sample_data/joy.mp4", 0.05)
        pace = netguard.Pace(deadline_s=1.0, min_rate=1, grace_s=100)
        with netguard.guarded(allow_private=True, pace=pace) as guard, pytest.raises(netguard.TooSlow):
            with urllib.request.urlopen(hub.raw_base + "sample_data/joy.mp4", timeout=10) as response:
                response.read()
    assert "deadline" in guard.stopped


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"reference": {"sample_data/joy.mp4": None}}, "not a hash (verification cannot be turned off)"),
        ({"whisper": {"small": None}}, "not a hash"),
        ({"whisper": {"small": "abc"}}, "not a 40- or 64-digit hex hash"),
        ([{"reference": {}}], "must be a JSON object of groups, not a list"),
        ({"reference": ["x"]}, "'reference' must map names to hashes"),
    ],
)
def test_a_malformed_manifest_is_refused_in_one_line(tmp_path, monkeypatch, content, expected):
    from vemoclap.models import download

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(content))
    monkeypatch.setenv(download.MANIFEST_ENV, str(path))
    with pytest.raises(download.DownloadError, match=re.escape(expected)) as caught:
        download.manifest()
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_the_manifest_is_read_only_from_a_small_regular_file(tmp_path, monkeypatch):
    import os
    import threading

    from vemoclap.models import download

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (download.MANIFEST_MAX_BYTES + 10))
    for name, expected in (("/dev/zero", "not a regular file"), (fifo, "not a regular file"), (big, "over 1 MB")):
        monkeypatch.setenv(download.MANIFEST_ENV, str(name))
        result: list = []
        worker = threading.Thread(target=lambda: result.append(_raises(download.manifest)), daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert result, f"{name}: reading the manifest blocked"
        assert isinstance(result[0], download.DownloadError) and expected in str(result[0]), (name, result)


def _raises(function):
    try:
        function()
    except Exception as exc:  # the test looks at which
        return exc
    return None


@pytest.mark.slow
def test_a_list_manifest_with_a_sample_is_exit_2_and_one_line(tmp_path):
    with _small_internet(tmp_path) as hub:
        (tmp_path / "list.json").write_text("[1, 2]")
        env = _env(hub, tmp_path, VEMOCLAP_MODELS_DIR=str(tmp_path / "models"))
        env["VEMOCLAP_DOWNLOAD_MANIFEST"] = str(tmp_path / "list.json")
        run = _cli("analyze", "sample:joy", "--extractors", "clip", "--no-classifier", "-q", env=env, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and "not a list" in lines[0], run.stderr[-2000:]


@pytest.mark.slow
def test_credentials_in_hf_endpoint_are_not_written_to_provenance(tmp_path):
    with _small_internet(tmp_path) as hub:
        env = _env(hub, tmp_path)
        endpoint = hub.endpoint
        env["HF_ENDPOINT"] = endpoint.replace("http://", "http://user:secret@")
        run = _cli("download-models", "--dir", tmp_path / "w", "--only", "clip", "-q", env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    record = models.read_provenance(tmp_path / "w" / models.MODELS["clip"].hub_id)
    assert record["endpoint"] == endpoint
    assert not [p for p in (tmp_path / "w").rglob("*") if p.is_file() and b"secret" in p.read_bytes()]


@pytest.mark.slow
def test_a_hub_offering_xet_storage_is_still_read_over_guarded_http(tmp_path):
    # hf_xet would download in Rust, where the address, size and deadline guard cannot see the bytes
    with _small_internet(tmp_path, xet=True) as hub:
        env = _env(hub, tmp_path)
        run = _cli("download-models", "--dir", tmp_path / "w", "--only", "clip", "-q", env=env, timeout=120)
        offered = [r for r in hub.requests if r.method == "HEAD" and "model.safetensors" in r.path]
        asked = [r for r in hub.requests if "xet-read-token" in r.path]
    assert run.returncode == 0, run.stderr[-2000:]
    assert offered and not asked  # the offer was made, and not taken
    weights = next((tmp_path / "w").rglob("model.safetensors"))
    assert weights.read_bytes() == b"\0" * 4096
