"""Datasets, splits and the blacklist (no decoding: the files only need to exist)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from vemoclap.labels import EMOTIONS
from vemoclap.training.blacklist import RULES, append_suggestions, parse_blacklist, read_blacklist, suggest, tokens
from vemoclap.training.dataset import DatasetError, Video, apply_blacklist, assign_ids, load_dataset

ROOT = Path(__file__).resolve().parents[1]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _ekman_tree(root: Path, per_class: int = 20) -> Path:
    for label in EMOTIONS:
        for i in range(per_class):
            _touch(root / label.capitalize() / f"{label} clip {i:03d}.mp4")
    return root


def test_class_folders_ids_labels_and_stratified_splits(tmp_path):
    root = _ekman_tree(tmp_path / "ekman", per_class=20)
    _touch(root / "Joy" / "notes.txt")  # not a video: ignored
    _touch(root / "Joy" / ".hidden.mp4")  # hidden: ignored
    videos = load_dataset(root, seed=3)
    assert len(videos) == 6 * 20
    assert {v.label for v in videos} == set(EMOTIONS)  # folder names matched case-insensitively
    assert all(v.id == v.id.strip() and "/" in v.id and " " not in v.id for v in videos)
    assert len({v.id for v in videos}) == len(videos)
    assert videos[0].name.endswith(".mp4") and " " in videos[0].name  # the original name is kept

    splits = Counter(v.split for v in videos)
    assert splits["test"] == 60 and splits["train"] + splits["val"] == 60 and splits["val"] == 6
    for split in ("train", "val", "test"):  # stratified: every class in every split, evenly
        per_label = Counter(v.label for v in videos if v.split == split)
        assert set(per_label) == set(EMOTIONS)
        assert max(per_label.values()) - min(per_label.values()) <= 1

    again = load_dataset(root, seed=3)
    assert [(v.id, v.split) for v in again] == [(v.id, v.split) for v in videos]
    other = load_dataset(root, seed=4)
    assert [v.split for v in other] != [v.split for v in videos]
    half = load_dataset(root, test_size=0.25, val_size=0)
    assert Counter(v.split for v in half) == {"train": 90, "test": 30}


def test_ids_are_unique_and_stable_under_collisions():
    items = [("joy", "a b.mp4"), ("joy", "a_b.avi"), ("joy", "A b.mkv"), ("joy", "sub/a b.mp4"), ("fear", "a b.mp4")]
    ids = assign_ids(items)
    assert len({i.lower() for i in ids}) == len(ids)
    assert ids[4] == "fear/a_b"
    assert sorted(i.lower() for i in ids[:4]) == ["joy/a_b", "joy/a_b-2", "joy/a_b-3", "joy/a_b-4"]
    assert assign_ids(list(reversed(items))) == list(reversed(ids))  # order of listing does not matter


def test_split_folders_and_unknown_labels(tmp_path, caplog):
    root = tmp_path / "data"
    for split in ("train", "Test"):
        for label in ("calm", "joy"):
            for i in range(3):
                _touch(root / split / label / f"{label}{i}.mp4")
    with caplog.at_level(logging.WARNING):
        videos = load_dataset(root, val_size=0)
    assert "calm" in caplog.text  # an unknown label is accepted with a warning
    assert Counter(v.split for v in videos) == {"train": 6, "test": 6}
    with pytest.raises(DatasetError, match="calm"):
        load_dataset(root, strict_labels=True)


def test_manifest_with_and_without_splits(tmp_path):
    for i in range(4):
        _touch(tmp_path / "clips" / f"v{i}.mp4")
    manifest = tmp_path / "set.csv"
    manifest.write_text(
        "path,label,split\n"
        + "".join(f"clips/v{i}.mp4,{'Joy' if i % 2 else 'fear'},{'test' if i == 3 else 'train'}\n" for i in range(4))
    )
    videos = load_dataset(manifest, val_size=0)
    assert [(v.id, v.label, v.split) for v in videos] == [
        ("fear/v0", "fear", "train"),
        ("fear/v2", "fear", "train"),
        ("joy/v1", "joy", "train"),
        ("joy/v3", "joy", "test"),
    ]
    assert videos[0].path == tmp_path / "clips" / "v0.mp4"
    with_val = load_dataset(manifest)  # no val given: carved out of train
    assert Counter(v.split for v in with_val)["val"] == 1

    plain = tmp_path / "plain.csv"
    plain.write_text("label,path\n" + "".join(f"joy,clips/v{i}.mp4\n" for i in range(4)))
    assert {v.split for v in load_dataset(plain, val_size=0)} == {"train", "test"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("file,label\nclips/v0.mp4,joy\n", "lacks column"),
        ("path,label\nclips/nope.mp4,joy\n", "file not found"),
        ("path,label\n", "no rows"),
        ("path,label,split\nclips/v0.mp4,joy,holdout\n", "unknown split"),
        ("path,label\nclips/v0.mp4,joy\nclips/v0.mp4,fear\n", "listed twice"),
    ],
)
def test_manifest_errors_are_one_line(tmp_path, content, message):
    _touch(tmp_path / "clips" / "v0.mp4")
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(manifest)
    assert "\n" not in str(info.value)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such"):
        load_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "novideo" / "joy").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no video files"):
        load_dataset(tmp_path / "novideo")


def test_apply_blacklist_by_name_and_split():
    videos = [
        Video(f"joy/v{i}", Path(f"/data/joy/V{i}.mp4"), "joy", split)
        for i, split in enumerate(["train", "val", "test", "test"])
    ]
    names = ["v0.mp4", "V1.MP4", "v2", "unrelated.mp4"]
    assert [v.id for v in apply_blacklist(videos, names)] == ["joy/v3"]  # train covers val; stems match
    assert [v.id for v in apply_blacklist(videos, names, splits=["test"])] == ["joy/v0", "joy/v1", "joy/v3"]


def test_blacklist_file_parsing(tmp_path):
    text = (
        "# header\n\nanger_annoying_1.mp4\n  fear_underwater_2.mp4   # inline comment\n"
        "anger_annoying_1.mp4\nweird#name.mp4\n"
    )
    assert parse_blacklist(text) == ["anger_annoying_1.mp4", "fear_underwater_2.mp4", "weird#name.mp4"]
    shipped = read_blacklist(ROOT / "ekman_blacklist.txt")  # comments only, or file names only
    assert all("/" not in name and "#" not in name and name == name.strip() for name in shipped)
    with pytest.raises(FileNotFoundError):
        read_blacklist(tmp_path / "absent.txt")


def test_tokens():
    assert tokens("Ode-To_Joy 03.mp4") == ["ode", "to", "joy", "03"]
    assert tokens("OdeToJoy.mp4") == ["ode", "to", "joy"]
    assert tokens("9_11memorial.avi") == ["9", "11", "memorial"]


def test_suggest_matches_each_rule_on_its_own_class(tmp_path):
    named = {
        "anger": ["annoying_coworker_1.mp4", "road rage 2.mp4"],
        "disgust": ["flashing-lights-3.mp4", "so_bored_4.mp4", "self_loathing.mp4", "rotten_food.mp4"],
        "fear": [
            "counter-terrorism drill.mp4",
            "CounterTerrorism_5.mp4",
            "underwater_shark.mp4",
            "9-11 aftermath.mp4",
            "911_memorial.mp4",
            "september_11.mp4",
            "suspect_arrest.mp4",
            "haunted_house.mp4",
        ],
        "joy": [
            "joyride_7.mp4",
            "joy ride 8.mp4",
            "Ode_to_Joy_9.mp4",
            "joy_behar_show.mp4",
            "joy_of_life.mp4",
            "enjoying_joy.mp4",
        ],
        "sadness": ["pensive_man.mp4", "funeral.mp4"],
        "surprise": ["distracted_driver.mp4", "astonishing_feats.mp4", "impressive-trick.mp4", "surprise_party.mp4"],
    }
    videos = [
        Video(f"{label}/{i}", Path(f"/d/{label}/{name}"), label, "train")
        for label, names in named.items()
        for i, name in enumerate(names)
    ]
    found = {s.name: s for s in suggest(videos)}
    clean = {
        "road rage 2.mp4",
        "rotten_food.mp4",
        "haunted_house.mp4",
        "joy_of_life.mp4",
        "enjoying_joy.mp4",
        "funeral.mp4",
        "surprise_party.mp4",
    }
    assert set(found) == {name for names in named.values() for name in names} - clean
    assert found["CounterTerrorism_5.mp4"].reason == "counter-terrorism"
    assert found["911_memorial.mp4"].reason == "9/11 aftermath"
    assert found["joy_behar_show.mp4"].reason == "a person named Joy"
    assert {rule.label for rule in RULES} == set(EMOTIONS)

    # Keywords belong to a class: "pensive" in a joy video is no problem unless asked for.
    other = [Video("joy/p", Path("/d/joy/pensive_smile.mp4"), "joy", "test")]
    assert suggest(other) == []
    assert [s.reason for s in suggest(other, all_labels=True)] == ['"pensive"']


def test_append_suggestions(tmp_path):
    videos = [
        Video("sadness/a", Path("/d/sadness/pensive_1.mp4"), "sadness", "train"),
        Video("sadness/b", Path("/d/sadness/pensive_2.mp4"), "sadness", "test"),
    ]
    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text("# mine\npensive_1.mp4\n")
    assert append_suggestions(blacklist, suggest(videos)) == 1
    text = blacklist.read_text()
    assert "suggested by" in text and text.startswith("# mine\npensive_1.mp4\n")
    assert read_blacklist(blacklist) == ["pensive_1.mp4", "pensive_2.mp4"]
    assert append_suggestions(blacklist, suggest(videos)) == 0  # nothing new
    assert blacklist.read_text() == text
