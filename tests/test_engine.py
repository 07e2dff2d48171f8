"""The one extraction engine: ``analyze`` (a Result) and dataset extraction (a feature file) are two
views of the same outputs — bit-identical features on a CPU with tiny models of the real classes —
and the engine's Missing, failure and single-frame handling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vemoclap.engine import Engine, feature_rows, reads_single_frames
from vemoclap.extractors import Clip, get
from vemoclap.generated_video import make_sample
from vemoclap.pipeline import Analyzer
from vemoclap.testing import make_video
from vemoclap.training.dataset import Video
from vemoclap.training.extraction import CONFIG_FILE, extract_dataset
from vemoclap.training.store import feature_path, load_features
from vemoclap.training.worker import ExtractionConfig, effective_options, feature_extractors

# random-weight Whisper: skip the temperature fallback; the caption reads the face and OCR boxes
OPTIONS = {"asr_sentiment": {"temperature": 0.0}, "caption": {"frame": "most-boxes"}}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The generated sample: text on screen, speech, 6 s."""
    return make_sample(tmp_path_factory.mktemp("dataset") / "sample.mp4", seconds=6.0)


def _extract(path: Path, out: Path, models: Path, names, positions, recipe=None):
    video = Video("joy/" + path.stem, path, "joy", "train")
    report = extract_dataset(
        [video],
        out,
        extractors=names,
        positions=positions,
        face_detector="opencv",
        extractor_options={k: v for k, v in OPTIONS.items() if k in names},
        device="cpu",
        models_dir=models,
        progress=False,
        recipe=recipe,
    )
    assert report.failed == {}
    config = ExtractionConfig.from_dict(json.loads((out / CONFIG_FILE).read_text())["config"])
    return video, load_features(feature_path(out, video.id)), config


def _analyze(video, models: Path, config: ExtractionConfig, frames: int):
    """What ``analyze`` gives with the options the extraction ran with (its stored config)."""
    analyzer = Analyzer(
        config.extractors,
        frames=frames,
        short_side=config.short_side,
        recipe=config.recipe,
        extractor_options=effective_options(config),
        device="cpu",
        models_dir=models,
        classifier=None,
    )
    return analyzer, analyzer.analyze(video.path)


@pytest.mark.slow
def test_analyze_and_extract_give_bit_identical_features(sample, tiny_models, tmp_path):
    names = [*feature_extractors(), "caption"]  # the caption reads clip, face and OCR outputs
    video, stored, config = _extract(sample, tmp_path / "features", tiny_models, names, positions=16)
    analyzer, result = _analyze(video, tiny_models, config, frames=16)

    rows = feature_rows(result.outputs, analyzer.extractors)  # the feature-file view of the Result
    assert set(stored.features) == set(rows.features) and {"clip", "ocr_sentiment", "asr_sentiment"} <= set(
        rows.features
    )
    for feature, array in stored.features.items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, rows.features[feature], err_msg=feature)
        name = next(n for n, f in analyzer.feature_names().items() if f == feature)
        np.testing.assert_array_equal(array.reshape(-1), np.asarray(result.outputs[name].feature).reshape(-1))
    assert stored.times.keys() == rows.times.keys()
    for feature, times in stored.times.items():
        np.testing.assert_array_equal(times, rows.times[feature], err_msg=feature)
    assert stored.missing == rows.missing
    # extraction now hands the caption what it reads (before, it ran without the others' outputs)
    caption = stored.metadata["readable"]["caption"]
    assert caption["text"] and not caption["frame_note"]  # the frame with the most boxes was found
    assert caption == {k: v for k, v in result.outputs["caption"].readable().items() if k not in ("name", "seconds")}


@pytest.mark.slow
def test_single_vector_frame_features_see_the_frames_analyze_reads(tiny_models, tmp_path):
    """With more positions than inference frames, OCR (one vector per video) still sees the 16
    frames ``analyze`` samples, with the recipe's media options (the reference's: a small video is
    enlarged, frames at FFmpeg's fps-filter positions)."""
    small = make_sample(tmp_path / "small.mp4", seconds=6.0, size=(320, 180))
    names = ["clip", "ocr_sentiment"]
    video, stored, config = _extract(small, tmp_path / "features", tiny_models, names, positions=24, recipe="reference")
    assert stored.features["clip"].shape == (24, 512) and stored.metadata["frames"] == 24
    _, result = _analyze(video, tiny_models, config, frames=16)
    assert result.frames.images.shape[1] == 360  # enlarged to the short side, as the recipe says
    np.testing.assert_array_equal(stored.features["ocr_sentiment"], result.outputs["ocr_sentiment"].feature)


def test_engine_missing_failure_and_strict(tiny_models, tmp_path):
    """A modality the clip lacks becomes the output's ``missing``; a failing extractor too (and a
    bug is listed), unless ``strict`` (a dataset video fails); the single clip reaches only the
    extractors of single-vector frame features."""
    path = make_video(tmp_path / "silent.mp4", duration=2.0, audio=None)
    clip = Clip.from_file(path, 4)
    extractors = {name: get(name, device="cpu", models_dir=tiny_models) for name in ("clip", "beats")}
    engine = Engine(extractors)
    outputs = engine.run(clip)
    assert list(outputs) == ["clip", "beats"] and outputs["beats"].missing == "no audio track"
    rows = feature_rows(outputs, extractors)
    assert rows.features["clip"].shape == (4, 512) and rows.missing == {"beats": "no audio track"}
    assert not reads_single_frames(extractors["clip"]) and not reads_single_frames(extractors["beats"])

    def fails(clip):
        raise RuntimeError("boom")

    extractors["beats"]._run = fails  # a bug inside the extractor
    broken = Clip(frames=clip.frames, audio=np.zeros(16000 * 4, np.float32))
    outputs = engine.run(broken)
    assert "internal error (RuntimeError: boom)" in outputs["beats"].missing and engine.bugs[-1][0] == "beats"
    with pytest.raises(RuntimeError, match="boom"):
        engine.run(broken, strict=True)
