"""Dataset feature extraction end to end on generated videos and tiny models of the real classes:
files and manifest, positions, resume after a kill, failures and retries, Ray, importing features."""

from __future__ import annotations

import csv
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vemoclap.training.dataset import load_dataset
from vemoclap.training.extraction import (
    CONFIG_FILE,
    FAILURES_FILE,
    MANIFEST_FILE,
    extract_dataset,
    read_manifest,
    rebuild_manifest,
)
from vemoclap.training.reference_features import import_reference_features
from vemoclap.training.store import FeatureFileError, feature_path, load_features
from vemoclap.training.worker import ExtractionError

ROOT = Path(__file__).resolve().parents[1]
CHEAP = dict(extractors=["clip", "beats", "face_emotion"], face_detector="opencv", device="cpu", progress=False)
SEQUENCE_DIMS = {"clip": 512, "beats": 768, "face_emotion": 768}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    from vemoclap.testing import make_tiny_models

    directory = tmp_path_factory.mktemp("models")
    make_tiny_models(directory, classifier=False)
    return directory


def _face_frame():
    import cv2
    from skimage.data import astronaut

    image = cv2.resize(astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    return lambda index: image


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tiny Ekman-like tree: 3 classes × 3 videos of 2–5 s; the joy videos show a face."""
    from vemoclap.testing import make_video

    root = tmp_path_factory.mktemp("ekman")
    face = _face_frame()
    for label in ("anger", "fear", "joy"):
        for i, duration in enumerate((2.0, 3.5, 5.0)):
            options = dict(size=(192, 192), frame_fn=face, audio="speech") if label == "joy" else dict(size=(96, 64))
            make_video(root / label / f"{label} clip_{i}.mp4", duration=duration, fps=8, **options)
    return root


@pytest.fixture(scope="module")
def reference(dataset, models, tmp_path_factory):
    """One uninterrupted single-process run that the other tests compare against."""
    out = tmp_path_factory.mktemp("features") / "ref"
    videos = load_dataset(dataset)
    report = extract_dataset(videos, out, models_dir=models, **CHEAP)
    return videos, out, report


def _tensors(out: Path, video_id: str) -> dict[str, np.ndarray]:
    loaded = load_features(feature_path(out, video_id))
    return {**loaded.features, **{k + ".times": v for k, v in loaded.times.items()}}


def _assert_same_output(videos, out_a: Path, out_b: Path, exact: bool = True) -> None:
    for video in videos:
        a, b = _tensors(out_a, video.id), _tensors(out_b, video.id)
        assert a.keys() == b.keys(), video.id
        for name in a:
            if exact:
                np.testing.assert_array_equal(a[name], b[name], err_msg=f"{video.id} {name}")
            else:  # other thread counts may reorder float sums
                np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=f"{video.id} {name}")


@pytest.mark.slow
def test_one_file_per_video_with_features_times_and_metadata(reference, models):
    from vemoclap.pipeline import Analyzer

    videos, out, report = reference
    assert (report.total, report.extracted, report.skipped, report.failed) == (9, 9, 0, {})
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / CONFIG_FILE).read_text())["config"]["extractors"] == CHEAP["extractors"]
    manifest = {row["id"]: row for row in read_manifest(out)}
    assert set(manifest) == {v.id for v in videos}

    for video in videos:
        loaded = load_features(feature_path(out, video.id))
        meta = loaded.metadata
        assert (meta["id"], meta["label"], meta["split"]) == (video.id, video.label, video.split)
        assert meta["name"] == video.name
        duration = meta["duration"]
        # 1 frame per second but at least 16: these short videos get 16 equidistant frames.
        assert meta["frames"] == 16 and loaded.features["clip"].shape == (16, 512)
        for name, array in loaded.features.items():
            assert array.dtype == np.float32 and array.shape[1] == SEQUENCE_DIMS[name]
            times = loaded.times[name]
            assert len(times) == len(array) and np.all(np.diff(times) > 0) and times[-1] <= duration + 0.1
        # Audio: every 3-s chunk with a 1.5-s hop; a track shorter than 3 s has none, and says why.
        if duration < 3:
            assert "beats" not in loaded.features and "shorter" in loaded.missing["beats"]
        else:
            assert len(loaded.features["beats"]) == int((duration - 3) // 1.5) + 1
        if video.label == "joy":  # the astronaut's face is found in every frame
            assert loaded.features["face_emotion"].shape == (16, 768)
        else:
            assert "face_emotion" not in loaded.features and loaded.missing["face_emotion"]
        assert meta["extractors"]["beats"]["options"]["n_chunks"] == 64
        assert "tags" in meta["readable"]["beats"] or duration < 3
        row = manifest[video.id]
        assert row["feature_file"] == feature_path(out, video.id) and row["missing"] == loaded.missing
        assert row["split"] == video.split and row["name"] == video.name

    # The stored rows are exactly what the extractor gives on the same 16 frames.
    analyzer = Analyzer(["clip"], device="cpu", models_dir=models, classifier=None)
    clip = analyzer.read_clip(videos[0].path)
    direct = analyzer.extractors["clip"](clip)
    np.testing.assert_array_equal(load_features(feature_path(out, videos[0].id)).features["clip"], direct.feature)


def test_rerun_skips_finished_cleans_temporary_files_and_checks_options(reference, models):
    videos, out, _ = reference
    stamps = {v.id: feature_path(out, v.id).stat().st_mtime_ns for v in videos}
    leftover = out / "joy" / ".joy_clip_0.safetensors.abc123.tmp"  # what a killed write leaves
    leftover.write_bytes(b"partial")
    report = extract_dataset(videos, out, models_dir=models, **CHEAP)
    assert (report.extracted, report.skipped) == (0, 9)
    assert not leftover.exists()
    assert {v.id: feature_path(out, v.id).stat().st_mtime_ns for v in videos} == stamps
    before = read_manifest(out)  # the feature files alone can give the manifest back
    (out / MANIFEST_FILE).unlink()
    rebuild_manifest(out)
    assert read_manifest(out) == before
    with pytest.raises(ExtractionError, match="other options") as info:
        extract_dataset(videos, out, models_dir=models, positions=8, **CHEAP)
    assert "\n" not in str(info.value)


def test_a_second_run_on_the_same_folder_is_refused(reference, models):
    import fcntl

    videos, out, _ = reference
    with open(out / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ExtractionError, match="another extraction"):
            extract_dataset(videos, out, models_dir=models, **CHEAP)


def test_positions_follow_duration_within_limits(dataset, models, tmp_path):
    videos = [v for v in load_dataset(dataset) if v.label == "anger"]  # 2.0, 3.5, 5.0 s
    out = tmp_path / "fps"
    extract_dataset(
        videos, out, models_dir=models, min_positions=3, max_positions=4, **{**CHEAP, "extractors": ["clip", "beats"]}
    )
    frames = {v.path.stem: load_features(feature_path(out, v.id)) for v in videos}
    assert [len(frames[f"anger clip_{i}"].features["clip"]) for i in range(3)] == [3, 4, 4]  # round(s), clamped
    assert len(frames["anger clip_2"].features["beats"]) == 2  # 2 chunks fit in 5 s, cap 4

    fixed = tmp_path / "fixed"
    extract_dataset(videos, fixed, models_dir=models, positions=5, **{**CHEAP, "extractors": ["clip", "beats"]})
    assert all(len(load_features(feature_path(fixed, v.id)).features["clip"]) == 5 for v in videos)
    assert len(load_features(feature_path(fixed, videos[2].id)).features["beats"]) == 2


def test_a_broken_video_is_recorded_and_retried(dataset, models, tmp_path):
    from vemoclap.testing import make_video, write_text_file

    root = tmp_path / "data"
    (root / "fear").mkdir(parents=True)
    (root / "fear" / "good.mp4").write_bytes((dataset / "fear" / "fear clip_1.mp4").read_bytes())
    write_text_file(root / "fear" / "broken.mp4")
    videos = load_dataset(root, val_size=0, test_size=0.5)
    out = tmp_path / "out"
    report = extract_dataset(videos, out, models_dir=models, **CHEAP)
    assert report.extracted == 1 and list(report.failed) == ["fear/broken"]
    reason = report.failed["fear/broken"]
    assert "broken.mp4" in reason and "\n" not in reason
    rows = list(csv.DictReader(open(out / FAILURES_FILE)))
    assert [(r["id"], r["attempts"]) for r in rows] == [("fear/broken", "1")]
    assert [r["id"] for r in read_manifest(out)] == ["fear/good"]

    again = extract_dataset(videos, out, models_dir=models, **CHEAP)  # retried, fails again
    assert again.skipped == 1 and list(again.failed) == ["fear/broken"]
    assert next(csv.DictReader(open(out / FAILURES_FILE)))["attempts"] == "2"

    make_video(root / "fear" / "broken.mp4", duration=2.0, size=(96, 64), fps=8)  # fixed by the user
    fixed = extract_dataset(videos, out, models_dir=models, **CHEAP)
    assert (fixed.extracted, fixed.failed) == (1, {})
    assert list(csv.DictReader(open(out / FAILURES_FILE))) == []
    assert sorted(r["id"] for r in read_manifest(out)) == ["fear/broken", "fear/good"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(reference, dataset, models, tmp_path):
    videos, ref_out, _ = reference
    videos = videos[::2]  # 5 videos of every class and length keep it quick
    out = tmp_path / "killed"
    script = (
        "from vemoclap.training.dataset import load_dataset\n"
        "from vemoclap.training.extraction import extract_dataset\n"
        f"videos = [v for v in load_dataset({str(dataset)!r}) if v.id in {[v.id for v in videos]!r}]\n"
        f"extract_dataset(videos, {str(out)!r}, models_dir={str(models)!r}, **{CHEAP!r})\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    try:
        while not list(out.rglob("*.safetensors")):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no feature file appeared"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finished = list(out.rglob("*.safetensors"))
    assert 1 <= len(finished) < len(videos)
    for path in finished:  # whatever the kill interrupted, every feature file there is whole
        load_features(path)

    report = extract_dataset(videos, out, models_dir=models, **CHEAP)
    assert report.skipped == len(finished) and report.extracted == len(videos) - len(finished)
    assert not list(out.rglob("*.tmp"))
    _assert_same_output(videos, ref_out, out)
    assert [r["id"] for r in read_manifest(out)] == [v.id for v in videos]


@pytest.mark.slow
def test_ray_with_two_workers_matches_one_process(reference, models, tmp_path, monkeypatch, caplog):
    pytest.importorskip("ray")
    import ray

    caplog.set_level(logging.INFO, logger="vemoclap.training.cluster")

    # Local Ray must not reach out: a home folder without a bootstrap file makes vemoclap give Ray
    # a private one with provider "local" (and usage stats off, no dashboard, 127.0.0.1).
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    videos, ref_out, _ = reference
    videos = videos[1::2]  # 4 videos: each worker gets two
    out = tmp_path / "ray"
    report = extract_dataset(videos, out, models_dir=models, use_ray=True, num_workers=2, **CHEAP)
    assert (report.ray, report.workers, report.extracted, report.failed) == (True, 2, 4, {})
    # Each worker decoded its second video while it worked on its first.
    assert "Ray workers decoded 2 of 4 videos ahead" in caplog.text
    assert not ray.is_initialized()  # started here, so shut down here
    _assert_same_output(videos, ref_out, out, exact=False)
    assert os.environ["HOME"] == str(tmp_path / "home")


@pytest.mark.slow
def test_default_extractor_set(dataset, models, tmp_path):
    from vemoclap.training.dataset import Video

    path = dataset / "joy" / "joy clip_1.mp4"  # face and speech-like sound, 3.5 s
    video = Video("joy/one", path, "joy", "train")
    report = extract_dataset(
        [video],
        tmp_path / "all",
        models_dir=models,
        face_detector="opencv",
        device="cpu",
        min_positions=20,
        progress=False,
        extractor_options={"asr_sentiment": {"temperature": 0.0}},
    )
    assert report.failed == {}
    loaded = load_features(feature_path(tmp_path / "all", "joy/one"))
    meta = loaded.metadata
    assert set(meta["extractors"]) == {"clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment"}
    assert loaded.features["clip"].shape == (20, 512)  # sequence features at 20 positions
    for name in ("asr_sentiment", "ocr_sentiment"):  # single vectors: 1 × 768, or missing with a reason
        assert loaded.features[name].shape == (1, 768) if name in loaded.features else loaded.missing[name]
        assert name not in loaded.times
    assert set(loaded.features) | set(loaded.missing) == {
        "clip",
        "beats",
        "face_emotion",
        "asr_sentiment",
        "ocr_sentiment",
    }
    assert "text" in meta["readable"]["asr_sentiment"]


def test_import_reference_features(tmp_path):
    rng = np.random.default_rng(0)
    published = {
        "train": {
            "anger_annoying_01.mp4": {
                "clip": rng.normal(size=(16, 512)),
                "beats": rng.normal(size=(12, 768)),
                "face_emotion": np.zeros((0, 768)),
                "asr_sentiment": rng.normal(size=768),
                "ocr_sentiment": None,
                "label": 0,
            },
        },
        "test": {
            "joy party.mp4": {
                "clip": rng.normal(size=(16, 512)),
                "face_emotion": rng.normal(size=(3, 768)),
                "asr_sentiment": rng.normal(size=(1, 768)),
                "label": "Joy",
                "url": "ignored",
            },
        },
    }
    source = tmp_path / "features.pkl"
    source.write_bytes(pickle.dumps(published))
    out = tmp_path / "imported"

    report = import_reference_features(source, out, progress=False)  # numpy and builtins: allowed
    assert report.extracted == 2
    rows = {row["id"]: row for row in read_manifest(out)}
    assert set(rows) == {"anger/anger_annoying_01", "joy/joy_party"}
    assert rows["joy/joy_party"]["split"] == "test" and rows["joy/joy_party"]["name"] == "joy party.mp4"
    anger = load_features(feature_path(out, "anger/anger_annoying_01"))
    expected = published["train"]["anger_annoying_01.mp4"]["clip"].astype(np.float32)
    np.testing.assert_array_equal(anger.features["clip"], expected)
    assert anger.features["asr_sentiment"].shape == (1, 768)
    assert set(anger.missing) == {"face_emotion", "ocr_sentiment"}
    assert anger.metadata["label"] == "anger" and anger.metadata["name"] == "anger_annoying_01.mp4"

    bad = tmp_path / "bad.pkl"
    for content, message in [
        ([1, 2], "expected a dict"),
        ({"v.mp4": {"clip": np.zeros((16, 511)), "label": "joy"}}, r"shape \(16, 511\)"),
        ({"v.mp4": {"clip": np.zeros((16, 512)), "label": "calm"}}, "not one of"),
        ({"v.mp4": {"clip": np.zeros((16, 512))}}, "no label"),
        ({"v.mp4": {"asr_sentiment": np.zeros((2, 768)), "label": 1}}, "expected"),
    ]:
        bad.write_bytes(pickle.dumps(content))
        with pytest.raises(FeatureFileError, match=message) as info:
            import_reference_features(bad, tmp_path / "bad_out", progress=False)
        assert "\n" not in str(info.value)

    # A torch.save file needs no trust: the safe loader reads tensors and plain containers.
    import torch

    torch_file = tmp_path / "features.pt"
    torch.save({"x.mp4": {"clip": torch.ones(4, 512), "label": 2}}, torch_file)
    import_reference_features(torch_file, tmp_path / "from_torch", progress=False)
    assert load_features(feature_path(tmp_path / "from_torch", "fear/x")).features["clip"].shape == (4, 512)


def test_cli_commands(reference, dataset, models, tmp_path, capsys):
    from vemoclap.cli import build_parser

    parser = build_parser()

    videos, out, _ = reference
    args = parser.parse_args(
        [
            "extract",
            str(dataset),
            "--out",
            str(out),
            "--extractors",
            "clip,beats,face_emotion",
            "--face-detector",
            "opencv",
            "--device",
            "cpu",
            "--models-dir",
            str(models),
            "-q",
        ]
    )
    assert args.func(args) == 0  # everything is there already: nothing to extract
    assert "9/9 videos" in capsys.readouterr().out

    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text("anger clip_0.mp4\n")
    args = parser.parse_args(
        [
            "extract",
            str(dataset),
            "--out",
            str(out),
            "--extractors",
            "clip,beats,face_emotion",
            "--face-detector",
            "opencv",
            "--device",
            "cpu",
            "--models-dir",
            str(models),
            "-q",
            "--blacklist",
            str(blacklist),
            "--blacklist-splits",
            "train,test",
        ]
    )
    assert args.func(args) == 0
    assert "8/8 videos" in capsys.readouterr().out
    assert "anger/anger_clip_0" not in {row["id"] for row in read_manifest(out)}
    extract_dataset(videos, out, models_dir=models, **CHEAP)  # restore the full manifest for other tests

    args = parser.parse_args(["blacklist", "suggest", str(dataset), "--all-labels"])
    assert args.func(args) == 0
    assert "0 of 9 videos" in capsys.readouterr().out

    source = tmp_path / "f.pkl"
    source.write_bytes(pickle.dumps({"a.mp4": {"clip": np.zeros((2, 512)), "label": "joy"}}))
    args = parser.parse_args(["import-features", str(source), "--out", str(tmp_path / "imp"), "-q"])
    assert args.func(args) == 0
    assert (tmp_path / "imp" / MANIFEST_FILE).is_file()


def test_the_next_video_is_read_while_the_current_one_is_worked_on(tmp_path):
    """VideoLoop's prefetch: reading video k+1 overlaps the work on video k, at most one ahead, and
    a file that cannot be read fails alone, as it would without prefetch."""
    import threading

    from vemoclap.errors import UserError
    from vemoclap.training.dataset import Video
    from vemoclap.training.loop import VideoLoop

    videos = [Video(f"joy/v{i}", tmp_path / f"v{i}.mp4", "joy") for i in range(4)]
    events, lock, working = [], threading.Lock(), threading.Event()

    def read(video):
        with lock:
            events.append(("read", video.id, working.is_set()))
        if video.id == "joy/v2":
            raise UserError(f"{video.path.name} is not a video")
        return video.id.upper()

    def work(video, read_value):
        working.set()
        time.sleep(0.2)  # long enough for the next read to start meanwhile
        with lock:
            events.append(("work", video.id, read_value))
        working.clear()
        return read_value

    results = {}
    loop = VideoLoop(len(videos), lambda v, r, why: results.__setitem__(v.id, (r, why)), desc="t", progress=False)
    with loop:
        loop.run(videos, work, prefetch=read)
    assert results == {
        "joy/v0": ("JOY/V0", None),
        "joy/v1": ("JOY/V1", None),
        "joy/v2": (None, "v2.mp4 is not a video"),
        "joy/v3": ("JOY/V3", None),
    }
    assert ("read", "joy/v1", True) in events  # read while v0 was being worked on
    reads = [e[1] for e in events if e[0] == "read"]
    works = [e[1] for e in events if e[0] == "work"]
    assert reads == [v.id for v in videos] and works == ["joy/v0", "joy/v1", "joy/v3"]
    for done, video in zip(works, ["joy/v0", "joy/v1", "joy/v3"]):  # never more than one read ahead
        position = events.index(("work", done, done.upper()))
        later = [e[1] for e in events[:position] if e[0] == "read"]
        assert len(later) <= [v.id for v in videos].index(video) + 2
