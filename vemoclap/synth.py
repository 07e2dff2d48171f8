"""Generate small real video files with PyAV, for the generated sample and for tests.

Each frame carries its own index as a row of black/white squares (read back with
:func:`vemoclap.testing.media.read_frame_index`), so a test can tell exactly which frame a decoder
returned. Files that only tests need (noise, audio only, remuxed, empty) are made in
:mod:`vemoclap.testing.media`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

INDEX_BITS = 16


def index_cells(height: int, width: int) -> tuple[int, int]:
    """(width, height) in pixels of each square of the frame-index pattern."""
    cell = max(2, width // (INDEX_BITS + 2))
    return cell, max(2, min(cell, height // 4))


def _index_pattern(image: np.ndarray, index: int) -> None:
    cell, cell_h = index_cells(*image.shape[:2])
    for bit in range(INDEX_BITS):
        value = 255 if (index >> bit) & 1 else 0
        x0 = (bit + 1) * cell
        image[0:cell_h, x0 : x0 + cell] = value


def default_frame(index: int, width: int, height: int, fps: float) -> np.ndarray:
    """A moving colour gradient (so codecs have real work) with the index pattern on top."""
    y, x = np.mgrid[0:height, 0:width]
    t = index / fps
    image = np.stack(
        [
            (x * 255 / max(1, width - 1) + 40 * t) % 256,
            (y * 255 / max(1, height - 1)) % 256,
            np.full_like(x, (index * 7) % 256),
        ],
        axis=-1,
    ).astype(np.uint8)
    image[:, :, 2] = (image[:, :, 2].astype(np.int32) + 0).astype(np.uint8)
    _index_pattern(image, index)
    return image


def speech_like(duration: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced 'syllables': harmonic tones at a wandering pitch, 4 per second, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * sr)) / sr
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    noise = 0.02 * rng.standard_normal(len(t))
    return (0.3 * voice * envelope + noise).astype(np.float32)


def tone(duration: float, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(duration * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_video(
    path,
    *,
    duration: float = 2.0,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    audio: str | np.ndarray | None = "tone",
    audio_rate: int = 16000,
    codec: str = "libx264",
    gop: int | None = None,
    vfr: bool = False,
    frames: int | None = None,
    frame_fn: Callable[[int], np.ndarray] | None = None,
    audio_only: bool = False,
    crf: int = 28,
) -> Path:
    """Write a real video file and return its path.

    ``size`` is (width, height); ``audio`` is "tone", "speech", "silence", None (no audio track)
    or a mono float32 array at ``audio_rate``; ``gop`` sets the keyframe interval in frames;
    ``vfr`` gives frames irregular timestamps; ``frames`` overrides the frame count;
    ``frame_fn(index)`` returns an H×W×3 uint8 RGB frame instead of the default pattern.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    n_frames = frames if frames is not None else max(1, int(round(duration * fps)))
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w") as container:
        video = None
        if not audio_only:
            video = container.add_stream(codec, rate=rate)
            video.width, video.height = width, height
            video.pix_fmt = "yuv420p"
            options = {}
            if codec == "libx264":
                options = {"crf": str(crf), "preset": "ultrafast"}
            if gop:
                video.codec_context.gop_size = gop
                if codec == "libx264":
                    options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
            video.options = options
            video.codec_context.time_base = Fraction(1, 1000) if vfr else 1 / rate
        audio_stream = None
        samples = None
        if audio is not None:
            if isinstance(audio, str):
                total = duration if frames is None else n_frames / fps
                samples = {
                    "tone": tone,
                    "speech": speech_like,
                    "silence": lambda d, sr: np.zeros(int(d * sr), np.float32),
                }[audio](total, audio_rate)
            else:
                samples = np.asarray(audio, np.float32)
            audio_stream = container.add_stream("aac", rate=audio_rate)
            audio_stream.layout = "mono"
        if video is not None:
            rng = np.random.default_rng(0)
            pts = 0
            for index in range(n_frames):
                image = frame_fn(index) if frame_fn else default_frame(index, width, height, fps)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                if vfr:
                    frame.pts = pts
                    frame.time_base = Fraction(1, 1000)
                    pts += int(1000 / fps * rng.uniform(0.5, 1.5)) or 1
                else:
                    frame.pts = index
                    frame.time_base = 1 / rate
                for packet in video.encode(frame):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
        if audio_stream is not None and samples is not None and len(samples):
            block = 1024
            for start in range(0, len(samples), block):
                chunk = samples[start : start + block]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = audio_rate
                frame.pts = start
                frame.time_base = Fraction(1, audio_rate)
                for packet in audio_stream.encode(frame):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path
