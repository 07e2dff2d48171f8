"""Pictures drawn from a Result: the annotated frame and the valence–arousal (circumplex) plot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .labels import EMOTION_COLORS, EXPRESSION_TO_EMOTION, VALENCE_AROUSAL

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .results import Result

OCR_COLOR = (255, 221, 0)  # RGB


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def expression_color(expression: str) -> tuple[int, int, int]:
    emotion = EXPRESSION_TO_EMOTION.get(expression)
    return hex_to_rgb(EMOTION_COLORS[emotion]) if emotion else (200, 200, 200)


def draw_faces(image: np.ndarray, faces: Sequence, thickness: int | None = None) -> np.ndarray:
    """Boxes labelled 'expression 87%' in the expression's colour, drawn in place on an RGB image."""
    import cv2

    height, width = image.shape[:2]
    thickness = thickness or max(1, round(min(height, width) / 240))
    scale = max(0.4, min(height, width) / 720)
    for face in faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        color = expression_color(face.expression)
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness)
        label = f"{face.expression} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thickness - 1))
        top = y0 - th - base - 4 if y0 - th - base - 4 >= 0 else y1
        cv2.rectangle(image, (x0, top), (x0 + tw + 4, top + th + base + 4), color, -1)
        cv2.putText(
            image,
            label,
            (x0 + 2, top + th + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            max(1, thickness - 1),
            cv2.LINE_AA,
        )
    return image


def draw_text_boxes(image: np.ndarray, lines: Sequence, thickness: int | None = None) -> np.ndarray:
    """OCR boxes (4-point polygons) outlined in place on an RGB image."""
    import cv2

    thickness = thickness or max(1, round(min(image.shape[:2]) / 240))
    for line in lines:
        points = np.asarray(line.box, np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [points], True, OCR_COLOR, thickness)
    return image


def best_frame_index(result: "Result") -> int:
    """The sampled frame with the most faces and text lines (the middle one when all are empty)."""
    n = len(result.frames) if result.frames is not None else 0
    if n == 0:
        return -1
    score = np.zeros(n)
    faces = result.outputs.get("face_emotion")
    for frame in getattr(faces, "frames", None) or []:
        score[frame.frame_index] += 2 * len(frame.faces)  # faces matter more than text lines
    ocr = result.outputs.get("ocr_sentiment")
    for line in getattr(ocr, "lines", None) or []:
        score[line.frame_index] += 1
    if score.max() == 0:
        return n // 2
    best = np.flatnonzero(score == score.max())
    return int(best[np.argmin(np.abs(best - n // 2))])  # ties: nearest the middle


def annotated_frame(result: "Result", index: int | None = None) -> np.ndarray | None:
    """A copy of one sampled frame with face boxes (expression, confidence) and OCR boxes drawn."""
    if result.frames is None or len(result.frames) == 0:
        return None
    index = best_frame_index(result) if index is None else index
    image = result.frames.images[index].copy()
    ocr = result.outputs.get("ocr_sentiment")
    draw_text_boxes(image, [line for line in getattr(ocr, "lines", None) or [] if line.frame_index == index])
    faces = result.outputs.get("face_emotion")
    for frame in getattr(faces, "frames", None) or []:
        if frame.frame_index == index:
            draw_faces(image, frame.faces)
    return image


def plot_annotated_frame(result: "Result", index: int | None = None, ax=None) -> "Figure":
    import matplotlib.pyplot as plt

    index = best_frame_index(result) if index is None else index
    image = annotated_frame(result, index)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    else:
        fig = ax.figure
    ax.set_axis_off()
    if image is None:
        ax.text(0.5, 0.5, "no video frames", ha="center", va="center", transform=ax.transAxes)
        return fig
    ax.imshow(image)
    caption = result.outputs.get("caption")
    title = getattr(caption, "text", None) if caption is not None and not caption.missing else None
    time = result.frames.timestamps[index]
    ax.set_title(f"“{title}” — {time:.1f} s" if title else f"frame at {time:.1f} s", fontsize=10)
    return fig


# Where each emotion's name goes, in points from its mean: outside the polygon of the six means.
# The video's point is a weighted mean of them, so it never leaves that polygon, and its star
# (16 pt) stays clear of every name. Fear and anger (0.13 apart) are pushed apart sideways.
_LABEL_PLACES: dict[str, tuple[str, str, tuple[int, int]]] = {
    "fear": ("right", "bottom", (4, 12)),
    "anger": ("left", "bottom", (-4, 12)),
    "surprise": ("center", "bottom", (0, 12)),
    "joy": ("left", "center", (10, 0)),
    "sadness": ("center", "top", (0, -10)),
    "disgust": ("right", "center", (-14, 0)),  # 4.5 pt inside the polygon's left edge
}


def plot_circumplex(result: "Result", ax=None) -> "Figure":
    """The six emotions on the valence–arousal plane (means ± std) and the video's weighted point.

    The point's numbers go in a legend in the lower right, the one quadrant no emotion (and so no
    weighted point) reaches, so no text is drawn over a name or the point."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 4.6), layout="constrained")
    else:
        fig = ax.figure
    scores = result.scores
    for emotion, ((v, v_sd), (a, a_sd)) in VALENCE_AROUSAL.items():
        color = EMOTION_COLORS[emotion]
        weight = scores.get(emotion, 0.0)
        ax.add_patch(Ellipse((v, a), 2 * v_sd, 2 * a_sd, color=color, alpha=0.12 + 0.5 * weight, lw=0))
        ax.plot(v, a, marker="o", ms=3, color=color)
    for emotion, ((v, _), (a, _)) in VALENCE_AROUSAL.items():
        ha, va, offset = _LABEL_PLACES.get(emotion, ("center", "bottom", (0, 12)))
        ax.annotate(
            emotion,
            (v, a),
            xytext=offset,
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=8,
            color=EMOTION_COLORS[emotion],
            fontweight="bold",
        )
    point = result.valence_arousal
    if point is not None:
        ax.plot(
            *point,
            marker="*",
            ms=16,
            color="black",
            linestyle="none",
            zorder=5,
            label=f"this video ({point[0]:+.2f}, {point[1]:+.2f})",
        )
        ax.legend(loc="lower right", fontsize=8, handlelength=1.2, framealpha=0.9)
    ax.axhline(0, color="#bbbbbb", lw=0.8)
    ax.axvline(0, color="#bbbbbb", lw=0.8)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title("valence–arousal")
    return fig
