"""`vemoclap reproduce ekman6` against a stand-in Zenodo record (tests/zenodoserver.py): verified,
resumable downloads; the allow-list unpickler; the author's published layout; the whole command."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from vemoclap.labels import EMOTIONS
from vemoclap.models.download import DownloadError, VerificationError
from vemoclap.training.extraction import read_manifest
from vemoclap.training.reference_features import PickleRefused, import_reference_features
from vemoclap.training.reproduce import (
    EKMAN6_RECORD,
    ZENODO_ENV,
    RecordError,
    fetch_files,
    read_record,
)
from vemoclap.training.store import FeatureFileError

sys.path.insert(0, str(Path(__file__).parent))
from zenodoserver import ZenodoServer  # noqa: E402

DIMS = {"clip": 512, "beats": 768, "face_emotion": 768, "asr_sentiment": 768, "ocr_sentiment": 768}


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed (conftest turns them off); the only server is the stand-in on 127.0.0.1."""
    monkeypatch.setenv("VEMOCLAP_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def author_layout(n_videos: int, seed: int, one_hot: bool = True) -> dict:
    """Features in the layout of the author's features.pkl (movie-genre-classification @ caac031):
    samples → {features: {name: k×dim array, empty when missing}, label}, stats, idx_to_label."""
    rng = np.random.default_rng(seed)
    samples = {}
    for i in range(n_videos):
        label = i % len(EMOTIONS)
        features = {
            "clip": rng.normal(label, 1.0, size=(16, 512)).astype(np.float32),
            "beats": rng.normal(size=(int(rng.integers(1, 16)), 768)).astype(np.float32),
            "face_emotion": np.zeros((0, 768), np.float32) if i % 4 == 0 else rng.normal(size=(3, 768)),
            "asr_sentiment": rng.normal(size=(1, 768)).astype(np.float32),
            "ocr_sentiment": np.zeros((0, 768), np.float32) if i % 3 else rng.normal(size=(1, 768)),
        }
        target = np.eye(len(EMOTIONS), dtype=np.float32)[label] if one_hot else np.int64(label)
        samples[f"{EMOTIONS[label]}_keyword_{seed}_{i:03d}"] = {"features": features, "label": target}
    stats = {name: {"mean": 0.0, "std": 1.0, "min": -4.0, "max": 4.0} for name in DIMS}
    return {"samples": samples, "stats": stats, "idx_to_label": {i: name.title() for i, name in enumerate(EMOTIONS)}}


class Payload:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_naming_a_disallowed_global_is_refused_without_running_it(tmp_path, capsys):
    from vemoclap.cli import main

    marker = tmp_path / "it-ran"
    bad = tmp_path / "features.pkl"
    bad.write_bytes(pickle.dumps({"v.mp4": {"clip": np.zeros((2, 512)), "label": Payload(marker)}}))
    with pytest.raises(PickleRefused, match=r"names posix\.system|names os\.system") as info:
        import_reference_features(bad, tmp_path / "out", progress=False)
    assert "\n" not in str(info.value)
    assert not marker.exists() and not (tmp_path / "out").exists()

    assert main(["import-features", str(bad), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "system" in err and not marker.exists()
    with pytest.raises(SystemExit):  # the old escape hatch is gone
        main(["import-features", str(bad), "--out", str(tmp_path / "out"), "--trust-pickle"])


def test_the_authors_layout_imports_with_splits_from_file_names(tmp_path):
    train, test = tmp_path / "ekman6_train.pkl", tmp_path / "ekman6_test.pkl"
    train.write_bytes(pickle.dumps(author_layout(12, 0)))
    # protocol 2 (array bytes via _codecs.encode) with numpy 1's module names, as a 2024 pickle has them
    test.write_bytes(
        pickle.dumps(author_layout(6, 1, one_hot=False), protocol=2).replace(b"numpy._core", b"numpy.core")
    )
    report = import_reference_features([train, test], tmp_path / "out", progress=False)
    assert report.extracted == 18
    rows = read_manifest(tmp_path / "out")
    assert sorted(r["split"] for r in rows) == ["test"] * 6 + ["train"] * 12
    by_name = {r["name"]: r for r in rows}
    assert by_name["fear_keyword_0_002"]["label"] == "fear" and by_name["joy_keyword_1_003"]["label"] == "joy"

    bad = author_layout(1, 2)
    next(iter(bad["samples"].values()))["label"] = np.array([1, 1, 0, 0, 0, 0], np.float32)
    train.write_bytes(pickle.dumps(bad))
    with pytest.raises(FeatureFileError, match="not one-hot"):
        import_reference_features(train, tmp_path / "bad", progress=False)


def test_the_record_is_pinned_and_every_file_verified_and_resumed(tmp_path, online, monkeypatch):
    data = pickle.dumps(author_layout(4, 0))
    with ZenodoServer({EKMAN6_RECORD: {"features_train.pkl": data}}) as zenodo:
        record = read_record(EKMAN6_RECORD, zenodo.base_url)
        assert [f.key for f in record.feature_files()] == ["features_train.pkl"]

        zenodo.cut_after("features_train.pkl", 1000)
        with pytest.raises(DownloadError, match="run the command again"):
            fetch_files(record.files, tmp_path, progress=False)
        assert (tmp_path / "features_train.pkl.part").stat().st_size == 1000
        (path,) = fetch_files(record.files, tmp_path, progress=False)
        assert path.read_bytes() == data
        assert zenodo.requests[-1][2] == "bytes=1000-"  # continued, not restarted

        zenodo.corrupt("features_train.pkl")
        path.unlink()
        with pytest.raises(VerificationError, match="md5") as info:
            fetch_files(record.files, tmp_path, progress=False)
        assert "\n" not in str(info.value) and not path.exists()

        zenodo.answer_as(EKMAN6_RECORD, EKMAN6_RECORD + 1)
        with pytest.raises(RecordError, match="another version"):
            read_record(EKMAN6_RECORD, zenodo.base_url)
    with pytest.raises(RecordError, match="cannot read the record"):
        read_record(EKMAN6_RECORD, zenodo.base_url)

    from vemoclap.errors import ModelUnavailable

    monkeypatch.setenv("VEMOCLAP_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="downloads are off"):
        fetch_files(record.files, tmp_path / "elsewhere", progress=False)
    with pytest.raises(ModelUnavailable, match="downloads are off"):
        read_record(EKMAN6_RECORD, zenodo.base_url, tmp_path / "none.json")


@pytest.mark.slow
def test_reproduce_runs_end_to_end_and_prints_the_table_beside_the_papers(tmp_path, monkeypatch, capsys, online):
    from vemoclap.cli import main
    from vemoclap.models.kinds import target_path
    from vemoclap.tiny import make_tiny_reference_classifier

    models = tmp_path / "models"
    make_tiny_reference_classifier(target_path("classifier", models))
    train, test = author_layout(36, 0), author_layout(24, 1)
    blacklist = "# the author's list\nanger_keyword_0_000.mp4\nsurprise_keyword_1_005.mp4\njoy_keyword_1_003.mp4\n"
    files = {
        "ekman6_train.pkl": pickle.dumps(train),
        "ekman6_test.pkl": pickle.dumps(test),
        "ekman_blacklist.txt": blacklist.encode(),
        "videos.zip": b"raw videos: not needed for the features",
    }
    out = tmp_path / "run"
    argv = ["reproduce", "ekman6", "--runs", "2", "--both", "--epochs", "1", "--out", str(out)]
    argv += ["--models-dir", str(models), "--device", "cpu", "-q"]
    with ZenodoServer({EKMAN6_RECORD: files}) as zenodo:
        monkeypatch.setenv(ZENODO_ENV, zenodo.base_url)
        assert main(argv) == 0
        printed = capsys.readouterr().out
        fetched = [path for method, path, _ in zenodo.requests if path.endswith("/content")]
        assert sorted(p.split("/")[-2] for p in fetched) == [
            "ekman6_test.pkl",
            "ekman6_train.pkl",
            "ekman_blacklist.txt",
        ]

        assert "recipe 'reference" in printed
        assert "| accuracy | 65.28% |" in printed and "| 67.88% |" in printed
        for name, value in [("anger", "0.70"), ("disgust", "0.55"), ("surprise", "0.64")]:
            assert f"| {name} | {value} |" in printed
        assert printed.count(" ± ") >= 14  # every cell of ours: two runs each
        assert "heads verdict" in printed and "4 heads" in printed and "8 heads" in printed
        assert "RANDOM WEIGHTS" in printed  # the tiny classifier says so
        assert (out / "heads" / "heads.md").is_file() and (out / "table.md").read_text().startswith("Ekman-6")
        paper = json.loads((out / "paper" / "seed_0" / "test" / "metrics.json").read_text())
        cleaned = json.loads((out / "cleaned" / "seed_1" / "test" / "metrics.json").read_text())
        assert paper["n_videos"] == 24 and cleaned["n_videos"] == 22  # the blacklist on the test split
        settings = json.loads((out / "cleaned" / "seed_1" / "settings.json").read_text())
        assert settings["epochs"] == 1 and "surprise_keyword_1_005" in settings["excluded"]

        # Again: nothing downloaded, imported or trained twice; the same table.
        assert main(argv) == 0
        assert capsys.readouterr().out == printed
        assert len([p for _, p, _ in zenodo.requests if p.endswith("/content")]) == len(fetched)


def test_features_of_another_recipe_are_checked_before_any_training(tmp_path, capsys):
    from vemoclap.cli import main

    source = tmp_path / "ekman6_train.pkl"
    source.write_bytes(pickle.dumps(author_layout(6, 0)))
    imported = tmp_path / "imported"
    import_reference_features(source, imported, progress=False)
    out = tmp_path / "run"

    argv = ["reproduce", "ekman6", "--features", str(imported), "--out", str(out), "-q"]
    assert main([*argv, "--recipe", "vemoclap"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made by recipe 'reference', not 'vemoclap'" in err
    assert main([*argv, "--recipe", "reference", "--cleaned"]) == 2
    assert "needs a blacklist" in capsys.readouterr().err
    assert main([*argv, "--recipe", "reference"]) == 2  # one split only: the dataset's own train/test is needed
    assert "need 'train' and 'test'" in capsys.readouterr().err
    assert not (out / "paper" / "seed_0" / "classifier").exists()
    assert main(["reproduce", "ekman6", "--recipe", "vemoclap", "--out", str(out), "-q"]) == 2
    assert "pass --features DIR" in capsys.readouterr().err
    assert main(["reproduce", "ekman6", "--recipe", "nosuch", "--out", str(out), "-q"]) == 2
    assert "unknown feature recipe 'nosuch'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_notebooks_reproduce_cell_shows_the_table_and_the_heads_verdict(tmp_path, monkeypatch, online):
    from vemoclap.app import VemoclapApp
    from vemoclap.models.kinds import target_path
    from vemoclap.tiny import make_tiny_reference_classifier

    models = tmp_path / "models"
    make_tiny_reference_classifier(target_path("classifier", models))
    files = {
        "ekman6_train.pkl": pickle.dumps(author_layout(30, 0)),
        "ekman6_test.pkl": pickle.dumps(author_layout(18, 1)),
    }
    app = VemoclapApp(models_dir=models, output_dir=tmp_path / "outputs", device="cpu", extractors=[])
    app.reproduce_step()
    view = app._reproduce
    view.runs.value = 1
    with ZenodoServer({EKMAN6_RECORD: files}) as zenodo:
        monkeypatch.setenv(ZENODO_ENV, zenodo.base_url)
        view.button.click()
    shown = view.table.value
    assert "65.28%" in shown and "heads verdict" in shown and "RANDOM WEIGHTS" in shown, view.message.value
    assert (tmp_path / "outputs" / "reproduce" / "ekman6" / "table.md").is_file()
    assert not view.button.disabled

    # The record without its features: one line in the cell, no table, the button usable again.
    with ZenodoServer({EKMAN6_RECORD: {"videos.zip": b"raw"}}) as zenodo:
        monkeypatch.setenv(ZENODO_ENV, zenodo.base_url)
        app.controller.output_dir = tmp_path / "elsewhere"  # the first record is kept (pinned) in the first
        view.button.click()
    assert view.table.value == "" and "holds no features file" in view.message.value
    assert not view.button.disabled
