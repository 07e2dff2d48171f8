"""Live mode: per-frame face detection and expression with temporal smoothing, FPS measured.

``analyze_stream(frames, face_model)`` is a generator over any iterable of RGB frames; the
``vemoclap live`` command feeds it a camera, a stream URL or a file and shows an overlay window
when a display exists, otherwise prints one line per frame.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .export import FaceSmoother, TrackedFace
from .render import draw_faces

log = logging.getLogger(__name__)


@dataclass
class LiveFrame:
    index: int
    image: np.ndarray  # RGB, with boxes drawn when ``draw=True``
    faces: list[TrackedFace]
    fps: float  # frames per second over the last ``fps_window`` frames (processing rate)

    def line(self) -> str:
        faces = ", ".join(f"#{f.track_id} {f.expression} {f.confidence:.0%}" for f in self.faces) or "no face"
        return f"frame {self.index:6d}  {self.fps:5.1f} fps  {faces}"


def analyze_stream(frames: Iterable[np.ndarray], face_model: Callable[[np.ndarray], list], *,
                   smoothing: float = 0.4, every: int = 1, draw: bool = True, fps_window: int = 30
                   ) -> Iterator[LiveFrame]:
    """Yield one :class:`LiveFrame` per input frame: tracked faces with smoothed expressions."""
    smoother = FaceSmoother(alpha=smoothing)
    stamps: deque[float] = deque(maxlen=fps_window)
    tracks: list[TrackedFace] = []
    for index, image in enumerate(frames):
        if index % every == 0:
            tracks = smoother.update(face_model(image))
        stamps.append(time.perf_counter())
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
        shown = draw_faces(image.copy(), tracks) if draw else image
        if draw:
            _draw_fps(shown, fps)
        yield LiveFrame(index, shown, tracks, fps)


def _draw_fps(image: np.ndarray, fps: float) -> None:
    import cv2

    cv2.putText(image, f"{fps:.1f} FPS", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)


def camera_frames(index: int = 0) -> Iterator[np.ndarray]:
    """RGB frames from a local camera (OpenCV)."""
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise ValueError(f"camera {index} could not be opened; check it is connected or pick another --camera")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def file_frames(source, max_side: int | None = 640, *, options: dict | None = None,
                shown_name: str | None = None) -> Iterator[np.ndarray]:
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
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24", width=size[0], height=size[1])


def has_display() -> bool:
    if os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_live(frames: Iterable[np.ndarray], face_model: Callable[[np.ndarray], list], *, show: bool | None = None,
             every: int = 1, max_frames: int | None = None, out=print) -> dict[str, float]:
    """Drive :func:`analyze_stream`; show a window when possible, else print a line per frame.

    Returns {"frames": n, "fps": mean processing rate}. Press q in the window to stop.
    """
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
    for live in analyze_stream(frames, face_model, every=every, draw=window is not None):
        count += 1
        if window is not None:
            import cv2

            cv2.imshow(window, cv2.cvtColor(live.image, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF == ord("q"):
                break
        else:
            out(live.line())
        if max_frames and count >= max_frames:
            break
    if window is not None:
        import cv2

        cv2.destroyWindow(window)
    elapsed = time.perf_counter() - start
    return {"frames": count, "fps": count / elapsed if elapsed > 0 else 0.0}


def stream_frames(url: str, *, allow_private: bool = False, max_side: int | None = 640) -> Iterator[np.ndarray]:
    """RGB frames from a live stream, with its addresses checked like every other network read.

    http(s): read in Python through :mod:`vemoclap.netguard` (each redirect and the address really
    connected to are checked) and handed to FFmpeg as a byte stream, so FFmpeg itself opens no
    connection; HLS playlists are refused, since FFmpeg would fetch their segments unchecked.
    rtsp(s): the host is resolved once, checked, and FFmpeg connects to that address over TCP.
    """
    from urllib.parse import urlunparse

    from . import netguard
    from .sources import SourceError, parse_link

    name, parsed = parse_link(url)
    port = parsed.port
    scheme = parsed.scheme.lower()
    if allow_private:  # the person trusts every address this stream may lead to
        yield from file_frames(url, max_side)
        return
    if not parsed.hostname:
        raise SourceError(f"{name}: the link has no host name")
    if scheme in ("http", "https"):
        yield from _http_stream_frames(url, name, max_side)
        return
    if scheme in ("rtsp", "rtsps"):
        port = port or (322 if scheme == "rtsps" else 554)
        try:
            address = netguard.resolve_public(parsed.hostname, port, what=name)
        except SourceError:
            raise
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        host = f"[{address}]" if ":" in address else address
        userinfo = parsed.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"{host}:{port}"
        yield from file_frames(urlunparse(parsed._replace(netloc=netloc)), max_side,
                               options={"rtsp_transport": "tcp"}, shown_name=name)
        return
    raise SourceError(f"{name}: only http(s) and rtsp streams are opened; others need --allow-private")


def _http_stream_frames(url: str, name: str, max_side: int | None) -> Iterator[np.ndarray]:
    import io
    import urllib.error
    import urllib.request

    from . import netguard
    from .sources import SourceError, redact_text

    with netguard.guarded() as guard:
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "vemoclap"}),
                                              timeout=30)
        except (urllib.error.URLError, OSError) as exc:
            if guard.refused:
                raise SourceError(f"{name}: the stream leads to a private or local address ({guard.refused[0]}); "
                                  f"such links are refused unless --allow-private") from None
            raise SourceError(f"{name}: the stream could not be opened ({redact_text(str(exc))})") from None
        with response:
            reader = io.BufferedReader(response, buffer_size=1 << 16)
            kind = (response.headers.get("Content-Type") or "").lower()
            if "mpegurl" in kind or reader.peek(7)[:7] == b"#EXTM3U":
                raise SourceError(f"{name}: an HLS playlist; its segments would be fetched by FFmpeg unchecked, "
                                  f"so it is not opened (use --allow-private only if you trust every address)")
            yield from file_frames(reader, max_side, shown_name=name)
