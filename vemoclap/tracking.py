"""One face tracker for the analysis, the annotated video and live mode: faces linked into people.

:class:`FaceTracker` links each frame's faces to the people seen before. Each pair (person, face)
is scored by

* **appearance**: the cosine similarity of the face's feature (the expression ViT's CLS feature,
  :attr:`vemoclap.extractors.faces.Face.feature`) and the person's running mean feature, and
* **position**: the overlap (IoU) of the face's box with the person's last box, only where the
  frames are close in time (``near_seconds``); the analysis's sampled frames are seconds apart, so
  there appearance alone links them.

A pair may be linked when its appearance similarity reaches ``min_similarity`` (or, where a face
or person has no feature, when its IoU reaches ``min_iou`` on close frames); among those, the
assignment of faces to people that maximises the summed score is solved exactly (the Hungarian method,
:func:`scipy.optimize.linear_sum_assignment`). A face left over is a new person. People are
numbered from 1 in the order they first appear. A person unseen for more than ``max_age`` updates
can no longer be linked by position, only by appearance (they may come back into the picture).

The expression ViT is trained on expressions, not identities: its feature separates different
faces (measured on the tests' two faces, see README.md) but it also moves with the
expression, so two looks of one person may be split into two people, or two look-alikes merged.

:func:`people_table` is the per-person expression timeline (pandas), smoothed per person, and
:func:`people_summary` one row per person (their dominant expression and best view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .draw.overlay import distinct_faces, iou
from .labels import FACE_EXPRESSIONS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class TrackedFace:
    """A face linked to a person; its expression probabilities are smoothed over time."""

    person: int  # the person's number, from 1 (also the face's number in the annotated video's CSV)
    box: tuple[int, int, int, int]
    probabilities: np.ndarray  # smoothed, in FACE_EXPRESSIONS order
    detection_score: float = 1.0

    @property
    def expression(self) -> str:
        return FACE_EXPRESSIONS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


@dataclass
class _Person:
    number: int
    box: tuple[int, int, int, int]
    probabilities: np.ndarray | None  # smoothed; None for a person known only by appearance (seeded)
    appearance: np.ndarray | None  # unit-length running mean of the faces' features
    time: float | None
    age: int = 0  # updates since last seen


def _unit(vector) -> np.ndarray | None:
    if vector is None:
        return None
    vector = np.asarray(vector, np.float64).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 and np.isfinite(norm) else None


def _probabilities(face) -> np.ndarray:
    probabilities = face.probabilities
    if isinstance(probabilities, dict):
        return np.array([probabilities.get(e, 0.0) for e in FACE_EXPRESSIONS], float)
    return np.asarray(probabilities, float)


MAX_PEOPLE = 256  # people a tracker remembers (a long live session meets many)


@dataclass
class FaceTracker:
    """Links faces into people frame after frame (see the module's doc).

    ``alpha``: the weight of the newest frame in a person's smoothed expression (1 = no smoothing);
    ``appearance_weight``: the share of appearance in the score where position counts too;
    ``memory``: the weight of the past in a person's running mean feature.
    """

    alpha: float = 0.4
    min_iou: float = 0.3
    min_similarity: float = 0.6
    near_seconds: float = 1.0
    appearance_weight: float = 0.5
    memory: float = 0.8
    max_age: int = 10
    people: list[_Person] = field(default_factory=list)
    _next: int = 1

    def seed(self, looks) -> "FaceTracker":
        """Start from known people (person number → appearance feature, as :func:`link_frames`
        returns), so that faces are numbered as they were there (the annotated video as the analysis)."""
        for number, look in sorted((looks or {}).items()):
            unit = _unit(look)
            if unit is not None:
                self.people.append(_Person(int(number), (0, 0, 0, 0), None, unit, None, age=self.max_age + 1))
                self._next = max(self._next, int(number) + 1)
        return self

    def looks(self) -> dict[int, np.ndarray]:
        """Each person's appearance (their running mean feature), by number."""
        return {p.number: p.appearance for p in self.people if p.appearance is not None}

    def update(self, faces: Sequence, time: float | None = None, features: Sequence | None = None) -> list[TrackedFace]:
        """The people of this frame's ``faces`` (each with ``box``, ``probabilities`` and optionally
        ``detection_score`` and ``feature``; ``features`` overrides the faces' own), in the faces' order.
        ``time``: the frame's time in seconds (None: consecutive frames, always close)."""
        from scipy.optimize import linear_sum_assignment

        faces = list(faces)
        if features is None:
            features = [getattr(face, "feature", None) for face in faces]
        looks = [_unit(f) for f in features]
        score = np.full((len(self.people), len(faces)), -np.inf)
        for i, person in enumerate(self.people):
            near = time is None or person.time is None or abs(time - person.time) <= self.near_seconds
            near = near and person.age <= self.max_age
            for j, (face, look) in enumerate(zip(faces, looks)):
                overlap = iou(person.box, face.box) if near else 0.0
                similar = None if look is None or person.appearance is None else float(look @ person.appearance)
                if (similar is None and overlap < self.min_iou) or (
                    similar is not None and similar < self.min_similarity
                ):
                    continue
                if similar is None:
                    score[i, j] = overlap
                elif near:
                    score[i, j] = self.appearance_weight * similar + (1 - self.appearance_weight) * overlap
                else:
                    score[i, j] = similar
        linked: dict[int, _Person] = {}
        if score.size:
            rows, cols = linear_sum_assignment(np.where(np.isfinite(score), -score, 1e6))
            linked = {j: self.people[i] for i, j in zip(rows, cols) if np.isfinite(score[i, j])}
        current = []
        for j, (face, look) in enumerate(zip(faces, looks)):
            probabilities = _probabilities(face)
            person = linked.get(j)
            if person is None:
                person = _Person(self._next, tuple(face.box), probabilities, look, time)
                self._next += 1
                self.people.append(person)
            else:
                if person.probabilities is not None:
                    probabilities = self.alpha * probabilities + (1 - self.alpha) * person.probabilities
                person.probabilities = probabilities
                if look is not None:
                    mean = (
                        look
                        if person.appearance is None
                        else self.memory * person.appearance + (1 - self.memory) * look
                    )
                    person.appearance = _unit(mean)
                person.box, person.time = tuple(face.box), time
            person.age = -1  # aged to 0 below
            current.append(
                TrackedFace(
                    person.number,
                    tuple(int(v) for v in face.box),
                    person.probabilities.copy(),
                    float(getattr(face, "detection_score", 1.0)),
                )
            )
        for person in self.people:
            person.age += 1
        # People lost by position and without an appearance cannot come back; the rest are remembered
        # (appearance can find them again), the most recently seen MAX_PEOPLE of them.
        remembered = [p for p in self.people if p.appearance is not None or p.age <= self.max_age]
        self.people = (
            sorted(remembered, key=lambda p: p.age)[:MAX_PEOPLE] if len(remembered) > MAX_PEOPLE else remembered
        )
        return current


def link_frames(frames, tracker: FaceTracker | None = None) -> dict[int, np.ndarray]:
    """Give every face of a face extractor's frames (``FrameFaces``) its person's number, in place;
    returns each person's appearance (:meth:`FaceTracker.looks`).
    A box that duplicates another of its frame (a detector's second box on one face,
    :func:`~vemoclap.draw.overlay.distinct_faces`) gets the person of the box it overlaps most."""
    tracker = tracker or FaceTracker()
    for frame in frames:
        kept = distinct_faces(frame.faces)
        for face, tracked in zip(kept, tracker.update(kept, time=float(frame.timestamp))):
            face.person = tracked.person
        for face in frame.faces:
            if not any(face is k for k in kept):
                face.person = max(kept, key=lambda k: iou(k.box, face.box)).person
    return tracker.looks()


PEOPLE_COLUMNS = ("person", "frame_index", "time", "x0", "y0", "x1", "y1", "expression", "confidence")


def people_table(faces: "pd.DataFrame", smooth_frames: int = 3) -> "pd.DataFrame":
    """The per-person expression timeline: one row per person per frame they are seen in (their
    largest box there, where a detector boxed a face twice) (person,
    frame_index, time, box, expression and confidence, one probability per expression), the
    probabilities smoothed per person over ``smooth_frames`` of their frames (centred moving average).
    ``faces``: the faces table (:mod:`vemoclap.facetable`) with a ``person`` column."""
    import pandas as pd

    from .timeline import smooth

    columns = [*PEOPLE_COLUMNS, *FACE_EXPRESSIONS]
    if "person" not in faces or not len(faces):
        return pd.DataFrame(columns=columns)
    parts = []
    linked = faces.dropna(subset=["person"]).sort_values(["person", "time", "face"], kind="stable")
    for _, rows in linked.drop_duplicates(["person", "frame_index"]).groupby("person", sort=True):
        rows = rows.copy()
        rows[list(FACE_EXPRESSIONS)] = smooth(rows[list(FACE_EXPRESSIONS)].to_numpy(float), smooth_frames)
        matrix = rows[list(FACE_EXPRESSIONS)].to_numpy(float)
        rows["expression"] = [FACE_EXPRESSIONS[i] for i in matrix.argmax(axis=1)]
        rows["confidence"] = matrix.max(axis=1)
        parts.append(rows[columns])
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    return table.astype({c: "int64" for c in ("person", "frame_index", "x0", "y0", "x1", "y1")})


def people_summary(people: "pd.DataFrame") -> "pd.DataFrame":
    """One row per person: person, frames (how many they are seen in), first and last time, their
    dominant expression (highest mean probability) and its mean, and their best view (the frame and
    box of their largest face) for a thumbnail."""
    import pandas as pd

    columns = ["person", "frames", "first", "last", "expression", "share", "frame_index", "x0", "y0", "x1", "y1"]
    rows = []
    for person, seen in people.groupby("person", sort=True):
        mean = seen[list(FACE_EXPRESSIONS)].to_numpy(float).mean(axis=0)
        top = int(np.argmax(mean))
        best = seen.loc[((seen["x1"] - seen["x0"]) * (seen["y1"] - seen["y0"])).idxmax()]
        rows.append(
            {
                "person": int(person),
                "frames": len(seen),
                "first": float(seen["time"].min()),
                "last": float(seen["time"].max()),
                "expression": FACE_EXPRESSIONS[top],
                "share": float(mean[top]),
                **{k: int(best[k]) for k in ("frame_index", "x0", "y0", "x1", "y1")},
            }
        )
    return pd.DataFrame(rows, columns=columns)
