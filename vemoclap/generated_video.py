"""The generated sample video ("sample"), made by the project itself (no third-party media in the repository).

It pans over scikit-image's astronaut photo (a real face, public domain, shipped inside
scikit-image), shows a line of on-screen text and carries a speech-like soundtrack, so every
modality has something to find. It is written once into a cache folder and reused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ._util import cache_root
from .synth import make_video, speech_like

log = logging.getLogger(__name__)

SAMPLE_TEXT = "WHAT A WONDERFUL DAY"
SAMPLE_SECONDS = 8.0


def _base_image(width: int, height: int) -> np.ndarray:
    try:
        from skimage import data

        photo = data.astronaut()  # 512×512 RGB
    except ImportError:  # a plain gradient keeps the sample usable without scikit-image
        y, x = np.mgrid[0:512, 0:512]
        photo = np.stack([x // 2, y // 2, (x + y) // 4], axis=-1).astype(np.uint8)
    canvas = np.full((height, width, 3), 24, np.uint8)
    scale = height / photo.shape[0]
    import cv2

    resized = cv2.resize(photo, (int(photo.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
    offset = (width - resized.shape[1]) // 2
    canvas[:, offset : offset + resized.shape[1]] = resized
    return canvas


def make_sample(
    path: str | os.PathLike,
    *,
    seconds: float = SAMPLE_SECONDS,
    size=(640, 360),
    fps: float = 25,
    text: str = SAMPLE_TEXT,
) -> Path:
    """Write the sample video to ``path``."""
    import cv2

    width, height = size
    base = _base_image(width, height)

    def frame(index: int) -> np.ndarray:
        t = index / fps
        zoom = 1.0 + 0.15 * t / seconds  # a slow push-in so frames differ
        crop_w, crop_h = int(width / zoom), int(height / zoom)
        x0, y0 = (width - crop_w) // 2, (height - crop_h) // 3
        image = cv2.resize(base[y0 : y0 + crop_h, x0 : x0 + crop_w], (width, height), interpolation=cv2.INTER_LINEAR)
        if t >= 1.0:  # the text appears after a second, like a title card
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.1, 2)
            x, y = (width - tw) // 2, height - 30
            cv2.rectangle(image, (x - 10, y - th - 12), (x + tw + 10, y + 12), (255, 255, 255), -1)
            cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, 1.1, (0, 0, 0), 2, cv2.LINE_AA)
        return image

    audio = speech_like(seconds, 16000, seed=1)
    return make_video(path, duration=seconds, fps=fps, size=size, audio=audio, frame_fn=frame, gop=50, crf=26)


def sample_video(refresh: bool = False) -> Path:
    """The path of the bundled sample, generating it on first use."""
    path = cache_root() / "sample.mp4"
    if refresh or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".sample.{os.getpid()}.mp4")
        make_sample(tmp)
        os.replace(tmp, path)  # atomic: a half-written sample is never picked up
        log.info("wrote the sample video to %s", path)
    return path
