"""Matplotlib figures of a Result (probabilities, annotated frame, valence–arousal plane, timeline,
the app's explore views) and PNG bytes of any figure. A figure of a Result made with random weights
carries the random-weights banner (:func:`mark_figure`)."""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..labels import EMOTION_COLORS, EXPRESSION_TO_EMOTION, FACE_EXPRESSIONS, VALENCE_AROUSAL
from ..notice import result_mark
from .overlay import BANNER_COLOR, OCR_COLOR, annotated_frame, best_frame_index

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import Result
    from ..timeline import Timeline


def mark_figure(fig: "Figure", result: "Result | None", mark: str | None = None) -> "Figure":
    """Put the random-weights banner (``mark``, else :func:`vemoclap.notice.result_mark` of
    ``result``) at the top of ``fig`` when there is one; once per figure."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    mark = mark or (result_mark(result) if result is not None else None)
    if mark and not getattr(fig, "_vemoclap_marked", False):
        fig.suptitle(
            mark,
            color="white",
            fontsize=12,
            fontweight="bold",
            bbox={"facecolor": "#%02x%02x%02x" % BANNER_COLOR, "edgecolor": "none", "pad": 4},
        )
        fig._vemoclap_marked = True
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):  # room for the banner's padding below it
            engine.set(h_pad=max(engine.get()["h_pad"], 0.1))
    return fig


def printable(text: str | None) -> str:
    """``text`` as it can be drawn: control, format and private-use characters and U+FFFD (what a
    decoder puts for bytes it could not read) removed, runs of whitespace made one space."""
    if not text:
        return ""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in str(text)
        if ch.isspace() or (ch != "\ufffd" and not unicodedata.category(ch).startswith("C"))
    )
    return re.sub(r"\s+", " ", kept).strip()


def _box_handles(faces: bool, text: bool) -> list:
    """Legend entries saying which boxes are faces and which on-screen text (only the kinds drawn)."""
    from matplotlib.patches import Patch

    handles = []
    if faces:
        handles.append(Patch(facecolor="none", edgecolor="#888888", lw=2, label="face: expression, confidence"))
    if text:
        color = tuple(c / 255 for c in OCR_COLOR)
        handles.append(Patch(facecolor="none", edgecolor=color, lw=2, label="on-screen text (OCR)"))
    return handles


def _boxes_drawn(result: "Result", indices) -> tuple[bool, bool]:
    """Whether faces, and whether text lines, are drawn on any of the frames ``indices``."""
    indices = set(indices)
    ocr = result.ocr
    has_faces = bool(result.faces["frame_index"].isin(indices).any())
    has_text = any(line.frame_index in indices for line in (ocr.lines if ocr is not None else []))
    return has_faces, has_text


def figure_png(fig: "Figure", dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib figure; the figure is closed so notebooks never show it twice."""
    import matplotlib.pyplot as plt

    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def frames_grid(result: "Result", columns: int = 4) -> "Figure | None":
    """All sampled frames with faces and text boxes drawn, time above each."""
    import matplotlib.pyplot as plt

    if result.frames is None or len(result.frames) == 0:
        return None
    n = len(result.frames)
    rows = -(-n // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 2.1 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(annotated_frame(result, i, mark=False))
            ax.set_title(f"{result.frames.timestamps[i]:.1f} s", fontsize=8)
    handles = _box_handles(*_boxes_drawn(result, range(n)))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    return mark_figure(fig, result)


def crop_box(image: "np.ndarray | None", box) -> "np.ndarray | None":
    """The part of an RGB image inside ``box`` (x0, y0, x1, y1; clipped to the image), or None when
    nothing of it is there (no pixels, an empty box)."""
    if image is None or image.size == 0:
        return None
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(image.shape[1], int(box[2])), min(image.shape[0], int(box[3]))
    return image[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else None


def face_crops(result: "Result") -> tuple[list[tuple[Any, str]], str]:
    """(crop, title) of every detected face, or no crops and why."""
    output = result.face_output
    if output is None:
        return [], "the face extractor did not run"
    if output.missing:
        return [], f"no faces: {output.missing}"
    crops: list[tuple[Any, str]] = []
    for face in result.faces.itertuples(index=False):
        crop = crop_box(result.frames.images[face.frame_index], (face.x0, face.y0, face.x1, face.y1))
        if crop is not None:
            time_s = result.frames.timestamps[face.frame_index]
            crops.append((crop, f"{face.expression} {face.confidence:.0%}\n{time_s:.1f} s"))
    return crops, "" if crops else "no faces were found"


def faces_figure(result: "Result", limit: int = 24) -> tuple["Figure | None", str]:
    """Crops of the detected faces labelled with their expression, and a line saying how many."""
    import matplotlib.pyplot as plt

    crops, why = face_crops(result)
    if not crops:
        return None, why
    shown = crops[:limit]
    columns = min(8, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(max(1.6 * columns, 4.0), 2.0 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (crop, title) in zip(axes.flat, shown):
        ax.imshow(crop)
        ax.set_title(title, fontsize=8)
    mark_figure(fig, result)
    more = f" (first {limit} shown)" if len(crops) > limit else ""
    return fig, f"{len(crops)} face crop(s){more}"


def _heatmap_height(rows: int) -> float:
    """Inches for a heatmap of ``rows`` rows: at least 0.14 in (14 px at 100 dpi) a row, up to 3.2 in."""
    return float(np.clip(0.14 * rows, 0.7, 3.2))


def features_heatmap(result: "Result") -> "Figure | None":
    """One heatmap per feature (rows: time steps or the single vector; columns: dimensions), each
    as tall as its rows need to be told apart (a 16×512 feature is not squashed into a strip)."""
    import matplotlib.pyplot as plt

    features = [
        (name, np.atleast_2d(out.feature))
        for name, out in result.outputs.items()
        if getattr(out, "feature", None) is not None
    ]
    if not features:
        return None
    heights = [_heatmap_height(array.shape[0]) for _, array in features]
    fig, axes = plt.subplots(
        len(features),
        1,
        figsize=(9, sum(heights) + 0.75 * len(features) + 0.6),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": heights},
    )
    for ax, (name, array) in zip(axes[:, 0], features):
        image = ax.imshow(array, aspect="auto", cmap="viridis", interpolation="nearest")
        rows = array.shape[0]
        ax.set_title(f"{name} {rows}×{array.shape[1]}", fontsize=9, loc="left")
        if rows > 1:
            ax.set_ylabel("step", fontsize=8)
            ax.set_yticks(sorted({0, rows - 1, *range(0, rows, max(1, rows // 4))}))
        else:
            ax.set_yticks([])
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    axes[-1, 0].set_xlabel("dimension", fontsize=8)
    return mark_figure(fig, result)


def plot_probabilities(result: "Result", ax=None) -> "Figure":
    """Horizontal bar chart of the emotion probabilities."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    else:
        fig = ax.figure
    labels = list(result.labels)
    mark_figure(fig, result)
    if result.probabilities is None:
        ax.text(0.5, 0.5, "no emotion classifier loaded", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    probs = np.asarray(result.probabilities, float)
    colors = [EMOTION_COLORS.get(label, "#888888") for label in labels]
    bars = ax.barh(labels[::-1], probs[::-1], color=colors[::-1])
    for bar, prob in zip(bars, probs[::-1]):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{prob:.0%}", va="center")
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("probability")
    ax.set_title(f"{Path(result.source).name}: {result.top_label}")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_annotated_frame(result: "Result", index: int | None = None, ax=None) -> "Figure":
    import matplotlib.pyplot as plt

    index = best_frame_index(result) if index is None else index
    image = annotated_frame(result, index, mark=False)  # the figure carries the banner
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    else:
        fig = ax.figure
    mark_figure(fig, result)
    ax.set_axis_off()
    if image is None:
        ax.text(0.5, 0.5, "no video frames", ha="center", va="center", transform=ax.transAxes)
        return fig
    ax.imshow(image)
    caption = result.caption
    title = printable(caption.text) if caption is not None and not caption.missing else None
    time = result.frames.timestamps[index]
    ax.set_title(f"“{title}” — {time:.1f} s" if title else f"frame at {time:.1f} s", fontsize=10)
    handles = _box_handles(*_boxes_drawn(result, [index]))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8)
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
    mark_figure(fig, result)
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


def plot_timeline(timeline: "Timeline", ax_emotions=None, ax_faces=None) -> "Figure":
    import matplotlib.pyplot as plt

    if ax_emotions is None:
        fig, (ax_emotions, ax_faces) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, layout="constrained")
    else:
        fig = ax_emotions.figure
    windows = timeline.windows
    emotions = [c for c in windows.columns if c in EMOTION_COLORS]
    if len(windows):
        for emotion in emotions:
            ax_emotions.plot(
                windows["centre"], windows[emotion], marker="o", ms=3, label=emotion, color=EMOTION_COLORS[emotion]
            )
        ax_emotions.set_ylim(0, 1)
        ax_emotions.legend(ncol=6, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25), frameon=False)
    else:
        ax_emotions.text(
            0.5, 0.5, "no emotion classifier loaded", ha="center", va="center", transform=ax_emotions.transAxes
        )
    ax_emotions.set_ylabel("emotion probability")
    if ax_faces is not None:
        faces = timeline.faces
        if len(faces) and faces["n_faces"].sum() > 0:
            for expression in FACE_EXPRESSIONS:
                emotion = EXPRESSION_TO_EMOTION[expression]
                ax_faces.plot(
                    faces["time"],
                    faces[expression],
                    marker=".",
                    label=expression,
                    color=EMOTION_COLORS.get(emotion, "#999999"),
                    linestyle="-" if emotion else "--",
                )
            ax_faces.set_ylim(0, 1)
            ax_faces.legend(ncol=7, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.2), frameon=False)
        else:
            ax_faces.text(0.5, 0.5, "no faces found", ha="center", va="center", transform=ax_faces.transAxes)
        ax_faces.set_ylabel("facial expression")
        ax_faces.set_xlabel("time (s)")
    return mark_figure(fig, None, getattr(timeline, "mark", None))
