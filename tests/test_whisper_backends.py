"""The two Whisper backends: the same weights give the same tokens; the chunked algorithm, with and
without timestamp tokens (the timestamped merge is transformers' pipeline merge); the choice of
backend; voice-activity detection.

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


@pytest.mark.slow
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


# ---- timestamps (the reference's return_timestamps=True) ------------------------------------------


def _timestamp_begin(model) -> int:
    from whisper.tokenizer import get_tokenizer

    return get_tokenizer(model.is_multilingual, num_languages=model.num_languages).timestamp_begin


def _text(tokens) -> list[int]:
    return [t for t in tokens if t < wb.EOT]


@pytest.mark.slow
def test_timestamp_tokens_are_decoded_and_count_against_the_budget(loaded):
    openai, faster = loaded
    begin = _timestamp_begin(openai)
    audio, budget = _audio(), 16
    plain = wb.Decoding(long_form="chunked", max_new_tokens=budget, batch_size=3)
    stamped = wb.Decoding(long_form="chunked", max_new_tokens=budget, batch_size=3, timestamps=True)
    results = []
    for model, transcribe in ((openai, wb.openai_transcribe), (faster, wb.faster_transcribe)):
        without, with_ = transcribe(model, audio, plain), transcribe(model, audio, stamped)
        assert not [t for window in without.window_tokens for t in window if t >= begin]
        assert [len(window) for window in without.window_tokens] == [budget] * 3  # random weights never stop
        for window in with_.window_tokens:
            assert window[0] >= begin, "whisper's timestamp rules open a window with a timestamp"
            assert len(window) <= budget and len(_text(window)) < budget  # timestamps use up the budget
        assert sum(map(len, map(_text, with_.window_tokens))) < sum(map(len, without.window_tokens))
        # the merge's chunks carry times in the whole audio, in order
        assert with_.segments and with_.text.strip() and with_.tokens
        starts = [segment[0] for segment in with_.segments]
        assert starts == sorted(starts) and all(start <= end for start, end, _, _ in with_.segments)
        results.append(with_)
    a, b = results
    # greedy: no sampling, so a second run gives the same tokens (CTranslate2 samples with a fresh seed)
    assert wb.faster_transcribe(faster, audio, stamped).window_tokens == b.window_tokens
    assert a.window_tokens == b.window_tokens and a.window_languages == b.window_languages
    assert a.text == b.text and a.tokens == b.tokens and a.segments == b.segments


@pytest.mark.slow
def test_extractor_timestamps_option_reaches_both_backends(models_dir):
    options = dict(models_dir=models_dir, device="cpu", compute_type="float32", long_form="chunked")
    clip = _clip(speech_like(12.0, seed=4))
    outputs = {}
    for backend in ("faster-whisper", "openai-whisper"):
        for timestamps in (False, True):
            extractor = get("asr_sentiment", backend=backend, max_new_tokens=16, timestamps=timestamps, **options)
            assert extractor.decoding.timestamps is timestamps
            outputs[backend, timestamps] = output = extractor(clip)
            assert output.missing is None, output.missing
            # the chunked merge times its chunks only when whisper wrote timestamps
            assert bool(output.segments) is timestamps
    for timestamps in (False, True):
        a, b = outputs["faster-whisper", timestamps], outputs["openai-whisper", timestamps]
        assert a.text == b.text and a.segments == b.segments
        np.testing.assert_allclose(a.feature, b.feature, rtol=1e-5, atol=1e-5)
    assert outputs["openai-whisper", True].text != outputs["openai-whisper", False].text


@pytest.fixture(scope="module")
def hf_tokenizer():
    """A transformers WhisperTokenizer with openai-whisper's multilingual vocabulary, laid out as the
    released ones are: the named special tokens special, the timestamp tokens plain added tokens."""
    import whisper
    from transformers import WhisperTokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from whisper.tokenizer import get_encoding

    encoding = get_encoding("multilingual", num_languages=99)
    path = str(Path(whisper.__file__).parent / "assets" / "multilingual.tiktoken")
    vocab, merges = TikTokenConverter(vocab_file=path).extract_vocab_merges_from_model(path)
    specials = sorted(encoding._special_tokens.items(), key=lambda item: item[1])
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": [t for t, _ in specials[1:] if not t[2].isdigit()]})
    tokenizer.add_tokens([t for t, _ in specials if t[2].isdigit()])
    assert all(tokenizer.convert_tokens_to_ids(token) == index for token, index in specials)
    return tokenizer


def _pipeline_strides(n_samples: int) -> list[tuple[float, float, float]]:
    """(chunk length, left stride, right stride) in seconds, as transformers' pipeline makes them
    (its chunk_iter, chunk_length_s=30, stride 30/6 on each side; postprocess turns samples into seconds)."""
    from transformers import WhisperFeatureExtractor
    from transformers.pipelines.automatic_speech_recognition import chunk_iter

    audio = np.zeros(n_samples, np.float32)
    chunks = chunk_iter(audio, WhisperFeatureExtractor(), 30 * SR, 5 * SR, 5 * SR)
    return [tuple(x / SR for x in chunk["stride"]) for chunk in chunks]


def _timestamped_windows(rng, begin: int, seconds: int, words: list[int]) -> tuple[list[list[int]], list[str]]:
    """Window outputs of one timeline of spoken segments: each window holds the segments it overlaps,
    times relative to its start; sometimes a window ends before its closing timestamp, sometimes a
    window hears a word differently, and the language detected per window varies."""
    segments, t = [], 0.0
    while t < seconds:
        length = int(rng.integers(50, 400)) * 0.02
        segments.append((t, t + length, [int(w) for w in rng.choice(words, size=int(rng.integers(1, 6)))]))
        t += length + int(rng.integers(0, 60)) * 0.02
    tokens = []
    for window in wb.windows(seconds * SR):
        s0, s1 = window.start / SR, window.end / SR
        ids: list[int] = []
        for a, b, said in segments:
            if b > s0 and a < s1:
                ids += [begin + round(max(a - s0, 0) / 0.02), *said, begin + round((min(b, s1) - s0) / 0.02)]
        ids = [int(i) for i in ids]
        if ids and rng.random() < 0.3:
            ids = ids[:-1]
        texts = [i for i, token in enumerate(ids) if token < wb.EOT]
        if texts and rng.random() < 0.3:
            ids[texts[int(rng.integers(len(texts)))]] = int(rng.choice(words))
        tokens.append(ids)
    return tokens, [str(x) for x in rng.choice(["en", "de", "fr"], size=len(tokens))]


@pytest.mark.slow
def test_timestamped_merge_is_transformers_pipeline_merge(loaded, hf_tokenizer):
    """Our windows and vocabulary handed to transformers' _decode_asr give what its pipeline gives with
    a real WhisperTokenizer: the same text, the same timed chunks."""
    from whisper.tokenizer import get_tokenizer

    openai, faster = loaded
    ours = get_tokenizer(True, num_languages=openai.num_languages)
    begin = ours.timestamp_begin
    words = [ours.encode(f" {word}")[0] for word in "the a cat dog sat on mat and ran home fast slow".split()]
    rng = np.random.default_rng(0)
    vocabularies = {
        "openai-whisper": wb.PipelineTokenizer(ours.special_tokens, ours.decode),
        "faster-whisper": wb.PipelineTokenizer(faster.hf_tokenizer.get_vocab(with_added_tokens=True), ours.decode),
    }
    for seconds in (25, 55, 65, 95) * 10:
        spans = wb.windows(seconds * SR)
        strides = _pipeline_strides(seconds * SR)
        assert [((w.end - w.start) / SR, w.stride_left / SR, w.stride_right / SR) for w in spans] == strides
        tokens, languages = _timestamped_windows(rng, begin, seconds, words)
        outputs = [
            {"tokens": np.array([[hf_tokenizer.convert_tokens_to_ids(f"<|{language}|>"), *ids]]), "stride": stride}
            for ids, language, stride in zip(tokens, languages, strides)
        ]
        text, optional = hf_tokenizer._decode_asr(
            outputs, return_timestamps=True, return_language=False, time_precision=0.02
        )
        expected = [(c["timestamp"][0], c["timestamp"][1], c["text"]) for c in optional["chunks"]]
        for name, vocabulary in vocabularies.items():
            merged, chunks, kept = wb.merge_with_timestamps(tokens, languages, spans, vocabulary)
            assert (merged, chunks) == (text, expected), (name, seconds)
            assert ours.decode(kept) == merged


def test_timestamped_merge_keeps_one_group_across_a_change_of_language(loaded):
    from whisper.tokenizer import get_tokenizer

    openai, _ = loaded
    ours = get_tokenizer(True, num_languages=openai.num_languages)
    begin = ours.timestamp_begin
    hello, world, again, bye = (
        ours.encode(words) for words in (" hello there", " big world", " see you again", " bye")
    )

    def at(seconds: float) -> int:
        return begin + round(seconds * 50)

    spans = wb.windows(50 * SR)  # 0-30 s and 20-50 s, overlapping by 10 s
    first = [at(0), *hello, at(8), at(8), *world, at(27), at(27), *again]  # cut off in its right stride
    second = [at(7), *again, at(12), at(12), *bye, at(20)]  # 27-32 s and 32-40 s in the audio
    merged, chunks, kept = wb.merge_with_timestamps(
        [first, second], ["en", "de"], spans, wb.PipelineTokenizer(ours.special_tokens, ours.decode)
    )
    assert merged == " hello there big world see you again bye"
    # times in the whole audio; the 27-s timestamps fall in the strides, so no cut there
    assert chunks == [(0.0, 8.0, " hello there"), (8.0, 32.0, " big world see you again"), (32.0, 40.0, " bye")]
    assert ours.decode(kept) == merged
    # the plain merge (timestamps off) starts a new group where the language changes
    assert [language for language, _ in wb.join_windows([first, second], ["en", "de"])] == ["en", "de"]


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


_BROKEN_CT2_RUN = r"""
import json, logging, sys
import numpy as np
from vemoclap.errors import OptionError
from vemoclap.extractors import Clip, get
from vemoclap.media import Frames
from vemoclap.synth import speech_like

records = []
handler = logging.Handler()
handler.emit = lambda record: records.append(record.getMessage())
logging.getLogger("vemoclap").addHandler(handler)
logging.getLogger("vemoclap").setLevel(logging.INFO)
models_dir = sys.argv[1]
extractor = get("asr_sentiment", models_dir=models_dir, device="cpu", temperature=0.0)
chosen = extractor.backend
clip = Clip(frames=Frames(np.zeros((2, 32, 32, 3), np.uint8), np.array([0.0, 1.0])),
            audio=speech_like(12.0, seed=4).astype(np.float32))
out = extractor(clip)
try:
    get("asr_sentiment", models_dir=models_dir, device="cpu", backend="faster-whisper").load()
    explicit = "loaded"
except OptionError as exc:
    explicit = str(exc)
print("RESULT " + json.dumps({"chosen": chosen, "backend": out.backend, "missing": out.missing, "text": out.text,
                              "feature": out.feature.tolist(), "log": records, "explicit": explicit}))
"""


@pytest.mark.slow  # a fresh Python that loads torch, whisper and the tiny models
def test_auto_falls_back_to_openai_when_ctranslate2_cannot_load(models_dir, tmp_path):
    """A real load failure: CTranslate2's package without its shared library beside it (the dynamic
    loader cannot find libctranslate2, as when a wheel's libraries are missing), in a fresh Python."""
    import importlib.util
    import json
    import os
    import subprocess
    import sys

    package = Path(importlib.util.find_spec("ctranslate2").origin).parent
    shadow = tmp_path / "broken" / "ctranslate2"  # every file linked, but no ctranslate2.libs/ beside it
    shadow.mkdir(parents=True)
    for item in package.iterdir():
        (shadow / item.name).symlink_to(item)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(root)])}
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN_CT2_RUN, str(models_dir)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT ") :])
    assert result["chosen"] == "faster-whisper"  # installed, so chosen; it fails only when loaded
    assert result["backend"] == "openai-whisper" and result["missing"] is None, result
    fallback = [line for line in result["log"] if "faster-whisper cannot run here" in line]
    assert len(fallback) == 1 and "\n" not in fallback[0], result["log"]
    assert "libctranslate2" in fallback[0] and "openai-whisper instead" in fallback[0], fallback
    assert "faster-whisper cannot be imported" in result["explicit"] and "openai-whisper" in result["explicit"]
    # the same transcript and feature as openai-whisper asked for by name, in this (working) process
    asked = get("asr_sentiment", models_dir=models_dir, device="cpu", temperature=0.0, backend="openai-whisper")
    clip = _clip(speech_like(12.0, seed=4))
    expected = asked(clip)
    assert result["text"] == expected.text
    np.testing.assert_allclose(np.asarray(result["feature"]), expected.feature, rtol=1e-5, atol=1e-5)


def test_library_failures_are_told_from_other_errors():
    assert wb.library_failure(ImportError("libctranslate2-a7a60d30.so.4.8.5: cannot open shared object file"))
    assert wb.library_failure(RuntimeError("Library libcublas.so.12 is not found or cannot be loaded"))
    assert wb.library_failure(RuntimeError("CUDA failed with error no CUDA-capable device is detected"))
    assert not wb.library_failure(RuntimeError("CUDA failed with error out of memory"))
    assert not wb.library_failure(RuntimeError("Unsupported model binary version"))
    assert not wb.library_failure(ValueError("bad audio"))


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
