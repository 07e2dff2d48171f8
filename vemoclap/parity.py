"""Parity check: our features for videos the reference also extracted, against its published rows.

The reference's published Ekman-6 features (imported with ``vemoclap import-features``) hold a row
set for every Ekman-6 video, its seven sample videos among them. :func:`run_parity` extracts our
features for such videos under several *settings* — a recipe plus extractor options (BEATs chunk
selection, OCR models …) — and reports, per video, setting and feature, the cosine similarity to
the published rows, and the classifier's prediction on each (ours and the published, with every
head count asked for). That tells which setting reproduces the features the reference classifier
was trained on, and so settles the provisional defaults of the ``reference`` recipe
(docs/parity.md).

Similarity of a feature: ``rows`` is the mean cosine of row i with row i when both have the same
number of rows (frames and chunks at the same positions); ``mean`` is the cosine of the two
row means (for face rows, whose count depends on which frames show a face); ``aligned`` is the
mean row-wise cosine after both sides are brought to the rows the classifier sees (16 equidistant
rows of a longer sequence, zero rows after a shorter one), so a sampler that keeps more rows (one
per scene) is compared by content, not by its row count. Missing on one side is said as such;
missing on both counts as agreement.

Which frame sampler made the published rows: every setting also names its sampler (the recipe's
``frames.positions``); :meth:`ParityReport.samplers` ranks the settings by the aligned cosine of
their CLIP and BEATs rows, over the videos, and says which reproduces the published rows best.

Which published video is which: given (``published_ids``), or found as the published video of the
same label whose CLIP rows are most similar to ours (CLIP is a feature both make the same way);
the match, its similarity and the runner-up's are reported.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import OptionError, UserError
from .labels import EMOTIONS

log = logging.getLogger(__name__)

MATCH_FEATURE = "clip"


@dataclass
class Setting:
    """One way to extract: a recipe and extractor options on top of it."""

    label: str
    recipe: str
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # extractor → options

    @classmethod
    def parse(cls, text: str) -> "Setting":
        """``RECIPE[,extractor.option=value ...]``, e.g. ``reference,beats.chunk_selection=reference-indices``;
        a value is read as JSON when it is JSON (numbers, true/false), else as a string."""
        from .recipes import get_recipe

        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise OptionError("an empty parity setting; give RECIPE[,extractor.option=value ...]")
        recipe = get_recipe(parts[0]).name  # an unknown recipe fails here, in one line
        options: dict[str, dict[str, Any]] = {}
        for part in parts[1:]:
            key, sep, value = part.partition("=")
            extractor, dot, option = key.strip().partition(".")
            if not sep or not dot or not extractor or not option:
                raise OptionError(f"parity setting '{text}': '{part}' is not extractor.option=value")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value.strip()
            options.setdefault(extractor, {})[option.strip()] = parsed
        return cls(text.strip(), recipe, options)

    @property
    def extractor_options(self) -> dict[str, dict[str, Any]]:
        """The options of the extractors (``frames.…`` are the recipe's frame settings, not options)."""
        return {name: dict(values) for name, values in self.options.items() if name != "frames"}

    def build_recipe(self):
        """The recipe with this setting's frame settings (``frames.positions=scenes`` …) applied."""
        from .recipes import FrameSettings, get_recipe

        recipe = get_recipe(self.recipe)
        known = {f.name for f in dataclasses.fields(FrameSettings)}
        for key, value in self.options.get("frames", {}).items():
            if key not in known:
                raise OptionError(
                    f"parity setting '{self.label}': frames.{key} is not a frame setting; "
                    f"choose from {', '.join(sorted(known))}"
                )
            setattr(recipe.frames, key, value)
            recipe.notes.append(f"parity setting '{self.label}': frames.{key} = {value!r}")
        return recipe

    @property
    def sampler(self) -> str:
        """Which frame sampler this setting runs (the recipe's ``frames.positions``)."""
        return str(self.build_recipe().frames.positions)


def _training_era() -> dict[str, dict[str, Any]]:
    from .recipes import TRAINING_ERA_SAMPLER

    options: dict[str, dict[str, Any]] = {}
    for setting, value in TRAINING_ERA_SAMPLER.items():
        where, key = setting.split(".", 1)
        options.setdefault(where, {})[key] = value
    return options


# The settings the reference recipe leaves provisional, each beside the recipe as it is.
DEFAULT_SETTINGS: tuple[Setting, ...] = (
    Setting("reference", "reference"),
    Setting("reference, beats reference-indices", "reference", {"beats": {"chunk_selection": "reference-indices"}}),
    Setting("reference, bundled OCR models", "reference", {"ocr_sentiment": {"ocr_models": "ppocr-default"}}),
    Setting("reference, training-era scenes", "reference", _training_era()),
    Setting("vemoclap", "vemoclap"),
)
SAMPLER_FEATURES = ("clip", "beats")  # the rows a frame / chunk sampler decides


# ---- similarity ----------------------------------------------------------------------------------


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def _rows(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    array = np.atleast_2d(np.asarray(value, dtype=np.float64))
    return array if array.size else None


def _as_seen(rows: np.ndarray, length: int) -> np.ndarray:
    """The rows the classifier sees: ``length`` equidistant ones of more, zero rows after fewer."""
    from .fusion.prepare import row_indices

    rows = rows[row_indices(len(rows), length)]
    if len(rows) < length:
        rows = np.concatenate([rows, np.zeros((length - len(rows), rows.shape[1]))])
    return rows


@dataclass
class Similarity:
    feature: str
    rows: float | None  # mean row-wise cosine (same row count only)
    mean: float | None  # cosine of the row means
    n_ours: int
    n_published: int
    note: str = ""
    aligned: float | None = None  # mean row-wise cosine of the rows the classifier sees, both sides

    def cell(self) -> str:
        if self.note:
            return self.note
        rows = f"{self.rows:.3f}" if self.rows is not None else "–"
        aligned = f" · seen {self.aligned:.3f}" if self.aligned is not None and self.rows is None else ""
        return f"{rows} / {self.mean:.3f}{aligned} ({self.n_ours}:{self.n_published})"


def similarity(feature: str, ours: Any, published: Any, length: int | None = None) -> Similarity:
    """How alike our rows and the published rows of one feature are (see the module docstring);
    ``length``: the rows the classifier sees (default: the feature's registration, else 16)."""
    from .registry import FEATURES

    a, b = _rows(ours), _rows(published)
    if a is None or b is None:
        note = "both missing" if a is None and b is None else "missing here" if a is None else "missing there"
        return Similarity(feature, None, None, 0 if a is None else len(a), 0 if b is None else len(b), note)
    if a.shape[1] != b.shape[1]:
        raise UserError(f"feature {feature}: width {a.shape[1]} here but {b.shape[1]} in the published features")
    rows = float(np.mean([_cosine(x, y) for x, y in zip(a, b)])) if len(a) == len(b) else None
    spec = FEATURES.get(feature)
    length = length or (spec.length if spec is not None and spec.sequence else 16)
    aligned = float(np.mean([_cosine(x, y) for x, y in zip(_as_seen(a, length), _as_seen(b, length))]))
    return Similarity(feature, rows, _cosine(a.mean(0), b.mean(0)), len(a), len(b), aligned=aligned)


# ---- which published video -----------------------------------------------------------------------


@dataclass
class Match:
    video: str
    published_id: str
    how: str  # "given" or "nearest clip"
    score: float | None = None
    runner_up: str | None = None
    runner_up_score: float | None = None

    def line(self) -> str:
        if self.how == "given":
            return f"{self.video} → {self.published_id} (given)"
        second = f"; next {self.runner_up} {self.runner_up_score:.3f}" if self.runner_up else ""
        return f"{self.video} → {self.published_id} (nearest CLIP rows, cosine {self.score:.3f}{second})"


def match_published(video: str, ours: Mapping[str, Any], published, label: str | None = None) -> Match:
    """The published video whose CLIP rows' mean is nearest ours (among ``label``'s when given)."""
    mine = _rows(ours.get(MATCH_FEATURE))
    if mine is None:
        raise UserError(
            f"{video}: no {MATCH_FEATURE} feature to find its published rows by; give its id (--video ID=PATH)"
        )
    candidates = [i for i, vid in enumerate(published.ids) if label is None or published.labels[i] == label]
    scored = []
    for i in candidates:
        theirs = _rows(published.features[i].get(MATCH_FEATURE))
        if theirs is not None and theirs.shape[1] == mine.shape[1]:
            scored.append((_cosine(mine.mean(0), theirs.mean(0)), published.ids[i]))
    if not scored:
        raise UserError(
            f"{video}: the published features have no {MATCH_FEATURE} rows"
            + (f" of label {label}" if label else "")
            + " to match it with; give its id"
        )
    scored.sort(reverse=True)
    best, second = scored[0], scored[1] if len(scored) > 1 else (None, None)
    return Match(video, best[1], "nearest clip", best[0], second[1], second[0])


# ---- the published rows alone: the BEATs chunk-index defect -------------------------------------

NEAR_IDENTICAL = 0.9999  # mean cosine of consecutive rows above which chunks are copies (1-ms shifts) of one another


@dataclass
class ChunkDefectSignal:
    """Whether the published BEATs rows carry the reference app's chunk-index defect.

    With the defect, a track over ~27 s gets 16 chunks that start within the first few
    milliseconds, so its 16 rows are near copies of one another; equidistant chunks of a real
    track are not. Only videos with a full 16 rows can show it (shorter tracks are not affected)."""

    videos_with_full_rows: int
    near_identical: int
    threshold: float = NEAR_IDENTICAL

    @property
    def share(self) -> float | None:
        return self.near_identical / self.videos_with_full_rows if self.videos_with_full_rows else None

    def line(self) -> str:
        if not self.videos_with_full_rows:
            return "published BEATs rows: no video has 16 chunks, so the chunk-index defect cannot show"
        verdict = (
            "the training features carry the app's chunk-index defect (beats chunk_selection 'reference-indices')"
            if self.share > 0.5
            else "the training features have equidistant chunks (beats chunk_selection 'equidistant')"
        )
        return (
            f"published BEATs rows: {self.near_identical} of {self.videos_with_full_rows} videos with 16 chunks "
            f"have near-identical consecutive rows (mean cosine ≥ {self.threshold}): {verdict}"
        )


def chunk_defect_signal(published, rows: int = 16, threshold: float = NEAR_IDENTICAL) -> ChunkDefectSignal:
    from .training.features import as_feature_set

    published = as_feature_set(published)
    full = near = 0
    for video in published.features:
        beats = _rows(video.get("beats"))
        if beats is None or len(beats) < rows:
            continue
        full += 1
        if np.mean([_cosine(a, b) for a, b in zip(beats[:-1], beats[1:])]) >= threshold:
            near += 1
    return ChunkDefectSignal(full, near, threshold)


# ---- the run -------------------------------------------------------------------------------------


@dataclass
class Prediction:
    video: str
    source: str  # "published" or a setting's label
    heads: int
    label: str
    probability: float
    correct: bool | None  # against the video's label, when known


@dataclass
class SamplerScore:
    """How well one setting's sampler reproduces the published rows, by content."""

    setting: str
    sampler: str  # the recipe's frames.positions
    features: dict[str, float | None]  # feature → mean over the videos of the aligned cosine
    score: float | None  # the mean of those

    def line(self) -> str:
        cells = ", ".join(f"{f} {v:.3f}" if v is not None else f"{f} –" for f, v in self.features.items())
        total = f"{self.score:.3f}" if self.score is not None else "–"
        return f"{self.setting} (frames {self.sampler}): {total} ({cells})"


@dataclass
class ParityReport:
    settings: list[Setting]
    matches: dict[str, Match]  # video → its published row set
    similarities: dict[str, dict[str, dict[str, Similarity]]]  # video → setting → feature → similarity
    predictions: list[Prediction]
    recipes: dict[str, dict[str, Any]]  # setting label → the recipe as run (with deviations)
    labels: dict[str, str | None]  # video → its label
    features: list[str]
    chunk_signal: ChunkDefectSignal | None = None

    def table(self) -> str:
        """Per video and setting: each feature's similarity, then the predictions."""
        lines = ["similarity to the published rows: row-wise cosine / cosine of the means (rows here:there)"]
        for video, per_setting in self.similarities.items():
            lines += ["", f"## {video} (label {self.labels.get(video) or '?'}): {self.matches[video].line()}"]
            header = ["setting", *self.features]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            for setting, features in per_setting.items():
                lines.append("| " + " | ".join([setting, *(features[f].cell() for f in self.features)]) + " |")
            preds = [p for p in self.predictions if p.video == video]
            if preds:
                lines.append("")
                lines.append("| classifier input | " + " | ".join(f"{h} heads" for h in self._heads()) + " |")
                lines.append("|---|" + "---|" * len(self._heads()))
                for source in dict.fromkeys(p.source for p in preds):
                    cells = []
                    for heads in self._heads():
                        p = next(p for p in preds if p.source == source and p.heads == heads)
                        mark = "" if p.correct is None else " ✓" if p.correct else " ✗"
                        cells.append(f"{p.label} {p.probability:.2f}{mark}")
                    lines.append(f"| {source} | " + " | ".join(cells) + " |")
        deviations = {
            label: recipe.get("deviations") for label, recipe in self.recipes.items() if recipe.get("deviations")
        }
        if deviations:
            lines += ["", "deviations from the recipes in this run:"]
            for label, items in deviations.items():
                lines += [f"- {label}: {d['setting']}: {d['wanted']!r} → {d['used']!r} ({d['reason']})" for d in items]
        lines += ["", self.summary(), self.sampler_verdict()]
        if self.chunk_signal is not None:
            lines.append(self.chunk_signal.line())
        return "\n".join(lines)

    def samplers(self) -> list[SamplerScore]:
        """Every setting's CLIP and BEATs rows against the published ones, by the aligned cosine
        (the rows the classifier sees), best first; settings with no such rows come last."""
        scores = []
        for setting in self.settings:
            per_feature: dict[str, float | None] = {}
            for feature in SAMPLER_FEATURES:
                values = [
                    per[setting.label][feature].aligned
                    for per in self.similarities.values()
                    if feature in per[setting.label] and per[setting.label][feature].aligned is not None
                ]
                per_feature[feature] = float(np.mean(values)) if values else None
            present = [v for v in per_feature.values() if v is not None]
            score = float(np.mean(present)) if present else None
            scores.append(SamplerScore(setting.label, setting.sampler, per_feature, score))
        return sorted(scores, key=lambda s: -1.0 if s.score is None else -s.score)

    def sampler_verdict(self) -> str:
        """One line: which setting (and frame sampler) reproduces the published CLIP and BEATs rows best."""
        ranked = [s for s in self.samplers() if s.score is not None]
        if not ranked:
            return "frame sampler: no CLIP or BEATs rows on both sides, so no sampler can be told apart"
        best = ranked[0]
        runner = f"; next {ranked[1].line()}" if len(ranked) > 1 else ""
        return f"frame sampler that reproduces the published rows best, by content: {best.line()}{runner}"

    def _heads(self) -> list[int]:
        return sorted({p.heads for p in self.predictions})

    def mean_similarity(self) -> dict[str, dict[str, float | None]]:
        """Setting → feature → mean over the videos of the cosine of the means (None: never both present)."""
        out: dict[str, dict[str, float | None]] = {}
        for setting in self.settings:
            out[setting.label] = {}
            for feature in self.features:
                values = [
                    per[setting.label][feature].mean
                    for per in self.similarities.values()
                    if per[setting.label][feature].mean is not None
                ]
                out[setting.label][feature] = float(np.mean(values)) if values else None
        return out

    def summary(self) -> str:
        lines = ["mean cosine of the means over the videos:"]
        for setting, features in self.mean_similarity().items():
            cells = ", ".join(f"{f} {v:.3f}" if v is not None else f"{f} –" for f, v in features.items())
            lines.append(f"- {setting}: {cells}")
        for heads in self._heads():
            for source in dict.fromkeys(p.source for p in self.predictions):
                scored = [
                    p for p in self.predictions if p.source == source and p.heads == heads and p.correct is not None
                ]
                if scored:
                    right = sum(p.correct for p in scored)
                    lines.append(f"- {heads} heads, {source}: {right}/{len(scored)} labels right")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        from ._util import to_jsonable

        return to_jsonable(
            {
                "settings": [{"label": s.label, "recipe": s.recipe, "options": s.options} for s in self.settings],
                "matches": self.matches,
                "labels": self.labels,
                "similarities": self.similarities,
                "predictions": self.predictions,
                "recipes": self.recipes,
                "mean_similarity": self.mean_similarity(),
                "samplers": self.samplers(),
                "sampler_verdict": self.sampler_verdict(),
                "chunk_signal": None
                if self.chunk_signal is None
                else {**vars(self.chunk_signal), "line": self.chunk_signal.line()},
            }
        )


def _label_of(name: str) -> str | None:
    stem = Path(str(name)).stem.lower()
    return stem if stem in EMOTIONS else None


def _extractor_keys(setting: Setting, names: Sequence[str], device: str, frames: int | None):
    """(a key per extractor of what decides its feature — frames and its options as planned — so
    that two settings with the same key share the extractor's run; the recipe as planned)."""
    from . import recipes

    planned = recipes.plan(
        setting.build_recipe(), names, device=device, overrides=setting.extractor_options, n_frames=frames
    )
    frames_key = json.dumps(planned.media_options, sort_keys=True, default=str)
    keys = {
        name: json.dumps(
            [frames_key, planned.recipe.frames.n_frames, planned.extractor_options[name]], sort_keys=True, default=str
        )
        for name in names
    }
    return keys, planned.recipe


def _free_models() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def extract_settings(
    videos: Mapping[str, str | os.PathLike],
    settings: Sequence[Setting],
    *,
    extractors: Sequence[str] | None = None,
    device: str = "auto",
    models_dir=None,
    frames: int | None = None,
    skip_unavailable: bool = True,
) -> tuple[dict[str, dict[str, dict[str, np.ndarray | None]]], dict[str, dict[str, Any]]]:
    """Our features of every video under every setting: (setting → video → feature → rows,
    setting → the recipe as run). Extractors whose frames and options two settings share run
    once; each setting's models are freed before the next one loads (a T4 holds one set)."""
    from .extractors import extractor_class
    from .pipeline import Analyzer
    from .registry import default_extractors

    names = [n for n in (extractors or default_extractors()) if extractor_class(n).feature_name]
    cache: dict[str, dict[str, Any]] = {}  # extractor key → video → feature rows
    out: dict[str, dict[str, dict[str, np.ndarray | None]]] = {}
    ran: dict[str, dict[str, Any]] = {}
    for setting in settings:
        keys, planned = _extractor_keys(setting, names, device, frames)
        todo = [name for name in names if keys[name] not in cache]
        ran[setting.label] = planned.to_dict()
        if todo:
            log.info("parity: setting '%s' runs %s", setting.label, ", ".join(todo))
            runner = Analyzer(
                todo,
                classifier=None,
                device=device,
                models_dir=models_dir,
                recipe=setting.build_recipe(),
                extractor_options={k: v for k, v in setting.extractor_options.items() if k in todo},
                frames=frames,
                skip_unavailable=skip_unavailable,
            )
            ran[setting.label]["deviations"] += [
                d for d in runner.recipe.to_dict()["deviations"] if d not in ran[setting.label]["deviations"]
            ]
            for name in todo:
                cache[keys[name]] = {}
            for video, path in videos.items():
                outputs = runner.run(path)  # the features only: no classifier, no Result
                for name in todo:
                    output = outputs.get(name)
                    cache[keys[name]][video] = None if output is None else output.feature
            del runner
            _free_models()
        out[setting.label] = {
            video: {extractor_class(name).feature_name: cache[keys[name]].get(video) for name in names}
            for video in videos
        }
    return out, ran


def run_parity(
    published,
    videos: Mapping[str, str | os.PathLike],
    *,
    checkpoint=None,
    settings: Sequence[Setting] = DEFAULT_SETTINGS,
    heads: Sequence[int] = (4, 8),
    published_ids: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    extractors: Sequence[str] | None = None,
    device: str = "auto",
    models_dir=None,
    frames: int | None = None,
    skip_unavailable: bool = True,
) -> ParityReport:
    """Compare our features of ``videos`` (name → file) under ``settings`` with the published
    feature set ``published`` (a folder from ``import-features`` or a FeatureSet) and, with a
    ``checkpoint``, the predictions with each head count (see the module docstring)."""
    from .fusion import EmotionClassifier, load_classifier, with_heads
    from .training.features import as_feature_set

    if not videos:
        raise OptionError("no videos to compare; give sample names or --video ID=PATH")
    settings = list(settings)
    if len({s.label for s in settings}) != len(settings):
        raise OptionError("two parity settings have the same label")
    published = as_feature_set(published)
    published_ids = dict(published_ids or {})
    unknown = sorted(set(published_ids.values()) - set(published.ids))
    if unknown:
        raise UserError(
            f"{', '.join(unknown)}: not in the published features at {published.source} "
            f"(ids look like {published.ids[0]})"
        )
    labels = {video: (labels or {}).get(video) or _label_of(video) for video in videos}
    ours, ran = extract_settings(
        videos,
        settings,
        extractors=extractors,
        device=device,
        models_dir=models_dir,
        frames=frames,
        skip_unavailable=skip_unavailable,
    )
    index = {vid: i for i, vid in enumerate(published.ids)}
    matches: dict[str, Match] = {}
    for video in videos:
        if video in published_ids:
            matches[video] = Match(video, published_ids[video], "given")
        else:
            matches[video] = match_published(video, ours[settings[0].label][video], published, labels[video])
        if labels[video] is None:
            labels[video] = published.labels[index[matches[video].published_id]]
    features = sorted({f for per in ours.values() for video in per.values() for f in video})
    similarities = {
        video: {
            s.label: {
                f: similarity(
                    f, ours[s.label][video].get(f), published.features[index[matches[video].published_id]].get(f)
                )
                for f in features
            }
            for s in settings
        }
        for video in videos
    }

    predictions: list[Prediction] = []
    if checkpoint is not None:
        classifier = checkpoint if isinstance(checkpoint, EmotionClassifier) else load_classifier(checkpoint)
        for count in dict.fromkeys(int(h) for h in heads):
            model = with_heads(classifier, count)
            for video in videos:
                inputs = [("published", published.features[index[matches[video].published_id]])]
                inputs += [(s.label, ours[s.label][video]) for s in settings]
                probabilities = model.predict_batch([features_ for _, features_ in inputs])
                for (source, _), p in zip(inputs, probabilities):
                    label = model.labels[int(np.argmax(p))]
                    truth = labels[video]
                    predictions.append(
                        Prediction(
                            video, source, count, label, float(np.max(p)), None if truth is None else label == truth
                        )
                    )
    return ParityReport(
        settings, matches, similarities, predictions, ran, labels, features, chunk_defect_signal(published)
    )


def sample_videos(names: Sequence[str] | None = None) -> dict[str, Path]:
    """The reference's sample videos (``sample:anger`` …) by name, fetched (and verified) on first use."""
    from . import samples

    # By default the six labelled ones: Ekman-6 videos whose label says which published rows to search.
    wanted = list(names) if names else [n for n in samples.names() if n in EMOTIONS]
    return {name.removeprefix(samples.PREFIX): samples.reference(name) for name in wanted}


__all__ = [
    "Setting",
    "DEFAULT_SETTINGS",
    "ChunkDefectSignal",
    "chunk_defect_signal",
    "Similarity",
    "similarity",
    "SamplerScore",
    "SAMPLER_FEATURES",
    "Match",
    "match_published",
    "Prediction",
    "ParityReport",
    "extract_settings",
    "run_parity",
    "sample_videos",
]
