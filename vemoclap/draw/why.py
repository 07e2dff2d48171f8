"""The figure of why a Result got its emotion: each input's contribution to the top label (a bar per
input, leave-one-out) and the sampled frames the classifier attended to most
(:mod:`vemoclap.fusion.explain`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .figures import mark_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import Result

HELPED, PULLED, MISSING = "#2e7d32", "#e57373", "#9e9e9e"  # not the banner's red


def plot_contributions(result: "Result", frames: int = 3) -> "Figure":
    """Bars: how many points of the top label's probability each input gave; below them, the
    ``frames`` sampled frames with the most attention (when the Result still holds their pixels)."""
    import matplotlib.pyplot as plt

    from ..fusion.explain import spoken

    why = result.explanation
    shown = []
    if why is not None and result.frames is not None and result.frames.images.size:
        shown = why.top_frames(result.frames.timestamps, frames)
    fig = plt.figure(figsize=(6, 3.2 if not shown else 5.2), layout="constrained")
    grid = fig.add_gridspec(2 if shown else 1, max(len(shown), 1), height_ratios=[1.3, 1] if shown else None)
    ax = fig.add_subplot(grid[0, :])
    mark_figure(fig, result)
    if why is None:
        ax.text(0.5, 0.5, "no emotion classifier ran: nothing to explain", ha="center", va="center")
        ax.set_axis_off()
        return fig
    top = why.top_label
    points = why.toward(top)
    names = list(points)[::-1]
    values = [points[name] for name in names]
    colors = [MISSING if n in why.missing else HELPED if v >= 0 else PULLED for n, v in zip(names, values)]
    bars = ax.barh([spoken(n) for n in names], values, color=colors)
    for bar, name, value in zip(bars, names, values):
        text = "missing" if name in why.missing else f"{value:+.1f}"
        ax.annotate(
            text,
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4 if value >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
        )
    ax.axvline(0, color="#444444", lw=0.8)
    span = max([abs(v) for v in values] + [1.0])
    ax.set_xlim(-span * 1.35, span * 1.35)
    ax.set_xlabel(f"points of {top} each input gave (leave-one-out)")
    ax.set_title(f"why {top}")
    ax.spines[["top", "right"]].set_visible(False)
    for column, (index, _) in enumerate(shown):
        thumb = fig.add_subplot(grid[1, column])
        thumb.imshow(result.frames.images[index])
        when = f"{result.frames.timestamps[index]:.1f} s"
        thumb.set_title(f"attended to most: {when}" if column == 0 else when, fontsize=9)
        thumb.set_axis_off()
    return fig
