"""The emotion of many videos into one CSV: ``vemoclap predict FOLDER|CSV --out predictions.csv``.

One row per video, in the order the videos were listed (:func:`~vemoclap.training.dataset.list_videos`):

    source          the video's absolute path
    status          ok; failed (the run goes on; a rerun tries it again); or bad_input: the file
                    itself cannot be read as a video, so a rerun skips it (``--retry-failed`` /
                    ``retry_failed=True`` tries it again)
    top_label       the most probable label, and top_probability its probability
    <label> …       one probability per label of the classifier (they sum to 1)
    missing         what the analysis went without, "extractor: reason; …"
    warnings        the Result's warnings, " | " between them
    random_weights  yes when the Result says the weights are random (tiny models), no, or empty: not said
    duration        seconds of video; seconds: time the analysis took
    classifier      the classifier that made the row
    reason          why a failed video failed (one line)
    why             why the top label, in one line ("joy, mostly from the faces (+31 pts) …";
                    :meth:`vemoclap.fusion.explain.Explanation.sentence`)
    pts_<feature> … one per input of the classifier: how many percentage points of the top label's
                    probability that input gave (leave-one-out; 0 when it was missing)

The loop is the dataset extraction's (:class:`~vemoclap.training.loop.VideoLoop`): a progress
bar, one warning line per failed video, and resumable. A rerun keeps the rows that are there and
analyzes the rest: every finished video is appended as one line and flushed to disk at once, so a
kill loses at most the video being analyzed (a cut-off last line is dropped on the next run);
at the end the file is rewritten atomically in the listing's order. Rows made by another
classifier, or a CSV with other columns, stop the run before any work. A lock file beside the CSV
(``.<name>.lock``) keeps two runs from writing it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import OptionError, UserError
from .media import MediaError
from .training.dataset import Video, list_videos
from .training.loop import VideoLoop, clean_temporary, exclusive_lock, seed_video, write_csv

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
BAD_INPUT = "bad_input"  # the file itself cannot be read as a video: not retried unless asked
HEAD = ("source", "status", "top_label", "top_probability")
TAIL = ("missing", "warnings", "random_weights", "duration", "seconds", "classifier", "reason")
WHY = "why"
POINTS = "pts_"  # + a classifier input's name: its leave-one-out contribution to the top label


class PredictionError(UserError):
    """The predictions cannot be made or written (output file, classifier); one line."""


def columns(labels: Sequence[str], features: Sequence[str] = ()) -> tuple[str, ...]:
    """The CSV's columns for a classifier with these labels and inputs (``features``)."""
    why = (WHY, *(POINTS + name for name in features))
    clash = set(labels) & set(HEAD + TAIL + why)
    if clash:
        raise PredictionError(f"the classifier's labels {', '.join(sorted(clash))} clash with predict's columns")
    return HEAD + tuple(labels) + TAIL + why


@dataclass
class PredictionReport:
    out: Path
    total: int  # videos asked for
    predicted: int  # analyzed by this run
    skipped: int  # ok rows already there
    failed: dict[str, str]  # source → reason
    top_labels: dict[str, int]  # label → videos it is the top label of (every ok row of this listing)
    seconds: float
    random_weights: bool = False  # some row says its weights are random
    bugs: int = 0  # extractor bugs hit during the run (their outputs are listed as missing)
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)  # this listing's rows, in order
    bad_input: dict[str, str] = field(default_factory=dict)  # source → why it is not a readable video

    @property
    def done(self) -> int:
        return self.predicted + self.skipped

    def summary(self) -> str:
        rate = self.predicted / self.seconds * 3600 if self.seconds > 0 and self.predicted else 0.0
        lines = [
            f"emotions of {self.done}/{self.total} videos in {self.out} ({self.predicted} analyzed in "
            f"{self.seconds:.1f} s, {rate:.0f} videos/hour; {self.skipped} already there)"
        ]
        if self.top_labels:
            lines.append(
                "  top labels: "
                + ", ".join(f"{label} {n}" for label, n in sorted(self.top_labels.items(), key=lambda kv: -kv[1]))
            )
        if self.random_weights:
            lines.append("  made with random (tiny) weights: the probabilities mean nothing")
        if self.bugs:
            lines.append(f"  {self.bugs} extractor bug(s) hit; their outputs are listed as missing (--debug logs them)")
        if self.failed:
            lines.append(f"  {len(self.failed)} failed (rows with status=failed; run again to retry):")
            lines.extend(_listed(self.failed))
        if self.bad_input:
            lines.append(
                f"  {len(self.bad_input)} bad input (rows with status=bad_input: not readable videos, "
                "skipped when run again; --retry-failed tries them again):"
            )
            lines.extend(_listed(self.bad_input))
        return "\n".join(lines)


def _listed(failures: Mapping[str, str], most: int = 20) -> list[str]:
    lines = [f"    {_failure_line(source, reason)}" for source, reason in list(failures.items())[:most]]
    if len(failures) > most:
        lines.append(f"    … and {len(failures) - most} more")
    return lines


def _failure_line(source: str, reason: str, given: str = "") -> str:
    """ "<source> failed: <reason>", without the reason's own leading file name (``given``: the path as listed)."""
    for prefix in filter(None, (source, given, Path(source).name)):
        if reason.startswith(prefix + ": "):
            reason = reason[len(prefix) + 2 :]
            break
    return f"{source} failed: {reason}"


# ---- the videos --------------------------------------------------------------------------------


def list_sources(sources) -> list[Video]:
    """A folder or CSV (see :func:`list_videos`), or an iterable of video paths."""
    if isinstance(sources, (str, os.PathLike)):
        videos = list_videos(sources)
    else:
        videos = [
            source if isinstance(source, Video) else Video(id=str(source), path=Path(source), label="")
            for source in sources
        ]
    unique = {}
    for video in videos:
        unique.setdefault(_key(video), video)
    if not unique:
        raise PredictionError("no videos to analyze")
    return list(unique.values())


def _key(video: Video) -> str:
    """What a row is known by: the video's absolute path."""
    return os.path.abspath(os.path.expanduser(str(video.path)))


def _classifier_id(name: str | None) -> str:
    """The classifier as rows record it: an absolute path when it is a file or folder here."""
    if not name:
        return ""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else str(name)


# ---- the CSV -----------------------------------------------------------------------------------


def _read_rows(out: Path, wanted: Sequence[str]) -> list[dict[str, str]]:
    """The rows already in ``out`` (none when it is missing or empty); a cut-off last line is dropped."""
    if not out.is_file():
        return []
    try:
        text = out.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(
            f"--out {out}: exists but cannot be read as a CSV ({exc}); choose another --out"
        ) from None
    if not text.strip():
        return []
    if not text.endswith("\n"):  # a kill while appending: that video is analyzed again
        text = text[: text.rfind("\n") + 1]
        log.info("%s: dropping a cut-off last line", out)
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != tuple(wanted):
        raise PredictionError(
            f"--out {out}: exists and is not a predictions file of this classifier (other "
            f"columns); choose another --out, or delete it to start again"
        )
    rows = []
    for row in reader:
        if (
            None in row
            or any(value is None for value in row.values())
            or row.get("status") not in (OK, FAILED, BAD_INPUT)
            or not row.get("source")
        ):
            log.warning("%s: ignoring a damaged row (line %d); that video is analyzed again", out, reader.line_num)
            continue
        rows.append(row)
    return rows


class _Appender:
    """One line per finished video, flushed and synced at once."""

    def __init__(self, path: Path, fields: Sequence[str]):
        self.fields = list(fields)
        self.handle = open(path, "a", newline="", encoding="utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.fields, extrasaction="ignore", lineterminator="\n").writerow(row)
        self.handle.write(buffer.getvalue())  # one write of one line
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def _random_weights(result) -> str:
    """yes / no when the Result says whether its weights are random, else empty."""
    flag = getattr(result, "random_weights", None)
    if flag is None:
        return ""
    return f"yes ({', '.join(flag)})" if flag else "no"


def _row(source: str, result, labels: Sequence[str], seconds: float) -> dict[str, Any]:
    if result.probabilities is None:  # cannot happen with a classifier loaded; say so rather than guess
        raise RuntimeError("the analysis gave no probabilities although a classifier is loaded")
    scores = result.scores
    row: dict[str, Any] = {
        "source": source,
        "status": OK,
        "top_label": result.top_label,
        "top_probability": f"{result.top_probability:.6f}",
        "missing": "; ".join(f"{name}: {reason}" for name, reason in result.missing.items()),
        "warnings": " | ".join(result.warnings),
        "random_weights": _random_weights(result),
        "duration": f"{result.info.duration:.3f}" if result.info is not None else "",
        "seconds": f"{seconds:.3f}",
        "classifier": _classifier_id(result.classifier),
        "reason": "",
    }
    row.update({label: f"{scores[label]:.6f}" for label in labels})
    why = result.explanation
    if why is not None:
        row[WHY] = why.sentence()
        row.update({POINTS + name: f"{points:.3f}" for name, points in why.toward().items()})
    return row


# ---- the run -----------------------------------------------------------------------------------


def _analyzer(analyzer, analyzer_options: Mapping[str, Any]):
    """The given analyzer, or one built from the options; it must have a classifier."""
    if analyzer is None:
        from .pipeline import Analyzer

        analyzer = Analyzer(**analyzer_options)
    elif analyzer_options:
        raise OptionError("give either a built analyzer or Analyzer options, not both")
    if analyzer.classifier is None:
        raise PredictionError(
            "predict needs an emotion classifier and none is loaded; pass --classifier PATH (classifier=...)"
        )
    return analyzer


class _Rows:
    """The CSV's rows during a run: those kept from ``out`` (ok rows, and rows of videos not listed
    now), then each finished video's, appended at once and rewritten atomically in order at the end."""

    def __init__(
        self, out: Path, fields: Sequence[str], classifier: str, videos: Sequence[Video], retry_failed: bool = False
    ):
        self.out, self.fields, self.classifier = out, fields, classifier
        existing = {row["source"]: row for row in _read_rows(out, fields)}
        others = sorted({row["classifier"] for row in existing.values() if row["status"] == OK} - {classifier})
        if others:
            raise PredictionError(
                f"--out {out}: holds predictions of another classifier ({others[0]}); "
                f"choose another --out for {classifier or 'this one'}"
            )
        self.listed = {_key(video): video for video in videos}
        kept = (OK,) if retry_failed else (OK, BAD_INPUT)
        self.rows = {key: row for key, row in existing.items() if row["status"] in kept or key not in self.listed}
        self.todo = [video for key, video in self.listed.items() if key not in self.rows]
        self.skipped = sum(1 for key in self.listed if self.rows.get(key, {}).get("status") == OK)
        self.bad: set[str] = set()  # videos of this run that failed as bad input
        self.appender: _Appender | None = None

    def ordered(self) -> list[dict[str, str]]:
        """The listing's order, then rows of videos not listed now."""
        listed = [self.rows[key] for key in self.listed if key in self.rows]
        return listed + [row for key, row in self.rows.items() if key not in self.listed]

    def rewrite(self) -> None:
        write_csv(self.out, self.fields, self.ordered())

    def open(self) -> None:
        self.appender = _Appender(self.out, self.fields)

    def close(self) -> None:
        if self.appender is not None:
            self.appender.close()

    def record(self, video: Video, row: dict[str, Any] | None, reason: str | None) -> None:
        if row is None:
            status = BAD_INPUT if _key(video) in self.bad else FAILED
            row = {"source": _key(video), "status": status, "classifier": self.classifier, "reason": reason}
        self.rows[_key(video)] = row
        self.appender.write(row)

    def mine(self) -> list[dict[str, str]]:
        """This listing's rows, in order."""
        return [self.rows[key] for key in self.listed if key in self.rows]


def _report(rows: _Rows, predicted: int, seconds: float, bugs: int) -> PredictionReport:
    mine = rows.mine()
    top: dict[str, int] = {}
    for row in mine:
        if row["status"] == OK:
            top[row["top_label"]] = top.get(row["top_label"], 0) + 1
    return PredictionReport(
        rows.out,
        len(rows.listed),
        predicted,
        rows.skipped,
        {row["source"]: row["reason"] for row in mine if row["status"] == FAILED},
        top,
        seconds,
        any(str(row.get("random_weights", "")).startswith("yes") for row in mine),
        bugs,
        mine,
        {row["source"]: row["reason"] for row in mine if row["status"] == BAD_INPUT},
    )


def predict(
    sources,
    out,
    *,
    progress: bool = True,
    analyzer=None,
    on_video: Callable[[Video, str | None], None] | None = None,
    retry_failed: bool = False,
    **analyzer_options,
) -> PredictionReport:
    """Analyze every video of ``sources`` (a folder, a CSV, or paths) into the CSV ``out``; resumable.

    ``analyzer_options`` go to :class:`~vemoclap.pipeline.Analyzer` (``classifier``, ``models_dir``,
    ``device``, ``frames``, ``extractors`` …; no ``classifier`` means the Analyzer's default), or
    pass a built ``analyzer``. Its models load only when some video is left to analyze.
    ``on_video(video, failure reason or None)`` is called after each video. A video that fails is
    a row with status=failed and its reason, and the run goes on; a missing model or a bad
    option stops it before any video (a :class:`~vemoclap.errors.UserError`). A file that cannot
    be read as a video is a row with status=bad_input, which a rerun skips unless ``retry_failed``.
    """
    from .outputs import check_file_output

    start = time.perf_counter()
    out = check_file_output(out, "--out")
    videos = list_sources(sources)
    if isinstance(sources, (str, os.PathLike)) and Path(sources).expanduser().resolve() == out.resolve():
        raise OptionError(f"--out {out}: is the list of videos itself; choose another file")
    analyzer = _analyzer(analyzer, analyzer_options)
    labels = list(analyzer.classifier.config.labels)
    fields = columns(labels, analyzer.classifier.config.features)
    out.parent.mkdir(parents=True, exist_ok=True)

    with exclusive_lock(
        out.parent / f".{out.name}.lock",
        f"--out {out}: another `vemoclap predict` is writing it; wait for it or choose another --out",
        PredictionError,
    ):
        clean_temporary(out.parent, f".{out.name}.*.tmp", recursive=False)
        rows = _Rows(out, fields, _classifier_id(analyzer.classifier_name), videos, retry_failed)
        log.info("%d videos: %d already in %s, %d to analyze", len(rows.listed), rows.skipped, out, len(rows.todo))
        rows.rewrite()  # failed rows go (they are retried), a cut-off line too; bad input stays unless retried
        bugs_before = len(analyzer.bugs)
        try:
            if rows.todo:
                analyzer.load(progress=progress)
                rows.open()

            def work(video: Video) -> dict[str, Any]:
                seed_video(video.id)  # the same numbers in any run (Whisper's temperature fallback samples)
                began = time.perf_counter()
                try:
                    result = analyzer.analyze(video.path)
                except MediaError:  # the file itself: a rerun would fail the same way
                    rows.bad.add(_key(video))
                    raise
                return _row(_key(video), result, labels, time.perf_counter() - began)

            with VideoLoop(
                len(rows.todo),
                rows.record,
                desc="predict",
                progress=progress,
                on_video=on_video,
                describe=lambda video, reason: (
                    _failure_line(_key(video), reason, str(video.path))
                    + (
                        "; bad input: skipped when run again (--retry-failed tries it again)"
                        if _key(video) in rows.bad
                        else ""
                    )
                ),
                logger=log,
            ) as loop:
                loop.run(rows.todo, work)
        finally:
            rows.close()
            rows.rewrite()  # atomically, in order

    report = _report(rows, loop.finished, time.perf_counter() - start, len(analyzer.bugs) - bugs_before)
    log.info("%s", report.summary())
    return report


def read_predictions(path) -> list[dict[str, Any]]:
    """The rows of a predictions CSV, probabilities and points as floats (None for failed rows)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fieldnames = list(reader.fieldnames or [])
        labels = fieldnames[len(HEAD) : fieldnames.index(TAIL[0])]
        points = [name for name in fieldnames if name.startswith(POINTS)]
        rows: list[dict[str, Any]] = []
        for row in reader:
            for name in ("top_probability", *labels, *points):
                row[name] = float(row[name]) if row.get(name) else None
            rows.append(row)
    return rows


__all__ = ["PredictionError", "PredictionReport", "columns", "list_sources", "predict", "read_predictions"]
