"""The two Whisper backends: the same weights give the same tokens; the chunked algorithm; the choice
of backend; voice-activity detection.

One tiny openai-whisper checkpoint is converted (vemoclap.tiny.whisper_ct2: transformers, then
CTranslate2) so openai-whisper and faster-whisper run the same weights. Its token embeddings are
scaled down so that decoding depends on the audio instead of repeating the prompt's last token
(what random full-scale embeddings do).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faster_whisper")

from vemoclap import recipes  # noqa: E402
from vemoclap.errors import OptionError  # noqa: E402
from vemoclap.extractors import Clip, get, vad  # noqa: E402
from vemoclap.extractors import whisper_backends as wb  # noqa: E402
from vemoclap.media import SAMPLE_RATE, Frames  # noqa: E402
from vemoclap.synth import speech_like, tone  # noqa: E402

SR = SAMPLE_RATE


def _checkpoint(path: Path, seed: int = 0) -> Path:
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=2,
        n_vocab=51865,
        n_text_ctx=128,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=2,
    )
    torch.manual_seed(seed)
    model = Whisper(dims)
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
        model.decoder.token_embedding.weight.mul_(0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """A models dir with the tiny text models, whisper/small.pt and its conversion whisper-ct2/small/."""
    from vemoclap.tiny import text, whisper_ct2

    directory = tmp_path_factory.mktemp("whisper-backends")
    text.build(directory)
    for stale in (directory / "whisper").glob("*.pt"):
        stale.unlink()
    _checkpoint(directory / "whisper" / "small.pt")
    written = whisper_ct2.build(directory)
    assert written == {"whisper_ct2:small": directory / "whisper-ct2" / "small"}
    return directory


@pytest.fixture(scope="module")
def loaded(models_dir):
    return (
        wb.load_openai(str(models_dir / "whisper" / "small.pt"), "cpu", None),
        wb.load_faster(str(models_dir / "whisper-ct2" / "small"), "cpu", "float32"),
    )


def _audio() -> np.ndarray:
    """55 s: two kinds of voiced syllables around a tone, so the three windows differ."""
    return np.concatenate([speech_like(22.0, seed=1), tone(11.0, freq=300.0), speech_like(22.0, seed=2)])


def _clip(audio: np.ndarray) -> Clip:
    images = np.zeros((2, 32, 32, 3), np.uint8)
    return Clip(frames=Frames(images, np.array([0.0, 1.0])), audio=audio.astype(np.float32))


# ---- the same weights, the same tokens ----------------------------------------------------------


def test_conversion_keeps_the_tokenizer_and_model(models_dir, loaded):
    from whisper.tokenizer import get_tokenizer

    openai, faster = loaded
    ours = get_tokenizer(True, num_languages=openai.num_languages)
    theirs = faster.hf_tokenizer
    for token in (
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|de|>",
        "<|translate|>",
        "<|notimestamps|>",
        "<|0.00|>",
        "<|30.00|>",
    ):
        assert theirs.token_to_id(token) == ours.special_tokens[token], token
    phrase = " Hello world, this is whisper. Привет 你好"
    assert theirs.encode(phrase, add_special_tokens=False).ids == ours.encode(phrase)
    assert faster.model.is_multilingual and faster.vemoclap_text_ctx == openai.dims.n_text_ctx == 128


def test_chunked_same_tokens_in_both_backends(loaded):
    openai, faster = loaded
    decoding = wb.Decoding(long_form="chunked", max_new_tokens=24, batch_size=2)
    audio = _audio()
    a = wb.openai_transcribe(openai, audio, decoding)
    b = wb.faster_transcribe(faster, audio, decoding)
    assert len(a.window_tokens) == len(wb.windows(len(audio))) == 3
    assert a.window_languages == b.window_languages
    assert a.window_tokens == b.window_tokens
    assert len({tuple(t) for t in a.window_tokens}) > 1, "the windows should decode differently"
    # CTranslate2 stops at max_length // 2 new tokens; asked for twice the limit, it still writes the whole limit
    # where openai-whisper does (random weights rarely stop early).
    assert [len(t) for t in b.window_tokens] == [len(t) for t in a.window_tokens]
    assert max(len(t) for t in b.window_tokens) == 24
    assert a.tokens == b.tokens and a.tokens
    assert a.text == b.text and a.text.strip()


def test_sequential_same_tokens_in_both_backends(loaded):
    openai, faster = loaded
    decoding = wb.Decoding(long_form="sequential", temperatures=(0.0,))
    audio = _audio()
    a = wb.openai_transcribe(openai, audio, decoding)
    b = wb.faster_transcribe(faster, audio, decoding)
    assert a.language == b.language
    assert a.tokens == b.tokens and a.tokens
    assert [(round(s[0], 2), round(s[1], 2)) for s in a.segments] == [
        (round(s[0], 2), round(s[1], 2)) for s in b.segments
    ]
    assert a.text == b.text


def test_extractor_features_agree_across_backends(models_dir):
    options = dict(models_dir=models_dir, device="cpu", temperature=0.0, compute_type="float32")
    fast = get("asr_sentiment", backend="faster-whisper", **options)
    slow = get("asr_sentiment", backend="openai-whisper", **options)
    clip = _clip(speech_like(12.0, seed=4))
    a, b = fast(clip), slow(clip)
    assert a.missing is None and b.missing is None, (a.missing, b.missing)
    assert (a.backend, b.backend) == ("faster-whisper", "openai-whisper")
    assert a.text == b.text and a.language == b.language
    np.testing.assert_allclose(a.feature, b.feature, rtol=1e-5, atol=1e-5)


# ---- the chunked algorithm ------------------------------------------------------------------------


def test_window_layout():
    # 30-s windows every 20 s; inner edges overlap by 5 s on each side; the last one ends the audio
    layout = [(w.start / SR, w.end / SR, w.stride_left / SR, w.stride_right / SR) for w in wb.windows(65 * SR)]
    assert layout == [(0, 30, 0, 5), (20, 50, 5, 5), (40, 65, 5, 0)]
    assert [(w.start, w.end) for w in wb.windows(25 * SR)] == [(0, 25 * SR)]
    assert len(wb.windows(50 * SR)) == 2 and wb.windows(50 * SR)[-1].end == 50 * SR
    with pytest.raises(OptionError, match="chunk_s"):
        wb.windows(SR, chunk_s=10, stride_s=5)


def test_merge_overlapping_windows():
    assert wb.merge_overlapping([[1, 2, 3, 4], [3, 4, 6]]) == [1, 2, 3, 4, 6]
    assert wb.merge_overlapping([[1, 2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8]]) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert wb.merge_overlapping([[1, 2], [3, 4]]) == [1, 2, 3, 4]  # no overlap: joined
    groups = wb.join_windows([[11, 12, 13, wb.EOT + 5], [12, 13, 14], [21, 22]], ["de", "de", "fr"])
    assert groups == [("de", [11, 12, 13, 14]), ("fr", [21, 22])]


def test_merge_matches_transformers_pipeline():
    """The reference ran transformers' ASR pipeline; its merge of window tokens is the one to match."""
    tokenization = pytest.importorskip("transformers.models.whisper.tokenization_whisper")
    reference = getattr(tokenization, "_find_longest_common_sequence", None)
    if reference is None:
        pytest.skip("transformers no longer has _find_longest_common_sequence")
    rng = np.random.default_rng(0)
    for _ in range(200):
        base = rng.integers(0, 12, size=60).tolist()
        sequences, start = [], 0
        while start < 50:
            end = start + int(rng.integers(8, 20))
            piece = base[start:end]
            if rng.random() < 0.3 and piece:
                piece[int(rng.integers(len(piece)))] = int(rng.integers(0, 12))  # a disagreement
            sequences.append(piece)
            start = end - int(rng.integers(0, 6))
        assert wb.merge_overlapping(sequences) == reference([list(s) for s in sequences])


# ---- which backend runs ---------------------------------------------------------------------------


def test_auto_picks_faster_whisper_and_openai_when_asked(models_dir):
    assert wb.choose("auto", "chunked") == wb.choose("auto", "sequential") == "faster-whisper"
    assert wb.choose("openai-whisper", "chunked") == "openai-whisper"
    with pytest.raises(OptionError, match="long_form"):
        wb.choose("auto", "streaming")
    with pytest.raises(OptionError, match="backend"):
        wb.choose("whisper.cpp", "sequential")
    for name in ("reference", "vemoclap"):
        plan = recipes.plan(recipes.get_recipe(name), ["asr_sentiment"], device="cpu")
        options = plan.extractor_options["asr_sentiment"]
        assert not [
            d
            for d in plan.recipe.deviations
            if d.setting.startswith("asr_sentiment.") and d.reason.startswith("this version")
        ], "every ASR recipe option is taken"
        extractor = get("asr_sentiment", models_dir=models_dir, device="cpu", **options)
        assert extractor.backend == "faster-whisper" and extractor.long_form == options["long_form"]
    asked = get("asr_sentiment", models_dir=models_dir, device="cpu", backend="openai-whisper").load()
    assert asked.backend == "openai-whisper" and hasattr(asked.whisper, "dims")
    auto = get("asr_sentiment", models_dir=models_dir, device="cpu").load()
    assert auto.backend == "faster-whisper" and auto.compute_type == "int8"
    checkpoint = get("asr_sentiment", whisper_model=str(models_dir / "whisper" / "small.pt"), device="cpu")
    assert checkpoint.backend == "openai-whisper"  # a .pt file is openai-whisper's
    with pytest.raises(OptionError, match="compute_type"):
        get("asr_sentiment", device="cpu", compute_type="int4")
    with pytest.raises(OptionError, match="long_form"):
        get("asr_sentiment", device="cpu", long_form="streaming")
    with pytest.raises(OptionError, match="openai-whisper model"):
        get("asr_sentiment", whisper_model=str(models_dir / "whisper" / "small.pt"), backend="faster-whisper")


def test_auto_falls_back_to_openai_when_only_its_checkpoint_is_here(models_dir, tmp_path):
    import shutil

    (tmp_path / "whisper").mkdir()
    shutil.copy(models_dir / "whisper" / "small.pt", tmp_path / "whisper" / "small.pt")
    for hub in ("cardiffnlp",):
        shutil.copytree(models_dir / hub, tmp_path / hub)
    extractor = get("asr_sentiment", models_dir=tmp_path, device="cpu").load()
    assert extractor.backend == "openai-whisper"
    from vemoclap import models

    with pytest.raises(models.ModelUnavailable, match="whisper_ct2.*whisper-ct2/small"):
        get("asr_sentiment", models_dir=tmp_path, device="cpu", backend="faster-whisper").load()


# ---- voice-activity detection -----------------------------------------------------------------------


def test_vad_finds_speech_and_maps_times_back():
    silence = np.zeros(5 * SR, np.float32)
    assert vad.speech_spans(np.concatenate([silence, tone(5.0), silence])) == []
    audio = np.concatenate([silence, speech_like(8.0, seed=5), silence])
    spans = vad.speech_spans(audio)
    assert spans and 4.0 * SR <= spans[0][0] and spans[-1][1] <= 14.0 * SR  # the speech, padded by ≤ 0.4 s
    joined, time_map = vad.keep_speech(audio, spans)
    assert len(joined) == sum(end - start for start, end in spans) < len(audio)
    assert time_map.original(0.0) == pytest.approx(spans[0][0] / SR)
    assert time_map.original(len(joined) / SR - 0.5) == pytest.approx(spans[-1][1] / SR - 0.5, abs=1e-3)


def test_vad_in_the_extractor(models_dir):
    extractor = get("asr_sentiment", models_dir=models_dir, device="cpu", temperature=0.0, vad=True)
    silence = np.zeros(5 * SR, np.float32)
    quiet = extractor(_clip(np.concatenate([silence, tone(5.0), silence])))
    assert quiet.feature is None and "voice-activity detection found none" in quiet.missing
    spoken = extractor(_clip(np.concatenate([silence, speech_like(8.0, seed=5), silence])))
    assert spoken.missing is None, spoken.missing
    assert spoken.text and 8.0 <= spoken.speech_seconds < 10.0
    assert spoken.segments, spoken
    assert all(4.0 <= s.start <= s.end <= 14.0 for s in spoken.segments), spoken.segments
