"""ASR and OCR sentiment extractors and their text models.

The Hugging Face and whisper models are tiny random models of the real classes (built by
vemoclap.tiny.text) loaded through the real loaders; PP-OCR (rapidocr's bundled models)
and SymSpell's bundled dictionary are used for real.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vemoclap import models
from vemoclap.errors import OptionError
from vemoclap.extractors import Clip, get, text
from vemoclap.extractors.ocr import OcrSentimentExtractor, _mostly_latin, merge_rows
from vemoclap.extractors.text import (
    NLLB_CODES,
    LanguageIdentifier,
    SentimentModel,
    SpellCorrector,
    Translator,
    WordSegmenter,
)
from vemoclap.media import SAMPLE_RATE, Frames
from vemoclap.synth import speech_like
from vemoclap.tiny.text import LANGUAGE_LABELS, SENTIMENT_LABELS

LABELS = set(SENTIMENT_LABELS)
SIZE = (360, 640)  # frame height, width


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from vemoclap.tiny.text import build

    directory = tmp_path_factory.mktemp("tiny-text-models")
    build(directory)
    return directory


def text_frame(phrase: str = "HAPPY BIRTHDAY") -> np.ndarray:
    import cv2

    image = np.full((*SIZE, 3), 255, np.uint8)
    cv2.putText(image, phrase, (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (0, 0, 0), 5, cv2.LINE_AA)
    return image


def make_clip(images: np.ndarray, audio: np.ndarray | None = None, duration: float = 20.0) -> Clip:
    timestamps = np.linspace(0, duration, len(images), endpoint=False) if len(images) else np.zeros(0)
    return Clip(
        frames=Frames(images, timestamps), audio=np.zeros(0, np.float32) if audio is None else audio.astype(np.float32)
    )


def small_frames(n: int = 4) -> np.ndarray:
    return np.zeros((n, 32, 32, 3), np.uint8)


# -- the tiny models' layout -------------------------------------------------------------------
def test_tiny_models_sit_where_the_loaders_look(tiny_dir):
    for key in ("sentiment", "language_id", "translation", "spell"):
        assert models.local_path(key, tiny_dir) == tiny_dir / models.MODELS[key].hub_id
    for name in ("small", "medium"):
        assert models.local_path("whisper", tiny_dir, name=name) == tiny_dir / "whisper" / f"{name}.pt"


def test_nllb_table_covers_every_language_id_label(tiny_dir):
    assert set(NLLB_CODES) == set(LANGUAGE_LABELS)
    translator = text.load(Translator, "cpu", None, tiny_dir)
    unk = translator.tokenizer.unk_token_id
    for code in NLLB_CODES.values():  # every code is one of the tokenizer's language tokens
        assert translator.tokenizer.convert_tokens_to_ids(code) not in (None, unk), code


# -- text models -------------------------------------------------------------------------------
def test_sentiment_feature_is_the_cls_token_with_labels(tiny_dir):
    import torch

    model = text.load(SentimentModel, "cpu", None, tiny_dir)
    result = model("I love this movie so much")
    assert result.feature.shape == (768,) and result.feature.dtype == np.float32
    assert set(result.probabilities) == LABELS
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    assert result.score == result.probabilities[result.label]
    # The feature is the first token of the last hidden state.
    inputs = model.tokenizer("I love this movie so much", return_tensors="pt")
    with torch.inference_mode():
        hidden = model.model(**inputs, output_hidden_states=True).hidden_states[-1][0, 0].numpy()
    np.testing.assert_allclose(result.feature, hidden, rtol=1e-5, atol=1e-5)
    other = model("this is terrible and sad")
    assert not np.allclose(other.feature, result.feature)
    # Text longer than the model's positions is truncated, not an error.
    long = model(" ".join(["happy"] * 3000))
    assert long.feature.shape == (768,) and np.isfinite(long.feature).all()


def test_language_identifier_applies_its_threshold(tiny_dir):
    identifier = text.load(LanguageIdentifier, "cpu", None, tiny_dir)
    lines = ["hello world", "Bonjour le monde", "Привет мир"]
    raw = identifier.identify(lines, threshold=0.0)
    assert all(code in LANGUAGE_LABELS and 0 < score <= 1 for code, score in raw)
    gated = identifier.identify(lines)  # threshold 0.9
    for (code, score), (raw_code, raw_score) in zip(gated, raw):
        assert score == pytest.approx(raw_score)
        assert code == (raw_code if score >= 0.9 else None)


def test_translator_and_spell_corrector_generate_strings(tiny_dir):
    translator = text.load(Translator, "cpu", None, tiny_dir)
    lines = ["Bonjour le monde", "joyeux anniversaire"]
    translated = translator.translate(lines, "fr")
    assert len(translated) == 2 and all(isinstance(line, str) for line in translated)
    assert translator.translate(lines, "en") == lines  # English is not translated
    with pytest.raises(ValueError, match="no NLLB code"):
        translator.translate(lines, "xx")
    speller = text.load(SpellCorrector, "cpu", None, tiny_dir)
    fixed = speller.correct(["helo wrld", "HAPPY BIRTHDAY"])
    assert len(fixed) == 2 and all(line.strip() for line in fixed)


def test_word_segmenter_splits_run_together_words():
    segmenter = text.load(WordSegmenter, "cpu", None, None)
    assert segmenter.segment("thequickbrownfox") == "the quick brown fox"
    assert segmenter.segment("HAPPYBIRTHDAY!") == "HAPPY BIRTHDAY!"
    kept = "Sale: 50% off in 2024, don't wait! Привет 你好"
    assert segmenter.segment(kept) == kept  # words, numbers, punctuation and other scripts stay
    assert segmenter.segment("xqzvkwp") == "xqzvkwp"  # no dictionary split: left alone
    assert text.load(WordSegmenter, "cpu", None, None) is segmenter  # the dictionary loads once


# -- ASR ---------------------------------------------------------------------------------------
def test_asr_on_speech_like_clip(tiny_dir):
    from whisper.tokenizer import LANGUAGES

    extractor = get("asr_sentiment", models_dir=tiny_dir, device="cpu", temperature=0.0)
    assert extractor.whisper_model == "small"  # "auto" on the CPU
    output = extractor(make_clip(small_frames(), speech_like(20.0, seed=3)))
    # Random weights give nonsense words, but every step ran: detection, decoding, segments, sentiment.
    assert output.missing is None, output.missing
    assert output.feature.shape == (1, 768) and output.feature.dtype == np.float32
    assert np.isfinite(output.feature).all()
    assert output.language in LANGUAGES and output.language_name == LANGUAGES[output.language]
    assert output.text and output.segments
    for segment in output.segments:
        assert 0.0 <= segment.start <= segment.end <= 30.0 and segment.text
        assert 0.0 <= segment.no_speech_prob <= 1.0
    assert output.sentiment.label in LABELS
    expected = extractor.sentiment(output.text)  # the feature is the transcript's sentiment CLS
    np.testing.assert_allclose(output.feature[0], expected.feature, rtol=1e-5, atol=1e-5)
    assert output.sentiment.label == expected.label
    readable = output.readable()
    assert readable["text"] == output.text and "feature" not in readable


@pytest.mark.parametrize(
    "audio, reason",
    [
        (np.zeros(0, np.float32), "no audio track"),
        (np.zeros(20 * SAMPLE_RATE, np.float32), "silent"),
        (speech_like(0.5), "only 0.50 s"),
    ],
    ids=["no-audio", "silence", "half-second"],
)
def test_asr_missing_with_reason(tiny_dir, audio, reason):
    extractor = get("asr_sentiment", models_dir=tiny_dir, device="cpu", temperature=0.0)
    output = extractor(make_clip(small_frames(), audio))
    assert output.feature is None and reason in output.missing


@pytest.mark.slow
def test_silent_track_goes_to_whisper_under_reference_v3_only(tiny_dir):
    """The reference sent even an all-zero track to Whisper (no loudness gate): reference v3 does too;
    reference v2 and vemoclap call it silent (no feature, Whisper not run)."""
    from vemoclap import recipes

    clip = make_clip(small_frames(), np.zeros(20 * SAMPLE_RATE, np.float32))
    for recipe, version in (("reference", 3), ("reference", 2), ("vemoclap", None)):
        options = recipes.get_recipe(recipe, version=version).options_for("asr_sentiment", "cpu")
        options.update(whisper_model="small", max_new_tokens=8)  # the tiny model instead of large-v3
        output = get("asr_sentiment", models_dir=tiny_dir, device="cpu", **options)(clip)
        if version == 3:
            # random weights say something on silence (large-v3 is known to, too): a transcript, a feature
            assert output.missing is None and output.text, output.missing
            assert output.feature.shape == (1, 768)
        else:
            assert output.feature is None and "silent" in output.missing, output.missing


def test_asr_no_speech_threshold(tiny_dir):
    # Every segment's no-speech probability is ≥ 0: with that threshold the clip has no speech.
    extractor = get("asr_sentiment", models_dir=tiny_dir, device="cpu", temperature=0.0, no_speech_prob=0.0)
    output = extractor(make_clip(small_frames(), speech_like(5.0)))
    assert output.feature is None and "no speech found" in output.missing


def test_asr_whisper_choices(tiny_dir):
    for name in ("small.en", "turbo"):
        with pytest.raises(ValueError, match="cannot translate"):
            get("asr_sentiment", whisper_model=name, device="cpu")
    get("asr_sentiment", whisper_model="small.en", task="transcribe", device="cpu")  # allowed
    checkpoint = tiny_dir / "whisper" / "medium.pt"
    extractor = get("asr_sentiment", whisper_model=str(checkpoint), models_dir=tiny_dir, device="cpu").load()
    assert extractor.whisper.is_multilingual and extractor.whisper.dims.n_vocab == 51865
    with pytest.raises(models.ModelUnavailable, match="neither a model name"):
        get("asr_sentiment", whisper_model=str(tiny_dir / "nope.pt"), device="cpu").load()


def test_unavailable_models_are_named(tiny_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(models.ModelUnavailable, match="'whisper'.*small.pt"):
        get("asr_sentiment", models_dir=empty, device="cpu").load()
    with pytest.raises(models.ModelUnavailable, match="'language_id'"):
        get("ocr_sentiment", models_dir=empty, device="cpu").load()
    with pytest.raises(models.ModelUnavailable, match="'sentiment'"):
        text.load(SentimentModel, "cpu", None, empty)
    # Without the spelling model: "auto" on the CPU does not need it; asking for it explicitly fails.
    partial = tmp_path / "no-spell"
    shutil.copytree(tiny_dir, partial, ignore=shutil.ignore_patterns("T5-large-spell"))
    assert get("ocr_sentiment", models_dir=partial, device="cpu").load().speller is None
    with pytest.raises(models.ModelUnavailable, match="'spell'"):
        get("ocr_sentiment", models_dir=partial, device="cpu", spell_check=True).load()


def test_sentiment_model_is_shared_by_asr_and_ocr(tiny_dir):
    asr = get("asr_sentiment", models_dir=tiny_dir, device="cpu").load()
    ocr = get("ocr_sentiment", models_dir=tiny_dir, device="cpu").load()
    assert asr.sentiment is ocr.sentiment


# -- OCR ---------------------------------------------------------------------------------------
def test_rapidocr_reads_a_rendered_phrase():
    from vemoclap.extractors.ocr import _RapidOcr

    engine = _RapidOcr(use_cuda=False)
    found = engine(text_frame("HAPPY BIRTHDAY"), min_score=0.5)
    words = " ".join(label for _, label, _ in found).upper().split()
    assert "HAPPY" in words and "BIRTHDAY" in words
    for points, _, score in found:
        assert points.shape == (4, 2) and 0.5 <= score <= 1.0
        assert (points[:, 0] >= 0).all() and (points[:, 0] <= SIZE[1]).all()
        assert 120 <= points[:, 1].mean() <= 230  # around the baseline the text was drawn at (y=200)


def test_ocr_on_the_gpu_only_with_onnxruntimes_cuda_provider(caplog):
    import onnxruntime

    from vemoclap.extractors.ocr import ON_GPU, _RapidOcr, onnx_cuda

    assert onnx_cuda(True, ["CUDAExecutionProvider", "CPUExecutionProvider"])  # onnxruntime-gpu
    assert not onnx_cuda(False, ["CUDAExecutionProvider", "CPUExecutionProvider"])  # a CPU device
    with caplog.at_level("INFO", logger="vemoclap.extractors.ocr"):
        assert not onnx_cuda(True, ["CPUExecutionProvider"])
    assert [r.getMessage() for r in caplog.records if "onnxruntime-gpu" in r.getMessage()] == [
        "OCR runs on the CPU: onnxruntime has no CUDA provider here (onnxruntime-gpu, in place of onnxruntime, "
        "runs it on the GPU)"
    ]
    # asked for the GPU with this machine's onnxruntime: the engine says where it runs, and still reads
    on_gpu = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    engine = _RapidOcr(use_cuda=True)
    assert engine.on_gpu == on_gpu and engine.description.endswith(ON_GPU) == on_gpu
    words = " ".join(label for _, label, _ in engine(text_frame("HAPPY BIRTHDAY"), min_score=0.5)).upper().split()
    assert "HAPPY" in words and "BIRTHDAY" in words


@pytest.mark.slow
def test_paddleocr_detection_reads_a_360p_frame_without_enlarging_it():
    # The reference's PaddleOCR 2.x limited the longer side to 960 px; rapidocr brings the shorter
    # side to 736 px, so a 640×360 frame is detected at 2× (4× the pixels).
    from vemoclap.extractors.ocr import _RapidOcr

    frame = text_frame("HAPPY BIRTHDAY")
    detected_at = {}
    for detection in ("rapidocr", "paddleocr"):
        engine = _RapidOcr(use_cuda=False, detection=detection)
        words = " ".join(label for _, label, _ in engine(frame, min_score=0.5)).upper().split()
        assert "HAPPY" in words and "BIRTHDAY" in words, (detection, words)
        detector = engine.engine.text_det  # what the DB detector is fed, from its own preprocessing
        detected_at[detection] = tuple(detector.preprocess_op(frame[..., ::-1]).shape[-2:])
    assert detected_at["paddleocr"] == (352, 640)  # the frame's size, rounded to multiples of 32
    assert detected_at["rapidocr"] == (736, 1312)
    with pytest.raises(OptionError, match="detection"):
        OcrSentimentExtractor(detection="huge")


@pytest.mark.slow
def test_int8_decoders_quantize_nllb_and_t5_only(tiny_dir):
    plain = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", spell_check=True).load()
    int8 = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", spell_check=True, int8_decoders=True).load()

    def quantized(model) -> int:
        return sum(".quantized." in type(module).__module__ for module in model.modules())

    # The generating models get int8 linear layers; the classifiers (and the fp32 copies) do not.
    assert quantized(int8.translator.model) > 0 and quantized(int8.speller.model) > 0
    assert quantized(plain.translator.model) == quantized(plain.speller.model) == 0
    assert int8.sentiment is plain.sentiment and quantized(int8.language_id.model) == 0
    lines = ["HAPPY BIRTHDAY", "Bonjour le monde"]
    assert all(isinstance(line, str) and line for line in int8.speller.correct(lines))
    assert all(isinstance(line, str) for line in int8.translator.translate(lines, "fr"))
    images = np.stack([text_frame()] * 4)
    output = int8(make_clip(images))
    assert (
        output.feature.shape == (1, 768)
        and "int8" in output.ocr_models
        and "int8" not in plain(make_clip(images)).ocr_models
    )


def test_reference_recipe_runs_int8_decoders_on_a_cpu_as_a_named_deviation():
    from vemoclap import recipes

    reference = recipes.get_recipe("reference")
    assert reference.extractors["ocr_sentiment"]["int8_decoders"] is False  # float32, as the reference ran
    on_cpu = reference.resolve("cpu")
    assert on_cpu.extractors["ocr_sentiment"]["int8_decoders"] is True
    assert any(d.setting == "ocr_sentiment.int8_decoders" for d in on_cpu.deviations)
    on_gpu = reference.resolve("cuda")
    assert on_gpu.extractors["ocr_sentiment"]["int8_decoders"] is False
    assert not any(d.setting == "ocr_sentiment.int8_decoders" for d in on_gpu.deviations)
    # Features made on a CPU record int8; the same recipe on a GPU runs float32 and says so.
    settled = on_cpu.settled()
    assert settled.extractors["ocr_sentiment"]["int8_decoders"] is True
    again_on_gpu = settled.resolve("cuda")
    assert again_on_gpu.extractors["ocr_sentiment"]["int8_decoders"] is False
    assert any(d.setting == "ocr_sentiment.int8_decoders" and d.used is False for d in again_on_gpu.deviations)
    kept = reference.resolve("cpu", {"ocr_sentiment": {"int8_decoders": False}})
    assert kept.extractors["ocr_sentiment"]["int8_decoders"] is False
    assert not any("int8_decoders" in d.setting for d in kept.deviations)


def test_merge_rows_joins_words_of_one_row():
    def box(x0, y0, x1, y1):
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)

    detections = [
        (box(300, 150, 600, 205), "BIRTHDAY", 0.9),
        (box(40, 152, 270, 204), "HAPPY", 0.99),
        (box(40, 300, 200, 340), "below", 0.8),
        (box(1500, 150, 1600, 205), "far", 0.7),
    ]
    merged = merge_rows(detections)
    assert [label for _, label, _ in merged] == ["HAPPY BIRTHDAY", "far", "below"]
    joined_box = merged[0][0]
    assert joined_box[:, 0].min() == 40 and joined_box[:, 0].max() == 600
    assert 0.9 < merged[0][2] < 0.99


def test_unique_lines_fold_case_and_space():
    from vemoclap.extractors.ocr import OcrLine

    lines = [
        OcrLine(0, 0.0, [[0, 0]] * 4, "Happy  Birthday", 0.7),
        OcrLine(1, 1.0, [[0, 0]] * 4, "SALE", 0.9),
        OcrLine(2, 2.0, [[0, 0]] * 4, "happy birthday", 0.95),
    ]
    assert OcrSentimentExtractor.unique(lines) == ["happy birthday", "SALE"]


def test_ocr_chain_end_to_end(tiny_dir):
    images = np.stack([text_frame()] * 8 + [np.zeros((*SIZE, 3), np.uint8)] * 8)
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu")
    assert extractor.load().speller is None  # spelling is off on the CPU by default
    output = extractor(make_clip(images))
    assert output.missing is None, output.missing
    assert output.feature.shape == (1, 768) and output.feature.dtype == np.float32
    words = " ".join(output.unique_lines).upper().split()
    assert "HAPPY" in words and "BIRTHDAY" in words
    # Repeated frames reuse the OCR result: the 16 frames are only 2 different pictures.
    assert output.frames_read == 2 and output.frames_reused == 14
    assert {line.frame_index for line in output.lines} == set(range(8))
    for line in output.lines:
        assert len(line.box) == 4 and all(isinstance(v, int) for point in line.box for v in point)
        assert line.timestamp == pytest.approx(20.0 / 16 * line.frame_index)  # its frame's time
    # Per unique line: below the 0.9 threshold the language is unknown and the line is not translated.
    assert len(output.languages) == len(output.language_scores) == len(output.english_lines) == len(output.unique_lines)
    for line, language, score, english in zip(
        output.unique_lines, output.languages, output.language_scores, output.english_lines
    ):
        if score < 0.9:
            assert language == "unknown" and english == extractor.segmenter.segment(line)
        else:
            assert language in LANGUAGE_LABELS
    assert output.english_text == ". ".join(output.english_lines)
    expected = extractor.sentiment(output.english_text)
    np.testing.assert_allclose(output.feature[0], expected.feature, rtol=1e-5, atol=1e-5)
    assert output.sentiment.label == expected.label


def test_ocr_text_chain_translates_known_languages(tiny_dir):
    # Threshold 0: every line gets the tiny model's top language, so translation runs.
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", language_threshold=0.0, spell_check=True).load()
    lines = ["HAPPY BIRTHDAY", "Bonjour le monde", "thequickbrownfox", "Привет мир"]
    english, languages, scores = extractor.to_english(lines)
    assert all(language in LANGUAGE_LABELS for language in languages)
    assert [code for code, _ in extractor.language_id.identify(lines, threshold=0.0)] == languages
    # The documented order: translate each language's lines to English (one batch per language),
    # segment run-together words, then correct the spelling of Latin-script lines.
    expected = list(lines)
    for language in set(languages) - {"en"}:
        where = [i for i, code in enumerate(languages) if code == language]
        for i, translated in zip(where, extractor.translator.translate([lines[i] for i in where], language)):
            expected[i] = translated
    expected = [extractor.segmenter.segment(line) for line in expected]
    latin = [i for i, line in enumerate(expected) if _mostly_latin(line)]
    for i, fixed in zip(latin, extractor.speller.correct([expected[i] for i in latin])):
        expected[i] = fixed
    assert english == expected


@pytest.mark.parametrize(
    "images, reason",
    [
        (np.zeros((16, *SIZE, 3), np.uint8), "no text found in 16 frames"),
        (np.full((4, *SIZE, 3), 200, np.uint8), "no text found in 4 frames"),
        (np.zeros((0, *SIZE, 3), np.uint8), "no video frames"),
    ],
    ids=["black", "plain", "none"],
)
def test_ocr_missing_with_reason(tiny_dir, images, reason):
    output = get("ocr_sentiment", models_dir=tiny_dir, device="cpu")(make_clip(images))
    assert output.feature is None and reason in output.missing


def test_paddleocr_backend_says_how_to_install(tiny_dir):
    try:
        import paddleocr  # noqa: F401

        pytest.skip("paddleocr is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=r"pip install vemoclap\[paddle\]"):
        get("ocr_sentiment", backend="paddleocr", models_dir=tiny_dir, device="cpu").load()
    with pytest.raises(ValueError, match="unknown OCR backend"):
        get("ocr_sentiment", backend="tesseract", device="cpu")


# -- OCR as the reference ran it (text_unit="frame", lowercase, confidence, segment+t5) ----------
def ttf_frame(*rows: str, size: int = 44) -> np.ndarray:
    """White rows of text in a real TTF (matplotlib's DejaVu Sans) on a dark frame, one row per 100 px."""
    import os

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)
    image = Image.new("RGB", (SIZE[1], SIZE[0]), (20, 20, 30))
    draw = ImageDraw.Draw(image)
    for i, row in enumerate(rows):
        draw.text((40, 50 + 100 * i), row, font=font, fill=(255, 255, 255))
    return np.asarray(image)


class _FixedEngine:
    """Stands in for the OCR engine where a test needs exact scores (the rule, not the models)."""

    description = "fixed boxes"

    def __init__(self, detections):
        self.detections = detections

    def __call__(self, image, min_score):
        return list(self.detections)


def _box(y: float) -> np.ndarray:
    return np.array([[40, y], [300, y], [300, y + 40], [40, y + 40]], np.float32)


@pytest.mark.slow
def test_frame_unit_gives_one_lowercased_string_per_frame(tiny_dir):
    two_rows = ttf_frame("Happy Birthday", "SALE TODAY")
    other = ttf_frame("Good Morning")
    images = np.stack([two_rows, two_rows, other, np.zeros_like(other)])
    extractor = get(
        "ocr_sentiment",
        models_dir=tiny_dir,
        device="cpu",
        text_unit="frame",
        lowercase=True,
        min_confidence=0.75,
        skip_similar=0,
    )
    output = extractor(make_clip(images))
    assert output.missing is None, output.missing
    assert output.text_unit == "frame" and "PP-OCRv" in output.ocr_models
    # One string per frame with text, its rows joined by a space in reading order, lowercased.
    assert len(output.frame_texts) == 3
    assert output.frame_texts[0] == output.frame_texts[1]
    words = output.frame_texts[0].split()
    assert words.index("happy") < words.index("birthday") < words.index("sale") < words.index("today")
    assert "good" in output.frame_texts[2].split() and "morning" in output.frame_texts[2].split()
    assert all(text == text.lower() for text in output.frame_texts)
    # Unique per-frame strings, in order of first appearance.
    assert output.unique_lines == [output.frame_texts[0], output.frame_texts[2]]
    assert all(line.score >= 0.75 for line in output.lines)


def test_line_unit_keeps_case_by_default(tiny_dir):
    output = get("ocr_sentiment", models_dir=tiny_dir, device="cpu")(make_clip(np.stack([ttf_frame("Happy Birthday")])))
    assert output.text_unit == "line" and "Happy Birthday" in output.unique_lines


def test_min_confidence_drops_boxes_before_the_frame_string_is_made(tiny_dir):
    engine = _FixedEngine([(_box(40), "Clear", 0.95), (_box(120), "Faint", 0.70), (_box(200), "Edge", 0.75)])
    extractor = get(
        "ocr_sentiment", models_dir=tiny_dir, device="cpu", text_unit="frame", lowercase=True, min_confidence=0.75
    ).load()
    extractor.engine = engine
    lines, _, _ = extractor.read_frames(make_clip(np.stack([ttf_frame("x")])))
    assert [line.text for line in lines] == ["clear", "edge"]
    assert extractor.frame_texts(lines) == [(0, "clear edge")]
    # Nothing passes a threshold above every score: the feature is missing, with the reason.
    extractor.min_confidence = 0.99
    assert "no text found" in extractor(make_clip(np.stack([ttf_frame("x")]))).missing


def test_real_ocr_respects_the_confidence_threshold(tiny_dir):
    images = np.stack([ttf_frame("Happy Birthday")])
    output = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", min_confidence=1.01)(make_clip(images))
    assert output.feature is None and "no text found" in output.missing


def test_segment_then_t5_for_english_and_unknown_strings_only(tiny_dir):
    strings = ["happybirth day", "thequickbrownfox jumps", "Bonjour le monde"]
    # Threshold above 1: every string's language is unknown, so every string is segmented, then corrected.
    extractor = get(
        "ocr_sentiment", models_dir=tiny_dir, device="cpu", spelling="segment+t5", langid_threshold=1.01
    ).load()
    assert extractor.speller is not None  # the reference always corrects, on the CPU too
    calls = []
    segment, correct = extractor.segmenter.segment_text, extractor.speller.correct
    extractor.segmenter.segment_text = lambda s: calls.append(("segment", s)) or segment(s)
    extractor.speller.correct = lambda batch, **kw: calls.append(("t5", list(batch))) or correct(batch, **kw)
    try:
        english, languages, _ = extractor.to_english(strings)
    finally:
        del extractor.segmenter.segment_text, extractor.speller.correct
    assert languages == ["unknown"] * 3
    segmented = [segment(s) for s in strings]
    assert segmented[:2] == ["happy birth day", "the quick brown fox jumps"]  # whole-string segmentation
    # Segmentation of each string, then one batched T5 call over the segmented strings.
    assert calls == [("segment", s) for s in strings] + [("t5", segmented)]
    assert english == correct(segmented)


def test_segment_then_t5_leaves_translations_untouched(tiny_dir):
    strings = ["HAPPY BIRTHDAY", "Bonjour le monde", "Привет мир"]
    extractor = get(
        "ocr_sentiment",
        models_dir=tiny_dir,
        device="cpu",
        spelling="segment+t5",
        langid_threshold=0.0,
        chinese_code="zho_Hant",
    ).load()
    english, languages, _ = extractor.to_english(strings)
    expected = list(strings)
    for language in set(languages) - {"en"}:  # one batch per language, as NLLB output was
        where = [i for i, code in enumerate(languages) if code == language]
        code = "zho_Hant" if language == "zh" else None
        for i, translated in zip(
            where, extractor.translator.translate([strings[i] for i in where], language, code=code)
        ):
            expected[i] = translated
    untranslated = [i for i, language in enumerate(languages) if language == "en"]
    for i, fixed in zip(
        untranslated, extractor.speller.correct([extractor.segmenter.segment_text(strings[i]) for i in untranslated])
    ):
        expected[i] = fixed
    assert english == expected


def test_chinese_is_read_with_the_chosen_nllb_code(tiny_dir):
    extractor = get(
        "ocr_sentiment",
        models_dir=tiny_dir,
        device="cpu",
        chinese_code="zho_Hant",
        langid_threshold=0.0,
        spelling="none",
    ).load()
    seen = []
    original = extractor.translator.translate
    extractor.translator.translate = lambda lines, language, **kw: (
        seen.append((language, kw.get("code"))) or list(lines)
    )
    extractor.language_id.identify = lambda lines, **kw: [("zh", 0.99)] * len(lines)
    try:
        english, languages, _ = extractor.to_english(["你好世界"])
    finally:
        extractor.translator.translate = original
        del extractor.language_id.identify
    assert languages == ["zh"] and seen == [("zh", "zho_Hant")] and english == ["你好世界"]


def test_spelling_none_leaves_strings_as_read(tiny_dir):
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", spelling="none", langid_threshold=1.01).load()
    assert extractor.segmenter is None and extractor.speller is None
    assert extractor.to_english(["happybirth day"])[0] == ["happybirth day"]


def test_language_id_reads_at_most_max_tokens(tiny_dir):
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", langid_max_tokens=512).load()
    identifier = extractor.language_id
    seen = []
    tokenizer = identifier.tokenizer
    identifier.tokenizer = lambda texts, **kw: seen.append(kw["max_length"]) or tokenizer(texts, **kw)
    try:
        extractor.to_english(["word " * 600])
        identifier.identify(["word"], max_length=16)
    finally:
        identifier.tokenizer = tokenizer
    assert seen == [min(512, identifier.model_limit), 16]


@pytest.mark.parametrize(
    "option, value", [("text_unit", "page"), ("spelling", "t5"), ("ocr_models", "surya"), ("chinese_code", "zh")]
)
def test_unknown_ocr_options_are_refused(option, value):
    from vemoclap.errors import OptionError

    with pytest.raises(OptionError, match=option):
        get("ocr_sentiment", device="cpu", **{option: value})


def test_english_models_offline_say_where_to_put_them(tiny_dir, tmp_path):
    # Without the English pair (offline, not in the models dir) the bundled models read the text,
    # and the output says which models ran instead of the ones asked for.
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", ocr_models="ppocr-en").load()
    assert extractor.engine_note.startswith("ppocr-en unavailable") and "ppocr" in extractor.engine_note
    assert "download-models --only ppocr_en_det,ppocr_en_rec" in extractor.engine_note
    from vemoclap.extractors.ocr import ENGLISH_MODELS, english_model_files

    for key in ENGLISH_MODELS.values():
        path = models.target_path(key, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a model")

    with pytest.raises(models.ModelUnavailable, match="SHA-256"):
        english_model_files(tmp_path)


# -- OCR as the reference ran it (v3): detector input, angle classifier, frame reuse, T5, de-duplication
def _reference_ocr_options(*names: str) -> dict:
    from vemoclap.recipes import get_recipe

    options = get_recipe("reference", version=3).extractors["ocr_sentiment"]
    return {name: options[name] for name in names}


def _record_onnx_runs(monkeypatch) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Every ONNX inference the real sessions run: (model file name, the input arrays as fed)."""
    import onnxruntime

    runs: list[tuple[str, dict[str, np.ndarray]]] = []
    original = onnxruntime.InferenceSession.run

    def run(self, output_names, input_feed, run_options=None):
        runs.append((Path(self._model_path).name, {k: np.array(v) for k, v in input_feed.items()}))
        return original(self, output_names, input_feed, run_options)

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", run)
    return runs


@pytest.mark.parametrize("settings", ["today", "reference"])
def test_the_real_detector_receives_the_references_normalisation_and_channel_order(tiny_dir, monkeypatch, settings):
    # A 640×320 frame (multiples of 32, longer side under 960: the detector sees it unresized), red,
    # green and blue all different, with black text so that recognition runs too.
    frame = np.empty((320, 640, 3), np.uint8)
    frame[...] = (200, 120, 40)  # RGB
    frame[:, 320:] = (30, 160, 230)
    import cv2

    cv2.putText(frame, "HAPPY BIRTHDAY", (30, 180), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 5, cv2.LINE_AA)
    names = ("detection", "det_normalization", "channel_order", "angle_classifier")
    options = _reference_ocr_options(*names) if settings == "reference" else {"detection": "paddleocr"}
    extractor = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", **options).load()
    runs = _record_onnx_runs(monkeypatch)
    found = extractor.engine(frame, min_score=0.5)
    assert "HAPPY" in " ".join(label for _, label, _ in found).upper()
    det = [feed for name, feed in runs if "det" in name]
    assert len(det) == 1
    (tensor,) = det[0].values()
    assert tensor.shape == (1, 3, 320, 640) and tensor.dtype == np.float32
    if settings == "reference":
        # PaddleOCR 2.x: ImageNet statistics, applied to the RGB frame as if it were BGR (channel 0 is red).
        mean, std, channels = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (0, 1, 2)
    else:  # rapidocr: mean = std = 0.5 on the frame converted to BGR (channel 0 is blue)
        mean, std, channels = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (2, 1, 0)
    expected = np.stack([(frame[..., c] / 255.0 - m) / s for c, m, s in zip(channels, mean, std)])[None]
    np.testing.assert_allclose(tensor, expected.astype(np.float32), atol=1e-5)
    # The angle classifier: rapidocr runs it by default; the reference ran none (not even loaded).
    ran = {name for name, _ in runs}
    assert any("rec" in name for name in ran)
    classified = any("cls" in name for name in ran)
    assert classified == (settings == "today")
    assert (extractor.engine.engine.text_cls is None) == (settings == "reference")


def _caption_frame(caption: str) -> np.ndarray:
    """A static, textured background with a small caption in its lower third."""
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(60, 110, (18, 32, 3), dtype=np.uint8), (SIZE[1], SIZE[0]))
    cv2.rectangle(image, (20, 290), (260, 340), (255, 255, 255), -1)
    cv2.putText(image, caption, (30, 328), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 3, cv2.LINE_AA)
    return image


@pytest.mark.slow
def test_a_caption_that_changes_on_a_static_background_is_read_under_reference(tiny_dir):
    images = np.stack([_caption_frame("HELLO"), _caption_frame("WORLD")])
    clip = make_clip(images)
    today = get("ocr_sentiment", models_dir=tiny_dir, device="cpu").load()
    lines, read, reused = today.read_frames(clip)
    assert (read, reused) == (1, 1)  # the second frame reused the first one's text: WORLD is missed
    assert "WORLD" not in " ".join(line.text for line in lines).upper()
    assert _reference_ocr_options("skip_similar") == {"skip_similar": 0.0}
    reference = get("ocr_sentiment", models_dir=tiny_dir, device="cpu", skip_similar=0.0).load()
    lines, read, reused = reference.read_frames(clip)
    assert (read, reused) == (2, 0)
    by_frame = {line.frame_index: line.text.upper() for line in lines}
    assert "HELLO" in by_frame[0] and "WORLD" in by_frame[1]


class _EngineByFrame:
    """Stands in for the OCR engine where a test needs exact strings per frame (the rule, not the models)."""

    description = "fixed strings per frame"

    def __init__(self, *labels: str):
        self.labels = list(labels)

    def __call__(self, image, min_score):
        return [(_box(40), self.labels.pop(0), 0.95)]


@pytest.mark.parametrize("dedup", [False, True])
def test_strings_made_equal_by_segmentation_are_joined_once_under_reference(tiny_dir, dedup):
    options = dict(text_unit="frame", lowercase=True, spelling="segment+t5", spell_check=False, skip_similar=0)
    extractor = get(
        "ocr_sentiment", models_dir=tiny_dir, device="cpu", langid_threshold=1.01, dedup_english=dedup, **options
    ).load()
    segmented = {extractor.segmenter.segment_text(s) for s in ("happybirthday", "happy birthday")}
    assert segmented == {"happy birthday"}  # two OCR strings, one string after segmentation
    extractor.engine = _EngineByFrame("happybirthday", "happy birthday")
    output = extractor(make_clip(np.stack([ttf_frame("x")] * 2)))
    assert output.unique_lines == ["happybirthday", "happy birthday"]
    assert output.english_lines == ["happy birthday", "happy birthday"]
    assert output.english_text == ("happy birthday" if dedup else "happy birthday. happy birthday")
    assert _reference_ocr_options("dedup_english") == {"dedup_english": True}


@pytest.mark.slow
def test_t5_reads_a_long_string_whole_under_reference(tiny_dir, monkeypatch):
    extractor = get(
        "ocr_sentiment",
        models_dir=tiny_dir,
        device="cpu",
        spelling="segment+t5",
        **_reference_ocr_options("spell_max_new_tokens", "spell_truncation"),
    ).load()
    speller = extractor.speller
    seen = []
    generate = speller.model.generate

    def recording(**kwargs):
        seen.append((kwargs["input_ids"].shape[1], {k: kwargs.get(k) for k in ("max_length", "max_new_tokens")}))
        return generate(**kwargs)

    monkeypatch.setattr(speller.model, "generate", recording)
    long = " ".join(["happy birthday to you"] * 160)
    n_tokens = len(speller.tokenizer(text.SPELL_PREFIX + long)["input_ids"])
    assert n_tokens > 512
    extractor._correct([long])
    assert seen[-1] == (n_tokens, {"max_length": 512, "max_new_tokens": None})  # whole input, max_length 512
    speller.correct([long])  # today's: input cut at 512 tokens, at most 128 new ones
    assert seen[-1][0] == speller.max_length <= 512 and seen[-1][1]["max_new_tokens"] == 128


def test_reference_v3_sets_the_ocr_rules_and_older_versions_keep_todays():
    from vemoclap.extractors.ocr import Options
    from vemoclap.recipes import get_recipe

    rules = {
        "det_normalization": "imagenet",
        "channel_order": "rgb",
        "angle_classifier": False,
        "skip_similar": 0.0,
        "spell_max_new_tokens": None,
        "spell_truncation": False,
        "dedup_english": True,
    }
    v3 = get_recipe("reference", version=3).extractors["ocr_sentiment"]
    assert {key: v3[key] for key in rules} == rules
    v2 = get_recipe("reference", version=2).extractors["ocr_sentiment"]
    assert not set(rules) & set(v2)  # a v2 checkpoint runs today's defaults
    built = get("ocr_sentiment", device="cpu", **v2).options
    assert {key: getattr(built, key) for key in rules} == {key: getattr(Options(), key) for key in rules}
    assert Options().skip_similar == 2.0 and Options().angle_classifier and Options().channel_order == "bgr"
    built = get("ocr_sentiment", device="cpu", **v3)
    assert built.engine_settings == {"normalization": "imagenet", "angle_classifier": False, "channel_order": "rgb"}
    assert built.spell_limits == {"max_new_tokens": None, "truncation": False} and built.dedup_english
