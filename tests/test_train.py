"""Training, evaluation and ablation on synthetic feature caches written in the extractor's format.

The synthetic caches carry a real class signal (class-dependent means in clip, beats with a sign
that only clip's last dimension resolves, a weaker one in asr_sentiment; face_emotion missing for
some videos), so a correct training loop learns them and a broken one does not. The tests use a
narrower network (d_model 64), a larger learning rate and less dropout than the reference's
(1e-5 / 0.5 needs hundreds of epochs on any data): the code path is the same.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vemoclap.fusion import (
    AttentionClassifier,
    CheckpointError,
    compute_stats,
    default_config,
    load_checkpoint,
    load_classifier,
    save_checkpoint,
)
from vemoclap.labels import EMOTIONS
from vemoclap.testing.features import make_synthetic_feature_set
from vemoclap.training.features import FeatureSetError, load_feature_set, stratified_holdout
from vemoclap.training.train import TrainingError, class_weights, train

FAST = dict(d_model=64, lr=1e-3, batch_size=16, dropout=0.1, device="cpu", progress=False)
FIVE = ("clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The networks here are tiny; on a shared 2-core machine one thread is faster and steadier.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_synthetic_feature_set(
        tmp_path_factory.mktemp("cache"), n_per_class=16, test_per_class=8, features=FIVE, signal=2.0, seed=0
    )


@pytest.fixture(scope="module")
def feature_set(cache):
    return load_feature_set(cache)


@pytest.fixture(scope="module")
def trained(feature_set, tmp_path_factory):
    return train(feature_set, tmp_path_factory.mktemp("model"), epochs=30, patience=4, seed=0, **FAST)


@pytest.fixture(scope="module")
def untrained(feature_set, tmp_path_factory):
    """lr 0: the weights never move, validation accuracy never improves → stops after patience."""
    return train(feature_set, tmp_path_factory.mktemp("frozen"), epochs=20, patience=2, seed=1, **{**FAST, "lr": 0.0})


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


# ---- the cache ---------------------------------------------------------------------------------


def test_loads_the_extractor_format(cache, feature_set):
    fs = feature_set
    assert len(fs) == 6 * 24 and fs.split_counts() == {"train": 96, "test": 48}
    assert fs.label_names == list(EMOTIONS) and fs.feature_names == sorted(FIVE)
    assert all("/" in video_id for video_id in fs.ids)  # "<label>/<stem>", one folder per label
    first = fs.features[0]
    assert first["clip"].shape[1] == 512 and first["clip"].shape[0] >= 20  # more rows than the 16 used
    assert first["asr_sentiment"].shape == (1, 768)
    assert fs.times[0]["clip"].shape == (first["clip"].shape[0],)
    coverage = fs.coverage()
    assert 0 < coverage["face_emotion"] < len(fs) and coverage["clip"] == len(fs)
    assert fs.dims() == {"clip": 512, "beats": 768, "face_emotion": 768, "asr_sentiment": 768, "ocr_sentiment": 768}
    # Without the manifest the files alone give the same videos.
    copy = cache.parent / "no_manifest"
    shutil.copytree(cache, copy)
    (copy / "manifest.csv").unlink()
    assert sorted(load_feature_set(copy).ids) == sorted(fs.ids)
    # The manifest's split wins over the file's (people re-split by editing the CSV).
    text = (cache / "manifest.csv").read_text()
    moved = fs.ids[0]
    lines = [line.replace(",train,", ",val,") if line.startswith(moved + ",") else line for line in text.splitlines()]
    (copy / "manifest.csv").write_text("\n".join(lines) + "\n")
    resplit = load_feature_set(copy)
    assert resplit.splits[resplit.ids.index(moved)] == "val" and resplit.split_counts()["val"] == 1
    # Excluding by source file name (a blacklist) drops that video.
    name = fs.info[1]["name"]
    assert fs.ids[1] not in load_feature_set(copy, exclude=[name]).ids


def test_stratified_holdout_is_seeded_and_per_class():
    labels = np.repeat(np.arange(4), [40, 20, 10, 30])
    fit, hold = stratified_holdout(labels, 0.1, seed=7)
    assert set(fit).isdisjoint(hold) and len(fit) + len(hold) == len(labels)
    assert np.bincount(labels[hold], minlength=4).tolist() == [4, 2, 1, 3]
    again, _ = stratified_holdout(labels, 0.1, seed=7)
    other, _ = stratified_holdout(labels, 0.1, seed=8)
    assert np.array_equal(fit, again) and not np.array_equal(fit, other)


# ---- training ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_trained_checkpoint_loads_and_predicts_well(trained, feature_set):
    report = trained
    assert report.n_train + report.n_val == 96 and report.n_val == 10
    assert (report.checkpoint / "classifier.safetensors").is_file() and report.curves_path.stat().st_size > 0
    history = json.loads(report.history_path.read_text())
    assert len(history["history"]) == report.epochs_run and history["best_epoch"] == report.best_epoch
    classifier = load_classifier(report.checkpoint)
    assert classifier.labels == list(EMOTIONS) and classifier.config.features == list(FIVE)
    training = classifier.config.training
    assert training["best_epoch"] == report.best_epoch and training["optimizer"] == "adam"
    assert training["seed"] == 0 and len(training["history"]) == report.epochs_run
    test = feature_set.split("test")
    probabilities = classifier.predict_batch(test.features)
    assert probabilities.shape == (48, 6) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    accuracy = float((probabilities.argmax(1) == test.label_ids()).mean())
    assert accuracy >= 0.8  # chance is 1/6


def test_keeps_the_best_weights(trained, feature_set):
    report = trained
    best = report.history[report.best_epoch - 1]
    assert best.val_accuracy == report.best_val_accuracy == max(r.val_accuracy for r in report.history)
    assert report.stopped_early and report.epochs_run == report.best_epoch + 4  # patience 4
    # The saved weights are the best epoch's: they score its validation accuracy again.
    classifier = load_classifier(report.checkpoint)
    val_ids = set(classifier.config.training["val_ids"])
    val = feature_set.subset([i for i, v in enumerate(feature_set.ids) if v in val_ids])
    accuracy = float((classifier.predict_batch(val.features).argmax(1) == val.label_ids()).mean())
    assert accuracy == pytest.approx(best.val_accuracy)


def test_early_stopping(untrained):
    assert untrained.stopped_early and untrained.best_epoch == 1 and untrained.epochs_run == 3


@pytest.mark.slow
def test_same_seed_same_weights(feature_set, tmp_path):
    options = dict(features=["clip", "beats", "asr_sentiment"], epochs=3, patience=0, **FAST)
    runs = [train(feature_set, tmp_path / name, seed=seed, **options) for name, seed in (("a", 5), ("b", 5), ("c", 6))]
    (a, _), (b, _), (c, _) = (load_checkpoint(run.checkpoint) for run in runs)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert [r.train_loss for r in runs[0].history] == [r.train_loss for r in runs[1].history]
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
    assert not torch.are_deterministic_algorithms_enabled()  # the global flag is put back


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    """Imbalanced classes, and a test split shifted by +50 (it must not reach the stats)."""
    counts = {"anger": 12, "disgust": 3, "fear": 6, "joy": 20, "sadness": 5, "surprise": 4}
    return load_feature_set(
        make_synthetic_feature_set(
            tmp_path_factory.mktemp("skewed"),
            n_per_class=counts,
            test_per_class=2,
            val_per_class=2,
            features=("clip", "asr_sentiment"),
            seed=3,
            test_shift=50.0,
        )
    )


def test_stats_come_from_the_training_videos_only(skewed, tmp_path):
    report = train(skewed, tmp_path / "m", epochs=1, **FAST)
    assert report.validation == "split 'val'" and report.n_train == 50
    fit = skewed.indices("train")
    stored = load_checkpoint(report.checkpoint)[1].stats
    for name in ("clip", "asr_sentiment"):
        expected = compute_stats(skewed.features[i][name] for i in fit)
        assert stored[name].min == pytest.approx(expected.min) and stored[name].max == pytest.approx(expected.max)
        assert stored[name].max < 25  # the test values (≈ 50) did not count
    everything = compute_stats(v["clip"] for v in skewed.features)
    assert everything.max > 40  # … and they are there to be leaked


def test_class_balanced_weights(skewed, tmp_path):
    counts = np.array([100, 10, 1, 0])
    weights = class_weights(counts, beta=0.99)
    raw = np.array([(1 - 0.99) / (1 - 0.99**n) for n in (100, 10, 1)])
    assert np.allclose(weights[:3], raw * 3 / raw.sum()) and weights[3] == 0
    assert weights[0] < weights[1] < weights[2] and weights.sum() == pytest.approx(3)
    inverse = class_weights(counts, beta=1.0)
    assert np.allclose(inverse[:3] * counts[:3], inverse[0] * 100)  # ∝ 1/n
    report = train(skewed, tmp_path / "m", epochs=1, class_balanced=True, beta=0.9, **FAST)
    fit_counts = np.bincount(skewed.label_ids()[skewed.indices("train")], minlength=6)
    assert fit_counts.tolist() == [12, 3, 6, 20, 5, 4]
    assert np.allclose(report.class_weights, class_weights(fit_counts, 0.9))
    assert load_checkpoint(report.checkpoint)[1].training["class_weights"] == report.class_weights


# ---- evaluation --------------------------------------------------------------------------------


def test_evaluate_matches_sklearn(untrained, feature_set, tmp_path):
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from vemoclap.training.evaluate import evaluate

    report = evaluate(untrained.checkpoint, feature_set, "test", tmp_path / "eval")
    test = feature_set.split("test")
    probabilities = load_classifier(untrained.checkpoint).predict_batch(test.features)
    y, predicted = test.label_ids(), probabilities.argmax(1)
    assert np.array_equal(report.y_pred, predicted) and np.array_equal(report.y_true, y)
    assert report.accuracy == pytest.approx(accuracy_score(y, predicted))
    assert report.macro["f1"] == pytest.approx(f1_score(y, predicted, average="macro", zero_division=0))
    assert report.macro["precision"] == pytest.approx(precision_score(y, predicted, average="macro", zero_division=0))
    recalls = recall_score(y, predicted, average=None, labels=range(6), zero_division=0)
    for c, label in enumerate(EMOTIONS):
        row = report.per_class[label]
        assert row["recall"] == pytest.approx(recalls[c]) and row["support"] == 8
        assert row["roc_auc"] == pytest.approx(roc_auc_score(y == c, probabilities[:, c]), abs=1e-6)
        assert row["pr_auc"] == pytest.approx(average_precision_score(y == c, probabilities[:, c]), abs=1e-6)
    assert report.macro["roc_auc"] == pytest.approx(np.mean([report.per_class[label]["roc_auc"] for label in EMOTIONS]))
    assert np.allclose(report.confusion, confusion_matrix(y, predicted, labels=range(6), normalize="true"))
    # Files: every number as JSON, a Markdown page linking the pictures.
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(report.accuracy) and metrics["n_videos"] == 48
    assert metrics["per_class"]["joy"]["f1"] == pytest.approx(report.per_class["joy"]["f1"])
    page = (out / "report.md").read_text()
    assert "](confusion_matrix.png)" in page and "](learning_curves.png)" in page and "| joy |" in page
    for name in ("confusion_matrix.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "predictions.csv").read_text().splitlines()) == 49


def test_evaluate_with_a_class_absent(trained, feature_set):
    from vemoclap.training.evaluate import evaluate

    test = feature_set.split("test")
    no_fear = test.subset([i for i, label in enumerate(test.labels) if label != "fear"])
    report = evaluate(trained.checkpoint, no_fear, "test")
    fear = report.per_class["fear"]
    assert fear["support"] == 0 and fear["recall"] is None and fear["roc_auc"] is None and fear["pr_auc"] is None
    defined = [report.per_class[label]["roc_auc"] for label in EMOTIONS if label != "fear"]
    assert report.macro["roc_auc"] == pytest.approx(np.mean(defined))
    assert any("fear" in note for note in report.notes) and report.accuracy >= 0.8


# ---- ablation ----------------------------------------------------------------------------------


def test_ablation_table(trained, feature_set, tmp_path):
    from vemoclap.training.ablate import ablate

    table = ablate(feature_set, tmp_path / "ablation", checkpoint=trained.checkpoint, epochs=30, **FAST)
    expected = (
        ["cross-attention"]
        + [f"cross-attention without {name}" for name in FIVE]
        + ["means + logistic regression", "late fusion (per-feature logistic regression)", "ViT + FCNN (mean CLIP)"]
    )
    assert table["variant"].tolist() == expected
    assert table["accuracy"].between(0, 1).all() and (table["n_videos"] == 48).all()
    full = table.set_index("variant")["accuracy"]
    assert full["cross-attention"] >= 0.8 and full["means + logistic regression"] >= 0.8
    assert (tmp_path / "ablation" / "ablation.csv").is_file()
    assert "| cross-attention without clip |" in (tmp_path / "ablation" / "ablation.md").read_text()


def test_ablation_trains_its_own_model(skewed, tmp_path):
    from vemoclap.training.ablate import ablate

    table = ablate(
        skewed, tmp_path / "ablation", epochs=2, variants=["cross-attention", "ViT + FCNN (mean CLIP)"], **FAST
    )
    assert table["variant"].tolist() == [
        "cross-attention",
        "cross-attention without clip",
        "cross-attention without asr_sentiment",
        "ViT + FCNN (mean CLIP)",
    ]
    assert (tmp_path / "ablation" / "cross_attention" / "classifier.json").is_file()


# ---- bad input and the command line ------------------------------------------------------------


def test_bad_input_is_one_line(feature_set, skewed, tmp_path):
    from vemoclap.training.evaluate import evaluate

    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureSetError) as exc:
        load_feature_set(tmp_path / "empty")
    assert "vemoclap extract" in _one_line(exc)
    with pytest.raises(FeatureSetError) as exc:
        train(feature_set, tmp_path / "m", features=["clip", "nope"], **FAST)
    assert "nope" in _one_line(exc)
    with pytest.raises(TrainingError) as exc:
        train(feature_set, tmp_path / "m", optimizer="sgd", **FAST)
    assert "sgd" in _one_line(exc)
    # A checkpoint that needs features the cache lacks.
    config = default_config(["clip", "beats"], d_model=32)
    save_checkpoint(tmp_path / "ckpt", AttentionClassifier.from_config(config), config)
    with pytest.raises(FeatureSetError) as exc:
        evaluate(tmp_path / "ckpt", skewed, "test")
    assert "beats" in _one_line(exc)
    with pytest.raises(CheckpointError) as exc:
        evaluate(tmp_path / "nothing", skewed, "test")
    _one_line(exc)
    with pytest.raises(FeatureSetError) as exc:
        evaluate(tmp_path / "ckpt", feature_set.split("train"), "test")
    assert "no 'test' videos" in _one_line(exc)


def test_commands(cache, tmp_path):
    from vemoclap.cli import build_parser

    parser = build_parser()
    out = tmp_path / "weights" / "synthetic"
    args = parser.parse_args(
        [
            "train",
            str(cache),
            "--out",
            str(out),
            "--features",
            "clip,asr_sentiment",
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--d-model",
            "32",
            "--optimizer",
            "adamw",
            "--class-balanced",
            "--seed",
            "4",
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert args.func(args) == 0
    training = load_checkpoint(out)[1].training
    assert training["optimizer"] == "adamw" and training["options"]["weight_decay"] == 0.01
    assert training["class_weights"] is not None and training["seed"] == 4
    args = parser.parse_args(["evaluate", str(out), str(cache), "--split", "test", "-q"])
    assert args.func(args) == 0 and (out / "eval_test" / "report.md").is_file()
    args = parser.parse_args(["train", str(cache), "--out", str(out), "--features", "clip,nope", "-q"])
    with pytest.raises(ValueError):
        args.func(args)
