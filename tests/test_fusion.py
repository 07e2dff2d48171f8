"""The fusion classifier: preparation, the network against the reference's parameter layout,
checkpoints (ours and the reference's, loaded safely), and a task only cross-attention can solve."""

from __future__ import annotations

import json
import os
import pickle
import shlex
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pytest
import torch

from vemoclap.fusion import (
    FEATURES,
    REFERENCE_STATS,
    AttentionClassifier,
    CheckpointError,
    ClassifierConfig,
    EmotionClassifier,
    collate,
    compute_stats,
    default_config,
    load_checkpoint,
    load_classifier,
    load_reference_checkpoint,
    prepare,
    reference_features,
    save_checkpoint,
)
from vemoclap.labels import EMOTIONS

# The reference's layout, written from reference-facts (not from our model).
REF_DIMS = {"asr_sentiment": 768, "beats": 768, "clip": 512, "face_emotion": 768, "ocr_sentiment": 768}
REF_SEQUENCE = ("clip", "beats", "face_emotion")
REF_SINGLE = ("asr_sentiment", "ocr_sentiment")
D = 512


def reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.02

    state: dict[str, torch.Tensor] = {}
    for name, dim in REF_DIMS.items():
        state[f"encoders.{name}.weight"], state[f"encoders.{name}.bias"] = rand(D, dim), rand(D)
    for proj in ("query_proj", "key_proj", "value_proj"):
        for name in REF_SEQUENCE:
            state[f"{proj}.{name}.weight"], state[f"{proj}.{name}.bias"] = rand(D, D), rand(D)
    for a in REF_SEQUENCE:
        for b in REF_SEQUENCE:
            if a == b:
                continue
            pair = f"{a}_{b}"
            state[f"attention_layers.{pair}.in_proj_weight"] = rand(3 * D, D)
            state[f"attention_layers.{pair}.in_proj_bias"] = rand(3 * D)
            state[f"attention_layers.{pair}.out_proj.weight"] = rand(D, D)
            state[f"attention_layers.{pair}.out_proj.bias"] = rand(D)
            state[f"attn_norms.{pair}.weight"] = 1 + rand(D)
            state[f"attn_norms.{pair}.bias"] = rand(D)
    state["cls_mlp.0.weight"], state["cls_mlp.0.bias"] = rand(6, 8 * D), rand(6)
    return state


def reference_config_dict() -> dict:
    """What the reference's model_config.pt holds: settings plus paths and a device."""
    return {
        "features": ["asr_sentiment", "beats", "clip", "face_emotion", "ocr_sentiment"],
        "feature_dims": dict(REF_DIMS),
        "feature_lengths": {"asr_sentiment": 1, "beats": 16, "clip": 16, "face_emotion": 16, "ocr_sentiment": 1},
        "d_model": 512,
        "n_labels": 6,
        "dropout": 0.5,
        "n_frames": 16,
        "labels": list(EMOTIONS),
        "normalize_data": True,
        "amp": True,
        "lr": 1e-5,
        "batch_size": 32,
        "device": torch.device("cpu"),
        "dataset_dir": Path("/content/data/ekman6"),
        "log_dir": PurePosixPath("/content/logs/run1"),
        "windows_dir": PureWindowsPath("C:/Users/x/features"),
        "trn_val_tst_ratio": (0.95, 0.05, 0.0),
    }


def random_video(rng: np.random.Generator, **rows: int | None) -> dict[str, np.ndarray | None]:
    """Raw features in the extractors' shapes; rows[name] = None leaves that feature out (None)."""
    video: dict[str, np.ndarray | None] = {}
    for name in reference_features():
        n = rows.get(name, FEATURES[name].length)
        video[name] = None if n is None else rng.normal(size=(n, FEATURES[name].dim)).astype(np.float32)
    return video


# ---- prepare / collate --------------------------------------------------------------------------


def test_prepare_normalizes_with_stored_min_max_then_pads_with_zeros():
    stats = REFERENCE_STATS["clip"]
    lo, hi = stats.min, stats.max
    rows = np.stack([np.full(512, lo), np.full(512, hi), np.full(512, (lo + hi) / 2), np.linspace(lo, hi, 512)]).astype(
        np.float32
    )
    out = prepare({"clip": rows}, ["clip"], REFERENCE_STATS)["clip"]
    assert out.shape == (16, 512) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[2], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[3], (rows[3] - lo) / (hi - lo), atol=1e-6)
    # Padding comes after normalization: exact zeros, not (0 - min) / (max - min).
    assert np.all(out[4:] == 0.0)
    assert (0 - lo) / (hi - lo) > 0.1


def test_prepare_without_stats_keeps_values():
    rows = np.arange(3 * 768, dtype=np.float32).reshape(3, 768)
    out = prepare({"beats": rows}, ["beats"], None)["beats"]
    np.testing.assert_array_equal(out[:3], rows)
    assert np.all(out[3:] == 0) and out.shape == (16, 768)


def test_prepare_trims_long_sequences_to_equidistant_rows():
    rows = np.repeat(np.arange(31, dtype=np.float32)[:, None], 768, axis=1)  # row i holds i
    kept = prepare({"beats": rows}, ["beats"])["beats"][:, 0]
    np.testing.assert_array_equal(kept, np.arange(0, 31, 2))  # 31 → 16: every other row, both ends

    rows = np.repeat(np.arange(100, dtype=np.float32)[:, None], 512, axis=1)
    kept = prepare({"clip": rows}, ["clip"])["clip"][:, 0]
    assert kept[0] == 0 and kept[-1] == 99 and len(kept) == 16
    assert set(np.diff(kept)) <= {6.0, 7.0}  # 99 / 15 = 6.6 between rows

    kept = prepare({"clip": rows}, ["clip"], lengths={"clip": 4})["clip"][:, 0]
    np.testing.assert_array_equal(kept, [0, 33, 66, 99])


def test_prepare_random_rows_are_sorted_distinct_and_seeded():
    rows = np.repeat(np.arange(50, dtype=np.float32)[:, None], 512, axis=1)
    picks = [prepare({"clip": rows}, ["clip"], random=True, rng=seed)["clip"][:, 0] for seed in range(20)]
    for kept in picks:
        assert len(kept) == 16 and np.all(np.diff(kept) > 0)  # time order, no repeats
        assert kept.min() >= 0 and kept.max() <= 49
    assert len({tuple(k) for k in picks}) > 15  # really random
    again = prepare({"clip": rows}, ["clip"], random=True, rng=3)["clip"][:, 0]
    np.testing.assert_array_equal(again, picks[3])
    generator = np.random.default_rng(7)
    first = prepare({"clip": rows}, ["clip"], random=True, rng=generator)["clip"][:, 0]
    second = prepare({"clip": rows}, ["clip"], random=True, rng=generator)["clip"][:, 0]
    assert not np.array_equal(first, second)  # a Generator advances
    # Short sequences are never resampled, random or not.
    short = rows[:5]
    np.testing.assert_array_equal(prepare({"clip": short}, ["clip"], random=True, rng=0)["clip"][:5], short)


def test_prepare_missing_features_are_zeros_and_single_vectors_one_row():
    rng = np.random.default_rng(0)
    features = {
        "clip": None,
        "face_emotion": np.zeros((0, 768), np.float32),
        "asr_sentiment": rng.normal(size=768).astype(np.float32),
    }  # beats, ocr absent
    out = prepare(features, reference_features(), REFERENCE_STATS)
    assert set(out) == set(reference_features())
    for name in ("clip", "beats", "face_emotion", "ocr_sentiment"):
        assert out[name].shape == (FEATURES[name].length, FEATURES[name].dim)
        assert np.all(out[name] == 0), name
    stats = REFERENCE_STATS["asr_sentiment"]
    assert out["asr_sentiment"].shape == (1, 768)
    expected = (features["asr_sentiment"] - stats.min) / (stats.max - stats.min)
    np.testing.assert_allclose(out["asr_sentiment"][0], expected, rtol=1e-6)
    two_d = prepare({"ocr_sentiment": features["asr_sentiment"][None]}, ["ocr_sentiment"])["ocr_sentiment"]
    assert two_d.shape == (1, 768)


def test_prepare_rejects_wrong_shapes_and_unknown_features():
    with pytest.raises(ValueError, match="clip.*512"):
        prepare({"clip": np.ones((4, 768))}, ["clip"])
    with pytest.raises(ValueError, match="mystery"):
        prepare({"mystery": np.ones((4, 8))}, ["mystery"])
    out = prepare({"mystery": np.ones((4, 8))}, ["mystery"], lengths={"mystery": 6}, dims={"mystery": 8})
    assert out["mystery"].shape == (6, 8)
    with pytest.raises(ValueError, match="normalization stats.*ast"):
        prepare({"ast": np.ones((4, 768))}, ["ast"], REFERENCE_STATS)


def test_collate_stacks_batches():
    rng = np.random.default_rng(1)
    items = [prepare(random_video(rng, clip=n), reference_features(), REFERENCE_STATS) for n in (3, 16, 40)]
    batch = collate(items)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        name: (3, FEATURES[name].length, FEATURES[name].dim) for name in reference_features()
    }
    assert all(v.dtype == torch.float32 for v in batch.values())
    np.testing.assert_array_equal(batch["clip"][1].numpy(), items[1]["clip"])
    with pytest.raises(ValueError, match="clip"):
        collate([items[0], prepare(random_video(rng), reference_features(), lengths={"clip": 8})])


def test_compute_stats_matches_numpy():
    rng = np.random.default_rng(2)
    arrays = [rng.normal(size=(n, 4)) * 3 + 1 for n in (2, 5, 9)] + [None, np.zeros((0, 4))]
    stats = compute_stats(arrays)
    flat = np.concatenate([a.ravel() for a in arrays if a is not None])
    assert stats.min == pytest.approx(flat.min()) and stats.max == pytest.approx(flat.max())
    assert stats.mean == pytest.approx(flat.mean()) and stats.std == pytest.approx(flat.std())


# ---- the network --------------------------------------------------------------------------------


def test_forward_on_a_batch_of_three_with_missing_features():
    torch.manual_seed(0)
    config = default_config()
    model = AttentionClassifier.from_config(config).eval()
    rng = np.random.default_rng(3)
    videos = [
        random_video(rng, face_emotion=None, clip=40),  # no faces, long clip sequence
        random_video(rng, beats=None, asr_sentiment=None, ocr_sentiment=None),
        random_video(rng, clip=2, beats=5, face_emotion=1),
    ]
    batch = collate([config.prepare(v) for v in videos])
    with torch.no_grad():
        logits = model(batch)
        assert logits.shape == (3, 6) and torch.isfinite(logits).all()
        # A feature left out of the batch is zeros (of any length, in eval mode).
        without = {k: v for k, v in batch.items() if k != "face_emotion"}
        with_zeros = dict(without, face_emotion=torch.zeros(3, 16, 768))
        torch.testing.assert_close(model(without), model(with_zeros))
        # The batch items do not leak into each other.
        torch.testing.assert_close(model({k: v[1:2] for k, v in batch.items()}), logits[1:2])
    with pytest.raises(ValueError, match="not inputs"):
        model(dict(batch, ast=torch.zeros(3, 16, 768)))


def test_parameter_count_matches_the_reference_layout():
    model = AttentionClassifier(REF_DIMS)
    expected = sum(t.numel() for t in reference_state_dict().values())
    print(f"AttentionClassifier with the reference's dims: {model.n_parameters:,} parameters")
    assert model.n_parameters == expected
    assert 10_500_000 <= model.n_parameters <= 11_500_000  # "about 11 M"


def test_reference_state_dict_loads_strictly_and_concatenates_in_sorted_order():
    state = reference_state_dict()
    model = AttentionClassifier(REF_DIMS)
    model.load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError):  # the test can fail: a missing tensor is noticed
        AttentionClassifier(REF_DIMS).load_state_dict(
            {k: v for k, v in state.items() if k != "attn_norms.face_emotion_beats.bias"}, strict=True
        )

    # Blocks of cls_mlp.0 in sorted name order: asr_sentiment first, ocr_sentiment last.
    parts = sorted(list(REF_SINGLE) + [f"{a}_{b}" for a in REF_SEQUENCE for b in REF_SEQUENCE if a != b])
    assert parts[0] == "asr_sentiment" and parts[-1] == "ocr_sentiment"
    rng = np.random.default_rng(4)
    base = collate([prepare(random_video(rng), reference_features(), REFERENCE_STATS)])
    for name in ("asr_sentiment", "ocr_sentiment"):
        index = parts.index(name)
        weight = torch.zeros(6, 8 * D)
        weight[:, index * D : (index + 1) * D] = torch.randn(6, D)
        model.load_state_dict(dict(state, **{"cls_mlp.0.weight": weight}), strict=True)
        model.eval()
        with torch.no_grad():
            reference = model(base)
            other = "ocr_sentiment" if name == "asr_sentiment" else "asr_sentiment"
            changed_other = model(dict(base, **{other: torch.randn(1, 1, 768)}))
            changed_clip = model(dict(base, clip=torch.randn(1, 16, 512)))
            changed_self = model(dict(base, **{name: torch.randn(1, 1, 768)}))
        torch.testing.assert_close(changed_other, reference)
        torch.testing.assert_close(changed_clip, reference)
        assert not torch.allclose(changed_self, reference)


def test_generic_features_ast_instead_of_beats():
    config = default_config(["clip", "ast", "face_emotion", "asr_sentiment"])
    model = AttentionClassifier.from_config(config)
    names = {k.split(".")[1] for k in model.state_dict() if k.startswith("attention_layers.")}
    assert names == {
        f"{a}_{b}" for a in ("clip", "ast", "face_emotion") for b in ("clip", "ast", "face_emotion") if a != b
    }
    assert model.cls_mlp[0].in_features == 7 * 512
    with pytest.raises(ValueError, match="ast"):
        config.norm_stats()  # the reference has no stats for AST: they must be computed
    config.stats["ast"] = compute_stats([np.random.default_rng(0).normal(size=(16, 768))])
    batch = collate([config.prepare({"ast": np.ones((20, 768))})])
    assert model.eval()(batch).shape == (1, 6)


# ---- checkpoints --------------------------------------------------------------------------------


def test_our_checkpoint_round_trips(tmp_path):
    torch.manual_seed(1)
    config = default_config(d_model=64, training={"epochs": np.int64(3), "accuracy": np.float32(0.5)})
    model = AttentionClassifier.from_config(config)
    folder = save_checkpoint(tmp_path / "run", model, config)
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.json", "classifier.safetensors"]
    assert json.loads((folder / "classifier.json").read_text())["training"] == {"epochs": 3, "accuracy": 0.5}

    rng = np.random.default_rng(5)
    videos = [random_video(rng, face_emotion=None), random_video(rng, clip=3)]
    original = EmotionClassifier(model, config)
    expected, expected_one = original.predict_batch(videos), original.predict(videos[1])
    assert expected.shape == (2, 6) and expected_one.shape == (6,)
    np.testing.assert_allclose(expected_one, expected[1], rtol=1e-5)
    np.testing.assert_allclose(expected.sum(1), 1.0, rtol=1e-5)
    for path in (folder, folder / "classifier.json", folder / "classifier.safetensors", str(folder)):
        loaded = load_classifier(path)
        np.testing.assert_array_equal(loaded.predict_batch(videos), expected)
        np.testing.assert_array_equal(loaded.predict(videos[1]), expected_one)
        assert loaded.config.to_dict() == ClassifierConfig.from_json(config.to_json()).to_dict()
    _, reloaded = load_checkpoint(folder)
    assert reloaded.stats == config.stats and reloaded.d_model == 64 and reloaded.labels == list(EMOTIONS)


def test_broken_checkpoints_fail_with_one_line(tmp_path):
    config = default_config(d_model=32)
    folder = save_checkpoint(tmp_path / "c", AttentionClassifier.from_config(config), config)
    (folder / "classifier.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="classifier.json") as info:
        load_classifier(folder)
    assert "\n" not in str(info.value)
    (folder / "classifier.json").write_text(default_config(d_model=64).to_json())  # wrong weights
    with pytest.raises(CheckpointError, match="do not fit") as info:
        load_classifier(folder)
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "nowhere"):
        with pytest.raises(CheckpointError, match=str(path.name)) as info:
            load_classifier(path)
        assert "\n" not in str(info.value)


def test_reference_checkpoint_pair_loads(tmp_path):
    state = reference_state_dict(seed=6)
    folder = tmp_path / "classifier"
    folder.mkdir()
    torch.save(reference_config_dict(), folder / "model_config.pt")
    torch.save(state, folder / "model.pt")

    model, config = load_reference_checkpoint(folder / "model_config.pt", folder / "model.pt")
    assert sorted(config.features) == sorted(REF_DIMS) and config.feature_dims == REF_DIMS
    assert sorted(config.sequence_features) == sorted(REF_SEQUENCE)
    assert config.feature_lengths["clip"] == 16 and config.feature_lengths["ocr_sentiment"] == 1
    assert (config.d_model, config.n_labels, config.dropout, config.n_frames) == (512, 6, 0.5, 16)
    assert config.labels == list(EMOTIONS) and config.normalize
    assert config.stats == {name: REFERENCE_STATS[name] for name in REF_DIMS}
    assert config.training["reference_config"]["dataset_dir"] == "/content/data/ekman6"
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state[name])

    # Auto-detection, then the same predictions after converting to our format.
    classifier = load_classifier(folder)
    rng = np.random.default_rng(7)
    videos = [random_video(rng), random_video(rng, beats=None, clip=30)]
    probabilities = classifier.predict_batch(videos)
    direct = AttentionClassifier(REF_DIMS).eval()
    direct.load_state_dict(state, strict=True)
    with torch.no_grad():
        batch = collate([prepare(v, reference_features(), REFERENCE_STATS) for v in videos])
        np.testing.assert_allclose(probabilities, torch.softmax(direct(batch), -1).numpy(), rtol=1e-5, atol=1e-6)
    converted = save_checkpoint(tmp_path / "ours", classifier.model, classifier.config)
    np.testing.assert_array_equal(load_classifier(converted).predict_batch(videos), probabilities)

    # Other file names: one *config* file and one other .pt/.pth; a stats file is ignored.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (folder / "model_config.pt").rename(renamed / "config.pt")
    (folder / "model.pt").rename(renamed / "classifier_weights.pth")
    torch.save({"clip": {"min": -1.0, "max": 1.0}}, renamed / "stats.pt")
    np.testing.assert_array_equal(load_classifier(renamed).predict_batch(videos), probabilities)
    np.testing.assert_array_equal(load_classifier(renamed / "config.pt").predict_batch(videos), probabilities)


class _RunsAShellCommand:
    """Unpickling this would run a shell command (the attack a weights_only load must stop)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_files_needing_other_globals_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    good_config, good_weights = tmp_path / "model_config.pt", tmp_path / "model.pt"
    torch.save(reference_config_dict(), good_config)
    torch.save(reference_state_dict(), good_weights)

    evil_config = tmp_path / "evil_config.pt"
    torch.save(dict(reference_config_dict(), hook=_RunsAShellCommand(marker)), evil_config)
    with pytest.raises(CheckpointError) as info:
        load_reference_checkpoint(evil_config, good_weights)
    message = str(info.value)
    assert "evil_config.pt" in message and "system" in message and "\n" not in message

    evil_weights = tmp_path / "evil.pt"  # a plain pickle, not a torch.save zip
    evil_weights.write_bytes(pickle.dumps({"w": _RunsAShellCommand(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match="evil.pt.*system"):
        load_reference_checkpoint(good_config, evil_weights)

    whole_model = tmp_path / "whole_model.pt"  # torch.save(model) pickles the class itself
    torch.save(AttentionClassifier({"clip": 8, "beats": 8}, d_model=8, num_heads=2), whole_model)
    with pytest.raises(CheckpointError, match="whole_model.pt.*AttentionClassifier"):
        load_reference_checkpoint(good_config, whole_model)

    assert not marker.exists()
    model, _ = load_reference_checkpoint(good_config, good_weights)  # the good pair still loads
    assert model.n_parameters > 10_000_000


# ---- what cross-attention buys ------------------------------------------------------------------


def _lookup_task(n: int, rng: np.random.Generator, n_keys: int = 8, rows: int = 4):
    """Modality B holds `rows` (key, tag) rows, two tags +1 and two −1; every row of modality A
    names one of B's keys. The label is the tag of the row A names. Each modality alone says
    nothing: A's key is random, and B's tags are balanced, so its mean is the same for both labels.
    """
    dim = n_keys + 1
    a = np.zeros((n, rows, dim), np.float32)
    b = np.zeros((n, rows, dim), np.float32)
    keys = np.stack([rng.permutation(n_keys)[:rows] for _ in range(n)])
    tags = np.stack([rng.permutation([1, 1, -1, -1]) for _ in range(n)])
    asked = rng.integers(0, rows, n)
    b[np.arange(n)[:, None], np.arange(rows)[None], keys] = 1.0
    b[:, :, n_keys] = tags
    a[np.arange(n), :, keys[np.arange(n), asked]] = 1.0
    a += 0.1 * rng.normal(size=a.shape).astype(np.float32)
    b += 0.1 * rng.normal(size=b.shape).astype(np.float32)
    labels = (tags[np.arange(n), asked] > 0).astype(np.int64)
    return a, b, labels


@pytest.fixture
def one_thread():
    # Tiny ops: a second OpenMP thread only adds sync cost (20x slower on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_cross_attention_learns_an_interaction_that_per_modality_means_miss(one_thread):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    a_train, b_train, y_train = _lookup_task(1000, rng)
    a_test, b_test, y_test = _lookup_task(400, rng)

    means = lambda a, b: np.concatenate([a.mean(1), b.mean(1)], axis=1)  # noqa: E731
    linear = LogisticRegression(max_iter=2000).fit(means(a_train, b_train), y_train)
    linear_accuracy = linear.score(means(a_test, b_test), y_test)

    model = AttentionClassifier(
        {"a": 9, "b": 9}, d_model=32, n_labels=2, dropout=0.1, num_heads=4, sequence_features=["a", "b"]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xa, xb, y = torch.from_numpy(a_train), torch.from_numpy(b_train), torch.from_numpy(y_train)
    order_gen = torch.Generator().manual_seed(0)
    for _epoch in range(10):
        model.train()
        for batch in torch.randperm(len(y), generator=order_gen).split(50):
            loss = torch.nn.functional.cross_entropy(model({"a": xa[batch], "b": xb[batch]}), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model({"a": torch.from_numpy(a_test), "b": torch.from_numpy(b_test)}).argmax(1).numpy()
    attention_accuracy = float((predicted == y_test).mean())
    print(
        f"held-out accuracy: cross-attention {attention_accuracy:.3f}, "
        f"logistic regression on per-modality means {linear_accuracy:.3f} (chance 0.5)"
    )
    assert attention_accuracy >= 0.90
    assert linear_accuracy <= 0.60
