"""Live mode: per-frame face detection and expression with temporal smoothing, FPS measured.

``analyze_stream(frames, face_model)`` is a generator over any iterable of RGB frames; the
``vemoclap live`` command feeds it a camera, a file or a stream link (:mod:`vemoclap.streams`) and
shows an overlay window when a display exists, otherwise prints one line per frame.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np

from .draw.overlay import distinct_faces, draw_banner, draw_faces
from .errors import OptionError
from .notice import random_weights_mark, random_weights_notice
from .tracking import FaceTracker, TrackedFace

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class LiveFrame:
    index: int
    image: np.ndarray  # RGB, with boxes drawn when ``draw=True``
    faces: list[TrackedFace]
    fps: float  # frames per second over the last ``fps_window`` frames (processing rate)

    def table(self, time: float | None = None) -> "pd.DataFrame":
        """This frame's faces as rows of the faces table (:mod:`vemoclap.facetable`; "face" is the track's id)."""
        import pandas as pd

        from .facetable import FACE_COLUMNS, tracked_row

        rows = [tracked_row(self.index, self.index if time is None else time, face) for face in self.faces]
        return pd.DataFrame(rows, columns=list(FACE_COLUMNS))

    def line(self) -> str:
        faces = ", ".join(f"person {f.person}: {f.expression} {f.confidence:.0%}" for f in self.faces) or "no face"
        return f"frame {self.index:6d}  {self.fps:5.1f} fps  {faces}"


def _check_count(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{name} must be a whole number, 1 or more, not {value!r}")


def analyze_stream(
    frames: Iterable[np.ndarray],
    face_model: Callable[[np.ndarray], list],
    *,
    smoothing: float = 0.4,
    every: int = 1,
    draw: bool = True,
    fps_window: int = 30,
    mark: str | None = None,
) -> Iterator[LiveFrame]:
    """Yield one :class:`LiveFrame` per input frame: tracked faces with smoothed expressions
    (``mark``, the random-weights mark, drawn as a banner on each shown frame)."""
    _check_count(every, "every")
    tracker = FaceTracker(alpha=smoothing)
    stamps: deque[float] = deque(maxlen=fps_window)
    tracks: list[TrackedFace] = []
    for index, image in enumerate(frames):
        if index % every == 0:
            tracks = tracker.update(distinct_faces(face_model(image)))
        stamps.append(time.perf_counter())
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
        shown = draw_faces(image.copy(), tracks) if draw else image
        if draw:
            draw_banner(shown, mark)
            _draw_fps(shown, fps, bottom=bool(mark))
        yield LiveFrame(index, shown, tracks, fps)


def _draw_fps(image: np.ndarray, fps: float, bottom: bool = False) -> None:
    """The rate in the top-left corner (bottom-left when the random-weights banner holds the top)."""
    import cv2

    y = image.shape[0] - 10 if bottom else 24
    cv2.putText(image, f"{fps:.1f} FPS", (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)


def camera_frames(index: int = 0) -> Iterator[np.ndarray]:
    """RGB frames from a local camera (OpenCV)."""
    import cv2

    if isinstance(index, bool) or not isinstance(index, int) or index < 0:  # OpenCV crashes on -1
        raise OptionError(f"camera {index!r}: give a camera index, 0 or more")
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise OptionError(f"camera {index} could not be opened; check it is connected or pick another --camera")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def file_frames(
    source, max_side: int | None = 640, *, options: dict | None = None, shown_name: str | None = None
) -> Iterator[np.ndarray]:
    """Upright RGB frames from a file, a stream URL (``options`` go to FFmpeg) or a byte stream,
    shrunk so the long side ≤ ``max_side``. Files and URLs go through the one video reader
    (rotation applied); a byte stream (a link read through the network guard) is decoded as is."""
    import os

    if isinstance(source, (str, os.PathLike)):
        from .media import VideoReader

        with VideoReader(os.fspath(source), max_side=max_side, even=True, options=options) as reader:
            for item in reader.frames():
                yield item.image
        return
    import av

    from .media import MediaError

    name = shown_name or "the stream"
    try:
        container = av.open(source, options=options or {})
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{name}: cannot be opened as a video ({' '.join(str(exc).split())})") from None
    with container:
        if not container.streams.video:
            raise MediaError(f"{name}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
        size = (int(width * scale) // 2 * 2, int(height * scale) // 2 * 2)
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
        except av.FFmpegError as exc:  # a stream read front to back: an MP4 with its index at the end cannot be
            raise MediaError(
                f"{name}: cannot be decoded as a live stream ({' '.join(str(exc).split())}); "
                f"streams need a format readable front to back (MPEG-TS, fragmented MP4, WebM)"
            ) from None


def has_display() -> bool:
    if os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_live(
    frames: Iterable[np.ndarray],
    face_model: Callable[[np.ndarray], list],
    *,
    show: bool | None = None,
    every: int = 1,
    max_frames: int | None = None,
    out=print,
    weights: Sequence = (),
) -> dict[str, float]:
    """Drive :func:`analyze_stream`; show a window when possible, else print a line per frame.

    ``weights``: the face model's :class:`~vemoclap.models.ModelUse` list; when any is random, the
    notice is printed first, each printed line starts with the mark and each shown frame has the banner.
    Returns {"frames": n, "fps": mean processing rate}. Press q in the window to stop.
    """
    _check_count(every, "every")
    if max_frames is not None:
        _check_count(max_frames, "max_frames")
    random = ["face_emotion"] if any(getattr(use, "random", False) for use in weights) else []
    mark = random_weights_mark(random)
    if mark:
        out(random_weights_notice(random))
    show = has_display() if show is None else show
    window = None
    if show:
        import cv2

        window = "vemoclap live (q quits)"
        try:
            cv2.namedWindow(window)
        except cv2.error:  # headless OpenCV build: fall back to printing
            log.info("OpenCV has no GUI here; printing instead")
            window = None
    start, count = time.perf_counter(), 0
    for live in analyze_stream(frames, face_model, every=every, draw=window is not None, mark=mark):
        count += 1
        if window is not None:
            import cv2

            cv2.imshow(window, cv2.cvtColor(live.image, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF == ord("q"):
                break
        else:
            out(f"[{mark}] {live.line()}" if mark else live.line())
        if max_frames and count >= max_frames:
            break
    if window is not None:
        import cv2

        cv2.destroyWindow(window)
    elapsed = time.perf_counter() - start
    return {"frames": count, "fps": count / elapsed if elapsed > 0 else 0.0}
