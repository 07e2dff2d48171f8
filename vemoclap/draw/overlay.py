"""Boxes and labels drawn onto frames (RGB arrays): faces with their expression, on-screen text, and
the sampled frame of a Result that shows the most."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..labels import EMOTION_COLORS, EXPRESSION_TO_EMOTION

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Result

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
