"""One :class:`Result` per analyzed video: numbers, readable outputs, pictures and exports.

The CLI, the notebook app and every export render from this one object.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._util import atomic_write_text, to_jsonable
from .labels import EMOTION_COLORS, EMOTIONS, VALENCE_AROUSAL

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .extractors.base import ExtractorOutput
    from .media import Frames, MediaInfo

log = logging.getLogger(__name__)

NO_CLASSIFIER = "no emotion classifier is loaded (pass --classifier PATH): extractor outputs only"


@dataclass
class Result:
    """Everything vemoclap found in one video."""

    source: str
    info: "MediaInfo | None" = None
    labels: tuple[str, ...] = EMOTIONS
    probabilities: np.ndarray | None = None  # one per label; None when no classifier ran
    outputs: dict[str, "ExtractorOutput"] = field(default_factory=dict)  # extractor name → output
    missing: dict[str, str] = field(default_factory=dict)  # modality/extractor → reason
    classifier: str | None = None  # what produced the probabilities
    frames: "Frames | None" = None  # the sampled frames (kept in memory, not exported)
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds
    warnings: list[str] = field(default_factory=list)
    path: str | None = None  # the local video file (a link's download, an upload's copy)
    recipe: dict[str, Any] | None = None  # the feature recipe run (vemoclap.recipes.Recipe.to_dict)
    # Live objects the Analyzer attaches so a Result can compute timelines and export videos;
    # they are never serialized.
    classifier_model: Any = field(default=None, repr=False, compare=False)
    feature_of: dict[str, str] = field(default_factory=dict, repr=False)  # output name → fusion feature
    face_model: Any = field(default=None, repr=False, compare=False)  # image → faces (analyze_image)

    # ---- numbers -------------------------------------------------------------------------
    @property
    def has_prediction(self) -> bool:
        return self.probabilities is not None

    @property
    def scores(self) -> dict[str, float]:
        """label → probability (empty without a classifier)."""
        if self.probabilities is None:
            return {}
        return {label: float(p) for label, p in zip(self.labels, self.probabilities)}

    @property
    def top_label(self) -> str | None:
        if self.probabilities is None:
            return None
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float | None:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    @property
    def valence_arousal(self) -> tuple[float, float] | None:
        """Probability-weighted mean of the emotions' valence and arousal (reference-facts table)."""
        if self.probabilities is None:
            return None
        known = [(p, VALENCE_AROUSAL[label]) for label, p in zip(self.labels, self.probabilities)
                 if label in VALENCE_AROUSAL]
        if not known:
            return None
        weight = sum(p for p, _ in known) or 1.0
        valence = sum(p * va[0][0] for p, va in known) / weight
        arousal = sum(p * va[1][0] for p, va in known) / weight
        return float(valence), float(arousal)

    def output(self, name: str) -> "ExtractorOutput | None":
        return self.outputs.get(name)

    # ---- text ----------------------------------------------------------------------------
    def summary(self) -> str:
        """A readable multi-line report."""
        lines = [f"vemoclap result for {self.source}"]
        if self.info is not None:
            lines.append(f"  video: {self.info.duration:.1f} s, {self.info.width}×{self.info.height}, "
                         f"{self.info.fps:.2f} fps, audio: {'yes' if self.info.has_audio else 'no'}")
        if self.probabilities is None:
            lines.append(f"  emotion: {NO_CLASSIFIER}")
        else:
            lines.append(f"  emotion: {self.top_label} ({self.top_probability:.0%})")
            for label, prob in sorted(self.scores.items(), key=lambda kv: -kv[1]):
                bar = "█" * int(round(prob * 30))
                lines.append(f"    {label:<9} {prob:6.1%} {bar}")
        if self.recipe:
            deviations = self.recipe.get("deviations") or []
            lines.append(f"  feature recipe: {self.recipe.get('name')} v{self.recipe.get('version')}"
                         + (f", {len(deviations)} deviation(s):" if deviations else ""))
            lines.extend(f"    {d['setting']}: {d['wanted']!r} → {d['used']!r} ({d['reason']})" for d in deviations)
        for output in self.outputs.values():
            if not output.missing:  # missing ones are listed below with their reasons
                lines.extend("  " + line for line in output.describe())
        if self.missing:
            lines.append("  missing:")
            lines.extend(f"    {name}: {reason}" for name, reason in self.missing.items())
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    # ---- structured exports ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "info": to_jsonable(self.info),
            "labels": list(self.labels),
            "probabilities": self.scores or None,
            "top_label": self.top_label,
            "valence_arousal": self.valence_arousal,
            "path": self.path,
            "classifier": self.classifier,
            "recipe": self.recipe,
            "outputs": {name: out.readable() for name, out in self.outputs.items()},
            "missing": dict(self.missing),
            "timings": dict(self.timings),
            "warnings": list(self.warnings),
        }

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        text = json.dumps(to_jsonable(self.to_dict()), indent=indent, ensure_ascii=False)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    def to_frame(self) -> "pd.DataFrame":
        """One row per label: label, probability (NaN without a classifier), rank."""
        import pandas as pd

        probs = self.probabilities if self.probabilities is not None else np.full(len(self.labels), np.nan)
        frame = pd.DataFrame({"label": list(self.labels), "probability": np.asarray(probs, float)})
        frame["rank"] = frame["probability"].rank(ascending=False, method="first")
        frame.insert(0, "source", self.source)
        return frame

    # ---- pictures ------------------------------------------------------------------------
    def plot(self, ax=None) -> "Figure":
        """Horizontal bar chart of the emotion probabilities."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
        else:
            fig = ax.figure
        labels = list(self.labels)
        if self.probabilities is None:
            ax.text(0.5, 0.5, "no emotion classifier loaded", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return fig
        probs = np.asarray(self.probabilities, float)
        colors = [EMOTION_COLORS.get(label, "#888888") for label in labels]
        bars = ax.barh(labels[::-1], probs[::-1], color=colors[::-1])
        for bar, prob in zip(bars, probs[::-1]):
            ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{prob:.0%}", va="center")
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("probability")
        ax.set_title(f"{Path(self.source).name}: {self.top_label}")
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    def annotated_frame(self, index: int | None = None) -> np.ndarray | None:
        """The sampled frame with the most faces and text (or ``index``), boxes and labels drawn."""
        from .render import annotated_frame

        return annotated_frame(self, index)

    def plot_annotated_frame(self, index: int | None = None, ax=None) -> "Figure":
        from .render import plot_annotated_frame

        return plot_annotated_frame(self, index, ax)

    def plot_circumplex(self, ax=None) -> "Figure":
        from .render import plot_circumplex

        return plot_circumplex(self, ax)

    def timeline(self, window_s: float | None = None, hop_s: float | None = None, smooth_frames: int = 3):
        """Emotion probabilities on sliding windows (needs the classifier) and the smoothed
        facial-expression track per sampled frame."""
        import pandas as pd

        from .labels import EMOTIONS
        from .timeline import Timeline, emotion_windows, face_track

        if self.classifier_model is not None:
            windows = emotion_windows(self, self.classifier_model, self.feature_of, window_s, hop_s)
        else:
            windows = pd.DataFrame(columns=["start", "end", "centre", *EMOTIONS, "top"])
        return Timeline(windows=windows, faces=face_track(self, smooth_frames))

    def plot_timeline(self, window_s: float | None = None) -> "Figure":
        return self.timeline(window_s).plot()

    def emotion_segments(self, emotion: str, window_s: float | None = None) -> list[tuple[float, float]]:
        """Time ranges where ``emotion`` is the top label: classifier windows, or the face track's
        frames (matching expression) when no classifier is loaded."""
        from .export import merge_segments
        from .labels import EXPRESSION_TO_EMOTION

        if emotion not in self.labels:
            raise ValueError(f"unknown emotion '{emotion}'; choose from {', '.join(self.labels)}")
        timeline = self.timeline(window_s)
        if len(timeline.windows):
            hits = timeline.windows[timeline.windows["top"] == emotion]
            return merge_segments(list(zip(hits["start"], hits["end"])))
        faces = timeline.faces
        if not len(faces):
            return []
        times = faces["time"].to_numpy(float)
        half = np.diff(times).mean() / 2 if len(times) > 1 else 0.5
        hits = faces[[EXPRESSION_TO_EMOTION.get(top) == emotion for top in faces["top"]]]
        return merge_segments([(max(0.0, t - half), t + half) for t in hits["time"]], gap=1e-6)

    def figures(self) -> dict[str, "Figure"]:
        """Every plot this result can draw, by file stem."""
        figures = {"probabilities": self.plot(), "circumplex": self.plot_circumplex()}
        if self.frames is not None and len(self.frames):
            figures["annotated_frame"] = self.plot_annotated_frame()
        if self.info is not None and self.info.duration > 0:
            figures["timeline"] = self.plot_timeline()
        return figures

    # ---- video exports -------------------------------------------------------------------
    def _local_video(self) -> str:
        if not self.path:
            raise ValueError("this result has no local video file to export from")
        return self.path

    def export_annotated_video(self, out_path, *, every: int = 1, progress: "bool | Callable" = True):
        """Every frame of the video with face boxes and smoothed expressions; audio kept; CSV beside."""
        from .export import export_annotated_video

        if self.face_model is None:
            raise ValueError("no face model is loaded (run the face_emotion extractor) to annotate the video")
        return export_annotated_video(self._local_video(), out_path, self.face_model, every=every,
                                      progress=progress)

    def export_emotion_clips(self, emotion: str, out_path, *, window_s: float | None = None,
                             progress: "bool | Callable" = True) -> tuple[Path | None, list[tuple[float, float]]]:
        """One video of the segments where ``emotion`` dominates, and those segments' times."""
        from .export import export_segments

        segments = self.emotion_segments(emotion, window_s)
        if not segments:
            return None, []
        return export_segments(self._local_video(), segments, out_path, progress=progress), segments

    # ---- files ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write result.json, probabilities.csv, frames.csv (per sampled frame), windows.csv (per
        timeline window) and a PNG per plot into ``directory``."""
        import matplotlib.pyplot as plt

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.to_json(directory / "result.json")
        atomic_write_text(directory / "probabilities.csv", self.to_frame().to_csv(index=False))
        timeline = self.timeline()
        atomic_write_text(directory / "frames.csv", timeline.faces.to_csv(index=False))
        atomic_write_text(directory / "windows.csv", timeline.windows.to_csv(index=False))
        for stem, fig in self.figures().items():
            fig.savefig(directory / f"{stem}.png", dpi=120)
            plt.close(fig)
        log.info("saved result to %s", directory)
        return directory
