"""One :class:`Result` per analyzed video: numbers, readable outputs, pictures and exports.

A Result is plain data: it holds no models, and ``to_json``/``from_json`` round-trip it (feature
arrays and the classifier's per-window probabilities included; the sampled frames' pixels stay in
memory only). Everything made from what the analysis found — the timeline, the saved files, the
clips where an emotion dominates — works from a Result alone, also one read back from JSON. Only
annotating every frame of the video needs a model again, so it lives on the
:class:`~vemoclap.pipeline.Analyzer` (``Analyzer.export_annotated_video``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._util import atomic_write_text, decode_array, encode_array, from_jsonable, to_jsonable
from .errors import UserError, one_line
from .labels import EMOTIONS, VALENCE_AROUSAL
from .notice import random_names, random_weights_cell, random_weights_notice, result_mark

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .extractors.asr import AsrOutput
    from .extractors.base import ExtractorOutput
    from .extractors.caption import CaptionOutput
    from .extractors.faces import FacesOutput
    from .extractors.ocr import OcrOutput
    from .fusion.explain import Explanation
    from .media import Frames, MediaInfo

log = logging.getLogger(__name__)

NO_CLASSIFIER = "no emotion classifier was used (--no-classifier / classifier=None): extractor outputs only"


def no_classifier_line(warnings) -> str:
    """Why a Result has no emotion: the reason among its warnings, else that none was chosen."""
    return next((w for w in warnings if w.startswith("no emotion classifier")), NO_CLASSIFIER)


# The files a Result exports, by name: :meth:`Result.save` writes them into a folder and the app
# offers them as downloads named after the video ("clip_frames.csv").
EXPORT_FILES = {
    "result.json": "result (JSON)",
    "probabilities.csv": "probabilities (CSV)",
    "faces.csv": "every face found (CSV)",
    "people.csv": "each person's expressions over time (CSV)",
    "frames.csv": "faces per frame (CSV)",
    "windows.csv": "emotion timeline (CSV)",
}


MAX_RESULT_BYTES = 256 * 2**20  # a result with every feature is a few MB


def _read_result_file(path: str | Path) -> str:
    """The text of a result file: a regular file (never a device or pipe) of bounded size."""
    import stat

    try:
        info = Path(path).stat()
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: not a regular file (a device, pipe or folder); give a result .json file")
        if info.st_size > MAX_RESULT_BYTES:
            raise UserError(f"{path}: {info.st_size} bytes is too big for a vemoclap result")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RESULT_BYTES + 1)
    except (OSError, ValueError) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{str(path)[:300]}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if len(raw) > MAX_RESULT_BYTES:
        raise UserError(f"{path}: more than {MAX_RESULT_BYTES} bytes is too big for a vemoclap result")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text, so not a vemoclap result") from None


@dataclass(frozen=True)
class Row:
    """One row of a summary section: a label, its value in words, and a number (a bar) where one is drawn."""

    label: str
    value: str
    number: float | None = None


@dataclass(frozen=True)
class Section:
    """One part of a :class:`Summary`. ``kind``: "info" (a titled line and its rows), "output" (an
    extractor's own lines, ``describe()``), "list" (titled rows only). ``file``/``table``: the CSV
    this section exports (a plain DataFrame), if any."""

    key: str
    title: str
    text: str = ""
    rows: tuple[Row, ...] = ()
    kind: str = "info"
    file: str | None = None
    table: "pd.DataFrame | None" = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Summary:
    """A Result as sections and rows (as ultralytics' ``Results.summary()``): the text report
    (:meth:`text`), the app's HTML (``vemoclap.app.views``) and the CSVs (:meth:`tables`) render it."""

    source: str
    notice: str  # the random-weights notice ("" when every model is trained)
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def of_kind(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def tables(self) -> dict[str, "pd.DataFrame"]:
        """The CSV file name → table of each section that exports one."""
        return {s.file: s.table for s in self.sections if s.file and s.table is not None}

    def text(self) -> str:
        lines = [f"vemoclap result for {self.source}"]
        if self.notice:
            lines.append(f"  !! {self.notice} !!")
        for section in self.sections:
            if section.kind == "output":
                lines.extend("  " + row.value for row in section.rows)
                continue
            if section.kind == "table" or (section.kind == "list" and not section.rows):
                continue
            lines.append(f"  {section.title}: {section.text}" if section.text else f"  {section.title}:")
            lines.extend(_row_text(row) for row in section.rows)
        return "\n".join(lines)


def _row_text(row: Row) -> str:
    if row.number is not None:
        return f"    {row.label:<9} {row.value:>6} {'█' * int(round(row.number * 30))}"
    return f"    {row.label}: {row.value}" if row.label else f"    {row.value}"


def _explanation(data: dict[str, Any] | None) -> "Explanation | None":
    from .fusion.explain import Explanation

    if data is not None and not isinstance(data, dict):
        raise TypeError(f"its explanation is a JSON {type(data).__name__}, not an object")
    return from_jsonable(Explanation, data)


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
    feature_of: dict[str, str] = field(default_factory=dict, repr=False)  # output name → fusion feature
    weights: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # extractor → models it ran on
    # The classifier on sliding windows, computed at analysis time (vemoclap.timeline.emotion_windows):
    # start, end, centre, one column per label, top; None when no classifier ran.
    windows: "pd.DataFrame | None" = field(default=None, repr=False)
    # Why this emotion: each input's leave-one-out contribution and the attention per frame / audio
    # chunk (vemoclap.fusion.explain); None when no classifier ran.
    explanation: "Explanation | None" = field(default=None, repr=False)

    @property
    def random_weights(self) -> list[str]:
        """What ran on randomly initialised weights (extractors, "classifier"): its numbers mean nothing."""
        return random_names(self.weights)

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
        """Probability-weighted mean of the emotions' valence and arousal (:data:`vemoclap.labels.VALENCE_AROUSAL`)."""
        if self.probabilities is None:
            return None
        known = [
            (p, VALENCE_AROUSAL[label]) for label, p in zip(self.labels, self.probabilities) if label in VALENCE_AROUSAL
        ]
        if not known:
            return None
        weight = sum(p for p, _ in known) or 1.0
        valence = sum(p * va[0][0] for p, va in known) / weight
        arousal = sum(p * va[1][0] for p, va in known) / weight
        return float(valence), float(arousal)

    def output(self, name: str) -> "ExtractorOutput | None":
        return self.outputs.get(name)

    # ---- typed accessors (the outputs that ran, found by their type, not by a name) -------
    def _of_type(self, module: str, cls: str) -> "Any | None":
        import importlib

        kind = getattr(importlib.import_module(f".extractors.{module}", __package__), cls)
        return next((o for o in self.outputs.values() if isinstance(o, kind)), None)

    @property
    def face_output(self) -> "FacesOutput | None":
        """The face extractor's output (None when it did not run; its ``missing`` says why it has none)."""
        return self._of_type("faces", "FacesOutput")

    @property
    def faces(self) -> "pd.DataFrame":
        """Every face found: one row per face per sampled frame (:data:`vemoclap.facetable.FACE_COLUMNS`)."""
        from .facetable import faces_table

        output = self.face_output
        return faces_table(output.frames if output is not None and not output.missing else [])

    def people(self, smooth_frames: int = 3) -> "pd.DataFrame":
        """Each person's expressions over time: the faces linked into people across the sampled frames
        (:mod:`vemoclap.tracking`), one row per person per frame they are seen in (person, frame_index,
        time, box, expression, confidence, one probability per expression), smoothed per person over
        ``smooth_frames`` of their frames. :func:`vemoclap.tracking.people_summary` makes it one row per person."""
        from .tracking import people_table

        return people_table(self.faces, smooth_frames)

    @property
    def transcript(self) -> "AsrOutput | None":
        """What was said (Whisper's transcript, its language and sentiment), or None when ASR did not run."""
        return self._of_type("asr", "AsrOutput")

    @property
    def ocr(self) -> "OcrOutput | None":
        """The on-screen text read (lines per frame, English text, sentiment), or None when OCR did not run."""
        return self._of_type("ocr", "OcrOutput")

    @property
    def caption(self) -> "CaptionOutput | None":
        """The caption of one frame, or None when the captioner did not run."""
        return self._of_type("caption", "CaptionOutput")

    # ---- the summary -----------------------------------------------------------------------
    def summarize(self) -> Summary:
        """This result as sections and rows; the text report, the app's HTML and the CSVs render it."""
        from .timeline import face_track, window_table

        sections: list[Section] = []
        if self.info is not None:
            info = self.info
            audio = "yes" if info.has_audio else "no"
            text = f"{info.duration:.1f} s, {info.width}×{info.height}, {info.fps:.2f} fps, audio: {audio}"
            sections.append(Section("video", "video", text))
        sections.append(self._emotion_section())
        if self.explanation is not None:
            sections.append(self._why_section())
        va = self.valence_arousal
        if va is not None:
            sections.append(Section("valence_arousal", "valence, arousal", f"{va[0]:+.2f}, {va[1]:+.2f}"))
        if self.recipe:
            deviations = self.recipe.get("deviations") or []
            text = f"{self.recipe.get('name')} v{self.recipe.get('version')}"
            text += f", {len(deviations)} deviation(s):" if deviations else ""
            rows = tuple(Row(d["setting"], f"{d['wanted']!r} → {d['used']!r} ({d['reason']})") for d in deviations)
            sections.append(Section("recipe", "feature recipe", text, rows))
        for name, output in self.outputs.items():
            if not output.missing:  # missing ones are listed below with their reasons
                sections.append(
                    Section(name, name, rows=tuple(Row("", line) for line in output.describe()), kind="output")
                )
        people = self.people()  # the report's list and people.csv read one table
        sections.append(self._people_section(people))
        sections.append(
            Section("missing", "missing", rows=tuple(Row(k, v) for k, v in self.missing.items()), kind="list")
        )
        sections.append(Section("warnings", "warnings", rows=tuple(Row("", w) for w in self.warnings), kind="list"))
        if self.timings:
            ranked = sorted(self.timings.items(), key=lambda kv: -kv[1])
            rows = tuple(Row(k, f"{v:.1f} s") for k, v in ranked)
            sections.append(Section("time", "time", f"{sum(self.timings.values()):.1f} s", rows, kind="list"))
        windows = self.windows if self.windows is not None else window_table([], self.labels)
        sections += [
            Section("faces", "every face found", kind="table", file="faces.csv", table=self.faces),
            Section("people", "each person's expressions", kind="table", file="people.csv", table=people),
            Section("face_track", "faces per frame", kind="table", file="frames.csv", table=face_track(self)),
            Section("windows", "emotion timeline", kind="table", file="windows.csv", table=windows),
        ]
        notice = random_weights_notice(self.random_weights, self.weights) if self.random_weights else ""
        return Summary(self.source, notice, tuple(sections))

    def _people_section(self, people: "pd.DataFrame") -> Section:
        """One row per person the faces were linked into (``people``: :meth:`people`): their dominant
        expression and when they are seen."""
        from .tracking import people_summary

        rows = tuple(
            Row(
                f"person {p.person}",
                f"{p.expression} {p.share:.0%}, in {p.frames} frame{'s' if p.frames != 1 else ''}, "
                f"{p.first:.1f}–{p.last:.1f} s",
            )
            for p in people_summary(people).itertuples(index=False)
        )
        return Section("who", "people", rows=rows, kind="list")

    def _emotion_section(self) -> Section:
        table = self.to_frame()
        if self.probabilities is None:
            return Section(
                "emotion", "emotion", no_classifier_line(self.warnings), file="probabilities.csv", table=table
            )
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        rows = tuple(Row(label, f"{prob:.1%}", prob) for label, prob in ranked)
        text = f"{self.top_label} ({self.top_probability:.0%})"
        return Section("emotion", "emotion", text, rows, file="probabilities.csv", table=table)

    def _why_section(self) -> Section:
        from .fusion.explain import spoken

        why = self.explanation
        top = why.top_label
        rows = tuple(
            Row(spoken(f), "missing" if f in why.missing else f"{v:+.1f} pts for {top}, most toward {why.pulled_to(f)}")
            for f, v in why.toward().items()
        )
        return Section("why", "why", why.sentence(), rows)

    def summary(self) -> str:
        """A readable multi-line report (:meth:`summarize` as text)."""
        return self.summarize().text()

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
            "random_weights": self.random_weights,
            "weights": self.weights,
            "recipe": self.recipe,
            "outputs": {name: out.readable() for name, out in self.outputs.items()},
            "missing": dict(self.missing),
            "timings": dict(self.timings),
            "warnings": list(self.warnings),
            "feature_of": dict(self.feature_of),
            "frame_times": None if self.frames is None else [float(t) for t in self.frames.timestamps],
            "windows": None if self.windows is None else self.windows.to_dict(orient="records"),
            "explanation": to_jsonable(self.explanation),
            "arrays": {
                name: {"feature": encode_array(out.feature), "times": encode_array(out.times)}
                for name, out in self.outputs.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        """The Result that :meth:`to_dict` described (frames come back as timestamps without pixels)."""
        from .extractors import output_type
        from .media import Frames, MediaInfo

        arrays = data.get("arrays") or {}
        outputs = {}
        for name, readable in (data.get("outputs") or {}).items():
            output = from_jsonable(output_type(name), readable)
            stored = arrays.get(name) or {}
            output.feature = decode_array(stored.get("feature"))
            output.times = decode_array(stored.get("times"))
            outputs[name] = output
        labels = tuple(data.get("labels") or EMOTIONS)
        scores = data.get("probabilities")
        times = data.get("frame_times")
        frames = windows = None
        if data.get("windows") is not None:
            from .timeline import window_table

            windows = window_table(data["windows"], labels)
        if times is not None:
            frames = Frames(np.zeros((len(times), 0, 0, 3), np.uint8), np.asarray(times, float))
        return cls(
            source=data["source"],
            info=from_jsonable(MediaInfo, data.get("info")),
            labels=labels,
            probabilities=None if scores is None else np.array([scores[label] for label in labels], float),
            outputs=outputs,
            missing=dict(data.get("missing") or {}),
            classifier=data.get("classifier"),
            frames=frames,
            timings=dict(data.get("timings") or {}),
            warnings=list(data.get("warnings") or []),
            path=data.get("path"),
            feature_of=dict(data.get("feature_of") or {}),
            recipe=data.get("recipe"),
            weights={k: list(v) for k, v in (data.get("weights") or {}).items()},
            windows=windows,
            explanation=_explanation(data.get("explanation")),
        )

    @classmethod
    def from_json(cls, path_or_text: "str | Path") -> "Result":
        """Read a Result written by :meth:`to_json` (a path, or the JSON text itself)."""
        text, where = str(path_or_text), "the result JSON"
        if not text.lstrip().startswith("{"):
            text, where = _read_result_file(path_or_text), str(path_or_text)
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError) as exc:
            reason = "nested too deep" if isinstance(exc, RecursionError) else one_line(exc, limit=200)
            raise UserError(f"{where[:300]}: not a vemoclap result ({reason})") from None

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
        frame["rank"] = frame["probability"].rank(ascending=False, method="first").astype("Int64")
        frame.insert(0, "source", self.source)
        return frame

    # ---- pictures ------------------------------------------------------------------------
    def plot(self, ax=None) -> "Figure":
        """Horizontal bar chart of the emotion probabilities."""
        from .draw.figures import plot_probabilities

        return plot_probabilities(self, ax)

    def annotated_frame(self, index: int | None = None) -> np.ndarray | None:
        """The sampled frame with the most faces and text (or ``index``), boxes and labels drawn."""
        from .draw.overlay import annotated_frame

        return annotated_frame(self, index)

    def plot_annotated_frame(self, index: int | None = None, ax=None) -> "Figure":
        from .draw.figures import plot_annotated_frame

        return plot_annotated_frame(self, index, ax)

    def plot_circumplex(self, ax=None) -> "Figure":
        from .draw.figures import plot_circumplex

        return plot_circumplex(self, ax)

    def timeline(self, smooth_frames: int = 3):
        """The classifier's probabilities on sliding windows (computed at analysis time; empty
        without a classifier) and the smoothed facial-expression track per sampled frame."""
        from .timeline import Timeline, face_track, window_table

        windows = self.windows if self.windows is not None else window_table([], self.labels)
        return Timeline(windows=windows, faces=face_track(self, smooth_frames), mark=result_mark(self))

    def plot_timeline(self) -> "Figure":
        return self.timeline().plot()

    def emotion_segments(self, emotion: str) -> list[tuple[float, float]]:
        """Time ranges where ``emotion`` is the top label: the classifier's windows, or the face
        track's frames (matching expression) without a classifier."""
        from .errors import OptionError
        from .labels import EXPRESSION_TO_EMOTION
        from .video_export import merge_segments

        if emotion not in self.labels:
            raise OptionError(f"unknown emotion '{emotion}'; choose from {', '.join(self.labels)}")
        timeline = self.timeline()
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

    def plot_contributions(self) -> "Figure":
        """Why this emotion: each input's contribution to the top label, and the frames attended to most."""
        from .draw.why import plot_contributions

        return plot_contributions(self)

    def figures(self) -> dict[str, "Figure"]:
        """Every plot this result can draw, by file stem."""
        figures = {"probabilities": self.plot(), "circumplex": self.plot_circumplex()}
        if self.explanation is not None:
            figures["contributions"] = self.plot_contributions()
        if self.frames is not None and len(self.frames) and self.frames.images.size:
            figures["annotated_frame"] = self.plot_annotated_frame()
        if self.info is not None and self.info.duration > 0:
            figures["timeline"] = self.plot_timeline()
        return figures

    # ---- video exports -------------------------------------------------------------------
    def local_video(self) -> str:
        """The analyzed video file on this machine (a UserError when it is gone)."""
        from .errors import UserError

        if not self.path or not Path(self.path).is_file():
            raise UserError(
                f"{self.source}: the analyzed video file is not on this machine any more "
                f"({self.path or 'no path kept'}); analyze it again to export from it"
            )
        return self.path

    def export_emotion_clips(
        self, emotion: str, out_path, *, progress: "bool | Callable" = True
    ) -> tuple[Path | None, list[tuple[float, float]]]:
        """One video of the segments where ``emotion`` dominates (the classifier's windows, or the
        face track without one), and those segments' times; (None, []) when there is none — nothing
        is written then."""
        from .video_export import export_segments

        segments = self.emotion_segments(emotion)
        if not segments:
            return None, []
        written = export_segments(self.local_video(), segments, out_path, progress=progress, mark=result_mark(self))
        return written, segments

    # ---- files ---------------------------------------------------------------------------
    def export_texts(self, *, with_empty: bool = True) -> dict[str, str]:
        """The text of each file in :data:`EXPORT_FILES`: the JSON, and each table of :meth:`summarize`
        as CSV with a ``random_weights`` column naming what ran on random weights; the tables of faces
        and windows are left out when empty and not ``with_empty``."""
        texts = {"result.json": self.to_json() + "\n"}
        for name, table in self.summarize().tables().items():
            if with_empty or len(table) or name == "probabilities.csv":
                texts[name] = self._csv(table)
        return {name: texts[name] for name in EXPORT_FILES if name in texts}

    def _csv(self, table: "pd.DataFrame") -> str:
        """A table as CSV with the ``random_weights`` column ("yes (clip, classifier)" or "no")."""
        return table.assign(random_weights=random_weights_cell(self.random_weights)).to_csv(index=False)

    def save(self, directory: str | Path) -> Path:
        """Write the :data:`EXPORT_FILES` (result.json, probabilities.csv, faces.csv per face found,
        people.csv per person per frame, frames.csv per sampled frame, windows.csv per timeline
        window) and a PNG per plot into ``directory``."""
        import matplotlib.pyplot as plt

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.export_texts().items():
            atomic_write_text(directory / name, text)
        for stem, fig in self.figures().items():
            fig.savefig(directory / f"{stem}.png", dpi=120)
            plt.close(fig)
        log.info("saved result to %s", directory)
        return directory
