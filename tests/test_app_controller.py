"""The app's controller without widgets: loading through the Analyzer's own callbacks, choosing a
source (Colab's uploader and Drive through a stand-in), running, exports. Tiny models of the real
classes; OpenCV's real face detector finds the generated sample's astronaut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vemoclap import samples
from vemoclap.app import cache, colab
from vemoclap.app.controller import Controller, NothingToCut, Progress
from vemoclap.errors import UserError
from vemoclap.sources import SourceError

STANDINS = Path(__file__).resolve().parent / "standins"
FAST = {"face_detector": "opencv", "frames": 4}


@pytest.fixture(autouse=True)
def _sample_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VEMOCLAP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def standin_colab(monkeypatch, tmp_path):
    """Colab's ``google.colab`` as the stand-in in tests/standins (it follows the documented API)."""
    monkeypatch.syspath_prepend(str(STANDINS))
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("VEMOCLAP_DRIVE", str(tmp_path / "drive"))
    monkeypatch.chdir(tmp_path)
    assert colab.on_colab()
    yield tmp_path
    # what the stand-in imported must not make later tests (in this process) think they run on Colab
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        del sys.modules[name]
    google = sys.modules.get("google")
    if google is not None and all(str(STANDINS) in str(p) for p in getattr(google, "__path__", [])):
        del sys.modules["google"]


def test_package_imports_no_widgets():
    code = (
        "import sys, vemoclap.app, vemoclap.app.controller, vemoclap.app.launch, vemoclap.cli; "
        "assert 'ipywidgets' not in sys.modules, 'widgets imported'"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_load_builds_the_analyzer_once_and_reports_each_model(tiny_models, tmp_path, monkeypatch):
    from vemoclap import pipeline

    builds = []
    original = pipeline.Analyzer.__init__

    def counting(self, *args, **kwargs):
        builds.append(kwargs.get("classifier"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.Analyzer, "__init__", counting)
    cache.clear_cache()
    controller = Controller(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        extractors=["clip", "face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path,
    )
    seen: list[tuple[str, str]] = []
    progress: list[Progress] = []
    loaded = controller.load(lambda name, state: seen.append((name, state.status)), progress.append)
    assert len(builds) == 1
    assert controller.model_names() == ["classifier", "clip", "face_emotion"]
    assert seen == [
        ("classifier", "loading"),
        ("classifier", "loaded"),
        ("clip", "loading"),
        ("clip", "loaded"),
        ("face_emotion", "loading"),
        ("face_emotion", "loaded"),
    ]
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress) and progress[-1].fraction == 1.0
    assert all(state.ok and state.seconds >= 0 for state in loaded.states.values())
    assert controller.load_summary() == ("all models are loaded", True)
    # a second controller of the same configuration adopts the cached models
    again = Controller(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        extractors=["clip", "face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path,
    )
    assert again.load() is loaded and len(builds) == 1 and loaded.loads == 1


@pytest.mark.slow
def test_missing_model_and_broken_classifier_are_rows_not_failures(tiny_models, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "trpakov").symlink_to(tiny_models / "trpakov", target_is_directory=True)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "classifier.json").write_text("{ not json")
    cache.clear_cache()
    controller = Controller(
        models_dir=models,
        classifier=broken,
        extractors=["clip", "face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
    )
    states = controller.load().states
    assert states["classifier"].status == "unavailable" and "extractor outputs only" in states["classifier"].reason
    assert states["clip"].status == "unavailable" and "download-models" in states["clip"].reason
    assert states["face_emotion"].ok
    text, ok = controller.load_summary()
    assert not ok and "clip" in text and "classifier" in text
    result = controller.run()
    assert not result.has_prediction and "clip" in result.missing
    # the user never chose to go without a classifier: the result says why there is none
    from vemoclap.results import NO_CLASSIFIER

    assert NO_CLASSIFIER not in result.warnings and NO_CLASSIFIER not in result.summary()
    assert any(w.startswith("no emotion classifier: the classifier could not be loaded") for w in result.warnings)


@pytest.mark.slow
def test_run_failure_leaves_no_result(tiny_models, tmp_path):
    controller = Controller(
        models_dir=tiny_models, extractors=["face_emotion"], analyzer_options=FAST, output_dir=tmp_path
    )
    first = controller.run()
    assert controller.result is first and first.outputs["face_emotion"].n_faces >= 1
    controller.source_kind, controller.url = "link", "ftp://x"
    with pytest.raises(SourceError):
        controller.run()
    assert controller.result is None and "only http(s) links" in controller.last_error


@pytest.mark.slow
def test_path_source_is_checked(tiny_models, tmp_path):
    from vemoclap.generated_video import make_sample

    controller = Controller(
        models_dir=tiny_models, extractors=["face_emotion"], analyzer_options=FAST, output_dir=tmp_path / "out"
    )
    controller.source_kind = "path"
    for text, needle in [("", "type the path"), (str(tmp_path / "nope.mp4"), "no such file")]:
        controller.path_text = text
        with pytest.raises(SourceError, match=needle):
            controller.chosen_source()
    (tmp_path / "notes.txt").write_text("hello")
    controller.path_text = str(tmp_path / "notes.txt")
    with pytest.raises(SourceError, match="not a video file"):
        controller.chosen_source()
    video = make_sample(tmp_path / "my clip.mp4", seconds=1.0, size=(320, 180), fps=10)
    controller.path_text = f'  "{video}" '
    assert controller.chosen_source() == video
    result = controller.run()
    assert result.info.duration == pytest.approx(1.0, abs=0.2)


def test_colab_upload_through_the_standin(standin_colab, tiny_models, monkeypatch):
    from vemoclap.generated_video import make_sample

    work = standin_colab
    picked = make_sample(work / "picked" / "holiday.mp4", seconds=1.0, size=(320, 180), fps=10)
    (work / "holiday.mp4").write_bytes(b"an older file of the same name")  # Colab then writes "holiday (1).mp4"
    monkeypatch.setenv("VEMOCLAP_STANDIN_UPLOAD", str(picked))
    controller = Controller(
        models_dir=tiny_models, extractors=["face_emotion"], analyzer_options=FAST, output_dir=work / "out"
    )
    assert controller.on_colab and controller.fetch_models  # on Colab step 2 fetches by default
    path, text = controller.colab_upload()
    assert path.read_bytes() == picked.read_bytes() and "holiday.mp4 is ready" in text
    assert (work / "out" / "uploads") in path.parents
    assert not (work / "holiday (1).mp4").exists()  # Colab's copy in the cwd is moved, not kept twice
    assert (work / "holiday.mp4").read_bytes() == b"an older file of the same name"
    controller.source_kind = "upload"
    assert controller.chosen_source() == path

    controller.colab_upload_bytes = 100  # over the cap: refused with where to go instead
    with pytest.raises(SourceError, match="upload limit; put it on Google Drive"):
        controller.colab_upload()
    monkeypatch.delenv("VEMOCLAP_STANDIN_UPLOAD")
    assert controller.colab_upload() is None  # the person closed the chooser


def test_drive_model_cache_and_gpu_warning(standin_colab, tmp_path, monkeypatch):
    from google.colab import drive

    controller = Controller(output_dir=tmp_path / "out", device="cpu")
    rows, warnings = controller.setup_rows()
    assert any("no GPU" in w and "T4" in w for w in warnings)
    where = controller.use_drive_models()
    assert drive.mounted[-1] == str(tmp_path / "drive")
    assert where == tmp_path / "drive" / "MyDrive" / "vemoclap-models" and where.is_dir()
    assert controller.models_dir == where and controller.fetch_models


def test_fetch_follows_the_download_contract(tmp_path, monkeypatch):
    from vemoclap import models

    calls = []

    def download_models(directory, only=None, whisper_sizes=None, progress=None):
        calls.append((Path(directory), only))
        progress("clip", 0, 4 * 2**20)
        progress("clip", 4 * 2**20, 4 * 2**20)

    monkeypatch.setattr(models, "download_models", download_models)
    controller = Controller(models_dir=tmp_path / "models", extractors=["clip"], output_dir=tmp_path)
    shown: list[Progress] = []
    assert "fetched" in controller.fetch(shown.append)
    assert calls[0][0] == tmp_path / "models" and calls[0][1] == ["classifier", "clip"]  # the default classifier too
    assert shown[1] == Progress("fetching clip: 4 of 4 MB", 1.0)


@pytest.mark.slow
def test_samples_and_nothing_to_cut(tiny_models, tmp_path, monkeypatch):
    assert samples.names()[0] == "sample"
    controller = Controller(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path,
    )
    assert "sample" in controller.samples.values()
    result = controller.run()
    monkeypatch.setattr(type(result), "emotion_segments", lambda self, emotion: [])
    with pytest.raises(NothingToCut, match="leads for the whole video.*clips follow the windows"):
        controller.emotion_clips(result.top_label)
    assert issubclass(NothingToCut, UserError)


def _assert_text_matches_bar(progress: list[Progress]) -> None:
    """A percent in the text is the bar's own fraction, never more than 100 %."""
    import re

    assert progress
    for p in progress:
        assert 0.0 <= p.fraction <= 1.0, p
        shown = re.search(r"(\d+)\s*%", p.text)
        if shown:
            assert int(shown.group(1)) == round(100 * p.fraction), p


@pytest.mark.slow
def test_export_progress_says_what_the_bar_shows(tiny_models, tmp_path):
    from vemoclap.generated_video import make_sample

    controller = Controller(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
    )
    controller.source_kind = "path"
    controller.path_text = str(make_sample(tmp_path / "clip.mp4", seconds=2.0, size=(320, 180), fps=10))
    shown: list[Progress] = []
    result = controller.run(shown.append)
    _assert_text_matches_bar(shown)
    shown.clear()
    cost = controller.annotation_cost()  # the face model on every k-th frame, k as `--every auto` picks it
    assert cost.frames == 20 and 1 <= cost.every <= 20
    assert cost.line(option=False).startswith("annotating 20 frames") and "--every" not in cost.line(option=False)
    video, csv_path = controller.annotated_video(shown.append)
    assert video.is_file() and csv_path.is_file()
    _assert_text_matches_bar(shown)
    assert shown[-1] == Progress("annotating: 100%", 1.0)
    shown.clear()
    emotion = controller.timeline(result).windows["top"].iloc[0]
    clips, segments = controller.emotion_clips(emotion, shown.append)
    assert clips.is_file() and segments
    _assert_text_matches_bar(shown)
    assert shown[-1].fraction == pytest.approx(1.0, abs=0.05)
    # a header that undercounts frames, or a stream without a count
    report = Controller._export_progress("annotating", shown.append, "frames")
    report("annotating", 130, 100)
    report("annotating", 37, None)
    assert shown[-2:] == [Progress("annotating: 100%", 1.0), Progress("annotating: 37 frames", 0.0)]


def test_load_step_with_nothing_there_shows_failure_never_success(tmp_path):
    from vemoclap.app import VemoclapApp

    cache.clear_cache()
    app = VemoclapApp(
        models_dir=tmp_path / "empty",
        extractors=["clip"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
        fetch_models=False,
    )
    controller, step = app.controller, app.steps["load"]  # the step object owns its widgets and action
    # the cost up front, from the model table: the reference classifier and CLIP, nothing there yet
    cost = controller.cost()
    assert [key for key, _ in cost.wanted] == ["classifier", "clip"] and cost.download_mib == cost.disk_mib > 0
    assert f"{cost.disk_mib:,} MiB on disk" in step.cost.value and "2 missing" in step.cost.value
    step.load()
    assert controller.load_summary() == ("no extractor could be loaded (classifier, clip); see each row for why", False)
    assert step.progress.bar.bar_style == "danger" and "the models are loaded" not in step.progress.label.value
    assert "no extractor could be loaded" in step.message.value and "the models are loaded" not in step.message.value
    assert controller.analyzer.classifier_missing.startswith("the classifier could not be loaded")
    assert "download-models" in controller.loaded.states["classifier"].reason  # why, and the fix
