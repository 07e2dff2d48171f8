"""HTML the app shows for a Result. Extractor outputs describe themselves (``describe()``,
``readable()``): no extractor is named here, so a new extractor shows up without touching this file."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Result

ERROR_COLOR = "#b00020"
OK_COLOR = "#1b7f3b"
NOTE_COLOR = "#555555"
# Chrome refuses data: URLs over 2 MB, so larger files are offered by path (or Colab's download).
DATA_URI_LIMIT = 1_500_000


def message_html(text: str, ok: bool = False) -> str:
    if not text:
        return ""
    color = OK_COLOR if ok else ERROR_COLOR
    mark = "✓" if ok else "⚠"
    return f'<span style="color:{color}">{mark} {html.escape(text)}</span>'


def note_html(text: str) -> str:
    return f'<span style="color:{NOTE_COLOR}">{html.escape(text)}</span>' if text else ""


def visible_text(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup or "").strip()


def table_html(rows: list[tuple[str, str]], css_class: str) -> str:
    body = "".join(
        f"<tr><td style='padding-right:1em;vertical-align:top'><b>{html.escape(k)}</b></td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table class='{css_class}'>{body}</table>"


def data_uri_link(data: bytes, filename: str, mime: str, label: str | None = None) -> str:
    payload = base64.b64encode(data).decode("ascii")
    return (
        f'<a download="{html.escape(filename, quote=True)}" href="data:{mime};base64,{payload}" '
        f'target="_blank" style="color:#1565c0;text-decoration:underline">{html.escape(label or filename)}</a>'
    )


def file_html(path: Path, label: str) -> str:
    """A written file: a download link when small enough for a data: URL, else its path."""
    size = path.stat().st_size
    mime = {".mp4": "video/mp4", ".csv": "text/csv", ".json": "application/json"}.get(
        path.suffix, "application/octet-stream"
    )
    where = f"saved to <code>{html.escape(str(path))}</code>"
    if size <= DATA_URI_LIMIT:
        return f"{data_uri_link(path.read_bytes(), path.name, mime, label)} ({size / 2**20:.1f} MB, {where})"
    return f"{html.escape(label)}: {where} ({size / 2**20:.1f} MB)"


def random_html(notice: str) -> str:
    """The random-weights notice (:mod:`vemoclap.notice`) as a red banner (nothing when empty)."""
    if not notice:
        return ""
    return (
        "<div class='vemoclap-random' style='background:#fde2e1;border:2px solid #c0392b;"
        f"padding:0.4em;font-weight:bold'>{html.escape(notice)}</div>"
    )


def summary_html(result: "Result") -> str:
    """The headline: top emotion (or why there is none), the video, timings, and the text report,
    all rendered from :meth:`Result.summarize`."""
    summary = result.summarize()
    parts: list[str] = [random_html(summary.notice)]
    emotion = summary.section("emotion")
    va = summary.section("valence_arousal")
    if emotion.rows:
        va_text = f" · valence, arousal {va.text}" if va else ""
        top = emotion.rows[0]
        parts.append(
            f"<h3 style='margin:0.2em 0'>Emotion: <span class='vemoclap-top'>"
            f"{html.escape(top.label)}</span> ({top.number:.0%})"
            f"{html.escape(va_text)}</h3>"
        )
        parts.append(
            "<div>"
            + " · ".join(f"{html.escape(row.label)} {row.number:.0%}" for row in emotion.rows)
            + " <span style='color:#666'>(the whole video)</span></div>"
        )
        why = summary.section("why")
        if why is not None:
            parts.append(f"<div class='vemoclap-why-text'>why: {html.escape(why.text)}</div>")
    else:
        parts.append(f"<h3 style='margin:0.2em 0'>No emotion prediction</h3><div>{html.escape(emotion.text)}</div>")
    video = summary.section("video")
    if video is not None:
        parts.append(f"<div>{html.escape(Path(result.source).name or result.source)}: {html.escape(video.text)}</div>")
    timings = summary.section("time")
    if timings is not None:
        slowest = ", ".join(f"{row.label} {row.value}" for row in timings.rows[:4])
        parts.append(f"<div style='color:#666'>time: {html.escape(f'{timings.text} ({slowest})')}</div>")
    parts.append(
        "<details><summary>text report</summary><pre class='vemoclap-report'>"
        f"{html.escape(summary.text())}</pre></details>"
    )
    return "\n".join(part for part in parts if part)


def _section(title: str, body: str) -> str:
    return f"<h4 style='margin:0.8em 0 0.2em'>{html.escape(title)}</h4>{body}"


def details_html(result: "Result") -> str:
    """Every extractor's readable output, as each output describes itself (the summary's output sections)."""
    sections: list[str] = []
    for section in result.summarize().of_kind("output"):
        lines = [row.value for row in section.rows if row.value.strip()]
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines) or "<li><i>nothing</i></li>"
        key = html.escape(section.key, quote=True)
        sections.append(_section(section.title, f"<ul class='vemoclap-output' data-extractor='{key}'>{items}</ul>"))
    return "\n".join(sections)


_LIST_TITLES = {"missing": "Missing", "warnings": "Notes"}


def missing_html(result: "Result") -> str:
    """What is missing and why, and any warnings, escaped (the summary's "missing" and "warnings")."""
    summary = result.summarize()
    parts: list[str] = []
    for key, title in _LIST_TITLES.items():
        section = summary.section(key)
        if section is None or not section.rows:
            continue
        items = "".join(
            f"<li><b>{html.escape(row.label)}</b>: {html.escape(row.value)}</li>"
            if row.label
            else f"<li>{html.escape(row.value)}</li>"
            for row in section.rows
        )
        parts.append(_section(title, f"<ul>{items}</ul>"))
    return "\n".join(parts)


THUMBNAIL_SIDE = 72  # pixels: the people's face pictures


def _thumbnail_uri(image, box) -> str:
    """A face cut from a sampled frame as a small PNG data URI ("" where the frame has no pixels,
    as in a result read back from JSON)."""
    import io

    from PIL import Image

    from ..draw.figures import crop_box

    face = crop_box(image, box)
    if face is None:
        return ""
    crop = Image.fromarray(face)
    crop.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def people_html(result: "Result") -> str:
    """One row per person the faces were linked into (:meth:`Result.people`): their face from the
    frame where it is largest, their dominant expression, and when they are seen ("" without people)."""
    from ..tracking import people_summary

    people = people_summary(result.people())
    if not len(people):
        return ""
    images = result.frames.images if result.frames is not None else None
    rows = []
    for person in people.itertuples(index=False):
        image = images[person.frame_index] if images is not None and person.frame_index < len(images) else None
        uri = _thumbnail_uri(image, (person.x0, person.y0, person.x1, person.y1))
        picture = f"<img src='{uri}' alt='person {person.person}' style='max-height:{THUMBNAIL_SIDE}px'>" if uri else ""
        seen = f"in {person.frames} frame{'s' if person.frames != 1 else ''}, {person.first:.1f}–{person.last:.1f} s"
        rows.append(
            f"<tr class='vemoclap-person'><td style='padding-right:1em'>{picture}</td>"
            f"<td style='padding-right:1em'><b>person {person.person}</b></td>"
            f"<td style='padding-right:1em'>{html.escape(person.expression)} {person.share:.0%}</td>"
            f"<td style='color:#666'>{html.escape(seen)}</td></tr>"
        )
    return _section("People", f"<table class='vemoclap-people'>{''.join(rows)}</table>")


def features_table_html(result: "Result") -> str:
    rows = []
    for name, out in result.outputs.items():
        feature = getattr(out, "feature", None)
        shape = "×".join(map(str, feature.shape)) if feature is not None else "—"
        note = out.missing or (f"mean {feature.mean():+.3f}, std {feature.std():.3f}" if feature is not None else "")
        fusion = result.feature_of.get(name, "")
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(fusion)}</td><td>{html.escape(shape)}</td>"
            f"<td>{html.escape(note)}</td></tr>"
        )
    head = "<tr><th>extractor</th><th>fusion feature</th><th>shape</th><th>values / why missing</th></tr>"
    return f"<table class='vemoclap-features'>{head}{''.join(rows)}</table>"


def safe_stem(text: str) -> str:
    stem = Path(str(text).split("?")[0].rstrip("/")).stem or "video"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60] or "video"


def downloads_html(result: "Result") -> str:
    """A download link per export file (:data:`vemoclap.results.EXPORT_FILES`), named after the video."""
    from ..results import EXPORT_FILES

    stem = safe_stem(result.source)
    mime = {".csv": "text/csv", ".json": "application/json"}
    links = [
        data_uri_link(text.encode("utf-8"), f"{stem}_{name}", mime[Path(name).suffix], EXPORT_FILES[name])
        for name, text in result.export_texts(with_empty=False).items()
    ]
    return " · ".join(links)


CLIPS_NOTE = (
    "The headline emotion is for the whole video; clips are cut from the timeline, where each "
    "window of a few seconds has its own top emotion. An emotion can lead overall without "
    "leading in any single window."
)
