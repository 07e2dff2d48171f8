"""Benchmark vemoclap.media (16 frames + 16 kHz audio) against decoding the whole stream.

    python benchmarks/media.py [--video PATH ...] [--runs 3] [--cache DIR] [--skip-long] [--quick]

Generated test files (cached in ``--cache``, default ``$TMPDIR/vemoclap-bench-media``):

* ``web60``: 60 s, 1920×1080, 30 fps H.264 (x264 veryfast, CRF 23, High profile with B-frames), a
  keyframe every 2 s like web video, 44.1 kHz stereo AAC; the picture pans over real photographs
  (scikit-image's samples) so the codec has real work (about 19 MB).
* ``gop250``: the same with x264's default keyframe interval of 250 frames (8.3 s).
* ``long2h``: 2 hours, 64×48 at 5 fps with a keyframe every 2 s and 16 kHz mono AAC, for time and
  peak memory (measured in a fresh subprocess with ``resource.getrusage``).

The reference is what the notes measured first: decode the whole video stream with frame threading
and keep one frame per second as 360p RGB, then the audio. Both sides load the audio the same way
(``load_audio``), so the frame part is the difference. Every figure is the median of ``--runs``
runs, runs of the different methods interleaved so that background load hits them alike; CPU
seconds (user + system of this process) are shown beside wall seconds because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vemoclap import media  # noqa: E402
from vemoclap.testing import peak_rss_mb  # noqa: E402

log = logging.getLogger("bench.media")


# ------------------------------------------------------------------------------ test files


def _photo_canvas(width: int, height: int) -> np.ndarray:
    """A mosaic of real photographs, 1.6× the frame, to pan across."""
    import cv2
    import skimage.data as data

    tiles = [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        data.hubble_deep_field(),
        data.retina(),
        data.immunohistochemistry(),
        data.cat(),
    ]
    canvas_w, canvas_h = int(width * 1.6), int(height * 1.6)
    canvas = np.zeros((canvas_h, canvas_w, 3), np.uint8)
    tile_w, tile_h = canvas_w // 4, canvas_h // 2
    for i, tile in enumerate(tiles):
        row, col = divmod(i, 4)
        canvas[row * tile_h : (row + 1) * tile_h, col * tile_w : (col + 1) * tile_w] = cv2.resize(
            tile, (tile_w, tile_h), interpolation=cv2.INTER_CUBIC
        )
    return canvas


def make_web_video(
    path: Path, *, duration: float = 60.0, fps: int = 30, size=(1920, 1080), gop: int = 60, crf: int = 23
) -> Path:
    import av

    from vemoclap.synth import _index_pattern

    width, height = size
    canvas = _photo_canvas(width, height)
    rate = Fraction(fps)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        sr = 44100
        for second in range(int(duration)):
            for k in range(fps):
                index = second * fps + k
                t = index / fps
                x = int((canvas.shape[1] - width) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 17)))
                y = int((canvas.shape[0] - height) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 11)))
                image = np.ascontiguousarray(canvas[y : y + height, x : x + width])
                _index_pattern(image, index)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = index, 1 / rate
                for packet in video.encode(frame):
                    container.mux(packet)
            tt = second + np.arange(sr) / sr
            stereo = np.stack(
                [
                    0.2 * np.sin(2 * np.pi * 330 * tt) * (0.5 + 0.5 * np.sin(np.pi * tt)),
                    0.2 * np.sin(2 * np.pi * 220 * tt),
                ]
            ).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = sr, second * sr, Fraction(1, sr)
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    tmp.replace(path)
    return path


def make_long_video(path: Path, *, hours: float = 2.0, fps: int = 5, size=(64, 48), gop_seconds: int = 2) -> Path:
    """Hours of tiny video with 16 kHz mono AAC, written second by second (interleaved like real files)."""
    import av

    from vemoclap.synth import default_frame

    width, height = size
    rate = Fraction(fps)
    sr = 16000
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        gop = gop_seconds * fps
        video.options = {"crf": "28", "preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        audio = container.add_stream("aac", rate=sr)
        audio.layout = "mono"
        audio.options = {"aac_coder": "fast"}  # 2 h of audio is most of the writing time
        for second in range(int(hours * 3600)):
            for k in range(fps):
                index = second * fps + k
                frame = av.VideoFrame.from_ndarray(default_frame(index % 65536, width, height, fps), format="rgb24")
                frame.pts, frame.time_base = index, 1 / rate
                for packet in video.encode(frame):
                    container.mux(packet)
            tt = second + np.arange(sr) / sr
            samples = (
                0.2 * np.sin(2 * np.pi * (200 + 20 * (second % 10)) * tt) + 0.01 * rng.standard_normal(sr)
            ).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, second * sr, Fraction(1, sr)
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    tmp.replace(path)
    return path


def cached(cache: Path, name: str, make) -> Path:
    path = cache / name
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        log.info("writing %s (once; cached in %s)", name, cache)
        start = time.perf_counter()
        make(path)
        log.info("  %.0f s", time.perf_counter() - start)
    return path


# ----------------------------------------------------------------------------- approaches


def reference_frames(path) -> int:
    """Decode the whole video stream (frame threading), keep one frame per second as 360p RGB."""
    import av

    kept = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = media._output_size(stream.codec_context.width, stream.codec_context.height, 360)
        next_time = None
        for frame in container.decode(stream):
            if next_time is None:
                next_time = frame.time
            if frame.time >= next_time:
                kept.append(frame.reformat(width=size[0], height=size[1]).to_ndarray(format="rgb24"))
                next_time += 1.0
    return len(kept)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compare(path: Path, runs: int, threading_table: bool) -> list[dict]:
    def ours(tolerance=None, threading=None, audio=True):
        def run():
            media._THREADING = threading
            try:
                frames = media.sample_frames(path, 16, tolerance=tolerance)
            finally:
                media._THREADING = None
            if audio:
                media.load_audio(path)
            return frames.stats

        return run

    def reference(audio=True):
        def run():
            reference_frames(path)
            if audio:
                media.load_audio(path)

        return run

    methods = {
        "reference: whole stream, 1 frame/s + audio": reference(),
        "vemoclap: 16 frames + audio": ours(),
        "vemoclap exact (tolerance=0) + audio": ours(tolerance=0),
        "reference frames only": reference(audio=False),
        "vemoclap frames only": ours(audio=False),
        "audio only (load_audio)": lambda: media.load_audio(path),
    }
    if threading_table:
        for threading in ("NONE", "SLICE", "AUTO"):
            methods[f"vemoclap frames, forced {threading}"] = ours(threading=threading, audio=False)
            methods[f"vemoclap exact frames, forced {threading}"] = ours(tolerance=0, threading=threading, audio=False)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    stats: dict[str, object] = {}
    for _ in range(runs):
        for name, run in methods.items():  # interleaved: background load hits every method alike
            wall, cpu = time.perf_counter(), _cpu()
            result = run()
            samples[name].append((time.perf_counter() - wall, _cpu() - cpu))
            stats[name] = result
    rows = []
    for name, values in samples.items():
        rows.append(
            {
                "method": name,
                "wall": statistics.median(v[0] for v in values),
                "cpu": statistics.median(v[1] for v in values),
                "stats": stats[name],
            }
        )
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    """Ratios: rows with audio against the reference with audio, frame-only rows against the
    reference's frames only."""
    by_name = {row["method"]: row for row in rows}
    with_audio = by_name["reference: whole stream, 1 frame/s + audio"]
    frames_only = by_name["reference frames only"]
    print(f"\n{title}")
    print(f"{'method':44s} {'wall s':>7s} {'cpu s':>7s} {'× wall':>7s} {'× cpu':>7s}  decoded frames / seeks / threads")
    for row in rows:
        name = row["method"]
        base = None
        if not name.startswith("reference") and name != "audio only (load_audio)":
            base = with_audio if "audio" in name else frames_only
        stats = row["stats"]
        detail = f"{stats.frames} / {stats.seeks} / {stats.threading}" if isinstance(stats, media.DecodeStats) else ""
        ratio_wall = f"{base['wall'] / row['wall']:.1f}" if base else ""
        ratio_cpu = f"{base['cpu'] / row['cpu']:.1f}" if base else ""
        print(f"{name:44s} {row['wall']:7.2f} {row['cpu']:7.2f} {ratio_wall:>7s} {ratio_cpu:>7s}  {detail}")


# ------------------------------------------------------------------------- long file, RSS


def child(mode: str, path: str) -> None:
    """Runs in a fresh interpreter: one job, then peak RSS as JSON on stdout."""
    result: dict[str, object] = {"mode": mode}
    start = time.perf_counter()
    if mode == "ours":
        info = media.probe(path)
        t = time.perf_counter()
        frames = media.sample_frames(path, 16)
        result["frames_s"] = time.perf_counter() - t
        t = time.perf_counter()
        audio = media.load_audio(path)
        result["audio_s"] = time.perf_counter() - t
        result.update(
            duration=info.duration, audio_samples=len(audio), decoded=frames.stats.frames, seeks=frames.stats.seeks
        )
    elif mode == "reference":
        result["kept"] = reference_frames(path)
        audio = media.load_audio(path)
        result["audio_samples"] = len(audio)
    result["total_s"] = time.perf_counter() - start
    result["peak_rss_mb"] = peak_rss_mb()
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def long_file(path: Path, with_reference: bool) -> None:
    base = run_child("imports", path)
    ours = run_child("ours", path)
    print(f"\n2-hour file {path.name} ({ours['duration'] / 3600:.2f} h, 64×48 5 fps, 16 kHz mono AAC)")
    print(f"{'run (fresh subprocess)':44s} {'total s':>8s} {'peak RSS MB':>12s} {'ru_maxrss MB':>13s}")

    def row(name, result, extra=""):
        print(
            f"{name:44s} {result['total_s']:8.2f} {result['peak_rss_mb']:12.0f} {result['ru_maxrss_mb']:13.0f}{extra}"
        )

    row("imports only (python, numpy, av, vemoclap)", base)
    row(
        "vemoclap: probe + 16 frames + audio",
        ours,
        f"   frames {ours['frames_s']:.2f} s ({ours['decoded']} decoded, {ours['seeks']} seeks);"
        f" audio {ours['audio_s']:.2f} s ({ours['audio_samples'] / 16000 / 3600:.2f} h, "
        f"{ours['audio_samples'] * 4 / 2**20:.0f} MB float32)",
    )
    if with_reference:
        row("reference: whole stream 1 frame/s + audio", run_child("reference", path))


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", action="append", default=[], help="also (or, with --only, only) this file")
    parser.add_argument("--only", action="store_true", help="benchmark only the --video files")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vemoclap-bench-media")
    parser.add_argument("--skip-long", action="store_true", help="skip the 2-hour file")
    parser.add_argument("--quick", action="store_true", help="no threading table, no reference on the 2-hour file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("vemoclap.media").setLevel(logging.ERROR)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
        f"PyAV {__import__('av').__version__}; {args.runs} runs, median"
    )

    if not args.skip_long and not args.only:  # first, while this process is still small
        long_path = cached(args.cache, "long2h_64x48.mp4", make_long_video)
        long_file(long_path, with_reference=not args.quick)
    files = [Path(v) for v in args.video]
    if not args.only:
        files = [
            cached(args.cache, "web60_1080p_gop60.mp4", make_web_video),
            cached(args.cache, "web60_1080p_gop250.mp4", lambda p: make_web_video(p, gop=250)),
        ] + files
    for path in files:
        info = media.probe(path)
        title = (
            f"{path.name}: {info.duration:.1f} s {info.width}×{info.height} {info.fps:.2f} fps "
            f"{info.video_codec}/{info.audio_codec}, {path.stat().st_size / 1e6:.1f} MB"
        )
        print_table(title, compare(path, args.runs, threading_table=not args.quick))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
