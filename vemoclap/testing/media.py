"""Media files that only tests and benchmarks need: odd containers, noise, audio only, text.

Real videos come from :mod:`vemoclap.synth` (which the generated sample uses too).
"""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..synth import INDEX_BITS, index_cells, make_video


def read_frame_index(image: np.ndarray) -> int:
    """The frame index drawn by :func:`vemoclap.synth.make_video`, from a decoded (possibly resized) frame."""
    cell, cell_h = index_cells(*image.shape[:2])
    index = 0
    for bit in range(INDEX_BITS):
        x0 = (bit + 1) * cell
        patch = image[cell_h // 4 : 3 * cell_h // 4, x0 + cell // 4 : x0 + 3 * cell // 4]
        if patch.mean() > 127:
            index |= 1 << bit
    return index


def make_noise_video(path, *, duration: float = 4.0, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    """A real video that is large for its length (lossless noise frames: x264 cannot shrink noise),
    for upload-size checks: 4 s at 640×480 is over 50 MB."""
    rng = np.random.default_rng(seed)
    width, height = size
    return make_video(
        path,
        duration=duration,
        fps=25,
        size=size,
        crf=0,
        audio="tone",
        frame_fn=lambda i: rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
    )


def write_text_file(path, text: str = "this is not a video\n") -> Path:
    path = Path(path)
    path.write_text(text)
    return path


def write_audio(path, samples: np.ndarray, rate: int = 16000, codec: str = "aac") -> Path:
    """Write an audio-only file from float32 samples: 1-D (mono) or channels × samples (stereo, 5.1)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.asarray(samples, np.float32)
    planes = samples[None, :] if samples.ndim == 1 else samples
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[planes.shape[0]]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        block = 4096
        for start in range(0, planes.shape[1], block):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planes[:, start : start + block]), format="fltp", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux(src, dst, *, rotation: int | None = None, faststart: bool = False, format: str | None = None) -> Path:
    """Copy a file's packets into a new container without re-encoding: optionally with a display
    rotation (degrees counter-clockwise, as phones record it), the index at the front
    (``faststart``) or another container ``format`` (e.g. "mpegts", which starts at 1.4 s)."""
    import av

    dst = Path(dst)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(src)) as source, av.open(str(dst), "w", format=format, options=options) as target:
        streams = {}
        for stream in source.streams:
            streams[stream.index] = target.add_stream_from_template(stream)
            if rotation is not None and stream.type == "video":
                streams[stream.index].set_display_rotation(rotation)
        for packet in source.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            target.mux(packet)
    return dst


def make_empty_container(path) -> Path:
    """An MP4 whose header was written but that holds no stream with any data."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


# Two different faces for the tracking tests: the astronaut (skimage.data.astronaut, colour) and a
# person of scikit-image's LFW subset (grey), both found by the offline LBP detector at this size.
FACE_SIDE = 110  # pixels: each face's square patch


@functools.lru_cache(maxsize=1)
def two_faces() -> tuple[np.ndarray, np.ndarray]:
    """The two face patches (FACE_SIDE × FACE_SIDE RGB): the astronaut, then an LFW face."""
    import cv2
    from skimage import data

    astronaut = cv2.resize(data.astronaut()[20:220, 125:325], (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    grey = cv2.resize((data.lfw_subset()[0] * 255).astype(np.uint8), (FACE_SIDE, FACE_SIDE), cv2.INTER_CUBIC)
    return astronaut, np.repeat(grey[:, :, None], 3, axis=2)


def faces_frame(
    positions: tuple[tuple[int, int], tuple[int, int]], size: tuple[int, int] = (480, 270), background: int = 90
) -> np.ndarray:
    """A frame (``size`` is width, height) with the astronaut's patch at ``positions[0]`` and the
    LFW face's at ``positions[1]`` (top-left corners, x, y); the LFW face is drawn over the astronaut."""
    width, height = size
    image = np.full((height, width, 3), background, np.uint8)
    for (x, y), patch in zip(positions, two_faces()):
        image[y : y + FACE_SIDE, x : x + FACE_SIDE] = patch
    return image
