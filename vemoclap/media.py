"""Video and audio ingest on PyAV: probe a file, sample frames, load the audio track.

Knows nothing about models. Every failure is a :class:`MediaError` whose message is one line
naming the file, what is wrong and what to do; PyAV's own exceptions never reach the caller.

Frame sampling seeks instead of decoding the whole stream, and plans its work per file from the
container's keyframe index (``stream.index_entries``: a binary search per position, no decoding):

* position ``i`` of ``n`` is the centre of the ``i``-th of ``n`` equal segments of the video
  stream (``random=True``: a uniform draw inside the segment, seeded);
* with a tolerance (default for equidistant sampling: a quarter of a segment either side of the
  centre) any decodable frame inside that window is taken. A keyframe inside the window costs one
  decoded packet: seek, decode that packet alone, drain the decoder (no B-frame reorder delay).
  Otherwise the decoder runs forward from the keyframe before the window only as far as the
  window's start. ``tolerance=0`` gives exactly the frame on screen at each position;
* the decoder keeps running forward instead of seeking again when that is cheaper, i.e. when no
  keyframe lies between where it stands and the next window (sparse keyframes: one partial
  sequential pass, never more than one whole pass);
* threading follows the plan: frame threading (AUTO) only when the plan decodes long runs
  (≥ 60 frames per seek; it adds latency and a flush per seek, and lost on 30-frame runs),
  slice threading otherwise (free for single-slice streams, helps multi-slice ones);
* files without an index (MPEG-TS) or with a wrong one still work: a seek that lands after its
  window is retried further back, and how far before a window seeks land is learned as it goes.

``Frames.timestamps`` are always the times of the frames actually decoded, from ``pts ×
time_base`` (so variable frame rate files are exact), in seconds from the video stream's first
frame (streams whose start time is not 0 are handled). Memory holds the ``n`` output images plus
at most two decoded frames, never the video. Frames are resized so the short side is
``short_side`` (enlarged only with ``upscale=True``), scaled in YUV then converted to RGB, and
rotation metadata (phone videos) is applied. Damaged frames are skipped: a position whose frame
cannot be decoded gets the nearest decodable one and a line in ``Frames.warnings``; when more than
a quarter of the positions have nothing decodable nearby, the file is reported as corrupt or
truncated.

Sizes and lengths come from what the file really holds, never from what its header claims:

* positions are spread over the video stream's real extent — the end of the last packet present
  in the file (found from the index, or by demuxing the tail; no decoding) — not the duration the
  container states; a file that is shorter than it claims gives frames from what exists and a
  warning;
* ``n`` is at most :data:`MAX_FRAMES`; audio is decoded in bounded pieces up to
  ``max_seconds`` (default :data:`MAX_AUDIO_SECONDS`, clipped past it with a warning), with no
  buffer sized from a claimed duration;
* frames handed to models stay within :data:`SAFE_LONG_SIDE` / :data:`SAFE_PIXELS` (larger
  pictures are shrunk) and an aspect ratio of at most :data:`MAX_ASPECT` (thinner pictures, such
  as a 2×720 video, are padded with black to that ratio), each with a warning; explicit caps
  (``max_long_side``, ``max_pixels``) refuse the file with a one-line reason instead;
* still images (JPEG, PNG) and files that cannot be seeked are read in one sequential pass.

:class:`VideoReader` is the one reader of whole videos (exports, live mode): every frame as an
upright RGB array, damaged packets skipped and counted.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import OptionError, UserError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz; every audio model here takes 16 kHz mono
CHUNK_SECONDS = 3.0  # BEATs / AST chunk length, as the reference (VEMOCLAP) cuts its audio
CHUNK_HOP_SECONDS = 1.5  # 50 % overlap

DEFAULT_TOLERANCE = 0.25  # fraction of a segment, either side of its centre (equidistant sampling)
_SEEK_COST = 3.0  # one seek ≈ this many decoded frames (flush + demux restart), for the plan
_FRAME_THREADS_MIN_RUN = 60.0  # frames per seek above which frame threading pays (measured: 30 loses, 80 wins)
_THREADING: str | None = None  # force a thread type (benchmarks compare them)

# The one list of video file extensions (sources, uploads, dataset folders).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".flv",
        ".wmv",
        ".mpg",
        ".mpeg",
        ".3gp",
        ".ts",
        ".mts",
        ".ogv",
        ".vob",
        ".f4v",
        ".asf",
    }
)

# 16 is the reference; 512 frames of 640×360 RGB are ~350 MB, the most a run should hold.
MAX_FRAMES = 512
# 3 h of 16-kHz float32 is ~690 MB; longer audio is clipped there (with a warning), because the
# frames of a long video are still worth analysing and one option raises the limit.
MAX_AUDIO_SECONDS = 3 * 3600.0
# Frames given to models: at most 4096 px long and 4096×2160 px in all (native 4K passes
# unchanged); thinner than 1:4 they are padded (a 2×720 video made OCR take 44 s per frame).
SAFE_LONG_SIDE = 4096
SAFE_PIXELS = 4096 * 2160
MAX_ASPECT = 4.0


def check_frame_count(n) -> int:
    """``n`` as a frame count in [1, MAX_FRAMES], or an OptionError naming the limit."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise OptionError(f"frames must be a whole number between 1 and {MAX_FRAMES}, got {n!r}")
    if not 1 <= n <= MAX_FRAMES:
        raise OptionError(
            f"frames={n} is outside 1..{MAX_FRAMES} (each frame is held in memory); "
            f"use at most {MAX_FRAMES} (the reference uses 16)"
        )
    return int(n)


class MediaError(UserError):
    """A file that cannot be used, with a one-line reason naming the file."""


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds, read from the container without decoding.

    An audio-only file probes fine (``width == height == 0``, ``video_codec is None``);
    :func:`sample_frames` is what refuses it. ``width``/``height`` are the stored size (with the
    sample aspect ratio applied); rotation metadata is applied by :func:`sample_frames`.
    """

    path: str
    duration: float  # seconds (the video stream's when there is one)
    fps: float  # average frame rate (0 without video)
    width: int
    height: int
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    frame_count: int | None = None  # from the container, when it says
    audio_rate: int | None = None  # Hz of the source audio track
    audio_channels: int | None = None


@dataclass
class DecodeStats:
    """What :func:`sample_frames` did, so callers and tests can see the work actually done."""

    seeks: int = 0
    packets: int = 0  # video packets sent to the decoder
    frames: int = 0  # frames the decoder returned (all of them, chosen or not)
    threading: str = ""  # the decoder's thread type
    tolerance: float = 0.0  # seconds either side of each target position
    indexed: bool = False  # whether the container's keyframe index guided the plan


@dataclass
class Frames:
    images: np.ndarray  # n×H×W×3 uint8 RGB
    timestamps: np.ndarray  # n float64 seconds: the times actually decoded (from the first frame)
    warnings: list[str] = field(default_factory=list)  # e.g. undecodable frames replaced
    targets: np.ndarray | None = None  # n float64 seconds: the positions asked for
    rotation: int = 0  # degrees counter-clockwise applied from the file's display matrix, (-180, 180]
    stats: DecodeStats = field(default_factory=DecodeStats)

    def __len__(self) -> int:
        return len(self.images)


# --------------------------------------------------------------------------------------------
# Opening files and reading what they hold


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _fail(path, problem: str, todo: str) -> MediaError:
    return MediaError(_one_line(f"{os.fspath(path)}: {problem}; {todo}"))


def _open(path):
    """An open PyAV input container, or MediaError for everything that makes that impossible."""
    import av

    p = Path(os.fspath(path))
    if not p.exists():
        raise _fail(p, "file not found", "check the path or download the video again")
    if p.is_dir():
        raise _fail(p, "is a directory, not a media file", "pass one video file inside it")
    if p.stat().st_size == 0:
        raise _fail(p, "is empty (0 bytes)", "download or export the video again")
    try:
        return av.open(str(p), **_metadata_options(av))
    except av.error.InvalidDataError:
        raise _fail(
            p,
            "is not a readable media file (unknown format, or truncated before its header/index)",
            "download it again or convert it to MP4 (H.264/AAC)",
        ) from None
    except PermissionError:
        if os.access(p, os.R_OK):  # readable: FFmpeg refused it (its concat demuxer's safe mode, e.g.)
            raise _fail(
                p,
                "is a list of other files (an FFmpeg concat list or playlist), which is not opened",
                "pass the video file itself",
            ) from None
        raise _fail(p, "cannot be read (permission denied)", "fix the file's permissions") from None
    except (av.FFmpegError, OSError) as exc:
        raise _fail(
            p, f"cannot be opened ({_ffmpeg_reason(exc)})", "download it again or convert it to MP4 (H.264/AAC)"
        ) from None


def _metadata_options(av) -> dict:
    """av.open's keywords for badly encoded metadata: PyAV < 19 raises on it unless told to ignore it;
    PyAV 19 dropped the option (a TypeError there) and always decodes with surrogateescape."""
    return {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}


def _ffmpeg_reason(exc: BaseException) -> str:
    return _one_line(getattr(exc, "strerror", None) or exc)


def _video_stream(container):
    """The first real video stream; cover art (attached pictures in audio files) does not count."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


@dataclass
class _Extent:
    """Where a video stream really starts and ends, and what its header claimed."""

    start: float
    duration: float  # seconds the stream really spans (from its first frame's time)
    claimed: float  # seconds the container states (0 when it states nothing)
    packets: int = 0  # packets demuxed to find the end
    same_time: bool = False  # every packet demuxed carried one timestamp (broken timing)
    warnings: list[str] = field(default_factory=list)


def _claimed_span(container, stream) -> tuple[float, float]:
    tb = stream.time_base
    start = _seconds(stream.start_time, tb)
    if start is None:
        start = (container.start_time or 0) / 1e6
    duration = _seconds(stream.duration, tb)
    if not duration or duration <= 0:
        total = (container.duration or 0) / 1e6
        duration = max(0.0, total - (start - (container.start_time or 0) / 1e6))
    return start, duration


def _present_entry(entries, file_size: int | None):
    """Index of the last index entry whose data lies inside the file (a truncated file's index
    still lists the samples that were cut off). Entries are stored in file order in practice."""
    last = len(entries) - 1
    if file_size is None or last < 0:
        return last

    def present(i):
        e = entries[i]
        return e.pos < 0 or e.pos + e.size <= file_size

    if present(last):
        return last
    lo, hi = -1, last  # present(lo) (or lo = -1), not present(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if present(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _extent(container, stream, path) -> _Extent:
    """The stream's real extent: the end of the last packet present in the file.

    Found by demuxing (not decoding) from the last keyframe that the index says is in the file, or
    from one second before the claimed end, or, when that finds nothing, from the start. The
    container's claimed duration is only a hint: a header may claim 2·10⁹ s or nothing at all.
    """
    import av

    start, claimed = _claimed_span(container, stream)
    tb = stream.time_base
    file_size = None
    if path is not None:
        try:
            file_size = os.path.getsize(os.fspath(path))
        except OSError:
            file_size = None
    seeks: list[int] = []
    entries = stream.index_entries
    if len(entries):
        i = _present_entry(entries, file_size)
        if i >= 0:
            first = max(0, i - 2000)  # bounded walk back to a keyframe
            key = next((j for j in range(i, first - 1, -1) if entries[j].is_keyframe), first)
            delay = max(0, (stream.start_time or entries[0].timestamp) - entries[0].timestamp)
            seeks.append(entries[key].timestamp + delay)
    if claimed > 0 and math.isfinite(claimed):
        seeks.append(int(max(start, start + claimed - 1.0) / tb))
    seeks.append(stream.start_time or 0)
    end, packets, times = None, 0, set()
    for ts in seeks:
        try:
            container.seek(int(ts), stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                packets += 1
                if len(times) < 2:
                    times.add(packet.pts)
                t = float((packet.pts + (packet.duration or 0)) * tb)
                end = t if end is None else max(end, t)
        except (av.FFmpegError, OSError, OverflowError):  # damaged tail, or a seek out of range
            pass
        if end is not None:
            break
    extent = _Extent(start, claimed, claimed, packets, packets >= 2 and len(times) == 1)
    if extent.same_time and path is not None:  # seeking means nothing without timestamps: count them all
        with _open(path) as again:
            stream_again = again.streams[stream.index]
            try:
                extent.packets = sum(1 for packet in again.demux(stream_again) if packet.size)
            except (av.FFmpegError, OSError):
                pass
    if end is None:
        return extent
    real = max(0.0, end - start)
    extent.duration = real
    name = Path(os.fspath(path)).name if path is not None else "video"
    if extent.same_time:
        extent.warnings.append(
            f"all {packets} video frames read carry the same timestamp "
            f"({float(next(iter(times)) * tb):.2f} s): the file's timing is broken; "
            "frames were picked by their order instead; re-encode the video"
        )
    elif claimed > 0 and real < claimed - max(0.5, 0.02 * claimed):
        extent.warnings.append(
            f"{stream.type} stream ends at {real:.2f} s although the file claims {claimed:.2f} s "
            "(truncated, or a wrong header): only what exists was used"
        )
    elif claimed > 0 and real > claimed + max(0.5, 0.02 * claimed):
        extent.warnings.append(
            f"{stream.type} stream runs to {real:.2f} s although the file claims {claimed:.2f} s "
            "(a wrong header): all of it was used"
        )
    for message in extent.warnings:
        log.warning("%s: %s", name, message)
    return extent


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _display_size(stream) -> tuple[int, int]:
    ctx = stream.codec_context
    width, height = ctx.width or 0, ctx.height or 0
    sar = stream.sample_aspect_ratio
    if sar and float(sar) > 0 and sar != 1:
        width = int(round(width * float(sar)))
    return width, height


def probe(path) -> MediaInfo:
    """Duration, frame rate, size, codecs and audio presence, from the container (no decoding).

    Audio-only files probe fine (no video fields); a file with neither decodable video nor audio,
    or with zero duration, is a :class:`MediaError`.
    """
    import av

    container = _open(path)
    try:
        video = _video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise _fail(path, "has no video or audio stream", "pass a video file")
        frame_count, duration, width, height = None, 0.0, 0, 0
        if video is not None:
            extent = _extent(container, video, path)
            duration = extent.duration
            frame_count = int(video.frames) if video.frames else None
            if extent.same_time:
                duration = extent.packets / (_fps(video) or 25.0)
            width, height = _display_size(video)
            if duration <= 0 and frame_count:
                duration = frame_count / (_fps(video) or 25.0)
            if duration <= 0 and audio is None:
                raise _fail(
                    path, "has a video stream with no frames (zero duration)", "export or download the video again"
                )
        if duration <= 0 and audio is not None:
            duration = _extent(container, audio, path).duration
        if duration <= 0:
            raise _fail(path, "has zero duration", "export or download the file again")
        return MediaInfo(
            path=str(path),
            duration=float(duration),
            fps=_fps(video) if video is not None else 0.0,
            width=width,
            height=height,
            has_audio=audio is not None,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            frame_count=frame_count,
            audio_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )
    except av.FFmpegError as exc:
        raise _fail(
            path, f"could not be read ({_ffmpeg_reason(exc)})", "download it again or convert it to MP4 (H.264/AAC)"
        ) from None
    finally:
        container.close()


# --------------------------------------------------------------------------------------------
# Frame sampling


def _target_times(n: int, start: float, duration: float, random: bool, seed: int | None) -> np.ndarray:
    segment = duration / n
    offsets = np.random.default_rng(seed).random(n) if random else np.full(n, 0.5)
    return start + (np.arange(n) + offsets) * segment


_TIE = 2e-6  # s: an "fps-filter" position a hair early, so a frame starting exactly on it is not taken
POSITIONS = ("centre", "fps-filter", "scenes")
SIZE_ROUNDINGS = ("round", "truncate")


@dataclass(frozen=True)
class _Positions:
    targets: np.ndarray  # seconds (stream time) of each position; their number is the frame count
    segment: float
    notes: tuple[str, ...] = ()


def _positions(container, start, duration, n, random, seed, positions, name) -> _Positions:
    """Where the frames are taken. ``centre``: the ``n`` segment centres of the stream's real extent.
    ``fps-filter``: what FFmpeg's ``fps=n/D`` filter gives over the *container's* duration D (the
    reference's sampler): output frame k is the last frame starting before (k + ½)·D/n (a frame
    starting exactly there is not taken), and there are round(stream length / (D/n)) of them — 15 when
    the container runs ≥ ~3 % past the video stream (the reference then has a zero row), 17 when it
    stops ≥ ~3 % short of it (the reference keeps 16 equidistant rows of the features)."""
    if positions == "centre":
        return _Positions(_target_times(n, start, duration, random, seed), duration / n)
    claimed = (container.duration or 0) / 1e6
    span = claimed if claimed > 0 and math.isfinite(claimed) else duration
    segment = span / n
    count = int(math.floor(duration / segment + 0.5)) if duration > 0 else n  # FFmpeg rounds halves up
    count = min(max(1, count), MAX_FRAMES)
    targets = _target_times(count, start, count * segment, random, seed)
    if not random:
        targets = targets - _TIE
    notes: tuple[str, ...] = ()
    if count != n:
        what = "its missing rows are zeros" if count < n else f"{n} equidistant rows are kept"
        notes = (
            f"the container lasts {span:.2f} s and its video stream {duration:.2f} s: {count} frames, not "
            f"{n}, as the reference's FFmpeg fps filter gives them (in the features {what})",
        )
        log.info("%s: %s", name, notes[0])
    return _Positions(targets, segment, notes)


def _output_size(
    width: int, height: int, short_side: int | None, upscale: bool = False, truncate: bool = False
) -> tuple[int, int]:
    """Keep the aspect ratio; shrink so the short side is ``short_side``; enlarge only with ``upscale``.

    A picture thinner than 1:MAX_ASPECT is padded to that ratio afterwards, so the rule applies to
    the padded canvas's short side: a 2×720 video enlarged to a 360 short side becomes 4×1440 on a
    360×1440 canvas, not 360×129600 (which the safety caps would cut to a 1024×4096 canvas)."""
    if short_side is None or width < 1 or height < 1:
        return width, height
    short = max(min(width, height), max(width, height) / MAX_ASPECT)
    if short <= short_side and not upscale:
        return width, height
    scale = short_side / short
    if short == min(width, height) and truncate:  # the reference's int(w / h · 360)
        return (
            (short_side, max(1, int(height / width * short_side)))
            if width <= height
            else (max(1, int(width / height * short_side)), short_side)
        )
    if short == min(width, height):  # the usual case: the short side lands exactly on short_side
        return (
            (short_side, max(1, int(round(height * scale))))
            if width <= height
            else (max(1, int(round(width * scale))), short_side)
        )
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


@dataclass(frozen=True)
class _SizeRule:
    short_side: int | None = 360
    upscale: bool = False
    max_long_side: int | None = None
    max_pixels: int | None = None
    truncate: bool = False  # the long side truncated (the reference's int()), not rounded

    def geometry(self, path, width: int, height: int) -> tuple[tuple[int, int], tuple[int, int], list[str]]:
        """(picture size, canvas size, warnings) in display orientation for a width × height video.

        The explicit caps refuse; the safety bounds shrink, then pad to at most MAX_ASPECT."""
        w, h = _output_size(width, height, self.short_side, self.upscale, self.truncate)
        if self.max_long_side is not None and max(w, h) > self.max_long_side:
            raise _fail(
                path,
                f"frames would be {w}×{h} px (the video is {width}×{height}), longer than the "
                f"limit of {self.max_long_side} px",
                "use a video of a less extreme shape or raise max_long_side",
            )
        if self.max_pixels is not None and w * h > self.max_pixels:
            raise _fail(
                path,
                f"frames would be {w}×{h} px (the video is {width}×{height}), more than the "
                f"limit of {self.max_pixels} pixels",
                "use a smaller video or raise max_pixels",
            )
        warnings = []
        shrink = min(1.0, SAFE_LONG_SIDE / max(w, h), math.sqrt(SAFE_PIXELS / (w * h)))
        if shrink < 1.0:
            w, h = max(1, int(w * shrink)), max(1, int(h * shrink))
            warnings.append(
                f"frames of {width}×{height} px were shrunk to {w}×{h} (at most {SAFE_LONG_SIDE} px "
                f"long and {SAFE_PIXELS} pixels) for the models"
            )
        canvas = (w, h)
        if max(w, h) > MAX_ASPECT * min(w, h):
            canvas = (w, math.ceil(w / MAX_ASPECT)) if w > h else (math.ceil(h / MAX_ASPECT), h)
            warnings.append(
                f"the video is {width}×{height} px, too thin for the models: frames were padded with "
                f"black to {canvas[0]}×{canvas[1]} (at most 1:{MAX_ASPECT:g})"
            )
        return (w, h), canvas, warnings


_MAX_BATCH_BYTES = 2 << 30  # the n output frames together


class _Collector:
    """Converts each chosen frame at once (holding ``n`` small images, not ``n`` decoded frames)."""

    def __init__(self, path, n: int, rule: _SizeRule, stream):
        self.path, self.n, self.rule, self.stream = path, n, rule, stream
        self.images: np.ndarray | None = None
        self.times = np.full(n, np.nan)
        self.rotation = 0
        self.warnings: list[str] = []
        self._last = None  # (frame, row): a frame chosen for consecutive positions is converted once

    def _setup(self, frame) -> None:
        rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        self.rotation = rotation - 360 if rotation > 180 else rotation  # (-180, 180]: 180 rather than -180
        width, height = _frame_display_size(frame, self.stream)
        if self.quarter_turns % 2:
            width, height = height, width
        self.picture, self.canvas, self.warnings = self.rule.geometry(self.path, width, height)
        need = self.n * self.canvas[0] * self.canvas[1] * 3
        if need > _MAX_BATCH_BYTES:
            raise _fail(
                self.path,
                f"{self.n} frames of {self.canvas[0]}×{self.canvas[1]} px would need {need / 2**30:.1f} GiB",
                "sample fewer frames or use a smaller short_side",
            )
        self.images = np.zeros((self.n, self.canvas[1], self.canvas[0], 3), np.uint8)

    @property
    def quarter_turns(self) -> int:
        return int(round(self.rotation / 90)) % 4

    def put(self, i: int, frame) -> None:
        if frame is None:
            return
        if self.images is None:
            self._setup(frame)
        if self._last is not None and self._last[0] is frame:
            self.images[i] = self.images[self._last[1]]
        else:
            stored = self.picture[::-1] if self.quarter_turns % 2 else self.picture
            image = _to_image(frame, stored, self.rotation)
            (pw, ph), (cw, ch) = self.picture, self.canvas
            y, x = (ch - ph) // 2, (cw - pw) // 2
            self.images[i, y : y + ph, x : x + pw] = image
            self._last = (frame, i)
        self.times[i] = _frame_time(frame)


def _frame_display_size(frame, stream) -> tuple[int, int]:
    width = frame.width
    sar = stream.sample_aspect_ratio
    if sar and float(sar) > 0 and sar != 1:
        width = max(1, int(round(width * float(sar))))
    return width, frame.height


class _KeyIndex:
    """Keyframe times from the demuxer's index (a binary search each, no decoding)."""

    def __init__(self, stream):
        self.entries = stream.index_entries
        self.tb = stream.time_base
        self.ok = False
        self.delay = 0  # pts − dts of the first frame (B-frame reorder delay), stream ticks
        if len(self.entries) and any(self.entries[i].is_keyframe for i in range(min(len(self.entries), 64))):
            self.ok = True
            first_pts = stream.start_time
            if first_pts is not None:
                self.delay = max(0, first_pts - self.entries[0].timestamp)

    def _entry(self, t: float, backward: bool):
        i = self.entries.search_timestamp(int(math.floor(t / self.tb)) - self.delay, backward=backward)
        return self.entries[i] if i >= 0 else None

    def _key(self, entry) -> tuple[float, int] | None:
        # Demuxers seek by presentation time: seeking to the keyframe's own pts lands on it
        # whether the index holds decode times (MP4) or presentation times (Matroska).
        return (
            None if entry is None else (float((entry.timestamp + self.delay) * self.tb), entry.timestamp + self.delay)
        )

    def before(self, t: float) -> tuple[float, int] | None:
        """(presentation time, seek timestamp) of the last keyframe at or before ``t``."""
        return self._key(self._entry(t, True))

    def after(self, t: float) -> tuple[float, int] | None:
        """(presentation time, seek timestamp) of the first keyframe at or after ``t``."""
        return self._key(self._entry(t, False))


@dataclass
class _Step:
    kind: str  # "key": seek to a keyframe inside the window; "seek": seek before the window; "run": keep decoding
    seek_ts: int | None = None  # stream ticks to seek to
    cost: float = 0.0  # frames to decode (estimate)


def _choose(
    t: float, lo: float, hi: float, pos: float | None, index: _KeyIndex | None, fps: float, learned_gap: float | None
) -> _Step:
    """The cheapest way to reach a frame in [lo, hi] (the plan's one rule, used to plan and to run).

    ``pos`` is the time of the decoder's last frame when it can keep running forward.
    """
    fps = fps or 25.0
    run_cost = (lo - pos) * fps if pos is not None and pos < lo else None
    if index is not None and index.ok:
        keys = [k for k in (index.before(t), index.after(t)) if k is not None and lo <= k[0] <= hi]
        if keys:
            key_time, key_ts = min(keys, key=lambda k: abs(k[0] - t))
            if run_cost is not None and pos < key_time and (key_time - pos) * fps <= _SEEK_COST + 1:
                return _Step("run", cost=(key_time - pos) * fps)
            return _Step("key", key_ts, _SEEK_COST + 1)
        before = index.before(lo)
        if before is not None:
            seek_cost = _SEEK_COST + (lo - before[0]) * fps + 1
            if run_cost is not None and run_cost <= seek_cost:
                return _Step("run", cost=run_cost)
            return _Step("seek", before[1], seek_cost)
        return _Step("seek", None, _SEEK_COST + lo * fps)
    # No index: seek and learn how far before the window the decoder lands on average.
    gap = learned_gap if learned_gap is not None else float("inf")
    if run_cost is not None and run_cost <= _SEEK_COST + gap * fps:
        return _Step("run", cost=run_cost)
    return _Step("seek", None, _SEEK_COST + (0 if math.isinf(gap) else gap * fps))


class _Decoder:
    """Seek / decode-forward over one video stream, counting the work and skipping broken frames."""

    def __init__(self, container, stream, path):
        self.container, self.stream, self.path = container, stream, path
        self.tb = stream.time_base
        self.stats = DecodeStats()
        self.errors = 0
        self.corrupt = 0
        self._frames = iter(())
        self.pending = None  # a decoded frame not consumed yet (the one that overshot a window)
        self.prev = None  # the last frame consumed since the last seek
        self.landed: float | None = None  # time of the first frame after the last seek
        self.drained = False  # after first_frame(): must seek before decoding on
        self.damaged = False  # damaged frames were skipped since ``prev``
        self.replaced: list[tuple[float, float]] = []  # (position, time used): not the frame asked for
        self.frame_step = 1 / (_fps(stream) or 25.0)

    def seek(self, ts: int) -> None:
        self.container.seek(int(ts), stream=self.stream, backward=True)
        self.stats.seeks += 1
        self._frames = self._decode()
        self.pending = None
        self.prev = None
        self.landed = None
        self.drained = False
        self.damaged = False

    def _decode(self):
        import av

        for packet in self.container.demux(self.stream):
            if packet.size:
                self.stats.packets += 1
            try:
                frames = packet.decode()
            except av.FFmpegError:  # a damaged packet: skip it, the decoder resyncs
                self.errors += 1
                self.damaged = True
                continue
            for frame in frames:
                self.stats.frames += 1
                if frame.pts is None or frame.is_corrupt:
                    self.corrupt += 1
                    self.damaged = True
                    continue
                if self.landed is None:
                    self.landed = _frame_time(frame)
                yield frame

    def first_frame(self):
        """After a seek: decode only the packet the seek landed on, then drain the decoder, so a
        keyframe costs one frame of decoding (no reorder delay). The decoder must seek again
        before it can continue."""
        import av

        frame = None
        for packet in self.container.demux(self.stream):
            if not packet.size:
                continue
            self.stats.packets += 1
            try:
                frames = packet.decode() + self.stream.codec_context.decode(None)
            except av.FFmpegError:
                self.errors += 1
                frames = []
            self.stats.frames += len(frames)
            for f in frames:
                if f.time_base is None:  # drained frames come without one
                    f.time_base = self.tb
            good = [f for f in frames if f.pts is not None and not f.is_corrupt]
            self.corrupt += len(frames) - len(good)
            frame = good[0] if good else None
            break
        self._frames = iter(())
        self.pending = None
        self.prev = frame
        self.drained = True
        return frame

    def next(self):
        if self.pending is not None:
            frame, self.pending = self.pending, None
            return frame
        return next(self._frames, None)

    @property
    def position(self) -> float | None:
        """Time of the last frame when the decoder can keep running forward from it."""
        return None if self.prev is None or self.drained else float(self.prev.pts * self.tb)


def _frame_time(frame) -> float:
    return float(frame.pts * frame.time_base)


def _frame_end(frame) -> float | None:
    return float((frame.pts + frame.duration) * frame.time_base) if frame.duration else None


def _take(dec: _Decoder, t: float, lo: float, hi: float, exact: bool):
    """Decode forward to the frame for window [lo, hi] around ``t``.

    Returns (frame, status). A frame inside the window wins; when no frame lies in it, the one on
    screen at ``t`` (the last before the window) is chosen, and at the end of the stream the last
    decodable frame. status "late": the first frame after a seek is already past the window;
    "none": nothing decodable followed the seek. Either way the caller must seek earlier.
    """
    eps = 1e-6
    while True:
        frame = dec.next()
        if frame is None:  # end of stream: the last decodable frame is the nearest one
            if dec.prev is None:
                return None, "none"
            last = _frame_time(dec.prev)
            if t - last > (hi - t) + (_frame_step(dec.prev) or dec.frame_step) + eps:
                dec.replaced.append((t, last))  # the video stops before this position
            return dec.prev, "ok"
        ft = _frame_time(frame)
        if ft >= lo - eps:
            if ft <= hi + eps:
                dec.prev, dec.damaged = frame, False
                return frame, "ok"
            dec.pending = frame
            if dec.prev is None:
                return None, "late"
            if dec.damaged:  # the frames between were undecodable: take the nearer neighbour
                nearer = min((dec.prev, frame), key=lambda f: abs(_frame_time(f) - t))
                dec.replaced.append((t, _frame_time(nearer)))
                if nearer is frame:
                    dec.pending, dec.prev, dec.damaged = None, frame, False
                return nearer, "ok"
            return dec.prev, "ok"
        dec.prev, dec.damaged = frame, False
        end = _frame_end(frame)
        if exact and end is not None and end > t + eps:  # on screen at t: no need to decode the next one
            return frame, "ok"


# --------------------------------------------------------------------------------------------
# Scene frames: the sampler of the reference's training-era repository


SCENE_THRESHOLD = 0.27  # a cut where FFmpeg's scene score exceeds this (the training-era repository's value)


@dataclass
class SceneScan:
    """What one pass over a video stream found: where its scenes change and how many frames it has."""

    cuts: list[float]  # seconds (from the stream's first frame) of the first frame of each new scene
    scores: np.ndarray  # FFmpeg's scene score of every frame (0 for the first)
    times: np.ndarray  # seconds of every frame
    fps: float  # the stream's average frame rate


def _scene_planes(frame) -> np.ndarray:
    """The frame's Y, U and V samples as one 8-bit array (what FFmpeg's scene score sums over)."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    return frame.to_ndarray()


def scene_scores(path) -> SceneScan:
    """FFmpeg's scene score of every frame (``select=scene``, libavfilter's f_select): the mean
    absolute difference of a frame's pixels from the previous frame's (all planes), ``mafd``, and
    the score ``min(mafd, |mafd − previous mafd|) / 100`` clipped to [0, 1]. A cut is a frame whose
    score exceeds :data:`SCENE_THRESHOLD`. Decodes the whole stream once (no frame is kept)."""
    import av

    container = _open(path)
    try:
        stream = _video_stream(container)
        if stream is None:
            raise _fail(path, "has no video stream", "pass a video file")
        stream.thread_type = "AUTO"
        start = _seconds(stream.start_time, stream.time_base) or 0.0
        scores, times, prev, prev_mafd = [], [], None, 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                planes = _scene_planes(frame)
                score = 0.0
                if prev is not None and prev.shape == planes.shape:
                    mafd = float(np.abs(planes.astype(np.int16) - prev).sum()) / planes.size
                    score = min(max(min(mafd, abs(mafd - prev_mafd)) / 100.0, 0.0), 1.0)
                    prev_mafd = mafd
                prev = planes.astype(np.int16)
                scores.append(score)
                times.append(_frame_time(frame) - start)
        except av.FFmpegError as exc:
            if not times:
                raise _fail(
                    path, f"is corrupt or truncated ({_ffmpeg_reason(exc)})", "download it again or re-encode it"
                ) from None
        if not times:
            raise _fail(path, "has no decodable video frame", "download it again or re-encode it")
        scores_array, times_array = np.asarray(scores), np.asarray(times)
        cuts = [float(t) for t, sc in zip(times_array, scores_array) if sc > SCENE_THRESHOLD]
        return SceneScan(cuts, scores_array, times_array, _fps(stream))
    finally:
        container.close()


def mid_scene_frames(scan: SceneScan, duration: float) -> list[int]:
    """The training-era rule: scenes run between 0, each cut and the container's ``duration``; each
    scene's middle time becomes a frame number ``round(t · fps)`` (fps rounded to 2 decimals, at most
    the last frame), duplicates dropped, in order."""
    bounds = [0.0, *scan.cuts] + ([duration] if duration > 0 else [])
    fps = round(scan.fps, 2) or 25.0
    last = len(scan.times) - 1
    middles = [(a + b) / 2 for a, b in zip(bounds[:-1], bounds[1:])] or [0.0]
    return sorted({min(int(round(t * fps)), last) for t in middles})


def _scene_frames(path, rule: _SizeRule) -> Frames:
    """Each scene's middle frame (:func:`mid_scene_frames`), sized by ``rule`` (native for the
    training-era sampler); at most :data:`MAX_FRAMES` and 2 GiB of them, equidistant past that."""
    scan = scene_scores(path)
    container = _open(path)
    try:
        duration = (container.duration or 0) / 1e6
        numbers = mid_scene_frames(scan, duration if math.isfinite(duration) else 0.0)
        stream = _video_stream(container)
        (w, h) = rule.geometry(path, *_display_size(stream))[1]
        budget = max(1, min(MAX_FRAMES, _MAX_BATCH_BYTES // max(1, w * h * 3)))
        notes = [
            f"{len(numbers)} scene(s) ({len(scan.cuts)} cut(s) at FFmpeg scene score > {SCENE_THRESHOLD}): "
            "the middle frame of each, as the reference's training-era extraction took them"
        ]
        if len(numbers) > budget:
            keep = np.round(np.linspace(0, len(numbers) - 1, budget)).astype(int)
            numbers = [numbers[i] for i in keep]
            notes.append(f"only {budget} equidistant scenes were kept (memory)")
        wanted = {number: row for row, number in enumerate(numbers)}
        out = _Collector(path, len(numbers), rule, stream)
        dec = _Decoder(container, stream, path)
        dec.stats.threading = "sequential"
        dec._frames = dec._decode()
        index = 0
        while index <= numbers[-1]:
            frame = dec.next()
            if frame is None:
                break
            if index in wanted:
                out.put(wanted[index], frame)
            index += 1
        have = ~np.isnan(out.times)
        if not have.all():
            raise _fail(path, "ended before its last scene could be read", "download it again or re-encode it")
        start = _seconds(stream.start_time, stream.time_base) or 0.0
        for message in notes:
            log.info("%s: %s", Path(os.fspath(path)).name, message)
        return Frames(
            images=out.images,
            timestamps=out.times - start,
            warnings=notes + out.warnings,
            targets=scan.times[numbers],
            rotation=out.rotation,
            stats=dec.stats,
        )
    finally:
        container.close()


class _NothingDecoded(MediaError):
    """No frame decoded by seeking; a sequential pass may still find some."""


def _is_still(container) -> bool:
    name = container.format.name or ""
    return name == "image2" or name.endswith("_pipe")


def sample_frames(
    path,
    n: int = 16,
    *,
    random: bool = False,
    short_side: int | None = 360,
    upscale: bool = False,
    tolerance: float | None = None,
    max_long_side: int | None = None,
    max_pixels: int | None = None,
    seed: int | None = None,
    positions: str = "centre",
    size_rounding: str = "round",
) -> Frames:
    """``n`` RGB frames at equidistant (or, ``random=True``, random per-segment) positions.

    ``short_side``: resize so the shorter side is this many pixels, keeping the aspect ratio
    (``None``: native size); smaller videos are enlarged (bicubic) only with ``upscale=True``.
    ``max_long_side`` / ``max_pixels``: past either (after resizing) the file is refused with a
    one-line :class:`MediaError` naming the limit. ``tolerance``: how far (a fraction of the
    segment length, either side of each position) a frame may be from its position and still be
    taken as is; ``None`` means 0.25 for equidistant sampling and 0 (exact frames, so the
    augmentation keeps every frame reachable) for random sampling. 0 gives the frame on screen at
    each centre (k + 0.5)·D/n, D being the stream's real extent. A video with fewer frames than
    ``n`` repeats frames. Rotation metadata is applied (a phone video recorded upright comes out
    upright). ``n`` is at most :data:`MAX_FRAMES` (:class:`OptionError` otherwise).

    ``positions="fps-filter"`` takes the frames FFmpeg's ``fps=n/D`` filter gives (the reference
    app's sampler, see :func:`_positions`): D is the container's duration, ties take the earlier
    frame, and the count may be ``n - 1`` or ``n + 1`` (a note in ``Frames.warnings`` says so).
    ``positions="scenes"`` takes the middle frame of each scene instead (:func:`_scene_frames`, the
    training-era repository's sampler): as many frames as scenes, ``n`` and ``random`` unused.
    ``size_rounding="truncate"`` makes the long side ``int(long / short · short_side)`` as the
    reference does (default: rounded).
    """
    import av

    n = check_frame_count(n)
    if short_side is not None and (isinstance(short_side, bool) or short_side < 1):
        raise OptionError(f"short_side must be a positive number of pixels or None, got {short_side!r}")
    for name, value in (("max_long_side", max_long_side), ("max_pixels", max_pixels)):
        if value is not None and value < 1:
            raise OptionError(f"{name} must be a positive number of pixels or None, got {value!r}")
    if positions not in POSITIONS:
        raise OptionError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
    if size_rounding not in SIZE_ROUNDINGS:
        raise OptionError(f"size_rounding must be one of {', '.join(SIZE_ROUNDINGS)}, got {size_rounding!r}")
    rule = _SizeRule(short_side, upscale, max_long_side, max_pixels, size_rounding == "truncate")
    if positions == "scenes":
        return _scene_frames(path, rule)
    container = _open(path)
    try:
        stream = _video_stream(container)
        if stream is None:
            what = "audio only" if container.streams.audio else "no streams"
            raise _fail(path, f"has no video stream ({what})", "pass a video file; use load_audio() for sound")
        try:
            extent = _extent(container, stream, path)
            sequential = extent.same_time or _is_still(container)
            if not sequential:
                try:
                    return _sample(container, stream, path, n, random, rule, seed, tolerance, extent, positions)
                except _NothingDecoded:  # seeking found nothing: one plain pass from the start
                    log.info("%s: no frame found by seeking; decoding sequentially", Path(path).name)
            container.close()
            container = _open(path)
            stream = _video_stream(container)
            return _sequential(container, stream, path, n, random, rule, seed, extent, positions)
        except av.FFmpegError as exc:
            raise _fail(
                path, f"is corrupt or truncated ({_ffmpeg_reason(exc)})", "download it again or re-encode it"
            ) from None
    finally:
        container.close()


def _sample(container, stream, path, n, random, rule, seed, tolerance, extent: _Extent, positions="centre") -> Frames:
    start, duration = extent.start, extent.duration
    if duration <= 0 and not stream.frames:
        raise _fail(path, "has a video stream with no frames (zero duration)", "export or download the video again")
    fps = _fps(stream) or 25.0
    if duration <= 0:
        duration = stream.frames / fps
    plan = _positions(container, start, duration, n, random, seed, positions, Path(os.fspath(path)).name)
    targets, segment, n = plan.targets, plan.segment, len(plan.targets)
    if tolerance is None or positions == "fps-filter":
        tolerance = 0.0 if random or positions == "fps-filter" else DEFAULT_TOLERANCE
    tol = max(0.0, min(float(tolerance), 0.5)) * segment
    exact = tol == 0

    index = _KeyIndex(stream)

    # Plan with the same rule the run uses, to pick the threading that suits it.
    planned_cost, planned_seeks, pos = 0.0, 0, None
    for t in targets:
        step = _choose(t, t - tol, t + tol, pos, index, fps, None)
        planned_cost += step.cost
        planned_seeks += step.kind != "run"
        pos = t - tol if step.kind == "seek" else t
    threading = "AUTO" if planned_cost / max(1, planned_seeks) >= _FRAME_THREADS_MIN_RUN else "SLICE"
    threading = _THREADING or threading
    stream.thread_type = threading
    stream.codec_context.thread_count = 0

    dec = _Decoder(container, stream, path)
    dec.stats.threading, dec.stats.tolerance, dec.stats.indexed = threading, tol, index.ok
    gaps: list[float] = []
    max_back = max(4 * segment, 32.0)  # how far before a position to look for a decodable frame
    out = _Collector(path, n, rule, stream)
    for i, t in enumerate(targets):
        lo, hi = t - tol, t + tol
        frame = None
        # A frame already decoded may serve (several positions inside one frame, short videos).
        following = None if dec.damaged else dec.pending  # damage between: prev's end is unknown
        for candidate in (dec.prev, dec.pending):
            if candidate is not None and _serves(candidate, following if candidate is dec.prev else None, t, lo, hi):
                frame = candidate
                if candidate is dec.pending:  # consumed now
                    dec.prev, dec.pending, dec.damaged = candidate, None, False
                break
        if frame is None:
            step = _choose(t, lo, hi, dec.position, index, fps, float(np.mean(gaps)) if gaps else None)
            if step.kind == "run":
                frame, _ = _take(dec, t, lo, hi, exact)
            else:
                frame = _seek_and_take(dec, step, t, lo, hi, exact, start, gaps, max_back)
        out.put(i, frame)
    return _assemble(path, out, targets, start, dec, segment, extent.warnings + list(plan.notes))


def _sequential(container, stream, path, n, random, rule, seed, extent: _Extent, positions="centre") -> Frames:
    """One pass from the start, keeping the frame on screen at each position: for still images,
    files that cannot be seeked, and streams whose frames all carry one timestamp (by order)."""
    fps = _fps(stream) or 25.0
    by_order = extent.same_time
    start = 0.0 if by_order else extent.start
    duration = extent.packets / fps if by_order else extent.duration
    if duration <= 0:
        duration = (stream.frames or 1) / fps
    plan = _positions(container, start, duration, n, random, seed, positions, Path(os.fspath(path)).name)
    targets, n = plan.targets, len(plan.targets)
    dec = _Decoder(container, stream, path)
    dec.stats.threading = "sequential"
    dec._frames = dec._decode()
    out = _Collector(path, n, rule, stream)
    k, prev, index = 0, None, 0
    while k < n:
        frame = dec.next()
        if frame is None:
            break
        if frame.time_base is None:
            frame.time_base = stream.time_base
        if by_order:  # the stream's own times are all equal: times from the order and the rate
            frame.pts = int(round(index / fps / frame.time_base))
        index += 1
        t = _frame_time(frame)
        while k < n and targets[k] < t - 1e-6:
            out.put(k, prev if prev is not None else frame)
            k += 1
        prev = frame
    while k < n and prev is not None:
        out.put(k, prev)
        k += 1
    return _assemble(path, out, targets, start, dec, plan.segment, extent.warnings + list(plan.notes))


def _serves(frame, following, t: float, lo: float, hi: float) -> bool:
    ft = _frame_time(frame)
    if lo - 1e-6 <= ft <= hi + 1e-6:
        return True
    if ft > t:
        return False
    end = _frame_time(following) if following is not None else _frame_end(frame)
    return end is not None and end > t + 1e-6


def _seek_and_take(dec: _Decoder, step: _Step, t, lo, hi, exact, start, gaps, max_back):
    if step.kind == "key":
        dec.seek(step.seek_ts)
        frame = dec.first_frame()
        if frame is not None and lo - 1e-6 <= _frame_time(frame) <= hi + 1e-6:
            return frame
        # The index's estimate was off (or the packet did not decode alone): decode forward instead.
    seek_ts = step.seek_ts if step.kind == "seek" and step.seek_ts is not None else int(math.floor(lo / dec.tb))
    earliest = int(math.floor(start / dec.tb))
    back = 1.0
    while True:
        dec.seek(seek_ts)
        frame, status = _take(dec, t, lo, hi, exact)
        if dec.landed is not None and step.kind == "seek":
            gaps.append(max(0.0, lo - dec.landed))  # how far before the window seeks land (no index)
        if status == "ok":
            return frame
        if seek_ts <= earliest:  # already at the start: its first decodable frame is the nearest
            first, dec.pending = dec.pending, None
            dec.prev = first
            return first
        if back > max_back:  # nothing decodable anywhere near (truncated or damaged): give up here
            return None
        # The seek landed after the window (no index, or damaged data): try earlier.
        seek_ts = max(earliest, int(math.floor((lo - back) / dec.tb)))
        back *= 2


def _to_image(frame, size: tuple[int, int], rotation: int) -> np.ndarray:
    """An upright RGB array of ``frame`` scaled to ``size`` (stored orientation), rotated by
    ``rotation`` degrees counter-clockwise."""
    import av

    if (frame.width, frame.height) != tuple(size):
        # Scale in the decoder's own pixel format first, then convert the small picture to RGB:
        # about 3× faster than swscale doing both in one pass (measured, 1080p → 360p).
        frame = frame.reformat(width=size[0], height=size[1], interpolation=av.video.reformatter.Interpolation.BICUBIC)
    image = frame.to_ndarray(format="rgb24")
    k = int(round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _assemble(path, out: _Collector, targets, start, dec: _Decoder, segment, notes=()) -> Frames:
    n = len(targets)
    have = ~np.isnan(out.times)
    if not have.any():
        raise _NothingDecoded(
            _one_line(
                f"{os.fspath(path)}: has no decodable video frame (corrupt or truncated "
                "stream); download it again or re-encode it"
            )
        )
    warnings: list[str] = list(notes)
    # Positions with nothing decodable near them take the nearest frame decoded for another one.
    good = np.flatnonzero(have)
    far = set(np.flatnonzero(~have).tolist())
    for i in far:
        j = good[np.argmin(np.abs(out.times[good] - targets[i]))]
        out.images[i], out.times[i] = out.images[j], out.times[j]
    for t, _ in dec.replaced:
        far.add(int(np.argmin(np.abs(targets - t))))
    if len(far) > max(1, n // 4):
        last = float(np.max(out.times[good])) - start
        raise _fail(
            path,
            f"is corrupt or truncated: only {n - len(far)} of {n} positions have a decodable "
            f"frame (last one decoded at {last:.1f} s of {targets[-1] - start + segment / 2:.1f} s)",
            "download it again or re-encode it",
        )
    for i in sorted(far):
        warnings.append(
            f"frame near {targets[i] - start:.2f} s could not be decoded; "
            f"used the nearest decodable one at {out.times[i] - start:.2f} s"
        )
    if dec.errors or dec.corrupt:
        warnings.append(f"{dec.errors + dec.corrupt} damaged video packet(s)/frame(s) were skipped")
    warnings.extend(out.warnings)
    for message in warnings[len(notes) :]:
        log.warning("%s: %s", Path(path).name, message)
    return Frames(
        images=out.images,
        timestamps=out.times - start,
        warnings=warnings,
        targets=targets - start,
        rotation=out.rotation,
        stats=dec.stats,
    )


def _frame_step(frame) -> float:
    end = _frame_end(frame)
    return 0.0 if end is None else end - _frame_time(frame)


# --------------------------------------------------------------------------------------------
# Audio


@dataclass
class Audio:
    """A decoded audio track and what decoding it noticed."""

    samples: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int = SAMPLE_RATE
    warnings: list[str] = field(default_factory=list)
    skipped_packets: int = 0  # damaged packets the decoder could not use
    clipped: bool = False  # the track went on past ``max_seconds``


class _AudioBuffer:
    """Mono samples as they are decoded, in a buffer that grows with what is actually decoded (never
    sized from the duration the file claims) and stops at ``limit`` samples (None: no limit)."""

    def __init__(self, sr: int, limit: int | None):
        self.out = np.empty(60 * sr, np.float32)  # grown ×1.5 as samples arrive
        self.filled = 0
        self.limit = limit
        self.clipped = False

    def put(self, frames) -> None:
        for frame in frames:
            samples = np.frombuffer(frame.planes[0], np.float32, count=frame.samples)
            if self.limit is not None and self.filled + len(samples) > self.limit:
                samples, self.clipped = samples[: self.limit - self.filled], True
            if self.filled + len(samples) > len(self.out):
                grown = np.empty(max(len(self.out) * 3 // 2, self.filled + len(samples)), np.float32)
                grown[: self.filled] = self.out[: self.filled]
                self.out = grown
            self.out[self.filled : self.filled + len(samples)] = samples
            self.filled += len(samples)

    def put_array(self, samples: np.ndarray) -> None:
        """Mono samples already at the buffer's rate (clipped at the limit)."""
        if self.limit is not None and self.filled + len(samples) > self.limit:
            samples, self.clipped = samples[: self.limit - self.filled], True
        self.out = np.concatenate([self.out[: self.filled], np.asarray(samples, np.float32)])
        self.filled = len(self.out)

    def samples(self) -> np.ndarray:
        self.out.resize(self.filled, refcheck=False)  # in place: no second copy of a long track
        return self.out


RESAMPLERS = ("swresample", "sinc")
SINC_WIDTH = 6  # zero crossings of the sinc kept either side (torchaudio's lowpass_filter_width)
SINC_ROLLOFF = 0.99  # cut-off as a fraction of the lower Nyquist frequency


def _sinc_kernels(orig: int, new: int, width: int, rolloff: float):
    """(new, 1, taps) float64 polyphase kernels of a Hann-windowed sinc low-pass, and their reach.

    Output sample ``q·new + i`` sits at input time ``q·orig + i·orig/new``; its value is the sum of
    the input samples ``q·orig + j`` (j from ``-reach`` to ``orig + reach``) weighted by
    h(j/orig − i/new), where h(τ) = (f/orig)·sinc(f·τ)·w(f·τ), f = rolloff·min(orig, new) (the
    cut-off in units of the reduced rates) and w the Hann window cos²(π·x / 2·width) on |x| ≤ width
    (J. O. Smith's band-limited interpolation, https://ccrma.stanford.edu/~jos/resample/)."""
    import torch

    cutoff = rolloff * min(orig, new)
    reach = math.ceil(width * orig / cutoff)
    offsets = torch.arange(-reach, orig + reach, dtype=torch.float64) / orig
    phases = torch.arange(new, dtype=torch.float64)[:, None] / new
    x = ((offsets[None, :] - phases) * cutoff).clamp(-width, width)
    window = torch.cos(x * math.pi / (2 * width)) ** 2
    kernels = torch.special.sinc(x) * window * (cutoff / orig)
    return kernels[:, None, :], reach


def _torchaudio_resample():
    """``torchaudio.functional.resample`` when torchaudio is installed and works with this torch."""
    try:
        from torchaudio.functional import resample
    except Exception:  # not installed, or built for another torch
        return None
    return resample


def sinc_resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """``samples`` (float32, last axis time) from ``orig_rate`` to ``new_rate`` Hz with the reference's
    resampler: ``torchaudio.functional.resample`` (Hann-windowed sinc, width 6, roll-off 0.99) where
    torchaudio is installed, else :func:`sinc_resample_torch`, the same filter written here."""
    samples = np.asarray(samples, dtype=np.float32)
    resample = _torchaudio_resample()
    if resample is None or samples.shape[-1] == 0:
        return sinc_resample_torch(samples, orig_rate, new_rate)
    import torch

    with torch.no_grad():
        return resample(torch.from_numpy(np.ascontiguousarray(samples)), int(orig_rate), int(new_rate)).numpy()


def sinc_resample_torch(samples: np.ndarray, orig_rate: int, new_rate: int, *, block: int = 1 << 16) -> np.ndarray:
    """``samples`` (float32, last axis time) from ``orig_rate`` to ``new_rate`` Hz with a Hann-windowed
    sinc (:data:`SINC_WIDTH` zero crossings, roll-off :data:`SINC_ROLLOFF`), the filter of torchaudio's
    default ``sinc_interp_hann``, on torch's conv1d; ``block`` output steps at a time, so memory stays
    bounded on long tracks. Output length ``ceil(len · new / orig)``."""
    import torch

    samples = np.asarray(samples, dtype=np.float32)
    g = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // g, int(new_rate) // g
    if orig == new or samples.shape[-1] == 0:
        return samples.copy()
    kernels, reach = _sinc_kernels(orig, new, SINC_WIDTH, SINC_ROLLOFF)
    kernels = kernels.to(torch.float32)
    shape, length = samples.shape[:-1], samples.shape[-1]
    x = torch.from_numpy(np.ascontiguousarray(samples.reshape(-1, 1, length)))
    x = torch.nn.functional.pad(x, (reach, reach + orig))
    steps = length // orig + 1
    pieces = []
    with torch.no_grad():
        for q in range(0, steps, block):
            q_end = min(steps, q + block)
            piece = x[..., q * orig : (q_end - 1) * orig + kernels.shape[-1]]
            y = torch.nn.functional.conv1d(piece, kernels, stride=orig)  # (rows, new, steps)
            pieces.append(y.transpose(1, 2).reshape(x.shape[0], -1))
    out = torch.cat(pieces, dim=-1)[:, : math.ceil(new * length / orig)]
    return out.numpy().reshape(*shape, -1)


class _SincMono:
    """Audio frames at their own rate and channels → their plain channel mean → :func:`sinc_resample`
    to ``sr`` (the reference's decoding). A change of rate or layout midway starts a new piece."""

    def __init__(self, sr: int, max_seconds: float | None):
        self.sr, self.max_seconds = sr, max_seconds
        self.pieces: list[np.ndarray] = []  # done, at sr
        self.native: list[np.ndarray] = []  # the current piece at ``rate``
        self.rate: int | None = None
        self.layout = None
        self.seconds = 0.0  # decoded so far
        self.converter = None

    def put(self, frame) -> bool:
        """Take one decoded frame; False once ``max_seconds`` are decoded (stop reading)."""
        import av

        key = (frame.sample_rate, frame.layout.name)
        if key != (self.rate, self.layout):
            self.flush()
            self.rate, self.layout = key
            self.converter = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=frame.sample_rate)
        for converted in self.converter.resample(frame):
            channels = converted.to_ndarray().astype(np.float32, copy=False)
            self.native.append(channels.reshape(-1, converted.samples).mean(axis=0))
            self.seconds += converted.samples / self.rate
        return self.max_seconds is None or self.seconds < self.max_seconds

    def flush(self) -> None:
        if self.native:
            mono = np.concatenate(self.native)
            self.pieces.append(sinc_resample(mono, self.rate, self.sr))
        self.native = []

    def samples(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)


def _mono_resampler(sr: int):
    import av

    # mean of the channels, not FFmpeg's default 0.707·sum; 1-s output frames (fewer calls)
    return av.AudioResampler(format="flt", layout="mono", rate=sr, frame_size=sr, options={"rematrix_maxval": "1.0"})


# FFmpeg's resampler takes fewer than 32 channels (SWR_CH_MAX); a wider track (a valid 64-channel
# WAV) is averaged to mono here first, as the resampler would: the mean of the channels.
RESAMPLER_MAX_CHANNELS = 16
_SAMPLE_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _mean_channels(frame):
    """A mono float frame: the mean of ``frame``'s channels (any sample format, planar or packed)."""
    import av

    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    data = data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    samples = data.astype(np.float64)
    if name == "u8":
        samples -= 128.0
    samples /= _SAMPLE_SCALE.get(name, 1.0)
    mono = av.AudioFrame.from_ndarray(
        samples.mean(axis=0, keepdims=True).astype(np.float32), format="fltp", layout="mono"
    )
    mono.sample_rate = frame.sample_rate
    return mono


def _decode_audio(path, container, stream, buffer: _AudioBuffer, sr: int, resampler: str = "swresample"):
    """Decode ``stream`` into ``buffer``, skipping damaged packets; (packets with data, damaged ones)."""
    if resampler == "sinc":
        return _decode_audio_sinc(path, container, stream, buffer, sr)
    import av

    packets = errors = 0
    to_mono = _mono_resampler(sr)
    try:
        for packet in container.demux(stream):
            if buffer.clipped:
                break
            packets += bool(packet.size)
            try:
                decoded = packet.decode()
            except av.FFmpegError:  # a damaged packet: skip it
                errors += 1
                continue
            for frame in decoded:
                if frame.layout.nb_channels > RESAMPLER_MAX_CHANNELS:
                    frame = _mean_channels(frame)
                frame.pts = None  # samples follow one another; a header's broken timing must not drop them
                try:
                    buffer.put(to_mono.resample(frame))
                except ValueError:  # the track changed rate or layout midway: start a new resampler
                    buffer.put(to_mono.resample(None))
                    to_mono = _mono_resampler(sr)
                    buffer.put(to_mono.resample(frame))
        if not buffer.clipped:
            buffer.put(to_mono.resample(None))
    except av.FFmpegError as exc:
        if not buffer.filled:
            raise _fail(
                path,
                f"audio track is corrupt or truncated ({_ffmpeg_reason(exc)})",
                "download it again or re-encode it",
            ) from None
        errors += 1  # a read error after some audio: keep what decoded, say so in the warnings
    return packets, errors


def _decode_audio_sinc(path, container, stream, buffer: _AudioBuffer, sr: int) -> tuple[int, int]:
    """As :func:`_decode_audio`, resampled by :class:`_SincMono` (native rate, plain mean, sinc)."""
    import av

    packets = errors = 0
    limit = None if buffer.limit is None else buffer.limit / sr
    to_mono = _SincMono(sr, limit)
    try:
        reading = True
        for packet in container.demux(stream):
            if not reading:
                break
            packets += bool(packet.size)
            try:
                decoded = packet.decode()
            except av.FFmpegError:  # a damaged packet: skip it
                errors += 1
                continue
            for frame in decoded:
                frame.pts = None
                reading = to_mono.put(frame) and reading
    except av.FFmpegError as exc:
        if not to_mono.seconds:
            raise _fail(
                path,
                f"audio track is corrupt or truncated ({_ffmpeg_reason(exc)})",
                "download it again or re-encode it",
            ) from None
        errors += 1
    buffer.put_array(to_mono.samples())
    return packets, errors


def _audio_warnings(
    path, got: float, stated: float, clipped: bool, max_seconds: float | None, packets: int, errors: int
) -> list[str]:
    """What the person should know about the audio read (``got`` seconds); a track mostly damaged fails."""
    if got == 0 and packets and errors:
        raise _fail(path, "audio track could not be decoded (corrupt)", "download it again or re-encode it")
    if packets >= 8 and errors > packets // 2:
        raise _fail(
            path,
            f"audio track is corrupt: {errors} of {packets} packets could not be decoded",
            "download it again or re-encode it",
        )
    warnings = []
    if errors:
        warnings.append(f"{errors} damaged audio packet(s) were skipped")
    if clipped:
        warnings.append(
            f"audio is longer than the {max_seconds:g}-s limit: only the first {got:g} s "
            "were used (raise max_audio_seconds to use more)"
        )
    elif stated > 1.0 and got < 0.98 * stated - 1.0:
        warnings.append(
            f"audio ends at {got:.1f} s although the file claims {stated:.1f} s "
            "(truncated, or a wrong header): only what exists was used"
        )
    return warnings


def read_audio(
    path, sr: int = SAMPLE_RATE, *, max_seconds: float | None = MAX_AUDIO_SECONDS, resampler: str = "swresample"
) -> Audio:
    """The first audio track as mono float32 at ``sr`` Hz (empty when the file has no audio).

    Resampled by FFmpeg (PyAV's AudioResampler); channels are averaged ((L+R)/2 for stereo, so a
    full-scale track never clips). Decoded in 1-s pieces into a buffer that grows with what is
    actually decoded (never sized from the duration the file claims), up to ``max_seconds``
    (``None``: no limit): past it the track is clipped and a warning says so. Damaged packets
    are skipped and counted; a track shorter than it claims gives what exists and a warning.

    ``resampler="sinc"`` decodes as the reference did: at the track's own rate, the plain mean of
    its channels (5.1 included: all six, equally), then :func:`sinc_resample` to ``sr`` — the same
    result as the reference's order for Whisper (mean, then resample) and for BEATs (resample, then
    mean), both steps being linear. The default ``swresample`` resamples and downmixes with FFmpeg.
    """
    if resampler not in RESAMPLERS:
        raise OptionError(f"resampler must be one of {', '.join(RESAMPLERS)}, got {resampler!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise OptionError(f"max_seconds must be a positive number of seconds or None, got {max_seconds!r}")
    limit = None if max_seconds is None else int(max_seconds * sr)
    container = _open(path)
    name = Path(os.fspath(path)).name
    try:
        if not container.streams.audio:
            return Audio(np.zeros(0, np.float32), sr)
        stream = container.streams.audio[0]
        stated = _seconds(stream.duration, stream.time_base) or 0.0
        buffer = _AudioBuffer(sr, limit)
        packets, errors = _decode_audio(path, container, stream, buffer, sr, resampler)
        warnings = _audio_warnings(path, buffer.filled / sr, stated, buffer.clipped, max_seconds, packets, errors)
        for message in warnings:
            log.warning("%s: %s", name, message)
        return Audio(buffer.samples(), sr, warnings, errors, buffer.clipped)
    finally:
        container.close()


def load_audio(
    path, sr: int = SAMPLE_RATE, *, max_seconds: float | None = MAX_AUDIO_SECONDS, resampler: str = "swresample"
) -> np.ndarray:
    """:func:`read_audio`'s samples alone (its warnings are logged)."""
    return read_audio(path, sr, max_seconds=max_seconds, resampler=resampler).samples


# --------------------------------------------------------------------------------------------
# Whole videos, frame by frame (exports, live mode)


@dataclass
class VideoImage:
    image: np.ndarray  # H×W×3 uint8 RGB, upright (rotation metadata applied)
    time: float  # seconds (the frame's presentation time; from the order and rate when it has none)
    index: int  # decoded frames before this one


class VideoReader:
    """The one reader of whole videos: every frame as an upright RGB array, in display orientation.

    ``source`` is a file path, or a stream URL FFmpeg opens itself (``options`` go to FFmpeg).
    ``max_side`` shrinks frames so the long side fits; ``even`` rounds the size down to even
    numbers (what H.264 in yuv420p needs). The size is fixed by the first frame, so every frame
    has it. Damaged packets are skipped and counted in ``skipped``; ``warnings`` says so.
    """

    def __init__(self, source, *, max_side: int | None = None, even: bool = False, options: dict | None = None):
        import av

        self.source = os.fspath(source)
        if "://" in self.source:
            try:
                self.container = av.open(self.source, options=options or {}, **_metadata_options(av))
            except (av.FFmpegError, OSError) as exc:
                raise _fail(
                    self.source, f"cannot be opened as a video ({_ffmpeg_reason(exc)})", "check the link or the stream"
                ) from None
        else:
            self.container = _open(self.source)
        self.stream = _video_stream(self.container)
        if self.stream is None:
            self.container.close()
            raise _fail(self.source, "has no video stream", "pass a video file")
        self.stream.thread_type = "AUTO"
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.total = int(self.stream.frames) if self.stream.frames else None
        self.max_side, self.even = max_side, even
        self.size: tuple[int, int] | None = None  # (width, height) of the images, upright
        self.rotation = 0
        self.skipped = 0
        self._count = 0

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    @property
    def warnings(self) -> list[str]:
        return [f"{self.skipped} damaged video packet(s) were skipped"] if self.skipped else []

    def seek(self, seconds: float) -> None:
        """Go to the keyframe at or before ``seconds`` (from the stream's start)."""
        start = self.stream.start_time or 0
        self.container.seek(start + int(max(0.0, seconds) / self.stream.time_base), stream=self.stream, backward=True)

    def _setup(self, frame) -> None:
        rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        self.rotation = rotation - 360 if rotation > 180 else rotation
        width, height = _frame_display_size(frame, self.stream)
        if int(round(self.rotation / 90)) % 2:
            width, height = height, width
        scale = min(1.0, self.max_side / max(width, height)) if self.max_side else 1.0
        width, height = max(1, int(width * scale)), max(1, int(height * scale))
        if self.even:
            width, height = max(2, width // 2 * 2), max(2, height // 2 * 2)
        self.size = (width, height)

    def image(self, frame) -> VideoImage:
        """One decoded PyAV frame as an upright :class:`VideoImage` of the reader's size."""
        if self.size is None:
            self._setup(frame)
        stored = self.size[::-1] if int(round(self.rotation / 90)) % 2 else self.size
        start = self.stream.start_time or 0
        time = (
            float((frame.pts - start) * frame.time_base)
            if frame.pts is not None and frame.time_base
            else self._count / float(self.rate)
        )
        self._count += 1
        return VideoImage(_to_image(frame, stored, self.rotation), time, self._count - 1)

    def items(self, *, audio: bool = False) -> Iterator[tuple[str, object]]:
        """("video", VideoImage) for each decoded frame and, with ``audio``, ("audio", packet) for
        each audio packet (for copying or decoding), in file order."""
        import av

        streams = [self.stream] + ([self.audio] if audio and self.audio is not None else [])
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    yield "audio", packet
                    continue
                try:
                    frames = packet.decode()
                except av.FFmpegError:  # a damaged packet: skip it, the decoder resyncs
                    self.skipped += 1
                    continue
                for frame in frames:
                    if frame.is_corrupt:
                        self.skipped += 1
                        continue
                    yield "video", self.image(frame)
        except av.FFmpegError as exc:  # the file ends in damage: what came before stands
            self.skipped += 1
            log.warning("%s: stopped reading at damaged data (%s)", Path(self.source).name, _ffmpeg_reason(exc))

    def frames(self) -> Iterator[VideoImage]:
        for kind, item in self.items():
            yield item
