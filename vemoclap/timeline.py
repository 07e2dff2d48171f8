"""Emotion over time: the classifier on sliding windows, and the facial-expression track per frame.

A window sees the sequence-feature rows (frames, audio chunks, faces) whose timestamps fall inside
it, and the whole video's single-vector features (transcript and on-screen-text sentiment); rows it
lacks are zeros, exactly as a missing modality is for the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .labels import FACE_EXPRESSIONS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .results import Result


@dataclass
class Timeline:
    windows: "pd.DataFrame"  # start, end, centre, one column per emotion, top
    faces: "pd.DataFrame"  # frame_index, time, one column per expression (smoothed), top, n_faces
    mark: str | None = None  # the random-weights mark of the result (vemoclap.notice), drawn on its plot

    def plot(self, ax_emotions=None, ax_faces=None) -> "Figure":
        from .draw.figures import plot_timeline

        return plot_timeline(self, ax_emotions, ax_faces)


def window_bounds(
    duration: float, window_s: float | None = None, hop_s: float | None = None
) -> list[tuple[float, float]]:
    """Windows covering [0, duration]: default length a quarter of the video (3–10 s), hop half of it."""
    if duration <= 0:
        return []
    window = window_s or float(np.clip(duration / 4, 3.0, 10.0))
    window = min(window, duration)
    hop = hop_s or window / 2
    starts = np.arange(0.0, max(duration - window, 0.0) + 1e-9, hop)
    if len(starts) == 0 or starts[-1] + window < duration - 1e-6:
        starts = np.append(starts, duration - window)
    return [(float(s), float(s + window)) for s in starts]


def window_features(
    outputs: Mapping, feature_of: Mapping[str, str], start: float, end: float
) -> dict[str, np.ndarray | None]:
    """Per fusion feature, the rows of each output whose time falls in [start, end)."""
    features: dict[str, np.ndarray | None] = {}
    for name, output in outputs.items():
        feature_name = feature_of.get(name)
        if not feature_name or output.feature is None:
            continue
        if output.times is None:  # single-vector feature: the whole video's
            features[feature_name] = output.feature
            continue
        times = np.asarray(output.times)
        rows = output.feature[(times >= start) & (times < end)]
        features[feature_name] = rows if len(rows) else None
    return features


def window_table(rows, labels) -> "pd.DataFrame":
    """The windows' table (start, end, centre, one column per label, top) from row dicts."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=["start", "end", "centre", *labels, "top"])


def emotion_windows(
    result: "Result", classifier, window_s: float | None = None, hop_s: float | None = None
) -> "pd.DataFrame":
    """The classifier on each window of :func:`window_bounds` (the Analyzer keeps it in ``Result.windows``)."""
    labels = list(classifier.config.labels)
    duration = result.info.duration if result.info else 0.0
    bounds = window_bounds(duration, window_s, hop_s)
    rows = []
    batch = [window_features(result.outputs, result.feature_of, start, end) for start, end in bounds]
    probabilities = classifier.predict_batch(batch) if batch else np.zeros((0, len(labels)))
    for (start, end), probs in zip(bounds, probabilities):
        row = {"start": start, "end": end, "centre": (start + end) / 2}
        row.update({label: float(p) for label, p in zip(labels, probs)})
        row["top"] = labels[int(np.argmax(probs))]
        rows.append(row)
    return window_table(rows, labels)


def smooth(values: np.ndarray, width: int = 3) -> np.ndarray:
    """Centred moving average along axis 0, shrinking the window at the edges."""
    width = min(width, len(values) - 1 + len(values) % 2)  # odd and no longer than the values (np.convolve's "same")
    if len(values) == 0 or width <= 1:
        return values
    kernel = np.ones(width)
    padded_sum = np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="same"), 0, values)
    counts = np.convolve(np.ones(len(values)), kernel, mode="same")[:, None]
    return padded_sum / counts


def face_track(result: "Result", width: int = 3) -> "pd.DataFrame":
    """Per sampled frame: the mean expression probabilities of its faces (NaN without a face), smoothed;
    from the Result's table of faces (:attr:`Result.faces`)."""
    import pandas as pd

    columns = ["frame_index", "time", *FACE_EXPRESSIONS, "top", "n_faces"]
    output = result.face_output
    if output is None or output.missing or not output.frames:
        return pd.DataFrame(columns=columns)
    frames = pd.DataFrame(
        {"frame_index": [f.frame_index for f in output.frames], "time": [f.timestamp for f in output.frames]}
    )
    per_frame = result.faces.groupby("frame_index")
    table = frames.join(per_frame[list(FACE_EXPRESSIONS)].mean(), on="frame_index")
    table["n_faces"] = table["frame_index"].map(per_frame.size()).fillna(0).astype(int)
    matrix = table[list(FACE_EXPRESSIONS)].to_numpy(float)
    with_face = ~np.isnan(matrix[:, 0])
    if with_face.any():  # smooth over the frames that have a face, so gaps stay gaps
        matrix[with_face] = smooth(matrix[with_face], width)
    for i, expression in enumerate(FACE_EXPRESSIONS):
        table[expression] = matrix[:, i]
    table["top"] = [FACE_EXPRESSIONS[int(np.nanargmax(r))] if not np.isnan(r).all() else None for r in matrix]
    return table[columns]
