"""The rows of the parity table (docs/parity.md), each checked as a rule on generated media and
tiny models under the ``reference`` recipe (and, where it differs, under ``vemoclap``).

Rows tested elsewhere, on the extractors themselves: one lowercased string per frame, the 0.75
confidence, SymSpell + T5 on English/unknown strings only, zho_Hant, 512 language-id tokens
(test_extractors_text); no minimum face size (test_extractors_vision); segment centres of the
decoded stream (test_media). Here: that the recipe asks each extractor for exactly that, and the
rules whose tests were missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from vemoclap import recipes
from vemoclap.extractors import Clip, get
from vemoclap.media import Frames, MediaError
from vemoclap.pipeline import Analyzer
from vemoclap.synth import make_video
from vemoclap.testing.media import read_frame_index

SR = 16000


def _analyzer(extractors, recipe, **options):
    return Analyzer(extractors, classifier=None, device="cpu", recipe=recipe, **options)


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    """96 × 64 px, 8 fps, 4 s: smaller than 360 p, 32 frames for 16 positions."""
    return make_video(tmp_path_factory.mktemp("rules") / "small.mp4", duration=4.0, fps=8, size=(96, 64), audio=None)


# ---- frames -------------------------------------------------------------------------------------


def test_reference_frames_are_those_ffmpegs_fps_filter_gives_upscaled_to_360(small_video):
    """Rule 2: the last frame starting *before* each (k + ½)·D/16. Here every centre falls exactly on
    a frame's start (8 fps, 4 s), so the reference takes the frame before it; v2 took the frame at it."""
    clip = _analyzer(["clip"], "reference").read_clip(small_video)
    frames = clip.frames
    assert frames.images.shape == (16, 360, 540, 3)  # short side 360, aspect kept: small videos enlarged
    centres = (np.arange(16) + 0.5) * 4.0 / 16
    np.testing.assert_allclose(frames.targets, centres, atol=1e-5)
    earlier = np.floor(centres * 8) / 8 - 1 / 8  # a tie takes the earlier frame
    np.testing.assert_allclose(frames.timestamps, earlier, atol=1e-6)
    assert [read_frame_index(image) for image in frames.images] == [int(round(t * 8)) for t in earlier]
    v2 = _analyzer(["clip"], recipes.get_recipe("reference", version=2)).read_clip(small_video).frames
    assert [read_frame_index(image) for image in v2.images] == [int(np.floor(t * 8)) for t in centres]


@pytest.mark.slow
def test_a_container_longer_than_its_video_gives_15_frames_and_a_zero_row(tiny_models, tmp_path):
    """Rule 1: the container lasts 4 s (its audio), the video 3.75 s (≥ 3 % shorter): FFmpeg's fps filter
    gives the reference 15 frames and its app pads a 16th row of zeros; so does the reference recipe."""
    from vemoclap.fusion import prepare
    from vemoclap.synth import tone

    path = make_video(tmp_path / "long.mp4", duration=4.0, fps=8, frames=30, size=(96, 64), audio=tone(4.0))
    analyzer = _analyzer(["clip"], "reference", models_dir=tiny_models)
    clip = analyzer.read_clip(path)
    assert len(clip.frames) == 15 and "15 frames, not 16" in " ".join(clip.frames.warnings)
    assert np.all(np.diff(clip.frames.targets) > 3.75 / 16)
    rows = get("clip", device="cpu", models_dir=tiny_models)(clip).feature
    assert rows.shape == (15, 512)
    prepared = prepare({"clip": rows}, ["clip"])["clip"]
    assert prepared.shape == (16, 512) and not prepared[15].any() and prepared[:15].any(axis=1).all()
    assert len(_analyzer(["clip"], "vemoclap").read_clip(path).frames) == 16  # our own sampler: 16 frames


def test_reference_frame_sizes_truncate(tmp_path):
    """Rule 3: 94 × 64 at a 360 short side is 528.75 px wide: the reference truncates to 528."""
    path = make_video(tmp_path / "odd.mp4", duration=1.0, fps=4, size=(94, 64), audio=None)
    assert _analyzer(["clip"], "reference").read_clip(path).frames.images.shape[1:3] == (360, 528)
    v2 = _analyzer(["clip"], recipes.get_recipe("reference", version=2))
    assert v2.read_clip(path).frames.images.shape[1:3] == (360, 529)


def test_vemoclap_frames_are_never_upscaled(small_video):
    frames = _analyzer(["clip"], "vemoclap").read_clip(small_video).frames
    assert frames.images.shape[1:3] == (64, 96)


def test_reference_upscaling_stays_within_the_size_caps(tmp_path):
    # 1000 × 20: its short side at 360 would make the long side 18000 px. Either the frames stay
    # within the recipe's caps (a thin picture padded to a bounded canvas) or the file is refused
    # in one line naming it — never an 18000-px frame.
    thin = make_video(tmp_path / "thin.mp4", duration=1.0, fps=4, size=(1000, 20), audio=None)
    analyzer = _analyzer(["clip"], "reference")
    caps = analyzer.recipe.frames
    try:
        frames = analyzer.read_clip(thin).frames
    except MediaError as exc:
        assert "\n" not in str(exc) and "thin.mp4" in str(exc)
    else:
        height, width = frames.images.shape[1:3]
        assert max(height, width) <= caps.max_long_side and height * width <= caps.max_pixels


# ---- BEATs chunks and silence --------------------------------------------------------------------


def test_chunk_starts_per_selection_and_end():
    from vemoclap.extractors.audio import select_chunk_starts

    hop = int(1.5 * SR)
    n = 30 * SR  # 30 s: starts 0, 1.5, …, 27 s — 19 of them, more than 16
    full = np.arange(0, n - 3 * SR + 1, hop)
    assert len(full) == 19
    equidistant = select_chunk_starts(n, 16)
    np.testing.assert_array_equal(equidistant, full[np.round(np.linspace(0, 18, 16)).astype(int)])
    defect = select_chunk_starts(n, 16, selection="reference-indices")
    np.testing.assert_array_equal(defect, np.round(np.linspace(0, 18, 16)).astype(int))  # offsets, in samples
    assert defect.max() < 0.01 * SR  # every chunk within the first 10 ms: ~16 copies of the first 3 s
    short = 20 * SR  # 12 starts: both selections keep them all
    np.testing.assert_array_equal(
        select_chunk_starts(short, 16, selection="reference-indices"), select_chunk_starts(short, 16)
    )
    exact = 3 * SR  # exactly one chunk: the reference's start rule (exclusive) has none
    assert select_chunk_starts(exact, 16, end="exclusive").size == 0
    np.testing.assert_array_equal(select_chunk_starts(exact, 16, end="inclusive"), [0])
    np.testing.assert_array_equal(select_chunk_starts(exact + 1, 16, end="exclusive"), [0])


def _audio_clip(audio):
    return Clip(
        frames=Frames(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1)),
        audio=np.asarray(audio, np.float32),
        sample_rate=SR,
    )


def test_silence_gives_an_embedding_under_the_reference_recipe(tiny_models):
    options = recipes.plan(recipes.get_recipe("reference"), ["beats"], device="cpu").extractor_options["beats"]
    assert options["silence"] == "embed"
    silent = _audio_clip(np.zeros(6 * SR))
    embedded = get("beats", device="cpu", models_dir=tiny_models, **options)(silent)
    assert embedded.missing in (None, "") and embedded.feature.shape == (3, 768)  # starts 0, 1.5, 3 s
    assert np.all(np.isfinite(embedded.feature))
    vemoclap = recipes.plan(recipes.get_recipe("vemoclap"), ["beats"], device="cpu").extractor_options["beats"]
    skipped = get("beats", device="cpu", models_dir=tiny_models, **vemoclap)(silent)
    assert skipped.feature is None and skipped.missing


def test_a_track_of_exactly_one_chunk(tiny_models):
    clip = _audio_clip(np.random.default_rng(0).normal(0, 0.1, 3 * SR))
    inclusive = get("beats", device="cpu", models_dir=tiny_models, chunk_end="inclusive")(clip)
    assert inclusive.feature.shape == (1, 768)
    exclusive = get("beats", device="cpu", models_dir=tiny_models, chunk_end="exclusive")(clip)
    assert exclusive.feature is None and "3 s" in exclusive.missing


# ---- what the recipe asks each extractor for ------------------------------------------------------

REFERENCE_OPTIONS = [
    ("beats", "chunk_selection", "equidistant"),
    ("beats", "chunk_end", "inclusive"),
    ("beats", "silence", "embed"),
    ("face_emotion", "detector_choice", "yolo"),
    ("face_emotion", "min_face_size", 0),
    ("face_emotion", "conf", 0.6),
    ("face_emotion", "iou", 0.5),
    ("ocr_sentiment", "ocr_models", "ppocr-en"),
    ("ocr_sentiment", "text_unit", "frame"),
    ("ocr_sentiment", "lowercase", True),
    ("ocr_sentiment", "min_confidence", 0.75),
    ("ocr_sentiment", "langid_threshold", 0.9),
    ("ocr_sentiment", "langid_max_tokens", 512),
    ("ocr_sentiment", "spelling", "segment+t5"),
    ("ocr_sentiment", "chinese_code", "zho_Hant"),
]


# Whisper as the reference ran it (the ASR extractor takes these once its long-form work is in):
# option → (the extractor's attribute, its value).
REFERENCE_ASR_OPTIONS = {
    "long_form": ("long_form", "chunked"),
    "chunk_s": ("chunk_s", 30),
    "stride_s": ("stride_s", 5),
    "max_new_tokens": ("max_new_tokens", 128),
    "temperature_fallback": ("temperature", 0.0),
    "no_speech_gating": ("no_speech_gating", False),
    "vad": ("vad", False),
    "min_seconds": ("min_seconds", 0.0),
    "task": ("task", "translate"),
    "timestamps": ("timestamps", True),  # rule 20: decoded with timestamp tokens, merged as transformers does
    "silence_dbfs": ("silence_level", None),  # rule 22: no loudness gate, a silent track goes to Whisper
}


@pytest.fixture(scope="module")
def reference_extractors():
    return _analyzer(["clip", "beats", "face_emotion", "ocr_sentiment", "asr_sentiment"], "reference")


@pytest.mark.parametrize(
    "extractor, attribute, value", REFERENCE_OPTIONS, ids=[f"{e}.{a}" for e, a, _ in REFERENCE_OPTIONS]
)
def test_reference_recipe_reaches_each_extractor(reference_extractors, extractor, attribute, value):
    assert getattr(reference_extractors.extractors[extractor], attribute) == value


@pytest.mark.parametrize("option", list(REFERENCE_ASR_OPTIONS))
def test_reference_recipe_runs_whisper_as_the_reference_did(reference_extractors, option):
    from vemoclap.extractors import option_names, options_type

    assert option in option_names(options_type("asr_sentiment"))
    attribute, value = REFERENCE_ASR_OPTIONS[option]
    assert getattr(reference_extractors.extractors["asr_sentiment"], attribute) == value


def test_every_vision_audio_and_ocr_setting_of_the_reference_recipe_is_taken(reference_extractors):
    pending = [
        d.line()
        for d in reference_extractors.recipe.deviations
        if (d.reason.startswith("this version does not take") or d.used == "defaults")
        and not d.setting.startswith("asr_sentiment")
    ]
    assert pending == []


def test_precision_fp32_except_whisper_and_a_fp32_classifier():
    reference = recipes.get_recipe("reference")
    for name in ("clip", "beats", "face_emotion", "ocr_sentiment"):
        assert reference.options_for(name, "cuda")["half"] is False
    assert reference.options_for("asr_sentiment", "cuda")["half"] is True
    assert reference.options_for("asr_sentiment", "cpu")["half"] is False  # no fp16 on a CPU
    assert reference.classifier_precision == "fp32"
    assert "half" not in recipes.get_recipe("vemoclap").options_for("clip", "cuda")  # the extractor's own default


def test_a_reference_layout_checkpoint_runs_4_heads_whatever_its_config_says():
    """Rule 40: the reference app builds its classifier's default of 4 heads (and the paper says 4);
    the config's n_heads (8) is recorded, not trusted."""
    from vemoclap.fusion import DEFAULT_HEADS, config_heads, reference_heads

    assert reference_heads({"n_heads": 8}) == reference_heads({"num_heads": 2}) == reference_heads({}) == 4
    assert DEFAULT_HEADS == 4
    assert config_heads({"n_heads": 8}) == 8 and config_heads({"num_heads": 2}) == 2 and config_heads({}) is None


# ---- the caption frame ---------------------------------------------------------------------------


@pytest.mark.slow
def test_caption_frame_prefers_faces_and_text_under_the_reference_recipe(tiny_models, tmp_path):
    """The reference captions, among the frames having both faces and text, the one with the most
    boxes; only when no frame has both does the largest total win."""
    from vemoclap.extractors.caption import CaptionExtractor
    from vemoclap.extractors.faces import Face, FacesOutput, FrameFaces
    from vemoclap.extractors.ocr import OcrLine, OcrOutput

    pick = CaptionExtractor.faces_and_text_index
    assert pick([5, 0, 1, 1], [0, 6, 1, 2]) == 3  # frames 0 and 1 have more boxes, but one kind each
    assert pick([5, 0, 1, 0], [0, 6, 0, 2]) == 1  # none has both: the largest total
    assert pick([1, 1], [1, 1]) == 0  # a tie: the first
    assert recipes.get_recipe("reference").extractors["caption"]["frame"] == "faces-and-text"
    assert recipes.get_recipe("reference", version=2).extractors["caption"]["frame"] == "most-boxes"

    clip = Clip.from_file(make_video(tmp_path / "v.mp4", duration=1.0, fps=4, size=(64, 48), audio=None), 4)
    face = Face(box=(0, 0, 8, 8), detection_score=0.9, expression="happy", confidence=0.9)
    counts = [3, 0, 1, 0]  # frame 0: three faces, no text; frame 2: one face and one line of text
    faces = FacesOutput(
        frames=[FrameFaces(i, float(t), [face] * counts[i]) for i, t in enumerate(clip.frames.timestamps)]
    )
    line = OcrLine(2, float(clip.frames.timestamps[2]), [[0, 0], [1, 0], [1, 1], [0, 1]], "hi", 0.9)
    earlier = {"face_emotion": faces, "ocr_sentiment": OcrOutput(lines=[line])}
    options = {"device": "cpu", "models_dir": tiny_models, "captioner": "clipcap"}
    assert get("caption", frame="faces-and-text", **options)(clip, earlier).frame_index == 2
    assert get("caption", frame="most-boxes", **options)(clip, earlier).frame_index == 0
