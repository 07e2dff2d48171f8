"""``vemoclap reproduce ekman6``: the paper's Ekman-6 table from the published features, in one call.

Steps: fetch the Zenodo record the reference's README names (pinned to its version id; every file
checked against the md5 and size the record's own metadata lists, downloads resumable) → import its
feature files through the allow-list unpickler → train ``runs`` seeds with the paper's protocol
(:class:`~vemoclap.training.train.TrainOptions` defaults: Adam 1e-5, batch 32, dropout 0.5, 10 % of
train for validation, early stopping on validation accuracy) on the dataset's own train split →
evaluate on its test split → the table beside the paper's figures (and the cleaned protocol: the
blacklist on both splits) → the heads verdict (the shipped reference classifier on the published
test features with 4 and 8 heads, through :func:`~vemoclap.training.evaluate.compare_heads`).

Zenodo's base URL is a setting (``VEMOCLAP_ZENODO_URL``) so a mirror or a test server stands in.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._util import atomic_write_json, atomic_write_text
from ..errors import ModelUnavailable, UserError, one_line
from ..labels import EMOTIONS

log = logging.getLogger(__name__)

ZENODO_ENV = "VEMOCLAP_ZENODO_URL"
ZENODO_DEFAULT = "https://zenodo.org"
# The record the reference's README names (github.com/serkansulun/video-emotion @ 312f802): the
# raw videos and the features; the paper (arXiv 2410.21303) cites an earlier version, 13624583.
EKMAN6_RECORD = 17159328
PAPER_RECORD = 13624583
FEATURE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth")
RECORD_FILE = "record.json"
PROTOCOLS = ("paper", "cleaned")


@dataclass(frozen=True)
class PaperFigures:
    """The paper's Ekman-6 figures (arXiv 2410.21303): test accuracy and the normalized confusion
    diagonal on the original 819/818 split; cleaning (the blacklist on both splits) added 2.6 points."""

    accuracy: float = 0.6528
    diagonal: tuple[tuple[str, float], ...] = (
        ("anger", 0.70),
        ("disgust", 0.55),
        ("fear", 0.72),
        ("joy", 0.69),
        ("sadness", 0.61),
        ("surprise", 0.64),
    )
    cleaned_gain: float = 0.026

    def accuracy_of(self, protocol: str) -> float:
        return self.accuracy + (self.cleaned_gain if protocol == "cleaned" else 0.0)


PAPER = PaperFigures()


class RecordError(UserError):
    """The record cannot be read, is another version, or does not hold what the importer expects."""


@dataclass(frozen=True)
class RecordFile:
    key: str
    size: int
    md5: str
    url: str


@dataclass(frozen=True)
class Record:
    id: int
    title: str
    version: str
    files: tuple[RecordFile, ...]

    def feature_files(self) -> list[RecordFile]:
        return [f for f in self.files if f.key.lower().endswith(FEATURE_SUFFIXES)]

    def blacklist_file(self) -> RecordFile | None:
        return next((f for f in self.files if "blacklist" in f.key.lower() and f.key.endswith(".txt")), None)


@dataclass(frozen=True)
class ReproduceOptions:
    """Everything that decides a ``reproduce ekman6`` run."""

    out: Path = Path("reproduce/ekman6")
    runs: int = 3
    protocols: tuple[str, ...] = ("paper",)  # "paper", "cleaned" or both
    epochs: int = 200  # at most: early stopping on validation accuracy ends sooner
    device: str = "auto"
    models_dir: Path | None = None  # where the shipped reference classifier is (the heads verdict)
    features_dir: Path | None = None  # a folder `vemoclap extract` made: train on it instead
    recipe: str | None = None  # the recipe those features must have been made with
    blacklist: Path | None = None  # default: the record's blacklist file
    record: int = EKMAN6_RECORD
    base_url: str | None = None  # default $VEMOCLAP_ZENODO_URL, else https://zenodo.org
    progress: bool = True

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UserError("--runs must be at least 1")
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown or not self.protocols:
            raise UserError(f"unknown protocol {unknown}; use {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class RunScore:
    seed: int
    accuracy: float
    diagonal: tuple[float, ...]  # in EMOTIONS order


@dataclass
class ReproduceReport:
    recipe: str  # which recipe made the features
    source: str  # the record (or the folder) they came from
    scores: dict[str, list[RunScore]]  # protocol → one per run
    heads: Any = None  # a HeadsComparison, or None
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """Markdown: each protocol's accuracy and confusion diagonal beside the paper's."""
        header = ["| metric |"]
        rule = ["|---|"]
        for protocol in self.scores:
            runs = len(self.scores[protocol])
            header.append(f" paper ({protocol}) | this ({protocol}, {runs} run{'s' if runs > 1 else ''}) |")
            rule.append("---|---|")
        lines = ["".join(header), "".join(rule)]
        rows = [("accuracy", None)] + [(name, i) for i, name in enumerate(EMOTIONS)]
        diagonal = dict(PAPER.diagonal)
        for name, index in rows:
            cells = [f"| {name} |"]
            for protocol, scores in self.scores.items():
                if index is None:
                    paper = f"{PAPER.accuracy_of(protocol):.2%}"
                    values = [s.accuracy for s in scores]
                else:
                    paper = f"{diagonal[name]:.2f}" if protocol == "paper" else "—"
                    values = [s.diagonal[index] for s in scores]
                cells.append(f" {paper} | {_mean_std(values, percent=index is None)} |")
            lines.append("".join(cells))
        return "\n".join(lines)

    def heads_verdict(self) -> str:
        if self.heads is None:
            return "heads verdict: not run (" + "; ".join(n for n in self.notes if "heads" in n) + ")"
        accuracies = {h: r.accuracy for h, r in self.heads.reports.items()}
        closest = min(accuracies, key=lambda h: abs(accuracies[h] - PAPER.accuracy))
        shown = ", ".join(f"{h} heads {a:.2%}" for h, a in accuracies.items())
        random = next((n + "; " for n in self.notes if n.startswith("RANDOM WEIGHTS")), "")
        return random + (
            f"heads verdict: the shipped reference classifier on the published test features gives {shown}; "
            f"{closest} heads is the one nearest the paper's {PAPER.accuracy:.2%}"
        )

    def text(self) -> str:
        parts = [
            f"Ekman-6, features made by recipe '{self.recipe}' ({self.source}); mean ± std over seeds",
            "",
            self.table(),
            "",
            self.heads_verdict(),
        ]
        return "\n".join(parts + [f"note: {n}" for n in self.notes if not n.startswith(("heads", "RANDOM"))])


def _mean_std(values: Sequence[float], percent: bool) -> str:
    mean, std = float(np.mean(values)), float(np.std(values))
    if percent:
        return f"{mean:.2%} ± {std:.2%}" if len(values) > 1 else f"{mean:.2%}"
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


# ---- the record ---------------------------------------------------------------------------------


def zenodo_url(base: str | None = None) -> str:
    return (base or os.environ.get(ZENODO_ENV) or ZENODO_DEFAULT).rstrip("/")


def parse_record(data: Any, record_id: int, base: str) -> Record:
    """The files of a record's API answer, checked: its ``id`` must be ``record_id`` (the pinned version)."""
    if not isinstance(data, dict) or "files" not in data:
        raise RecordError(f"Zenodo record {record_id}: the answer is not a record (no 'files')")
    if str(data.get("id")) != str(record_id):
        raise RecordError(
            f"Zenodo record {record_id}: the answer is record {data.get('id')} — another version; "
            f"refusing it (the reproduction is pinned to version {record_id})"
        )
    files = []
    for item in data["files"]:
        key, checksum = str(item.get("key", "")), str(item.get("checksum", ""))
        if not key or not checksum.startswith("md5:"):
            raise RecordError(f"Zenodo record {record_id}: file {key or '?'} lists no md5 checksum ({checksum!r})")
        url = (item.get("links") or {}).get("self") or f"{base}/api/records/{record_id}/files/{key}/content"
        files.append(RecordFile(key, int(item.get("size", -1)), checksum[4:], url))
    metadata = data.get("metadata") or {}
    return Record(int(data["id"]), str(metadata.get("title", "")), str(metadata.get("version", "")), tuple(files))


def read_record(record_id: int, base: str | None = None, cache: Path | None = None) -> Record:
    """The record's metadata from Zenodo's API (``GET {base}/api/records/{id}``), kept in ``cache``."""
    base = zenodo_url(base)
    if cache is not None and cache.is_file():
        return parse_record(json.loads(cache.read_text(encoding="utf-8")), record_id, base)
    from ..models.layout import downloads_allowed

    if not downloads_allowed():
        raise ModelUnavailable(
            f"Zenodo record {record_id} is not cached in {cache} and downloads are off "
            f"(VEMOCLAP_OFFLINE/HF_HUB_OFFLINE); run where there is internet, or give --features DIR"
        )
    url = f"{base}/api/records/{record_id}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise RecordError(f"{url}: HTTP {exc.code} {exc.reason}; check ${ZENODO_ENV}") from None
    except (OSError, ValueError) as exc:
        raise RecordError(
            f"{url}: cannot read the record ({one_line(exc)}); run again, or check ${ZENODO_ENV}"
        ) from None
    record = parse_record(data, record_id, base)
    if cache is not None:
        atomic_write_json(cache, data)
    return record


def fetch_files(files: Sequence[RecordFile], folder: Path, progress: bool = True) -> list[Path]:
    """Each file in ``folder``, downloaded (resumable) and verified against the record's md5 and size;
    a file already there is checked again, and fetched again when it does not match."""
    from tqdm.auto import tqdm

    from ..models.download import download_file, md5_file
    from ..models.layout import downloads_allowed

    paths = []
    for item in files:
        target = folder / item.key
        if target.is_file() and target.stat().st_size == item.size and md5_file(target) == item.md5:
            paths.append(target)
            continue
        target.unlink(missing_ok=True)
        if not downloads_allowed():
            raise ModelUnavailable(
                f"{item.key} of the Zenodo record is not in {folder} and downloads are off "
                f"(VEMOCLAP_OFFLINE/HF_HUB_OFFLINE); run where there is internet, or give --features DIR"
            )
        with tqdm(total=item.size, desc=item.key, unit="B", unit_scale=True, disable=not progress) as bar:

            def show(_stage: str, done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            paths.append(download_file(item.url, target, md5=item.md5, size=item.size, progress=show))
    return paths


# ---- the steps ----------------------------------------------------------------------------------


def _stage(options: ReproduceOptions, text: str) -> None:
    """A progress line between the bars (on stderr, beside them); logged too."""
    log.info("%s", text)
    if options.progress:
        from tqdm.auto import tqdm

        tqdm.write(f"reproduce: {text}", file=sys.stderr)


def published_features(options: ReproduceOptions) -> tuple[Path, Path | None, str]:
    """(the imported feature folder, the blacklist file or None, where they came from)."""
    from .reference_features import import_reference_features

    record_dir = options.out / "record"
    record = read_record(options.record, options.base_url, record_dir / RECORD_FILE)
    wanted = record.feature_files()
    if not wanted:
        names = ", ".join(f.key for f in record.files) or "no files"
        raise RecordError(
            f"Zenodo record {record.id} holds no features file ({', '.join(FEATURE_SUFFIXES)}): it has {names}; "
            f"see docs/reproduce.md"
        )
    blacklist = record.blacklist_file()
    _stage(
        options, f"Zenodo record {record.id} ({record.title} {record.version}): fetching {len(wanted)} feature files"
    )
    paths = fetch_files(wanted + ([blacklist] if blacklist else []), record_dir, options.progress)
    features_dir = options.out / "features"
    stamp = features_dir / "imported.json"
    names = sorted(f.key + ":" + f.md5 for f in wanted)
    if not (stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == names):
        import_reference_features(paths[: len(wanted)], features_dir, progress=options.progress)
        atomic_write_json(stamp, names)
    return features_dir, (paths[-1] if blacklist else None), f"Zenodo record {record.id}"


def _recipe_name(features_dir: Path, wanted: str | None) -> str:
    from .features import FeatureSetError, load_feature_set

    recipe, _how = load_feature_set(features_dir).recipe()
    name = str((recipe or {}).get("name") or "unknown")
    label = f"{name} v{recipe.get('version')}" if recipe and recipe.get("version") else name
    if wanted and wanted != name:
        raise FeatureSetError(f"{features_dir}: its features were made by recipe '{name}', not '{wanted}'")
    return label


def train_and_score(features_dir: Path, protocol: str, exclude: Sequence[str], seed: int, options) -> RunScore:
    """One seed of one protocol: train, evaluate on the test split (a finished run is read back)."""
    from .evaluate import METRICS_FILE, evaluate
    from .features import load_feature_set
    from .train import TrainOptions, train

    run_dir = options.out / protocol / f"seed_{seed}"
    metrics, stamp = run_dir / "test" / METRICS_FILE, run_dir / "settings.json"
    # a finished run is reused only when it was made from the same features with the same settings
    settings = {"features": str(features_dir.resolve()), "excluded": sorted(exclude), "epochs": options.epochs}
    if not (metrics.is_file() and stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == settings):
        feature_set = load_feature_set(features_dir, exclude=exclude)
        splits = feature_set.split_counts()
        if not splits.get("test") or not splits.get("train"):
            raise RecordError(
                f"{features_dir}: the features hold splits {splits}, need 'train' and 'test' (the dataset's own "
                f"819/818); see docs/reproduce.md"
            )
        train_options = TrainOptions(seed=seed, epochs=options.epochs, device=options.device, progress=options.progress)
        report = train(feature_set, run_dir / "classifier", train_options)
        evaluate(report.checkpoint, feature_set, "test", run_dir / "test")
        atomic_write_json(stamp, settings)
    data = json.loads(metrics.read_text(encoding="utf-8"))
    order = [data["labels"].index(name) for name in EMOTIONS]
    confusion = data["confusion_normalized"]
    return RunScore(seed, float(data["accuracy"]), tuple(float(confusion[i][i]) for i in order))


def heads_comparison(features_dir: Path, options: ReproduceOptions, notes: list[str]):
    """The shipped reference classifier with 4 and 8 heads on the published test split, or None (noted)."""
    from ..fusion.classifier import load_classifier
    from ..models import RANDOM, classifier_dir
    from ..notice import random_weights_notice
    from .evaluate import compare_heads

    try:
        checkpoint = classifier_dir(options.models_dir)
    except UserError as exc:
        notes.append(f"heads: no reference classifier ({one_line(exc, 200)})")
        return None
    classifier = load_classifier(checkpoint, "cpu")
    if classifier.origin == RANDOM:
        notes.append(random_weights_notice(["the reference classifier of the heads verdict"]))
    try:
        return compare_heads(classifier, features_dir, (4, 8), split="test", out_dir=options.out / "heads")
    except UserError as exc:  # e.g. the features lack one the classifier needs
        notes.append(f"heads: not settled ({one_line(exc, 300)})")
        return None


def reproduce_ekman6(options: ReproduceOptions) -> ReproduceReport:
    """Fetch, import, train ``options.runs`` seeds per protocol, evaluate, and settle the heads."""
    from .blacklist import read_blacklist

    options = replace(options, out=Path(options.out).expanduser())
    if options.recipe is not None:
        from ..recipes import get_recipe

        get_recipe(options.recipe)  # an unknown name: one line listing the known ones
        if options.features_dir is None and options.recipe != "reference":
            raise UserError(
                f"the published features are the reference recipe's; for '{options.recipe}' extract the record's "
                f"raw videos with it (`vemoclap extract VIDEOS --out DIR`) and pass --features DIR"
            )
    notes: list[str] = []
    if options.features_dir is not None:
        features_dir, blacklist, source = Path(options.features_dir).expanduser(), None, str(options.features_dir)
    else:
        features_dir, blacklist, source = published_features(options)
    blacklist = options.blacklist or blacklist
    recipe = _recipe_name(features_dir, options.recipe)
    scores: dict[str, list[RunScore]] = {}
    for protocol in options.protocols:
        if protocol == "cleaned" and blacklist is None:
            raise RecordError("the cleaned protocol needs a blacklist: the record has none; give --blacklist FILE")
        # names with or without their extension: the published keys may carry none
        exclude = (
            [n for name in read_blacklist(blacklist) for n in (name, Path(name).stem)] if protocol == "cleaned" else []
        )
        scores[protocol] = []
        for seed in range(options.runs):
            _stage(options, f"{protocol} protocol: run {seed + 1} of {options.runs} (seed {seed})")
            scores[protocol].append(train_and_score(features_dir, protocol, exclude, seed, options))
    heads = None
    if options.features_dir is None:
        _stage(options, "heads: the shipped reference classifier with 4 and 8 heads on the published test split")
        heads = heads_comparison(features_dir, options, notes)
    else:
        notes.append("heads: settled on the published features only (not with --features)")
    report = ReproduceReport(recipe, source, scores, heads, notes)
    atomic_write_text(options.out / "table.md", report.text() + "\n")
    return report


__all__ = [
    "EKMAN6_RECORD",
    "PAPER",
    "PAPER_RECORD",
    "ZENODO_ENV",
    "PaperFigures",
    "Record",
    "RecordError",
    "RecordFile",
    "ReproduceOptions",
    "ReproduceReport",
    "RunScore",
    "fetch_files",
    "parse_record",
    "read_record",
    "reproduce_ekman6",
]
