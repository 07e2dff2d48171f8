"""One table of faces: one row per face per frame, as py-feat's ``Fex`` (a plain pandas DataFrame,
not a subclass). The Result's faces (``Result.faces``, ``faces.csv``), the drawings, the face track,
the annotated video's CSV and the webcam mode all read or write these columns.

Columns: ``frame_index`` (the sampled frame, or the frame of the video), ``time`` (seconds), ``face``
(its number in the frame, or its person where faces are followed), ``person`` (the number of the
person it was linked to across frames, :mod:`vemoclap.tracking`; empty where faces were not linked),
the box ``x0, y0, x1, y1`` in frame pixels (x1, y1 exclusive), ``detection_score``, ``expression`` and
``confidence`` (the most probable expression and its probability), then one probability per facial
expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .labels import FACE_EXPRESSIONS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FACE_COLUMNS = (
    "frame_index",
    "time",
    "face",
    "person",
    "x0",
    "y0",
    "x1",
    "y1",
    "detection_score",
    "expression",
    "confidence",
    *FACE_EXPRESSIONS,
)


@dataclass(frozen=True)
class FaceBox:
    """One row of the table, as the drawing code reads a face (box, expression, confidence)."""

    box: tuple[int, int, int, int]
    expression: str
    confidence: float
    detection_score: float = 1.0
    person: int | None = None


def face_row(
    frame_index: int,
    time: float,
    face: int,
    box: Sequence[float],
    expression: str,
    confidence: float,
    probabilities: "Mapping[str, float] | Sequence[float]",
    detection_score: float = 1.0,
    person: int | None = None,
) -> dict[str, Any]:
    """One row of the table. ``probabilities``: expression → probability, or a vector in
    :data:`~vemoclap.labels.FACE_EXPRESSIONS` order; ``person``: the person the face was linked to."""
    if not isinstance(probabilities, Mapping):
        probabilities = dict(zip(FACE_EXPRESSIONS, (float(p) for p in probabilities)))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    row: dict[str, Any] = {
        "frame_index": int(frame_index),
        "time": float(time),
        "face": int(face),
        "person": None if person is None else int(person),
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "detection_score": float(detection_score),
        "expression": expression,
        "confidence": float(confidence),
    }
    row.update({e: float(probabilities.get(e, 0.0)) for e in FACE_EXPRESSIONS})
    return row


def tracked_row(frame_index: int, time: float, track) -> dict[str, Any]:
    """The row of a face followed across frames (:class:`vemoclap.tracking.TrackedFace`); its track is its person."""
    return face_row(
        frame_index,
        time,
        track.person,
        track.box,
        track.expression,
        track.confidence,
        np.asarray(track.probabilities, float),
        track.detection_score,
        track.person,
    )


def faces_table(frames: Iterable) -> "pd.DataFrame":
    """The table of a face extractor's frames (``FrameFaces``: frame_index, timestamp, faces)."""
    import pandas as pd

    rows = [
        face_row(
            frame.frame_index,
            frame.timestamp,
            number,
            face.box,
            face.expression,
            face.confidence,
            face.probabilities,
            face.detection_score,
            getattr(face, "person", None),
        )
        for frame in frames
        for number, face in enumerate(frame.faces)
    ]
    table = pd.DataFrame(rows, columns=list(FACE_COLUMNS))
    table = table.astype({c: "int64" for c in ("frame_index", "face", "x0", "y0", "x1", "y1")})
    return table.astype({"person": "Int64"})  # empty where faces were not linked (a result saved before)


def boxes(table: "pd.DataFrame", frame_index: int | None = None) -> list[FaceBox]:
    """The faces of one frame (or every row) as :class:`FaceBox` for drawing."""
    import pandas as pd

    rows = table if frame_index is None else table[table["frame_index"] == frame_index]
    return [
        FaceBox(
            (int(r.x0), int(r.y0), int(r.x1), int(r.y1)),
            str(r.expression),
            float(r.confidence),
            float(r.detection_score),
            None if getattr(r, "person", None) is None or r.person is pd.NA else int(r.person),
        )
        for r in rows.itertuples(index=False)
    ]
