"""Train the fusion classifier on a feature cache, as the reference did.

Cross-entropy, Adam, learning rate 1e-5, batch 32, dropout 0.5, mixed precision on CUDA; random
frame positions every epoch (``fusion.prepare(random=True)`` on the cached rows, which are more
than 16); validation on the cache's ``val`` split or, without one, a stratified seeded 10 % of
train; stop when validation accuracy has not improved for ``patience`` epochs and keep the best
weights. Normalization statistics come from the videos the model is fitted on only (train minus
validation) and are stored in the checkpoint (``classifier.safetensors`` + ``classifier.json``),
with the options, the history and the best epoch under ``config.training``, and the feature
recipe the feature files record under ``config.recipe`` (the Analyzer builds its extractors from
it, so the classifier sees features made the way it was trained on).

Options the reference did not use, for the baselines this project learns from: AdamW with weight
decay, and a class-balanced loss (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number
of Samples"): class ``c`` with ``n_c`` training videos weighs ``(1 − β) / (1 − β^n_c)``, scaled so
the weights of the classes present sum to their number; ``β = 1`` is the inverse-frequency limit.

On the CPU a run is deterministic: the same seed gives the same weights and history (seeded torch
and numpy generators, ``torch.use_deterministic_algorithms``); the global torch RNG is restored
afterwards.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .._util import atomic_write_bytes, atomic_write_json
from ..errors import UserError
from ..fusion import (
    FEATURES,
    AttentionClassifier,
    ClassifierConfig,
    NormStats,
    collate,
    compute_stats,
    default_config,
    reference_features,
    save_checkpoint,
)
from .features import FeatureSet, FeatureSetError, as_feature_set

log = logging.getLogger(__name__)

HISTORY_FILE = "history.json"
CURVES_FILE = "learning_curves.png"
OPTIMIZERS = ("adam", "adamw")


class TrainingError(UserError):
    """Training options or data that cannot work; the message is one line."""


@dataclass
class TrainOptions:
    """Everything that decides a training run (stored in the checkpoint's ``config.training``)."""

    features: Sequence[str] | None = None  # None: the reference's features that the cache has
    epochs: int = 200  # at most; early stopping usually ends sooner
    lr: float = 1e-5
    batch_size: int = 32
    dropout: float = 0.5
    optimizer: str = "adam"  # or "adamw"
    weight_decay: float | None = None  # None: 0 for Adam, 0.01 for AdamW (torch's default)
    class_balanced: bool = False
    beta: float = 0.999  # effective-number β of the class-balanced loss (1.0: inverse frequency)
    patience: int = 10  # epochs without a better validation accuracy before stopping (0: never stop)
    val_fraction: float = 0.1  # of train, when the cache has no validation split
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision; used on CUDA only
    d_model: int = 512
    num_heads: int = 4
    n_frames: int = 16
    train_split: str = "train"
    deterministic: bool = True  # torch.use_deterministic_algorithms on the CPU
    recipe: str | None = None  # the feature recipe to record; None: the one the feature files record
    progress: bool = True

    def __post_init__(self) -> None:
        self.optimizer = str(self.optimizer).lower()
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer '{self.optimizer}'; use one of {', '.join(OPTIMIZERS)}")
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (math.isfinite(self.lr) and self.lr >= 0, "the learning rate must be a number ≥ 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.patience >= 0, "patience must be ≥ 0"),
            (0.0 < self.beta <= 1.0, "beta must be in (0, 1]"),
            (self.n_frames >= 1, "n_frames must be at least 1"),
            (self.weight_decay is None or self.weight_decay >= 0, "weight decay must be ≥ 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)
        if self.features is not None:
            self.features = [str(name) for name in self.features]
            if not self.features:
                raise TrainingError("give at least one feature")

    @property
    def decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.01 if self.optimizer == "adamw" else 0.0


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainReport:
    checkpoint: Path  # the folder holding classifier.safetensors + classifier.json
    config: ClassifierConfig
    history: list[EpochRecord]
    best_epoch: int
    best_val_accuracy: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    n_train: int
    n_val: int
    validation: str  # where the validation videos came from
    class_weights: list[float] | None
    history_path: Path
    curves_path: Path | None

    def summary(self) -> str:
        stop = (
            f"stopped early after {self.epochs_run} epochs"
            if self.stopped_early
            else f"ran all {self.epochs_run} epochs"
        )
        return (
            f"trained on {self.n_train} videos, validated on {self.n_val} ({self.validation}); {stop}; "
            f"best epoch {self.best_epoch}: validation accuracy {self.best_val_accuracy:.2%}; "
            f"{self.seconds:.1f} s; checkpoint {self.checkpoint}"
        )


# ---- pieces ------------------------------------------------------------------------------------


def class_weights(counts: Sequence[int], beta: float = 0.999) -> np.ndarray:
    """Class-balanced loss weights from per-class counts (Cui et al. 2019).

    ``w_c = (1 − β) / (1 − β^n_c)`` (the inverse of the effective number of samples), or
    ``1 / n_c`` when ``β = 1``; normalized so the weights of classes with videos sum to their
    number. A class with no videos gets 0 (it never appears in the loss anyway)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise TrainingError(f"class counts must be a list of non-negative numbers, got {counts.tolist()}")
    if not 0.0 < beta <= 1.0:
        raise TrainingError(f"beta must be in (0, 1], got {beta}")
    present = counts > 0
    if not present.any():
        raise TrainingError("no class has any training video")
    weights = np.zeros_like(counts)
    if beta == 1.0:
        weights[present] = 1.0 / counts[present]
    else:
        weights[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
    return weights * present.sum() / weights[present].sum()


def choose_features(feature_set: FeatureSet, features: Sequence[str] | None) -> list[str]:
    """The features to train on: the given ones (each must be in the cache), or every registered
    extractor's feature that the cache has (the reference's first)."""
    if features is None:
        reference = reference_features()
        chosen = [name for name in reference if name in feature_set.feature_names]
        absent = [name for name in reference if name not in chosen]
        extra = [name for name in FEATURES if name not in reference and name in feature_set.feature_names]
        if extra:
            log.info("the feature set also has %s (not a reference feature); training on it too", ", ".join(extra))
            chosen += extra
        if not chosen:
            raise FeatureSetError(
                f"the feature set{_where(feature_set)} has none of the reference's features "
                f"({', '.join(reference)}); it has {feature_set.feature_names or 'none'}; "
                f"pass --features"
            )
        if absent:
            log.warning("the feature set has no %s; training on %s", ", ".join(absent), ", ".join(chosen))
        return chosen
    names = list(dict.fromkeys(features))
    return feature_set.check_features(names)


def _where(feature_set: FeatureSet) -> str:
    return f" at {feature_set.source}" if feature_set.source else ""


def build_config(
    feature_set: FeatureSet, features: Sequence[str], stats: Mapping[str, NormStats], options: TrainOptions
) -> ClassifierConfig:
    """A classifier config for ``features`` as the cache holds them (dims checked against the
    known features; unknown features are sequences when any video has more than one row)."""
    dims, rows = feature_set.dims(), feature_set.max_rows()
    feature_dims, lengths, sequence = {}, {}, []
    for name in features:
        if name in FEATURES and dims[name] != FEATURES[name].dim:
            raise FeatureSetError(
                f"feature '{name}' has width {dims[name]} in the cache{_where(feature_set)} but "
                f"the {name} extractor makes {FEATURES[name].dim}; re-extract it"
            )
        is_seq = FEATURES[name].sequence if name in FEATURES else rows.get(name, 1) > 1
        feature_dims[name] = dims[name]
        lengths[name] = options.n_frames if is_seq else 1
        if is_seq:
            sequence.append(name)
    return default_config(
        features,
        feature_dims=feature_dims,
        feature_lengths=lengths,
        sequence_features=sequence,
        labels=list(feature_set.label_names),
        d_model=options.d_model,
        num_heads=options.num_heads,
        dropout=options.dropout,
        stats=dict(stats),
        normalize=True,
        n_frames=options.n_frames,
    )


def training_recipe(
    feature_set: FeatureSet, indices: Sequence[int], named: str | None = None
) -> tuple[dict[str, Any], str]:
    """(the recipe to write into the checkpoint, where it came from).

    The recipe the videos' feature files record (as run: deviations applied and kept as notes,
    :meth:`Recipe.settled`), so the classifier asks for features made the way its training
    features were; ``named`` (a recipe name) instead when given. Features that record none get
    ``vemoclap``'s, with a warning."""
    from ..recipes import DEFAULT_RECIPE, Recipe, get_recipe

    if named:
        recipe = get_recipe(named)
        try:
            recorded, _ = feature_set.recipe(indices)
        except FeatureSetError:
            recorded = None
        if recorded and recorded.get("name") != recipe.name:
            log.warning("the features record recipe %s; recording %s as told", recorded.get("name"), recipe.label)
        return recipe.to_dict(), f"named: {recipe.label}"
    recorded, how = feature_set.recipe(indices)
    if recorded is None:
        log.warning(
            "the features%s do not record the recipe that made them (%s); the checkpoint names "
            "'%s' — pass --recipe to name another",
            _where(feature_set),
            how,
            DEFAULT_RECIPE,
        )
        return get_recipe(DEFAULT_RECIPE).to_dict(), f"default ({how})"
    return Recipe.from_dict(recorded).settled().to_dict(), how


def training_stats(feature_set: FeatureSet, indices: Sequence[int], features: Sequence[str]) -> dict[str, NormStats]:
    """Min / max (and mean / std) of each feature over the given videos only."""
    stats = {}
    for name in features:
        try:
            stats[name] = compute_stats(feature_set.features[i].get(name) for i in indices)
        except ValueError as exc:
            raise FeatureSetError(
                f"feature '{name}': cannot compute normalization stats on the training videos "
                f"({exc}); is it missing from every training video?"
            ) from None
    return stats


def prepare_batch(
    config: ClassifierConfig,
    feature_set: FeatureSet,
    indices: Sequence[int],
    *,
    random: bool = False,
    rng: np.random.Generator | None = None,
    drop: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Collated, normalized features of the videos at ``indices`` (``drop``: features zeroed)."""
    items = []
    for i in indices:
        video = feature_set.features[int(i)]
        if drop:
            video = {name: array for name, array in video.items() if name not in drop}
        items.append(config.prepare(video, random=random, rng=rng))
    return collate(items)


@contextmanager
def seeded(seed: int, device: torch.device, deterministic: bool) -> Iterator[None]:
    """Seed torch for the run and put its global RNG (and determinism flag) back afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if deterministic and device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic)


def make_optimizer(model: nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if options.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.decay)
    return torch.optim.Adam(params, lr=options.lr, weight_decay=options.decay)


def _evaluate_batches(
    model: nn.Module,
    batches: list[tuple[dict[str, torch.Tensor], torch.Tensor]],
    criterion: nn.Module,
    device: torch.device,
    amp: bool,
) -> tuple[float, float]:
    """(mean loss, accuracy) in eval mode."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for inputs, targets in batches:
            inputs = {name: x.to(device, non_blocking=True) for name, x in inputs.items()}
            targets = targets.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                logits = model(inputs)
            total_loss += float(criterion(logits.float(), targets)) * len(targets)
            correct += int((logits.argmax(1) == targets).sum())
            count += len(targets)
    return total_loss / max(count, 1), correct / max(count, 1)


def fixed_batches(
    config: ClassifierConfig, feature_set: FeatureSet, indices: np.ndarray, batch_size: int
) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Equidistant-row batches (validation / test), prepared once."""
    label_ids = feature_set.label_ids()
    out = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        out.append((prepare_batch(config, feature_set, chunk), torch.from_numpy(label_ids[chunk])))
    return out


# ---- plots and files ---------------------------------------------------------------------------


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def plot_history(history: Sequence[EpochRecord | Mapping[str, Any]], best_epoch: int | None = None):
    """Learning curves: loss and accuracy per epoch, training vs validation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [dataclasses.asdict(r) if isinstance(r, EpochRecord) else dict(r) for r in history]
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker=".", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], marker=".", label="validation")
    ax_acc.plot(epochs, [r["train_accuracy"] for r in rows], marker=".", label="train")
    ax_acc.plot(epochs, [r["val_accuracy"] for r in rows], marker=".", label="validation")
    for ax, title in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy")):
        if best_epoch:
            ax.axvline(best_epoch, color="0.5", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_acc.set_ylim(0, 1)
    ax_acc.legend(loc="lower right", fontsize=8)
    return fig


# ---- the loop ----------------------------------------------------------------------------------


def resolve_options(options: "TrainOptions | None", overrides: dict) -> "TrainOptions":
    """``options`` (or the defaults) with keyword overrides; an unknown name is a one-line error."""
    try:
        return dataclasses.replace(options, **overrides) if options else TrainOptions(**overrides)
    except TypeError as exc:
        raise TrainingError(f"unknown training option ({exc})") from None


@dataclass
class _Plan:
    """What one run trains on: the features, the fit and validation videos, the config and device."""

    features: list[str]
    fit: np.ndarray
    val: np.ndarray
    val_source: str
    config: ClassifierConfig
    recipe_source: str
    device: torch.device
    amp: bool
    counts: np.ndarray  # training videos per class
    weights: np.ndarray | None  # class weights of the loss


@dataclass
class _Outcome:
    """How the epochs went: the history and the best epoch (its weights in ``state``)."""

    history: list[EpochRecord] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    state: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    interrupted: bool = False


def _plan(feature_set: FeatureSet, options: TrainOptions) -> _Plan:
    from ..extractors.base import resolve_device

    features = choose_features(feature_set, options.features)
    fit, val, val_source = feature_set.train_val_indices(options.val_fraction, options.seed, options.train_split)
    if len(val) == 0:
        raise FeatureSetError(f"no validation videos{_where(feature_set)}; add a 'val' split or more training videos")
    stats = training_stats(feature_set, fit, features)
    config = build_config(feature_set, features, stats, options)
    config.recipe, recipe_source = training_recipe(feature_set, np.concatenate([fit, val]), options.recipe)
    device = resolve_device(options.device)
    counts = np.bincount(feature_set.label_ids()[fit], minlength=len(feature_set.label_names))
    weights = class_weights(counts, options.beta) if options.class_balanced else None
    log.info(
        "training on %d videos (%s), validating on %d (%s); features %s",
        len(fit),
        ", ".join(f"{n} {c}" for n, c in zip(feature_set.label_names, counts)),
        len(val),
        val_source,
        ", ".join(features),
    )
    amp = bool(options.amp and device.type == "cuda")
    return _Plan(features, fit, val, val_source, config, recipe_source, device, amp, counts, weights)


def _train_epoch(model, optimizer, scaler, criterion, plan: _Plan, feature_set: FeatureSet, rng, epoch: int, options):
    """One pass over the fit videos in random order, random rows per sequence; (summed loss, correct)."""
    from tqdm.auto import tqdm

    label_ids = feature_set.label_ids()
    device = plan.device
    model.train()
    order = plan.fit[rng.permutation(len(plan.fit))]
    total_loss, correct = 0.0, 0
    steps = range(0, len(order), options.batch_size)
    for start in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not options.progress):
        chunk = order[start : start + options.batch_size]
        inputs = prepare_batch(plan.config, feature_set, chunk, random=True, rng=rng)
        inputs = {name: x.to(device, non_blocking=True) for name, x in inputs.items()}
        targets = torch.from_numpy(label_ids[chunk]).to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=plan.amp):
            logits = model(inputs)
        loss = criterion(logits.float(), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += float(loss.detach()) * len(chunk)
        correct += int((logits.detach().argmax(1) == targets).sum())
    if not math.isfinite(total_loss):
        raise TrainingError(
            f"the training loss became {total_loss} in epoch {epoch}; lower the learning rate (now {options.lr:g})"
        )
    return total_loss, correct


def _fit(model, plan: _Plan, feature_set: FeatureSet, options: TrainOptions, rng, out_dir: Path) -> _Outcome:
    """The epochs, until ``options.epochs``, early stopping or Ctrl+C; the best weights are loaded at the end."""
    from tqdm.auto import tqdm

    device = plan.device
    optimizer = make_optimizer(model, options)
    weight = None if plan.weights is None else torch.tensor(plan.weights, dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    scaler = torch.amp.GradScaler("cuda", enabled=plan.amp)
    val_batches = fixed_batches(plan.config, feature_set, plan.val, max(options.batch_size, 64))
    outcome = _Outcome()
    epochs_bar = tqdm(range(1, options.epochs + 1), desc="training", unit="epoch", disable=not options.progress)
    try:
        for epoch in epochs_bar:
            tick = time.perf_counter()
            total_loss, correct = _train_epoch(
                model, optimizer, scaler, criterion, plan, feature_set, rng, epoch, options
            )
            val_loss, val_accuracy = _evaluate_batches(model, val_batches, criterion, device, plan.amp)
            n = len(plan.fit)
            record = EpochRecord(epoch, total_loss / n, correct / n, val_loss, val_accuracy, time.perf_counter() - tick)
            outcome.history.append(record)
            # Only a strictly better validation accuracy counts (a tie keeps the earlier weights);
            # `patience` epochs without one end the run.
            if val_accuracy > outcome.best_accuracy:
                outcome.best_epoch, outcome.best_accuracy, outcome.best_loss = epoch, val_accuracy, val_loss
                outcome.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            epochs_bar.set_postfix(
                loss=f"{record.train_loss:.3f}", val_acc=f"{val_accuracy:.3f}", best=outcome.best_epoch
            )
            log.info(
                "epoch %d: train loss %.4f acc %.3f, val loss %.4f acc %.3f (%.1f s)",
                epoch,
                record.train_loss,
                record.train_accuracy,
                val_loss,
                val_accuracy,
                record.seconds,
            )
            atomic_write_json(out_dir / HISTORY_FILE, {"history": outcome.history, "best_epoch": outcome.best_epoch})
            if options.patience and epoch - outcome.best_epoch >= options.patience:
                outcome.stopped_early = epoch < options.epochs
                break
    except KeyboardInterrupt:
        outcome.interrupted = True
        log.warning("interrupted: saving the best weights so far (epoch %s)", outcome.best_epoch)
    finally:
        epochs_bar.close()
    if outcome.state is None:
        raise KeyboardInterrupt  # interrupted before the first epoch ended: nothing to save
    model.load_state_dict(outcome.state)
    return outcome


def _training_record(
    plan: _Plan, outcome: _Outcome, feature_set: FeatureSet, options: TrainOptions, seconds: float
) -> dict[str, Any]:
    """What the checkpoint's config says about how it was trained."""
    return {
        "options": {
            **{k: v for k, v in dataclasses.asdict(options).items() if k != "progress"},
            "features": list(plan.features),
            "weight_decay": options.decay,
        },
        "feature_set": str(feature_set.source) if feature_set.source else None,
        "n_train": int(len(plan.fit)),
        "n_val": int(len(plan.val)),
        "validation": plan.val_source,
        "train_class_counts": dict(zip(feature_set.label_names, plan.counts.tolist())),
        "class_weights": None if plan.weights is None else plan.weights.tolist(),
        "epochs_run": len(outcome.history),
        "best_epoch": outcome.best_epoch,
        "best_val_accuracy": outcome.best_accuracy,
        "best_val_loss": outcome.best_loss,
        "stopped_early": outcome.stopped_early,
        "interrupted": outcome.interrupted,
        "seconds": seconds,
        "device": str(plan.device),
        "amp": plan.amp,
        "seed": options.seed,
        "optimizer": options.optimizer,
        "lr": options.lr,
        "history": [dataclasses.asdict(r) for r in outcome.history],
        "val_ids": [feature_set.ids[i] for i in plan.val],
        "recipe_source": plan.recipe_source,
        "torch": torch.__version__,
    }


def train(
    feature_set: FeatureSet | str | os.PathLike,
    out_dir: str | os.PathLike,
    options: TrainOptions | None = None,
    **overrides: Any,
) -> TrainReport:
    """Train a classifier on a feature cache (a :class:`FeatureSet` or its folder) into ``out_dir``.

    Options: a :class:`TrainOptions`, or its fields as keywords (``epochs=``, ``lr=``,
    ``batch_size=``, ``optimizer=``, ``class_balanced=``, ``patience=``, ``seed=``, ``device=`` …).
    """
    options = resolve_options(options, overrides)
    feature_set = as_feature_set(feature_set)
    out_dir = Path(out_dir).expanduser()
    plan = _plan(feature_set, options)
    config = plan.config

    rng = np.random.default_rng(options.seed)
    started = time.perf_counter()
    with seeded(options.seed, plan.device, options.deterministic):
        model = AttentionClassifier.from_config(config).to(plan.device)
        outcome = _fit(model, plan, feature_set, options, rng, out_dir)

    seconds = time.perf_counter() - started
    config.training = _training_record(plan, outcome, feature_set, options, seconds)
    save_checkpoint(out_dir, model.cpu(), config)
    atomic_write_json(
        out_dir / HISTORY_FILE,
        {
            "history": outcome.history,
            "best_epoch": outcome.best_epoch,
            "best_val_accuracy": outcome.best_accuracy,
            "stopped_early": outcome.stopped_early,
        },
    )
    curves = save_figure(plot_history(outcome.history, outcome.best_epoch), out_dir / CURVES_FILE)
    if outcome.interrupted:
        raise KeyboardInterrupt
    report = TrainReport(
        checkpoint=out_dir,
        config=config,
        history=outcome.history,
        best_epoch=outcome.best_epoch,
        best_val_accuracy=outcome.best_accuracy,
        epochs_run=len(outcome.history),
        stopped_early=outcome.stopped_early,
        seconds=seconds,
        n_train=len(plan.fit),
        n_val=len(plan.val),
        validation=plan.val_source,
        class_weights=None if plan.weights is None else plan.weights.tolist(),
        history_path=out_dir / HISTORY_FILE,
        curves_path=curves,
    )
    log.info("%s", report.summary())
    return report


__all__ = [
    "train",
    "TrainOptions",
    "TrainReport",
    "EpochRecord",
    "TrainingError",
    "class_weights",
    "plot_history",
    "save_figure",
    "prepare_batch",
    "fixed_batches",
    "training_stats",
    "build_config",
    "choose_features",
    "training_recipe",
    "HISTORY_FILE",
    "CURVES_FILE",
]
