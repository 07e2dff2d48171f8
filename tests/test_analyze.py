"""Analyze end to end: every extractor through its real loader on tiny models, real bundled face
and OCR models, and the bad inputs a user throws at it — one-line reasons or partial results."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vemoclap.errors import OptionError
from vemoclap.generated_video import make_sample
from vemoclap.labels import EMOTIONS
from vemoclap.media import MediaError
from vemoclap.pipeline import Analyzer
from vemoclap.registry import default_extractors
from vemoclap.testing import make_video, write_text_file

FAST_ASR = {"asr_sentiment": {"temperature": 0.0}}  # random-weight Whisper: skip temperature fallback


@pytest.fixture(scope="module")
def models(tiny_models) -> Path:
    return tiny_models


@pytest.fixture(scope="module")
def analyzer(models) -> Analyzer:
    return Analyzer(
        models_dir=models,
        device="cpu",
        classifier=models / "classifier",
        face_detector="opencv",
        extractor_options=FAST_ASR,
    ).load()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {
        "sample": make_sample(root / "sample.mp4", seconds=6.0),
        "silent_no_audio": make_video(root / "no audio.mp4", duration=4.0, audio=None),
        "audio_only": make_video(root / "audio-only.m4a", duration=4.0, audio="speech", audio_only=True),
        "vertical_vfr": make_video(root / "vertical vfr.mp4", duration=4.0, size=(180, 320), vfr=True),
        "uhd": make_video(root / "uhd.mp4", duration=1.0, fps=5, size=(3840, 2160), audio="tone"),
        "unicode": make_video(root / "ünïcode émotion 視頻.mp4", duration=3.0, audio="speech"),
    }


@pytest.mark.slow
def test_full_default_run_on_the_sample(analyzer, videos):
    result = analyzer.analyze(videos["sample"])
    assert set(result.outputs) == set(default_extractors())
    assert result.probabilities.shape == (6,) and np.isclose(result.probabilities.sum(), 1.0)
    assert result.top_label in EMOTIONS
    shapes = {name: out.feature.shape for name, out in result.outputs.items() if out.feature is not None}
    # the astronaut is in every frame; an offline detector may miss one or two (LBP under OpenCV 5)
    assert shapes["clip"] == (16, 512) and 13 <= shapes["face_emotion"][0] <= 16 and shapes["face_emotion"][1] == 768
    assert shapes["asr_sentiment"] == (1, 768) and shapes["ocr_sentiment"] == (1, 768)
    assert shapes["beats"][1] == 768 and 1 <= shapes["beats"][0] <= 16
    assert "WONDERFUL" in result.outputs["ocr_sentiment"].english_text.upper()  # real PP-OCR
    assert result.outputs["caption"].text  # tiny BLIP says something
    summary = result.summary()
    detector = result.outputs["face_emotion"].detector  # the offline detector that ran (haar or lbp)
    assert detector in ("haar", "lbp") and f"faces ({detector})" in summary
    assert "on-screen text" in summary and result.top_label in summary
    assert "feature recipe: reference" in summary  # the tiny classifier has the reference layout
    assert analyzer.classifier.heads_note() is None  # our own checkpoint format states its heads
    assert json.loads(result.to_json())["outputs"]["face_emotion"]["frames"][0]["faces"]


@pytest.mark.slow
def test_models_stay_loaded_across_videos(analyzer, videos):
    before = {name: id(ext) for name, ext in analyzer.extractors.items()}
    analyzer.analyze(videos["unicode"])
    assert {name: id(ext) for name, ext in analyzer.extractors.items()} == before
    assert all(ext.loaded for ext in analyzer.extractors.values())


def _observe(analyzer, monkeypatch, gate=()):
    """Wrap each extractor's real ``_run_with`` to record (start, end, thread, outputs it was given);
    the extractors in ``gate`` wait for each other before working (they must run at the same time)."""
    spans, lock = {}, threading.Lock()
    barrier = threading.Barrier(len(gate), timeout=20) if gate else None
    for name, extractor in analyzer.extractors.items():

        def run(clip, earlier, _name=name, _real=extractor._run_with):
            start = time.perf_counter()
            if _name in gate:
                barrier.wait()  # BrokenBarrierError (an internal error in the output) if run alone
            output = _real(clip, earlier)
            with lock:
                spans[_name] = (start, time.perf_counter(), threading.current_thread().name, set(earlier))
            return output

        monkeypatch.setattr(extractor, "_run_with", run)
    return spans


@pytest.mark.slow
def test_audio_and_vision_run_side_by_side_with_the_same_results(analyzer, videos, monkeypatch):
    assert analyzer.parallel == 2  # the default
    stages = []
    spans = _observe(analyzer, monkeypatch, gate=("clip", "beats"))
    together = analyzer.analyze(videos["sample"], progress=lambda *args: stages.append(args))
    assert all(output.missing is None or "internal error" not in output.missing for output in together.outputs.values())
    assert len({thread for _, _, thread, _ in spans.values()}) == 2
    # The caption reads CLIP's rows and the face and OCR boxes: it starts once all three are done.
    assert spans["caption"][3] == {"clip", "face_emotion", "ocr_sentiment"}
    assert spans["caption"][0] >= max(spans[name][1] for name in ("clip", "face_emotion", "ocr_sentiment"))
    # The report keeps the registry's order, whichever finished first.
    assert list(together.outputs) == list(analyzer.extractors)
    assert list(together.timings)[: 1 + len(analyzer.extractors)] == ["media", *analyzer.extractors]
    # Progress: the stages running at each moment, and a count that only grows.
    assert stages[0][0] == "media" and stages[-1][0] == "done" and stages[-1][1] == stages[-1][2]
    assert any(" + " in stage for stage, _, _ in stages)
    assert [done for _, done, _ in stages] == sorted(done for _, done, _ in stages)

    monkeypatch.setattr(analyzer, "parallel", 1)
    spans.clear()
    alone = analyzer.analyze(videos["sample"])
    assert "internal error" in alone.outputs["clip"].missing  # gated: alone, clip never meets beats
    for name, output in together.outputs.items():
        if name in ("clip", "beats", "caption"):  # their gate broke above; caption reads clip's rows
            continue
        np.testing.assert_array_equal(output.feature, alone.outputs[name].feature, err_msg=name)
    monkeypatch.undo()
    again = analyzer.analyze(videos["sample"])
    for name in ("clip", "beats"):
        np.testing.assert_array_equal(together.outputs[name].feature, again.outputs[name].feature, err_msg=name)
    assert together.outputs["caption"].text == again.outputs["caption"].text
    np.testing.assert_allclose(together.probabilities, again.probabilities, rtol=1e-6)


def test_parallel_must_be_at_least_one(models):
    with pytest.raises(OptionError, match="parallel"):
        Analyzer(["clip"], models_dir=models, device="cpu", classifier=None, parallel=0)


@pytest.mark.slow
def test_video_without_audio_is_a_partial_result(analyzer, videos):
    result = analyzer.analyze(videos["silent_no_audio"])
    assert result.missing["beats"] == "no audio track" and result.missing["asr_sentiment"] == "no audio track"
    assert result.missing["face_emotion"].startswith("no face")
    assert result.outputs["clip"].ok and result.probabilities is not None


def test_audio_only_file_is_a_partial_result(analyzer, videos):
    result = analyzer.analyze(videos["audio_only"])
    assert result.missing["clip"] == "no video frames" and result.missing["caption"] == "no video frames"
    assert result.outputs["beats"].ok
    assert any("no video stream" in w for w in result.warnings)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vertical_vfr", "uhd", "unicode"])
def test_odd_but_valid_videos(analyzer, videos, name):
    result = analyzer.analyze(videos[name])
    frames = result.frames.images
    native = min(result.info.width, result.info.height)
    upscale = result.recipe["frames"]["upscale"]  # the reference recipe brings small videos up to 360
    assert len(frames) == 16 and min(frames.shape[1:3]) == (360 if upscale else min(360, native))
    assert np.all(np.diff(result.frames.timestamps) >= 0)
    assert result.outputs["clip"].ok


@pytest.mark.slow
def test_without_classifier_all_outputs_are_still_produced(models, videos):
    analyzer = Analyzer(["clip", "ocr_sentiment"], models_dir=models, device="cpu", classifier=None)
    result = analyzer.analyze(videos["sample"])
    assert result.probabilities is None and result.outputs["ocr_sentiment"].ok
    assert "no emotion classifier was used" in result.summary()


def test_skip_unavailable_lists_what_is_missing(models, tmp_path, videos):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "openai").symlink_to(models / "openai", target_is_directory=True)  # only CLIP
    analyzer = Analyzer(
        ["clip", "beats"], models_dir=partial, device="cpu", skip_unavailable=True, classifier=None
    ).load()
    assert "beats" in analyzer.unavailable and "beats" not in analyzer.extractors
    result = analyzer.analyze(videos["sample"])
    assert result.outputs["clip"].ok and "beats" in result.missing and "download-models" in result.missing["beats"]


@pytest.mark.parametrize("kind", ["text", "truncated", "missing"])
def test_bad_files_raise_one_line_media_errors(analyzer, videos, tmp_path, kind):
    if kind == "text":
        path = write_text_file(tmp_path / "notes.mp4")
    elif kind == "truncated":
        data = videos["sample"].read_bytes()
        path = tmp_path / "cut.mp4"
        path.write_bytes(data[: len(data) // 3])
    else:
        path = tmp_path / "nowhere.mp4"
    with pytest.raises((MediaError, ValueError)) as info:
        analyzer.analyze(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


def _cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "vemoclap.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("source", ["notes", "ftp://example.com/a.mp4", "missing.mp4"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, source):
    if source == "notes":
        source = write_text_file(tmp_path / "notes.mp4")
    run = _cli("analyze", source, "--extractors", "clip", "--models-dir", tmp_path, "-q")
    assert run.returncode == 2
    assert run.stderr.startswith("vemoclap: ") and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


def test_cli_missing_model_exits_2_naming_it(tmp_path, videos):
    run = _cli("analyze", videos["sample"], "--extractors", "clip", "--models-dir", tmp_path, "-q")
    assert run.returncode == 2 and "'clip'" in run.stderr and "download-models" in run.stderr


@pytest.mark.slow
def test_cli_report_json_and_save(models, videos, tmp_path):
    run = _cli(
        "analyze",
        videos["sample"],
        "--models-dir",
        models,
        "--classifier",
        models / "classifier",
        "--extractors",
        "clip,face_emotion,ocr_sentiment",
        "--face-detector",
        "opencv",
        "--json",
        tmp_path / "r.json",
        "--save",
        tmp_path / "out",
        "-q",
    )
    assert run.returncode == 0, run.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["top_label"] in run.stdout and "WONDERFUL" in run.stdout.upper()
    assert (tmp_path / "out" / "timeline.png").is_file()
    # why this emotion: the report's sentence is the one the saved result makes
    from vemoclap.results import Result

    why = Result.from_json(tmp_path / "r.json").explanation
    assert f"  why: {why.sentence()}" in run.stdout.splitlines() and why.missing == ("beats", "asr_sentiment")
    assert (tmp_path / "out" / "contributions.png").is_file()


@pytest.mark.slow
def test_cli_internal_bug_exits_1_with_the_traceback_logged(models, videos, tmp_path):
    """A numpy error inside an extractor (a ValueError subclass) is a bug, not bad input."""
    script = (
        "import sys, numpy as np\n"
        "from vemoclap.extractors import clip\n"
        "def broken(self, clip_):\n"
        "    np.linalg.inv(np.zeros((2, 2)))\n"  # raises LinAlgError, a ValueError
        "clip.ClipExtractor._run = broken\n"
        "from vemoclap.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**__import__("os").environ, "VEMOCLAP_LOG_DIR": str(tmp_path / "logs")}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "analyze",
            str(videos["sample"]),
            "--models-dir",
            str(models),
            "--classifier",
            str(models / "classifier"),
            "--extractors",
            "clip",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert run.returncode == 1, run.stderr
    assert "bug" in run.stderr and "Traceback" not in run.stderr
    logs = list((tmp_path / "logs").glob("*.log"))
    assert len(logs) == 1 and "LinAlgError" in logs[0].read_text() and str(logs[0]) in run.stderr
    assert "internal error" in run.stdout  # the report still printed, naming the failed extractor


def test_the_reference_classifier_runs_4_heads_and_the_result_says_they_are_unverified(models, videos):
    """The default classifier (reference layout; its config says 8 heads) runs the reference app's 4,
    and the Result says in one line that the count is unverified, unless the user sets it."""
    default = Analyzer(["clip"], models_dir=models, device="cpu")
    result = default.analyze(videos["sample"])
    assert default.classifier.config.num_heads == 4
    assert [w for w in result.warnings if "unverified" in w] and "attention heads: 4" in result.summary()
    settled = Analyzer(["clip"], models_dir=models, device="cpu", heads=8).analyze(videos["sample"])
    assert not [w for w in settled.warnings if "unverified" in w]
