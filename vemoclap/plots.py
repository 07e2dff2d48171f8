"""Figures of a Result for the notebook's explore views, and PNG bytes of any figure."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .results import Result


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
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(result.annotated_frame(i))
            ax.set_title(f"{result.frames.timestamps[i]:.1f} s", fontsize=8)
    fig.tight_layout()
    return fig


def face_crops(result: "Result") -> tuple[list[tuple[Any, str]], str]:
    """(crop, title) of every detected face, or no crops and why."""
    output = result.outputs.get("face_emotion")
    if output is None:
        return [], "the face extractor did not run"
    if output.missing:
        return [], f"no faces: {output.missing}"
    crops: list[tuple[Any, str]] = []
    for frame in getattr(output, "frames", None) or []:
        image = result.frames.images[frame.frame_index]
        for face in frame.faces:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            x0, y0 = max(0, x0), max(0, y0)
            x1, y1 = min(image.shape[1], x1), min(image.shape[0], y1)
            if x1 > x0 and y1 > y0:
                time_s = result.frames.timestamps[frame.frame_index]
                crops.append((image[y0:y1, x0:x1], f"{face.expression} {face.confidence:.0%}\n{time_s:.1f} s"))
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
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (crop, title) in zip(axes.flat, shown):
        ax.imshow(crop)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    more = f" (first {limit} shown)" if len(crops) > limit else ""
    return fig, f"{len(crops)} face crop(s){more}"


def features_heatmap(result: "Result") -> "Figure | None":
    """One heatmap per feature (rows: time steps or the single vector; columns: dimensions)."""
    import matplotlib.pyplot as plt
    import numpy as np

    features = [
        (name, np.atleast_2d(out.feature))
        for name, out in result.outputs.items()
        if getattr(out, "feature", None) is not None
    ]
    if not features:
        return None
    fig, axes = plt.subplots(len(features), 1, figsize=(9, 1.3 + 0.9 * len(features)), squeeze=False)
    for ax, (name, array) in zip(axes[:, 0], features):
        image = ax.imshow(array, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name} {array.shape[0]}×{array.shape[1]}", fontsize=9, loc="left")
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    return fig
