"""Verified downloads from a local stand-in for the internet (tests/hubserver.py on 127.0.0.1): the
hub serves the tiny models, a raw-file host the reference's classifier and a sample; the CLI a user
runs fetches them into an empty folder, verifies every file and prints an emotion."""

from __future__ import annotations

import hashlib
import json
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
    manifest = root / "manifest.json"
    reference = {p: git_blob_sha1((raw / p).read_bytes()) for p in [*models.CLASSIFIER_FILES, "sample_data/joy.mp4"]}
    manifest.write_text(
        json.dumps(
            {"reference": reference, "whisper": {"small": _sha256(raw / "whisper" / WHISPER_SHA_SMALL / "small.pt")}}
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
