"""Whisper side by side: openai-whisper vs faster-whisper (CTranslate2) on the same 60-s audio.

    python benchmarks/asr.py [--size small] [--device cpu|cuda] [--tokens 128] [--runs 1]

The same random full-size weights in both backends (openai-whisper checkpoint → transformers →
CTranslate2, vemoclap.tiny.whisper_ct2), the reference's long-form algorithm (30-s windows every
20 s, greedy, no timestamps). Random weights never write the end token, so every window decodes
exactly ``--tokens`` tokens in both backends: the same work (the table prints the count, and how
many of them equal openai-whisper's before the first difference). Rows:
the encoder alone over the three windows, then the whole transcription; the real-time factor is
seconds of compute per second of audio. A last pair of rows shows VAD (Silero) on audio that is
half speech, half tone: only the speech is decoded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import device_name, median, table  # noqa: E402
from full_size import CACHE, WHISPER_DIMS, convert_whispers, full_size_whisper  # noqa: E402

SECONDS = 60.0
SAMPLE_RATE = 16000


def build_whisper(size: str) -> Path:
    """Random full-size Whisper ``size``: ``<dir>/whisper/<size>.pt`` and ``<dir>/whisper-ct2/<size>/`` (cached)."""
    directory = CACHE / f"asr-{size}"
    full_size_whisper(directory, size)
    convert_whispers(directory, (size,))
    return directory


def _encode_seconds(backend: str, model, audio, device: str) -> float:
    import numpy as np
    import torch
    import whisper

    from vemoclap.extractors import whisper_backends as wb

    pieces = [wb.window_audio(audio, w) for w in wb.windows(len(audio))]
    start = time.perf_counter()
    if backend == "openai-whisper":
        mel = torch.stack([whisper.log_mel_spectrogram(torch.from_numpy(p), padding=0)[:, :3000] for p in pieces])
        with torch.no_grad():
            model.encoder(mel.to(model.device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    else:
        model.encode(np.stack([model.feature_extractor(p, padding=0)[:, :3000] for p in pieces]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=sorted(WHISPER_DIMS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=128, help="tokens decoded per 30-s window")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        help="a folder with whisper/<size>.pt and whisper-ct2/<size>/ (default: random full-size)",
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    from vemoclap.extractors import vad
    from vemoclap.extractors import whisper_backends as wb
    from vemoclap.synth import speech_like, tone

    torch.set_num_threads(args.threads)
    models = args.models or build_whisper(args.size)
    audio = speech_like(SECONDS, seed=0)
    half = np.concatenate([speech_like(SECONDS / 2, seed=0), tone(SECONDS / 2)])
    decoding = wb.Decoding(long_form="chunked", max_new_tokens=args.tokens, batch_size=8)
    cuda = args.device.startswith("cuda")
    configs = [("openai-whisper", "fp16" if cuda else "fp32"), ("faster-whisper", "float32")]
    configs.append(("faster-whisper", "float16" if cuda else "int8"))

    rows, baseline, reference = [], {}, None
    for backend, compute in configs:
        t0 = time.perf_counter()
        if backend == "openai-whisper":
            model = wb.load_openai(str(models / "whisper" / f"{args.size}.pt"), args.device, None)
            run = lambda a: wb.openai_transcribe(model, a, decoding, fp16=compute == "fp16")  # noqa: E731
        else:
            model = wb.load_faster(
                str(models / "whisper-ct2" / args.size), args.device, compute, cpu_threads=args.threads
            )
            run = lambda a: wb.faster_transcribe(model, a, decoding)  # noqa: E731
        load_s = time.perf_counter() - t0
        _encode_seconds(backend, model, audio[:SAMPLE_RATE], args.device)  # warm-up: first-call costs
        encode = median([_encode_seconds(backend, model, audio, args.device) for _ in range(args.runs)])
        totals, transcript = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            transcript = run(audio)
            totals.append(time.perf_counter() - t0)
        total = median(totals)
        tokens = sum(len(t) for t in transcript.window_tokens)
        reference = reference or transcript.window_tokens
        same = sum(_common_prefix(a, b) for a, b in zip(reference, transcript.window_tokens))
        key = "encode", "total"
        baseline = baseline or dict(zip(key, (encode, total)))
        rows.append(
            {
                "backend": backend,
                "compute": compute,
                "load s": f"{load_s:.1f}",
                "windows": len(transcript.window_tokens),
                "tokens": tokens,
                "encoder s": f"{encode:.2f}",
                "× encoder": f"{baseline['encode'] / encode:.2f}",
                "total s": f"{total:.2f}",
                "× total": f"{baseline['total'] / total:.2f}",
                "RTF": f"{total / SECONDS:.3f}",
                "decode s/token": f"{(total - encode) / max(tokens, 1) * 1000:.0f} ms",
                "same tokens": f"{same}/{tokens}",
            }
        )
        if (backend, compute) == configs[-1]:
            t0 = time.perf_counter()
            spans = vad.speech_spans(half)
            speech, _ = vad.keep_speech(half, spans)
            vad_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with_vad = run(speech)
            decode_s = time.perf_counter() - t0
            plain = run(half)
            plain_s = time.perf_counter() - t0 - decode_s
            for label, seconds, result in (
                ("half tone, no VAD", plain_s, plain),
                (f"half tone, VAD ({vad_s:.2f} s, {len(speech) / SAMPLE_RATE:.0f} s kept)", vad_s + decode_s, with_vad),
            ):
                rows.append(
                    {
                        "backend": backend,
                        "compute": f"{compute}: {label}",
                        "windows": len(result.window_tokens),
                        "tokens": sum(len(t) for t in result.window_tokens),
                        "total s": f"{seconds:.2f}",
                        "× total": f"{baseline['total'] / seconds:.2f}",
                        "RTF": f"{seconds / SECONDS:.3f}",
                    }
                )
        model = run = None  # free it before the next backend loads

    load = os.getloadavg()
    print(
        f"Whisper {args.size}, random full-size weights, {SECONDS:.0f} s of audio, {args.tokens} tokens per window, "
        f"device: {device_name(args.device)}, {args.threads} threads; load average {load[0]:.1f} / {load[1]:.1f} "
        f"/ {load[2]:.1f}; runs: {args.runs}"
    )
    print(
        table(
            rows,
            [
                "backend",
                "compute",
                "load s",
                "windows",
                "tokens",
                "encoder s",
                "× encoder",
                "total s",
                "× total",
                "RTF",
                "decode s/token",
                "same tokens",
            ],
        )
    )
    print("same tokens: tokens before the first difference from openai-whisper's, summed over the windows")


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


if __name__ == "__main__":
    main()
