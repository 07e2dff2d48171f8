"""Ablation: the cross-attention model against simpler baselines and against itself with a
modality removed, all on the same splits.

Variants (every one fitted on the same training videos, the full model's validation videos held
out, and scored on the same evaluation split):

* ``cross-attention``: the full model, trained with :func:`vemoclap.training.train.train`;
* ``cross-attention without <feature>``: the same trained model with that feature zeroed at test
  time (what it sees when the modality is missing);
* ``means + logistic regression``: each feature averaged over its rows, concatenated (a missing
  feature is imputed with the training mean), standardized, multinomial logistic regression;
* ``late fusion (per-feature logistic regression)``: one such logistic regression per feature,
  their probabilities averaged over the features a video has;
* ``ViT + FCNN (mean CLIP)``: the "ViT + FCNN" baseline: mean CLIP embedding → Linear → ReLU →
  Dropout → Linear, Adam, early stopping on the same validation videos.

Output: a pandas DataFrame (variant, accuracy, macro F1, videos, what it is), also written as
``ablation.csv`` and ``ablation.md`` in ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._util import atomic_write_text
from .features import FeatureSet, FeatureSetError, as_feature_set
from .train import TrainingError, TrainOptions, choose_features, resolve_options, train

log = logging.getLogger(__name__)

ABLATION_CSV = "ablation.csv"
ABLATION_MD = "ablation.md"
FULL = "cross-attention"
MEANS_LINEAR = "means + logistic regression"
LATE_FUSION = "late fusion (per-feature logistic regression)"
FCNN = "ViT + FCNN (mean CLIP)"
BASE_VARIANTS = (FULL, MEANS_LINEAR, LATE_FUSION, FCNN)


def without(feature: str) -> str:
    return f"{FULL} without {feature}"


# ---- features as fixed vectors -----------------------------------------------------------------


def mean_matrix(feature_set: FeatureSet, name: str, dim: int) -> np.ndarray:
    """Per video the mean of a feature's rows; NaN rows where the video lacks it."""
    out = np.full((len(feature_set), dim), np.nan, dtype=np.float64)
    for i, video in enumerate(feature_set.features):
        array = video.get(name)
        if array is not None and np.size(array) > 0:
            out[i] = np.atleast_2d(array).mean(0)
    return out


def _logistic(seed: int):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="mean", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )


def _full_probabilities(model: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class (classes absent from fitting get 0)."""
    proba = np.zeros((len(X), n_classes))
    proba[:, model.classes_] = model.predict_proba(X)
    return proba


def means_logistic(
    feature_set: FeatureSet, features: Sequence[str], fit: np.ndarray, test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Predicted class ids of ``test`` from one logistic regression on concatenated feature means."""
    dims = feature_set.dims()
    X = np.concatenate([mean_matrix(feature_set, name, dims[name]) for name in features], axis=1)
    y = feature_set.label_ids()
    model = _logistic(seed).fit(X[fit], y[fit])
    return model.predict(X[test])


def late_fusion(
    feature_set: FeatureSet, features: Sequence[str], fit: np.ndarray, test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Predicted class ids of ``test``: per-feature logistic regressions (fitted on the videos that
    have the feature), probabilities averaged over the features each test video has."""
    dims, y, n_classes = feature_set.dims(), feature_set.label_ids(), len(feature_set.label_names)
    total = np.zeros((len(test), n_classes))
    used = np.zeros(len(test))
    for name in features:
        X = mean_matrix(feature_set, name, dims[name])
        present = ~np.isnan(X).any(1)
        rows = fit[present[fit]]
        if len(np.unique(y[rows])) < 2:
            log.warning("late fusion: too few training videos with %s; leaving it out", name)
            continue
        model = _logistic(seed).fit(X[rows], y[rows])
        has = present[test]
        if has.any():
            total[has] += _full_probabilities(model, X[test][has], n_classes)
            used[has] += 1
    prior = np.bincount(y[fit], minlength=n_classes) / len(fit)
    total[used == 0] = prior  # a video with none of the features: the most frequent class
    return total.argmax(1)


def fcnn(
    feature_set: FeatureSet,
    fit: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    *,
    feature: str = "clip",
    hidden: int = 256,
    dropout: float = 0.5,
    lr: float = 1e-3,
    epochs: int = 200,
    batch_size: int = 32,
    patience: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Predicted class ids of ``test`` from the ViT + FCNN baseline on mean ``feature`` vectors."""
    import torch
    from torch import nn

    from .train import seeded

    dim = feature_set.dims()[feature]
    X = mean_matrix(feature_set, feature, dim)
    mean = np.nanmean(X[fit], axis=0)
    std = np.nanstd(X[fit], axis=0) + 1e-6
    X = np.nan_to_num((X - mean) / std, nan=0.0).astype(np.float32)  # missing → the training mean
    y = feature_set.label_ids()
    n_classes = len(feature_set.label_names)
    rng = np.random.default_rng(seed)
    device = torch.device("cpu")
    with seeded(seed, device, True):
        net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        best_accuracy, best_epoch, best_state = -1.0, 0, None
        for epoch in range(1, epochs + 1):
            net.train()
            order = fit[rng.permutation(len(fit))]
            for start in range(0, len(order), batch_size):
                chunk = torch.from_numpy(order[start : start + batch_size])
                loss = nn.functional.cross_entropy(net(Xt[chunk]), yt[chunk])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            net.eval()
            with torch.inference_mode():
                accuracy = float((net(Xt[val]).argmax(1) == yt[val]).float().mean()) if len(val) else 0.0
            if accuracy > best_accuracy:
                best_accuracy, best_epoch = accuracy, epoch
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            if patience and epoch - best_epoch >= patience:
                break
        net.load_state_dict(best_state)
        net.eval()
        with torch.inference_mode():
            return net(Xt[test]).argmax(1).numpy()


# ---- the table ---------------------------------------------------------------------------------


def _markdown(table: "Any") -> str:
    lines = ["| variant | accuracy | macro F1 | videos | what |", "|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        accuracy = (
            "–"
            if row.accuracy is None or (isinstance(row.accuracy, float) and math.isnan(row.accuracy))
            else f"{row.accuracy:.2%}"
        )
        f1 = (
            "–"
            if row.macro_f1 is None or (isinstance(row.macro_f1, float) and math.isnan(row.macro_f1))
            else f"{row.macro_f1:.3f}"
        )
        lines.append(f"| {row.variant} | {accuracy} | {f1} | {row.n_videos} | {row.description} |")
    return "\n".join(lines) + "\n"


def _fit_and_validation(feature_set: FeatureSet, options: TrainOptions, classifier):
    """(features, fit, val): a given trained model's features and recorded validation videos, or
    those a new training run would use."""
    if classifier is None:
        features = choose_features(feature_set, options.features)
        fit, val, _ = feature_set.train_val_indices(options.val_fraction, options.seed, options.train_split)
        return features, fit, val
    features = list(classifier.config.features)
    val_ids = set(classifier.config.training.get("val_ids") or [])
    train_idx = feature_set.indices(options.train_split)
    val = np.array([i for i in train_idx if feature_set.ids[i] in val_ids], dtype=np.int64)
    fit = np.array([i for i in train_idx if feature_set.ids[i] not in val_ids], dtype=np.int64)
    if len(val) == 0:
        _, val, _ = feature_set.train_val_indices(options.val_fraction, options.seed, options.train_split)
        fit = np.setdiff1d(train_idx, val)
    return features, fit, val


def _score_full(score, classifier, feature_set: FeatureSet, features: list[str], test: np.ndarray) -> None:
    """The full model, and the same model with each feature zeroed at test time."""
    from .evaluate import predict

    chosen = feature_set.subset(test)
    score(FULL, predict(classifier, chosen).argmax(1), f"cross-attention fusion of {', '.join(features)}")
    if len(features) > 1:
        for name in features:
            score(
                without(name),
                predict(classifier, chosen, drop=[name]).argmax(1),
                f"the same model with {name} zeroed at test time",
            )


def _score_baselines(score, wanted: set[str], feature_set: FeatureSet, features, fit, val, test, options, fcnn_lr):
    if MEANS_LINEAR in wanted:
        score(
            MEANS_LINEAR,
            means_logistic(feature_set, features, fit, test, options.seed),
            "per-feature means concatenated, standardized, logistic regression",
        )
    if LATE_FUSION in wanted:
        score(
            LATE_FUSION,
            late_fusion(feature_set, features, fit, test, options.seed),
            "a logistic regression per feature, probabilities averaged",
        )
    if FCNN in wanted:
        if "clip" in feature_set.feature_names:
            score(
                FCNN,
                fcnn(
                    feature_set,
                    fit,
                    val,
                    test,
                    lr=fcnn_lr,
                    epochs=options.epochs,
                    batch_size=options.batch_size,
                    patience=options.patience,
                    seed=options.seed,
                ),
                "mean CLIP → Linear → ReLU → Dropout → Linear",
            )
        else:
            log.warning("the feature set has no clip feature: skipping the ViT + FCNN baseline")


def _write_table(out: Path, rows, eval_split: str, n_test: int, n_fit: int, n_val: int, features):
    import pandas as pd

    table = pd.DataFrame(rows, columns=["variant", "accuracy", "macro_f1", "n_videos", "description"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / ABLATION_CSV, table.to_csv(index=False))
    header = (
        f"# Ablation on the '{eval_split}' split ({n_test} videos)\n\n"
        f"Fitted on {n_fit} training videos ({n_val} held out for validation); "
        f"features: {', '.join(features)}.\n\n"
    )
    atomic_write_text(out / ABLATION_MD, header + _markdown(table))
    return table


def ablate(
    feature_set: FeatureSet | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    options: TrainOptions | None = None,
    eval_split: str = "test",
    checkpoint: str | os.PathLike | None = None,
    variants: Sequence[str] | None = None,
    fcnn_lr: float = 1e-3,
    **overrides: Any,
):
    """Compare the variants on the same splits; returns a pandas DataFrame (one row per variant).

    ``options`` / keyword overrides: the full model's :class:`TrainOptions` (features, epochs, lr,
    seed …; the FCNN uses the same epochs, batch size, patience and seed with ``fcnn_lr``).
    ``checkpoint``: use an already trained full model (fitted on this cache) instead of training
    one; its recorded validation videos are held out of every baseline's fitting too.
    ``variants``: only these (names as in the table; "without" rows come with ``cross-attention``).
    """
    from sklearn.metrics import accuracy_score, f1_score

    from ..fusion import load_classifier
    from .evaluate import check_compatible

    options = resolve_options(options, overrides)
    feature_set = as_feature_set(feature_set)
    out = Path(out_dir).expanduser()
    wanted = set(variants) if variants is not None else set(BASE_VARIANTS)
    unknown = sorted(wanted - set(BASE_VARIANTS))
    if unknown:
        raise TrainingError(f"unknown ablation variants {unknown}; choose from {', '.join(BASE_VARIANTS)}")
    test = feature_set.indices(eval_split)
    if len(test) == 0:
        feature_set.split(eval_split)  # raises the one-line error naming the splits there are
    y = feature_set.label_ids()
    rows: list[dict[str, Any]] = []

    def score(name: str, predicted: np.ndarray, description: str) -> None:
        rows.append(
            {
                "variant": name,
                "accuracy": float(accuracy_score(y[test], predicted)),
                "macro_f1": float(f1_score(y[test], predicted, average="macro", zero_division=0)),
                "n_videos": int(len(test)),
                "description": description,
            }
        )
        log.info("%s: accuracy %.3f", name, rows[-1]["accuracy"])

    classifier = None
    if checkpoint is not None:
        classifier = load_classifier(checkpoint)
        check_compatible(classifier, feature_set, str(checkpoint))
    features, fit, val = _fit_and_validation(feature_set, options, classifier)
    options = dataclasses.replace(options, features=features)
    overlap = set(feature_set.ids[i] for i in test) & set(feature_set.ids[i] for i in fit)
    if overlap:
        raise FeatureSetError(f"the '{eval_split}' split shares {len(overlap)} videos with the training videos")

    if FULL in wanted:
        if classifier is None:
            report = train(feature_set, out / "cross_attention", options)
            classifier = load_classifier(report.checkpoint)
        _score_full(score, classifier, feature_set, features, test)
    _score_baselines(score, wanted, feature_set, features, fit, val, test, options, fcnn_lr)
    return _write_table(out, rows, eval_split, len(test), len(fit), len(val), features)


__all__ = [
    "ablate",
    "means_logistic",
    "late_fusion",
    "fcnn",
    "mean_matrix",
    "without",
    "BASE_VARIANTS",
    "FULL",
    "MEANS_LINEAR",
    "LATE_FUSION",
    "FCNN",
    "ABLATION_CSV",
    "ABLATION_MD",
]
