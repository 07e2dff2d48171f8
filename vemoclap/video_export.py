"""Video exports: every frame annotated with faces and expressions (original audio kept, labels
logged to CSV), and one video made of the segments where a chosen emotion dominates.

Both read through :class:`vemoclap.media.VideoReader` (upright frames, damaged packets skipped)
and stream: memory holds a frame at a time, not the video.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._util import atomic_output
from .draw.overlay import distinct_faces, draw_banner, draw_faces
from .errors import OptionError, UserError
from .facetable import FACE_COLUMNS, tracked_row
from .media import MediaError, VideoReader
from .notice import random_weights_cell, random_weights_mark
from .outputs import check_not_input
from .tracking import FaceTracker, TrackedFace

log = logging.getLogger(__name__)


# progress: True/False for a tqdm bar, or a callable(stage, done, total) as everywhere in vemoclap
Progress = "bool | Callable[[str, float, float | None], None]"


class _Reporter:
    """One progress interface over tqdm or a callback, so exports stay UI-agnostic."""

    def __init__(self, progress, total: float | None, desc: str, unit: str):
        from tqdm.auto import tqdm

        self.callback = progress if callable(progress) else None
        self.desc = desc
        self.total, self.done = total, 0.0
        self.bar = None if self.callback else tqdm(total=total, desc=desc, unit=unit, disable=not progress)

    def update(self, amount: float) -> None:
        self.done += amount
        if self.callback:
            self.callback(self.desc, self.done, self.total)
        else:
            self.bar.update(amount)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class AnnotatedVideo:
    """What :func:`export_annotated_video` wrote: no ``path`` when no face was found (nothing written)."""

    path: Path | None
    csv_path: Path | None
    frames: int
    faces: int
    source: str = ""

    def line(self) -> str:
        """One line for the user: what was written, or why nothing was."""
        if self.path is None:
            return (
                f"no face was found in any of the {self.frames} frames of {self.source or 'the video'}, "
                "so no annotated video was written"
            )
        return (
            f"wrote {self.path} ({self.frames} frames, {self.faces} face boxes) and per-frame labels to {self.csv_path}"
        )


def _add_video_stream(output, rate, size):
    stream = output.add_stream("libx264", rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "23", "preset": "veryfast"}
    return stream


# An annotated video is bounded: H.264 (level 6.2) holds frames up to 8192 px a side, and every
# frame runs the face model, so a long video is refused before hours of work (30 min at 30 fps,
# and at most 30 min of 1080p30 in pixels).
MAX_EXPORT_SIDE = 8192
MAX_EXPORT_FRAMES = 54_000
MAX_EXPORT_PIXELS = MAX_EXPORT_FRAMES * 1920 * 1080


def _check_export_bounds(source, size: tuple[int, int], frames: int) -> None:
    """One line when the annotated video of ``source`` would be too big to make."""
    width, height = size
    if max(width, height) > MAX_EXPORT_SIDE:
        raise MediaError(
            f"{source}: {width}×{height} frames are too large to annotate (H.264 allows {MAX_EXPORT_SIDE} px a "
            "side); scale the video down first"
        )
    if frames > MAX_EXPORT_FRAMES or frames * width * height > MAX_EXPORT_PIXELS:
        raise MediaError(
            f"{source}: {frames:,} frames of {width}×{height} are more than an annotated video may have "
            f"({MAX_EXPORT_FRAMES:,} frames, or 30 min of 1080p30 in pixels); cut the video into parts first"
        )


# Decoding, drawing and H.264-encoding one frame, per million pixels, on a busy 2-core CPU (105 ms
# measured by benchmarks/annotate.py): what annotating costs besides the face model.
FRAME_SECONDS_PER_MPX = 0.1
# Annotating may take at most this many times the analysis of the same video (``--every auto``).
ANNOTATE_BUDGET = 2.0


@dataclass(frozen=True)
class AnnotationCost:
    """What annotating every ``every``-th frame of a video is expected to cost."""

    frames: int  # frames in the video
    every: int  # the face model runs on every ``every``-th frame
    face_seconds: float  # the face model on one frame (from the analysis)
    frame_seconds: float  # decoding, drawing and encoding one frame

    @property
    def seconds(self) -> float:
        return math.ceil(self.frames / self.every) * self.face_seconds + self.frames * self.frame_seconds

    def line(self, option: bool = True) -> str:
        """What it will do and take; ``option``: name the command's ``--every`` (not in the app)."""
        minutes, seconds = divmod(int(round(self.seconds)), 60)
        took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        flag = f" (--every {self.every})" if option else ""
        return f"annotating {self.frames} frames, the face model on every {_ordinal(self.every)}{flag}: about {took}"


def _ordinal(k: int) -> str:
    return "frame" if k == 1 else f"{k}{'nd' if k == 2 else 'rd' if k == 3 else 'th'} frame"


def annotation_cost(result, every: int | str = "auto", budget: float = ANNOTATE_BUDGET) -> AnnotationCost:
    """The cost of annotating ``result``'s video, from what its analysis measured: the face model's
    seconds per sampled frame and the video's length. ``every="auto"``: the smallest step that keeps
    annotating within ``budget`` times the analysis (its stages' seconds), at least 1."""
    info = result.info
    frames = max(1, int(round(info.duration * info.fps))) if info is not None and info.fps else 1
    pixels = (info.width * info.height / 1e6) if info is not None and info.width else 0.3
    frame_seconds = FRAME_SECONDS_PER_MPX * pixels
    sampled = len(result.frames) if result.frames is not None else 0
    face_seconds = result.timings.get("face_emotion", 0.0) / sampled if sampled else 0.0
    if every != "auto":
        return AnnotationCost(frames, int(every), face_seconds, frame_seconds)
    room = budget * sum(result.timings.values()) - frames * frame_seconds
    step = frames if room <= 0 else math.ceil(frames * face_seconds / room)
    return AnnotationCost(frames, int(min(max(step, 1), frames)), face_seconds, frame_seconds)


def export_annotated_video(
    source,
    out_path,
    analyze_image: Callable[[np.ndarray], list],
    *,
    every: int = 1,
    smoothing: float = 0.4,
    csv_path=None,
    progress: Progress = True,
    random_weights: Sequence[str] = (),
    used: Sequence[str] | None = None,
    keep_empty: bool = False,
    people=None,
) -> AnnotatedVideo:
    """Draw face boxes and smoothed expressions on every frame of ``source`` into ``out_path`` (H.264),
    each face labelled with its person ("person 2: happy 64%", :class:`vemoclap.tracking.FaceTracker`).

    Frames are read upright (a phone video's rotation metadata is applied, so the export plays
    upright everywhere). ``analyze_image(rgb) -> faces`` is the face model
    (``FaceEmotionExtractor.analyze_image``); with ``every=k`` it runs on every k-th frame and
    boxes are kept in between. The original audio is copied unchanged. Each frame's labels go to
    ``csv_path`` (default: beside the video). ``random_weights``: the models of the result that ran on
    random weights (of all those ``used``): their mark (:func:`vemoclap.notice.random_weights_mark`)
    is burned into every frame as a banner, and the CSV's ``random_weights`` column names them.

    ``people``: person number → appearance of the analysis's people (``FacesOutput.looks``), so the
    video numbers them as the Result does; others get the next numbers.

    When no face is found in any frame, nothing is written (unless ``keep_empty``): the returned
    :class:`AnnotatedVideo` has no ``path``, and its :meth:`~AnnotatedVideo.line` says why.
    """
    check_not_input(out_path, [source], "the annotated video")  # library and app callers too, not only the CLI
    if csv_path is not None:
        check_not_input(csv_path, [source], "the annotated video's CSV")
    try:
        marks = (random_weights_mark(random_weights, used), random_weights_cell(random_weights))
        tracker = FaceTracker(alpha=smoothing).seed(people)  # faces → people: appearance and box overlap
        return _annotate(source, out_path, analyze_image, every, tracker, csv_path, progress, marks, keep_empty)
    except _NothingDrawn as nothing:
        log.info("%s: no face in any of its %d frames; no annotated video written", source, nothing.frames)
        return AnnotatedVideo(None, None, nothing.frames, 0, source=str(source))


class _NothingDrawn(Exception):
    def __init__(self, frames: int):
        self.frames = frames


def _annotate(source, out_path, analyze_image, every, tracker, csv_path, progress, marks, keep_empty):
    import av

    mark, random_cell = marks
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise OptionError(f"every must be a whole number of frames, 1 or more (got {every!r})")
    out_path = Path(out_path)
    csv_path = Path(csv_path) if csv_path else out_path.with_suffix(".csv")
    n_frames = n_faces = 0
    with (
        atomic_output(out_path) as tmp_video,
        atomic_output(csv_path) as tmp_csv,
        VideoReader(source, even=True) as reader,
        av.open(str(tmp_video), "w", format="mp4") as output,
        open(tmp_csv, "w", newline="") as handle,
    ):
        writer = csv.DictWriter(handle, [*FACE_COLUMNS, "random_weights"])  # the Result's faces table
        writer.writeheader()
        out_video = out_audio = None
        early_audio = []  # audio packets before the first frame fixes the output size
        tracks: list[TrackedFace] = []
        bar = _Reporter(progress, reader.total, "annotating", "frame")
        for kind, item in reader.items(audio=True):
            if kind == "audio":
                if item.dts is None:
                    continue
                if out_video is None:
                    early_audio.append(item)
                    continue
                if out_audio is not None:
                    item.stream = out_audio
                    output.mux(item)
                continue
            if out_video is None:  # streams are added before anything is muxed
                _check_export_bounds(source, reader.size, reader.total or 0)
                out_video = _add_video_stream(output, reader.rate, reader.size)
                if reader.audio is not None:
                    out_audio = output.add_stream_from_template(reader.audio)
                for packet in early_audio:
                    packet.stream = out_audio
                    output.mux(packet)
                early_audio.clear()
            image = item.image
            if n_frames % every == 0:
                tracks = tracker.update(distinct_faces(analyze_image(image)), time=item.time)
            for track in tracks:  # "face" and "person" are the track's id: one person followed across frames
                writer.writerow({**tracked_row(n_frames, round(item.time, 3), track), "random_weights": random_cell})
            n_faces += len(tracks)
            draw_faces(image, tracks)
            draw_banner(image, mark)
            new = av.VideoFrame.from_ndarray(image, format="rgb24")
            new.pts, new.time_base = n_frames, 1 / reader.rate
            for out_packet in out_video.encode(new):
                output.mux(out_packet)
            n_frames += 1
            if n_frames > MAX_EXPORT_FRAMES or n_frames * image.shape[0] * image.shape[1] > MAX_EXPORT_PIXELS:
                _check_export_bounds(source, reader.size, n_frames)  # more frames than the header said
            bar.update(1)
        if out_video is None:
            raise MediaError(f"{source}: has no decodable video frame to annotate; download it again or re-encode it")
        for out_packet in out_video.encode():
            output.mux(out_packet)
        bar.close()
        if n_faces == 0 and not keep_empty:
            raise _NothingDrawn(n_frames)  # the temporary files are removed, nothing is renamed into place
        if reader.skipped:
            log.warning("%s: %d damaged video packet(s) were skipped", source, reader.skipped)
    return AnnotatedVideo(out_path, csv_path, n_frames, n_faces, source=str(source))


def merge_segments(segments: Sequence[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Sort and join segments that overlap or are within ``gap`` seconds of each other."""
    merged: list[list[float]] = []
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def export_segments(
    source, segments: Sequence[tuple[float, float]], out_path, *, progress: Progress = True, mark: str | None = None
) -> Path:
    """One video made of the given [start, end) segments of ``source`` (seconds from the video's
    first frame), upright, with their audio (re-encoded); ``mark`` (the random-weights mark of the
    result that chose the segments) is burned into every frame."""
    import av

    segments = merge_segments(segments)
    if not segments:
        raise UserError("no segments to export")
    check_not_input(out_path, [source], "the clips video")
    out_path = Path(out_path)
    with (
        atomic_output(out_path) as tmp,
        VideoReader(source, even=True) as reader,
        av.open(str(tmp), "w", format="mp4") as output,
    ):
        in_audio, rate = reader.audio, reader.rate
        origin = float((reader.stream.start_time or 0) * reader.stream.time_base)
        out_video = out_audio = resampler = None
        pending_audio = []  # audio frames decoded before the output streams exist
        video_pts = audio_pts = 0
        bar = _Reporter(progress, sum(b - a for a, b in segments), "cutting", "s")

        def add_streams(size):
            nonlocal out_video, out_audio, resampler
            out_video = _add_video_stream(output, rate, size)
            if in_audio is not None:
                out_audio = output.add_stream("aac", rate=in_audio.codec_context.sample_rate or 44100)
                out_audio.layout = "stereo" if (in_audio.codec_context.channels or 1) > 1 else "mono"
                resampler = av.AudioResampler(
                    format="fltp", layout=out_audio.layout.name, rate=out_audio.codec_context.sample_rate
                )

        def put_audio(frame):
            nonlocal audio_pts
            frame.pts = None
            for converted in resampler.resample(frame):
                converted.pts = audio_pts
                audio_pts += converted.samples
                for out_packet in out_audio.encode(converted):
                    output.mux(out_packet)

        for start, end in segments:
            reader.seek(start)
            done_video = done_audio = False
            for kind, item in reader.items(audio=True):
                if done_video and (done_audio or in_audio is None):
                    break
                if kind == "video":
                    if item.time < start:
                        continue
                    if item.time >= end:
                        done_video = True
                        continue
                    if out_video is None:
                        add_streams(reader.size)
                        for frame in pending_audio:
                            put_audio(frame)
                        pending_audio.clear()
                    new = av.VideoFrame.from_ndarray(draw_banner(item.image, mark), format="rgb24")
                    new.pts, new.time_base = video_pts, 1 / rate
                    video_pts += 1
                    for out_packet in out_video.encode(new):
                        output.mux(out_packet)
                    bar.update(1 / float(rate))
                    continue
                try:
                    decoded = item.decode()
                except av.FFmpegError:
                    continue
                for frame in decoded:
                    t = float(frame.time) - origin if frame.time is not None else None
                    if t is None or t < start:
                        continue
                    if t >= end:
                        done_audio = True
                        continue
                    if out_video is None:
                        pending_audio.append(frame)
                    elif out_audio is not None:
                        put_audio(frame)
        if out_video is None:
            raise MediaError(f"{source}: no decodable video frame in the chosen segments; re-encode the video")
        for out_packet in out_video.encode():
            output.mux(out_packet)
        if out_audio is not None:
            for out_packet in out_audio.encode():
                output.mux(out_packet)
        bar.close()
    return out_path
