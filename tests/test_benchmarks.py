"""benchmarks/analyze.py's configurations are what they say: the default, the reference-like one (one
extractor at a time, openai-whisper, float32 text decoders, the `reference` recipe's OCR settings, the
same Whisper size) and full parity (the `reference` recipe's own Whisper). Timings are not tested here."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def analyze():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_analyze", BENCHMARKS / "analyze.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in ("common", "full_size"):  # the benchmarks' own modules: not left for other tests
            sys.modules.pop(name, None)


def _args(**changes) -> argparse.Namespace:
    values = dict(
        device="cpu",
        asr_backend=None,
        models_dir=None,
        random_yolo_faces=1,
        face_detector=None,
        whisper_model=None,
        recipe=None,
        parallel=None,
        extractors=None,
    )
    return argparse.Namespace(**{**values, **changes})


def test_reference_like_and_parity_differ_from_the_default_only_as_described(analyze, tiny_models):
    from vemoclap.pipeline import Analyzer

    built = {
        name: Analyzer(**analyze.analyzer_options(name, _args(), tiny_models))
        for name in ("default", "reference-like", "parity")
    }
    default, like, parity = (built[n] for n in ("default", "reference-like", "parity"))
    asr = {name: a.extractors["asr_sentiment"] for name, a in built.items()}
    ocr = {name: a.extractors["ocr_sentiment"] for name, a in built.items()}
    # the tiny classifier has the reference layout: the default is the reference recipe, resolved for the CPU
    assert default.recipe.name == like.recipe.name == parity.recipe.name == "reference"
    assert default.parallel >= 2 and like.parallel == 1 and parity.parallel == default.parallel
    assert (asr["default"].backend, asr["reference-like"].backend, asr["parity"].backend) == (
        "faster-whisper",
        "openai-whisper",
        "faster-whisper",
    )
    assert asr["default"].whisper_model == asr["reference-like"].whisper_model == "small"  # the CPU's size
    assert asr["parity"].whisper_model == analyze.PARITY_WHISPER == "large-v3"
    assert (ocr["default"].int8_decoders, ocr["reference-like"].int8_decoders, ocr["parity"].int8_decoders) == (
        True,
        False,
        True,
    )
    for option in ("detection", "ocr_models", "text_unit", "skip_similar", "angle_classifier"):
        assert getattr(ocr["reference-like"].options, option) == getattr(ocr["default"].options, option), option
    # the random full-size YOLO's stand-in settings apply to every configuration alike
    assert {a.extractors["face_emotion"].options.conf for a in built.values()} == {0.01}


def test_reference_like_keeps_the_reference_ocr_under_another_recipe(analyze, tiny_models):
    from vemoclap.pipeline import Analyzer

    like = Analyzer(**analyze.analyzer_options("reference-like", _args(recipe="vemoclap"), tiny_models))
    default = Analyzer(**analyze.analyzer_options("default", _args(recipe="vemoclap"), tiny_models))
    assert default.recipe.name == "vemoclap" and like.recipe.name == "reference"
    assert like.extractors["ocr_sentiment"].options.detection == "paddleocr"
    assert (
        like.extractors["ocr_sentiment"].options.text_unit
        == "frame"
        != default.extractors["ocr_sentiment"].options.text_unit
    )
