"""Boxes and labels drawn onto frames (RGB arrays): faces with their expression (near-duplicate boxes
merged first, so each face has one label), on-screen text, the random-weights banner, and the
sampled frame of a Result that shows the most."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..labels import EMOTION_COLORS, EXPRESSION_TO_EMOTION

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Result

OCR_COLOR = (255, 221, 0)  # RGB
BANNER_COLOR = (192, 57, 43)  # RGB: the random-weights banner (white text on it)
DUPLICATE_IOU = 0.5  # boxes overlapping this much (or one nearly inside the other) are one face


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    inter = _intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def _duplicates(a: Sequence[float], b: Sequence[float], threshold: float) -> bool:
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    inside = _intersection(a, b) / smaller if smaller > 0 else 0.0
    return iou(a, b) >= threshold or inside >= 0.8


def distinct_faces(faces: Sequence, threshold: float = DUPLICATE_IOU) -> list:
    """Non-maximum suppression: of boxes that overlap by ``threshold`` IoU or more (or one lying
    mostly inside another), only the most confident detection is kept."""

    def score(face) -> float:
        return float(getattr(face, "detection_score", None) or getattr(face, "confidence", 0.0) or 0.0)

    kept: list = []
    for face in sorted(faces, key=score, reverse=True):
        if not any(_duplicates(face.box, other.box, threshold) for other in kept):
            kept.append(face)
    return [face for face in faces if any(face is k for k in kept)]  # the caller's order


def draw_banner(image: np.ndarray, text: str | None) -> np.ndarray:
    """A full-width strip at the top of an RGB image with ``text`` in white capitals, in place
    (nothing drawn when ``text`` is None); the text is shrunk to fit the width."""
    import cv2

    if not text:
        return image
    height, width = image.shape[:2]
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(min(height, width) / 300))
    scale = max(0.35, min(height, width) / 600)
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    if tw > width - 8:
        scale *= (width - 8) / tw
        (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    strip = th + base + 8
    cv2.rectangle(image, (0, 0), (width - 1, strip), BANNER_COLOR, -1)
    cv2.putText(image, text, (4, 4 + th), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def expression_color(expression: str) -> tuple[int, int, int]:
    emotion = EXPRESSION_TO_EMOTION.get(expression)
    return hex_to_rgb(EMOTION_COLORS[emotion]) if emotion else (200, 200, 200)


def draw_faces(image: np.ndarray, faces: Sequence, thickness: int | None = None) -> np.ndarray:
    """Boxes labelled 'expression 87%' (or 'person 2: expression 87%' where faces are linked into
    people) in the expression's colour, drawn in place on an RGB image."""
    import cv2

    height, width = image.shape[:2]
    thickness = thickness or max(1, round(min(height, width) / 240))
    scale = max(0.4, min(height, width) / 720)
    for face in distinct_faces(faces):
        x0, y0, x1, y1 = (int(v) for v in face.box)
        color = expression_color(face.expression)
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness)
        person = getattr(face, "person", None)
        label = f"{face.expression} {face.confidence:.0%}"
        label = label if person is None else f"person {person}: {label}"
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
    for index, count in result.faces["frame_index"].value_counts().items():
        score[index] += 2 * count  # faces matter more than text lines
    ocr = result.ocr
    for line in ocr.lines if ocr is not None else []:
        score[line.frame_index] += 1
    if score.max() == 0:
        return n // 2
    best = np.flatnonzero(score == score.max())
    return int(best[np.argmin(np.abs(best - n // 2))])  # ties: nearest the middle


def annotated_frame(result: "Result", index: int | None = None, *, mark: bool = True) -> np.ndarray | None:
    """A copy of one sampled frame with face boxes (expression, confidence) and OCR boxes drawn,
    and (``mark``) the random-weights banner when the result ran on random weights."""
    from ..facetable import boxes
    from ..notice import result_mark

    if result.frames is None or len(result.frames) == 0:
        return None
    index = best_frame_index(result) if index is None else index
    image = result.frames.images[index].copy()
    ocr = result.ocr
    draw_text_boxes(image, [line for line in (ocr.lines if ocr is not None else []) if line.frame_index == index])
    draw_faces(image, boxes(result.faces, index))
    if mark:
        draw_banner(image, result_mark(result))
    return image
