"""Why the classifier chose its emotion: what each input contributed, and which of a sequence's rows
(frames, audio chunks) the classifier attended to most.

* **Leave-one-out per input.** The classifier runs again with one input replaced by what it sees
  when that modality is missing — :func:`~vemoclap.fusion.prepare.prepare`'s zeros (the
  reference's) — and the change of each emotion's probability is that input's contribution, in
  percentage points: ``p(all inputs) − p(without it)``. Positive: the input pushed toward that
  emotion. An input that was already missing is not run again: its contribution is exactly 0.
* **Attention per row.** For each sequence input ``b``, the attention weight each of its rows
  received, averaged over the heads, over the query rows, and over every ordered pair ``(a, b)`` in
  which ``b`` is the key/value side (:data:`ATTENTION_METHOD`). The weights of one input sum to 1.
  A classifier with a single sequence input has no attention, so no per-row weights.

Every run is in eval mode (no dropout): the same inputs give the same numbers. Two passes: the
video as ``EmotionClassifier.predict`` runs it (the probabilities here are its own), then one batch
of the video and the video without each input that is there (the attention weights are that
batch's first row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from .prepare import _as_array, row_indices

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .classifier import EmotionClassifier

ATTENTION_METHOD = (
    "attention each row received, averaged over heads, over query rows and over every ordered pair "
    "of sequence inputs in which this input is the key/value side"
)
LEAVE_ONE_OUT = "p(all inputs) − p(this input as missing: zeros), in percentage points"
MIN_POINTS = 0.5  # a contribution under half a point is not named in the sentence (it would print as ±0)


def spoken(feature: str) -> str:
    """How the report names an input ("the faces": its registration's ``spoken``), else its name."""
    from ..registry import FEATURES

    spec = FEATURES.get(feature)
    return (spec.spoken if spec is not None else "") or feature


@dataclass(frozen=True)
class Steps:
    """One sequence input's rows as the classifier saw them: attention weight and time of each."""

    weights: tuple[float, ...]  # one per row (sums to 1)
    times: tuple[float | None, ...]  # seconds of the row in the video; None: padding (no row there)

    def top(self, n: int = 3) -> list[tuple[float, float]]:
        """The ``n`` rows with the most attention, as (time, weight), most first; padding left out."""
        real = [(t, w) for t, w in zip(self.times, self.weights) if t is not None]
        return sorted(real, key=lambda tw: (-tw[1], tw[0]))[:n]


@dataclass(frozen=True)
class Explanation:
    """Why one video got its emotion (plain data; :class:`~vemoclap.results.Result` keeps it)."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]  # with every input, one per label
    points: dict[str, tuple[float, ...]]  # input → per label, p(all) − p(without it), in points
    missing: tuple[str, ...] = ()  # inputs the classifier got none of (their points are 0)
    steps: dict[str, Steps] = field(default_factory=dict)  # sequence input → its rows' attention
    method: str = f"leave-one-out: {LEAVE_ONE_OUT}; per row: {ATTENTION_METHOD}"

    def __post_init__(self) -> None:
        """Consistent sizes (a result file read back may hold anything): a ValueError otherwise."""
        n = len(self.labels)
        if not n or not all(isinstance(label, str) for label in self.labels) or len(self.probabilities) != n:
            raise ValueError("an explanation needs one probability per label")
        if not isinstance(self.points, dict) or any(len(p) != n for p in self.points.values()):
            raise ValueError("an explanation needs, per input, one number per label")
        if not set(self.missing) <= set(self.points):
            raise ValueError("an explanation's missing inputs must be among its inputs")
        if not isinstance(self.steps, dict) or any(
            not isinstance(s, Steps) or len(s.weights) != len(s.times) for s in self.steps.values()
        ):
            raise ValueError("an explanation needs, per sequence input, one time per attention weight")
        values = [*self.probabilities, *(v for p in self.points.values() for v in p)]
        values += [w for s in self.steps.values() for w in (*s.weights, *(t for t in s.times if t is not None))]
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
            raise ValueError("an explanation holds numbers only")

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    def toward(self, label: str | None = None) -> dict[str, float]:
        """Input → its contribution to ``label`` (default: the top one) in points, largest first."""
        index = self.labels.index(label or self.top_label)
        return dict(sorted(((f, p[index]) for f, p in self.points.items()), key=lambda fp: -fp[1]))

    def pulled_to(self, feature: str) -> str:
        """The label ``feature`` raised most."""
        values = self.points[feature]
        return self.labels[int(np.argmax(values))]

    def sentence(self, most: int = 2) -> str:
        """One line: "joy, mostly from the faces (+31 pts) and the transcript (+12 pts); the audio
        pulled toward fear"."""
        top = self.top_label
        present = {f: v for f, v in self.toward(top).items() if f not in self.missing}
        helped = [(f, v) for f, v in present.items() if v >= MIN_POINTS][:most]
        against = [f for f, v in reversed(present.items()) if v <= -MIN_POINTS]
        if helped:
            text = f"{top}, mostly from " + _and([f"{spoken(f)} ({_points(v)} pts)" for f, v in helped])
        else:
            text = f"{top}, with no input raising it by {MIN_POINTS:g} pt or more"
        pulled: dict[str, list[str]] = {}  # label → the inputs that pulled toward it, strongest first
        for feature in against:
            pulled.setdefault(self.pulled_to(feature), []).append(spoken(feature))
        for label, names in pulled.items():
            text += f"; {_and(names)} pulled toward {label}"
        if self.missing:
            text += f" ({_and([spoken(f) for f in self.missing])} missing)"
        return text

    def top_frames(self, timestamps: Sequence[float], n: int = 3) -> list[tuple[int, float]]:
        """The ``n`` sampled frames (index into ``timestamps``) the classifier attended to most, as
        (index, weight): the attention weights of the rows at each frame's time, summed over the
        inputs whose rows are sampled frames (CLIP's, the faces'); most first."""
        stamps = np.asarray(timestamps, dtype=np.float64)
        score = np.zeros(len(stamps))
        for steps in self.steps.values():
            rows = [(t, w) for t, w in zip(steps.times, steps.weights) if t is not None]
            hits = [np.flatnonzero(np.isclose(stamps, t, rtol=0, atol=1e-6)) for t, _ in rows]
            if not rows or any(len(hit) == 0 for hit in hits):  # not a per-frame input (audio chunks)
                continue
            for hit, (_, weight) in zip(hits, rows):
                score[hit[0]] += weight
        ranked = sorted((i for i in range(len(stamps)) if score[i] > 0), key=lambda i: (-score[i], i))
        return [(i, float(score[i])) for i in ranked[:n]]

    def table(self) -> "pd.DataFrame":
        """One row per input: feature, missing, one column per label (points), the label it raised most."""
        import pandas as pd

        rows = [
            {"feature": f, "missing": f in self.missing, **dict(zip(self.labels, p)), "toward": self.pulled_to(f)}
            for f, p in self.points.items()
        ]
        return pd.DataFrame(rows, columns=["feature", "missing", *self.labels, "toward"])


def _points(value: float) -> str:
    """Whole points, or one decimal under 1 ("+31", "+0.6")."""
    return f"{value:+.0f}" if abs(value) >= 1 else f"{value:+.1f}"


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _row_times(raw: Any, times: Any, length: int) -> tuple[float | None, ...]:
    """The time of each of the ``length`` rows prepare() keeps of ``raw`` (None for padding)."""
    array = _as_array(raw)
    stamps = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if array is None or array.size == 0:
        return (None,) * length
    n_rows = 1 if array.ndim == 1 else len(array)
    kept = row_indices(n_rows, length)
    if stamps is None or len(stamps) != n_rows:
        return (None,) * length
    found = [float(stamps[i]) for i in kept]
    return tuple(found) + (None,) * (length - len(found))


def _steps(attention: Mapping[str, torch.Tensor], sequences: Sequence[str]) -> dict[str, np.ndarray]:
    """Sequence input → per-row weight: the mean over pairs (a, b) of the weights b's rows got,
    each averaged over a's rows (the model already averaged the heads)."""
    out = {}
    for b in sequences:
        per_pair = [attention[f"{a}_{b}"][0].float().mean(0) for a in sequences if a != b]
        if per_pair:
            out[b] = torch.stack(per_pair).mean(0).cpu().numpy()
    return out


def explain(
    classifier: "EmotionClassifier",
    features: Mapping[str, Any],
    times: Mapping[str, Any] | None = None,
) -> Explanation:
    """Leave-one-out contributions and per-row attention for one video's ``features`` (name → array,
    as ``predict`` takes them); ``times`` (name → seconds of each row) places the rows in time."""
    config = classifier.config
    full = config.prepare(features)
    blank = config.prepare({})  # every input as the classifier sees it when its modality is missing
    baseline = classifier.predict_prepared([full])[0].astype(np.float64)  # predict()'s path and numbers
    missing = [name for name in config.features if np.array_equal(full[name], blank[name])]
    rerun = [name for name in config.features if name not in missing]
    # One batch: the video as it is (for the attention weights), then once without each input there.
    attention: dict[str, torch.Tensor] = {}
    batch = [full] + [{**full, name: blank[name]} for name in rerun]
    without = dict(zip(rerun, classifier.predict_prepared(batch, attention=attention)[1:].astype(np.float64)))
    points = {
        name: (0.0,) * len(config.labels)
        if name in missing
        else tuple(float(v) for v in (baseline - without[name]) * 100)
        for name in config.features
    }
    times = times or {}
    steps = {
        name: Steps(
            tuple(float(w) for w in weights),
            _row_times(features.get(name), times.get(name), config.feature_lengths[name]),
        )
        for name, weights in _steps(attention, config.sequence_features).items()
    }
    return Explanation(
        labels=tuple(config.labels),
        probabilities=tuple(float(p) for p in baseline),
        points=points,
        missing=tuple(missing),
        steps=steps,
    )


__all__ = ["ATTENTION_METHOD", "Explanation", "Steps", "explain", "spoken"]
