"""The notebook app driven like a person would: buttons clicked, sources chosen, files uploaded.

Tiny models of the real classes (``make_tiny_models``) on the generated sample; OpenCV's real face
detector finds the astronaut, rapidocr's real models read the sample's title.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from app_widget_checks import CHECKS, upload  # noqa: E402

from vemoclap import app as app_module  # noqa: E402
from vemoclap.app import VemoclapApp, launch  # noqa: E402
from vemoclap.app.guard import PageGuard  # noqa: E402

# A Python with Colab's ipywidgets 7.7.1 (README, "For developers", says how to make one).
IPYW7_PYTHON = Path(os.environ["VEMOCLAP_IPYW7_PYTHON"]) if os.environ.get("VEMOCLAP_IPYW7_PYTHON") else None

PNG = b"\x89PNG\r\n\x1a\n"
# Fast settings for tiny models on 2 CPUs: fewer frames, Whisper without temperature fallback.
FAST = {"face_detector": "opencv", "frames": 4, "extractor_options": {"asr_sentiment": {"temperature": 0.0}}}


@pytest.fixture(scope="module", autouse=True)
def _sample_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VEMOCLAP_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def texts(app: VemoclapApp) -> list[str]:
    """Every piece of text the app shows (HTML, labels, text fields)."""
    found = []
    for widget in app.all_widgets():
        value = getattr(widget, "value", None)
        if isinstance(value, str):
            found.append(value)
        description = getattr(widget, "description", None)
        if isinstance(description, str):
            found.append(description)
    return found


def visible_text(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup).strip()


def assert_one_line(markup: str, *needles: str) -> None:
    text = visible_text(markup)
    assert text, "expected a message"
    assert "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def assert_no_traceback(app: VemoclapApp) -> None:
    for text in texts(app):
        assert "Traceback" not in text and 'File "' not in text, text


@pytest.fixture(scope="module")
def ran(tiny_models, tmp_path_factory) -> VemoclapApp:
    """The default extractor set with the classifier, loaded and run on the sample by button clicks."""
    app_module.clear_cache()
    app = VemoclapApp(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        analyzer_options=FAST,
        output_dir=tmp_path_factory.mktemp("out"),
    )
    app.widget()
    app.steps["load"].button.click()
    app.steps["source"].toggle.value = "sample"
    assert app.steps["pick"].sample.value == "sample"
    app.steps["run"].button.click()
    return app


@pytest.mark.slow
def test_load_rows_show_every_model_loaded(ran):
    from vemoclap.registry import default_extractors

    assert list(ran.steps["load"].rows) == ["classifier", *default_extractors()]
    for name, row in ran.steps["load"].rows.items():
        assert "loaded" in row.status.value and row.progress.value == 1, (name, row.status.value)
        assert row.seconds.value.endswith(" s")
    assert "all models are loaded" in ran.steps["load"].message.value
    assert set(ran.analyzer.extractors) == set(default_extractors())


def test_steps_1_and_2_say_which_models_are_random(ran):
    setup = visible_text(ran.steps["setup"].html.value)
    assert "RANDOM WEIGHTS: the models folder holds tiny randomly initialised models" in setup
    for key in ("classifier", "clip", "face_expression", "whisper"):
        assert key in setup
    assert "tiny RANDOM classifier" in setup and "fetched and verified" not in setup
    loaded = visible_text(ran.steps["load"].message.value)
    assert "all models are loaded" in loaded and "RANDOM WEIGHTS:" in loaded and "partly" not in loaded
    for name in ["classifier", *ran.analyzer.extractors]:
        assert name in loaded.split("RANDOM WEIGHTS:")[1], name


def test_step_1_names_the_random_models_of_a_partly_random_folder(tiny_models, tmp_path):
    """The provenance of what is in the folder, not what the default would be."""
    import shutil

    from vemoclap.app.controller import Controller
    from vemoclap.models import target_path, write_provenance

    folder = tmp_path / "models"
    shutil.copytree(target_path("classifier", tiny_models), target_path("classifier", folder))
    trained = target_path("face_expression", folder)
    shutil.copytree(target_path("face_expression", tiny_models), trained)
    write_provenance(trained, {"origin": "download", "verified": "sha256"})
    rows, warnings = Controller(models_dir=folder, output_dir=tmp_path / "out").setup_rows()
    assert any("RANDOM WEIGHTS: partly random: the models folder" in w and "for classifier:" in w for w in warnings)
    assert "tiny RANDOM classifier" in dict(rows)["classifier"]
    shutil.rmtree(target_path("classifier", folder))
    rows, warnings = Controller(models_dir=folder, output_dir=tmp_path / "out").setup_rows()
    assert not any("RANDOM" in w for w in warnings) and "RANDOM" not in dict(rows)["classifier"]


def test_run_shows_real_results(ran):
    result = ran.result
    assert result is not None and result.has_prediction, visible_text(ran.steps["run"].message.value)
    assert set(result.outputs) == set(ran.analyzer.extractors)
    for image in (
        ran.steps["run"].chart,
        ran.steps["run"].circumplex,
        ran.steps["run"].why,
        ran.steps["run"].frame,
        ran.steps["run"].timeline,
    ):
        assert image.value[:8] == PNG and len(image.value) > 5000
    summary = ran.steps["run"].summary.value
    assert f">{result.top_label}</span>" in summary and f"{result.top_probability:.0%}" in summary
    assert "vemoclap result for sample" in summary  # the full text report
    # why this emotion: the sentence under the probabilities, its chart beside theirs
    assert f"why: {html.escape(result.explanation.sentence())}</div>" in summary
    charts = next(w for w in ran.steps["run"].results.children if ran.steps["run"].chart in getattr(w, "children", ()))
    assert ran.steps["run"].why in charts.children
    details = ran.steps["run"].details.value
    # rapidocr's real models read the sample's title; OpenCV's real detector finds the astronaut
    assert "WONDERFUL" in details.upper()
    faces = result.outputs["face_emotion"]
    assert faces.n_faces >= 1 and f"faces ({faces.detector}): {faces.n_faces}" in details
    # every output that ran describes itself, in its own words: one section each
    for name, output in result.outputs.items():
        if not output.missing:
            assert f"data-extractor='{name}'" in details
            for line in output.describe():
                assert html.escape(line.strip()) in details
    assert (
        ran.steps["run"].progress.bar.value == ran.steps["run"].progress.bar.max
        and ran.steps["run"].progress.bar.bar_style == "success"
    )
    assert ran.steps["run"].progress.label.value.startswith("done in")
    downloads = ran.steps["run"].downloads.value
    assert 'download="sample_result.json"' in downloads and "data:text/csv;base64," in downloads
    assert ran.steps["run"].results.children and ran.steps["run"].message.value == ""
    assert_no_traceback(ran)


def test_clips_say_the_headline_is_for_the_whole_video(ran):
    """Beside "Make emotion clips" the page says that clips follow the timeline's windows while
    the headline is the whole video's; an emotion on top of no window says so in one line."""
    shown = " ".join(
        visible_text(w.value) for w in ran.steps["run"].results.children if isinstance(getattr(w, "value", None), str)
    )
    assert "whole video" in shown and "window" in shown
    tops = set(ran.controller.timeline().windows["top"])
    absent = [e for e in ran.result.labels if e not in tops]
    if not absent:
        pytest.skip("every emotion leads some window of this run")
    link = ran.steps["run"].video_message.value
    assert ran.make_emotion_clips(absent[0]) is None
    assert_one_line(
        ran.steps["run"].clips_message.value, f"no window of the timeline has {absent[0]} on top", "whole video"
    )
    assert ran.steps["run"].video_message.value == link and ran.steps["run"].progress.label.value == ""
    assert_no_traceback(ran)


def test_rerun_keeps_models_loaded(ran, tiny_models):
    before = dict(ran.analyzer.extractors)
    loaded = app_module.cached_models()
    ran.steps["load"].button.click()  # rerunning step 2
    assert dict(ran.analyzer.extractors) == before
    again = VemoclapApp(
        models_dir=tiny_models, classifier=tiny_models / "classifier", analyzer_options=FAST, output_dir=ran.output_dir
    )  # rerunning step 1 builds a new app
    again.load_step()
    assert again.analyzer is ran.analyzer  # shown as loaded before the button is pressed
    again.steps["load"].button.click()
    assert again.analyzer is ran.analyzer
    assert all(again.analyzer.extractors[name] is extractor for name, extractor in before.items())
    # built once: neither the rerun nor the new app loaded anything again
    assert [m.loads for m in app_module.cached_models().values()] == [m.loads for m in loaded.values()] == [1]
    assert all("kept from before" in row.status.value for row in again.steps["load"].rows.values())


def test_explorers_draw_the_last_result(ran):
    frames = ran.explore_frames()
    faces = ran.explore_faces()
    features = ran.explore_features()
    image = frames.children[0]
    assert image.value[:8] == PNG and len(image.value) > 5000
    assert "face crop(s)" in faces.children[0].value and faces.children[1].value[:8] == PNG
    table = features.children[0].value
    for name, output in ran.result.outputs.items():
        if output.feature is not None:
            assert f"<td>{name}</td>" in table and "×".join(map(str, output.feature.shape)) in table
    assert features.children[1].value[:8] == PNG


def test_figures_are_closed(ran):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    ran.explore_features()
    assert plt.get_fignums() == before
    assert np.all([len(w.value) > 0 for w in (ran.steps["run"].chart, ran.steps["run"].timeline)])


@pytest.mark.parametrize(
    "link, needle",
    [
        ("ftp://x", "only http(s) links"),
        ("http://127.0.0.1:9/video.mp4", "private or local"),
        ("video.mp4", "not a link"),
        ("", "paste a video link"),
    ],
)
def test_bad_links_give_one_line(ran, link, needle):
    frames = ran.explore_frames()
    ran.steps["source"].toggle.value = "link"
    assert ran.steps["pick"].url in ran.steps["pick"].box.children
    ran.steps["pick"].url.value = link
    ran.steps["run"].button.click()
    assert_one_line(ran.steps["run"].message.value, needle)
    # nothing of the previous video is left to look like this one's
    assert ran.result is None and not ran.steps["run"].results.children and not ran.steps["run"].chart.value
    assert "no result" in frames.children[0].value and needle in frames.children[0].value
    assert ran.steps["run"].progress.bar.bar_style == "danger" and "%" not in ran.steps["run"].progress.label.value
    assert_no_traceback(ran)
    ran.steps["source"].toggle.value = "sample"


@pytest.mark.slow
def test_link_is_downloaded_and_analyzed(tiny_models, tmp_path):
    """A link through yt-dlp's generic extractor, served from 127.0.0.1 (allowed for this app only)."""
    import functools
    import http.server
    import threading

    from vemoclap.generated_video import make_sample

    site = tmp_path / "site"
    make_sample(site / "holiday.mp4", seconds=1.5, size=(320, 180), fps=10)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        link = f"http://127.0.0.1:{server.server_address[1]}/holiday.mp4"
        app = VemoclapApp(
            models_dir=tiny_models,
            extractors=["face_emotion"],
            analyzer_options=FAST,
            output_dir=tmp_path / "out",
            allow_private=True,
        )
        app.widget()
        app.steps["source"].toggle.value = "link"
        app.steps["pick"].url.value = f"  {link} "
        app.steps["run"].button.click()
    finally:
        server.shutdown()
        server.server_close()
    assert app.result is not None, visible_text(app.steps["run"].message.value)
    assert app.result.source == link and app.result.info.duration == pytest.approx(1.5, abs=0.2)
    assert app.result.outputs["face_emotion"].n_faces >= 1
    # no classifier given: the default (the reference's, here its tiny stand-in) predicts, and says it is random
    assert "Emotion:" in app.steps["run"].summary.value and "RANDOM WEIGHTS" in app.steps["run"].summary.value
    assert_no_traceback(app)


_upload = upload


def test_text_file_named_mp4_is_refused(ran):
    ran.steps["source"].toggle.value = "upload"
    assert ran.steps["pick"].upload in ran.steps["pick"].box.children
    _upload(ran, "notes.mp4", b"these are my notes, not a video\n" * 20)
    assert ran.uploaded_path is None
    assert_one_line(ran.steps["pick"].upload_message.value, "notes.mp4: ")
    assert str(ran.output_dir) not in ran.steps["pick"].upload_message.value
    assert not list((ran.output_dir / "uploads").rglob("*.mp4"))  # the bad file is not kept
    ran.steps["run"].button.click()
    assert_one_line(ran.steps["run"].message.value, "upload a video file in step 4 first")
    assert_no_traceback(ran)
    ran.steps["source"].toggle.value = "sample"


@pytest.mark.parametrize("name", ["report.pdf", "../../evil.sh", "movie.mp4.exe", "noextension"])
def test_bad_extensions_are_refused(ran, name):
    _upload(ran, name, b"\x00" * 100)
    assert ran.uploaded_path is None
    assert_one_line(ran.steps["pick"].upload_message.value, "not a video file")
    assert [p for p in ran.output_dir.rglob("*") if p.is_file() and p.name != app_module.LOG_FILE] == []


def test_upload_too_big_is_refused(tiny_models, tmp_path):
    app = VemoclapApp(models_dir=tiny_models, max_upload_mb=0.001, output_dir=tmp_path)
    _upload(app, "big.mp4", b"\x00" * 5000)
    assert_one_line(app.steps["pick"].upload_message.value, "over the", "upload limit")
    assert app.uploaded_path is None


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_widget_checks(check, tiny_models, tmp_path):
    check(tiny_models, tmp_path)


def test_widget_checks_under_ipywidgets_7(tiny_models, tmp_path):
    """The same checks with Colab's ipywidgets 7.7.1, in an interpreter that has it."""
    if IPYW7_PYTHON is None or not IPYW7_PYTHON.is_file():
        pytest.skip(
            "IPYWIDGETS 7 CHECK NOT RUN: set VEMOCLAP_IPYW7_PYTHON to a Python with ipywidgets 7.7.1 "
            f"(README, 'For developers'){f'; {IPYW7_PYTHON} is not a file' if IPYW7_PYTHON else ''}"
        )
    root = Path(__file__).resolve().parent.parent
    version = subprocess.run(
        [str(IPYW7_PYTHON), "-c", "import ipywidgets; print(ipywidgets.__version__)"], capture_output=True, text=True
    )
    if version.stdout.strip() != "7.7.1":
        pytest.skip(f"{IPYW7_PYTHON} has ipywidgets {version.stdout.strip() or version.stderr.strip()[-200:]}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    run = subprocess.run(
        [str(IPYW7_PYTHON), str(root / "tests" / "app_widget_checks.py"), str(tiny_models), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("(ipywidgets 7.7.1)") == len(CHECKS), run.stdout


@pytest.mark.slow
def test_missing_model_is_one_line_and_listed(tiny_models, tmp_path):
    # A models dir with the face models but no CLIP: CLIP's row says so, the rest runs.
    partial = tmp_path / "models"
    partial.mkdir()
    (partial / "trpakov").symlink_to(tiny_models / "trpakov", target_is_directory=True)
    app = VemoclapApp(
        models_dir=partial,
        classifier=tiny_models / "classifier",
        extractors=["clip", "face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
    )
    app.widget()
    app.steps["load"].button.click()
    clip_row = app.steps["load"].rows["clip"]
    assert "unavailable" in clip_row.status.value and "clip" in clip_row.status.value
    assert clip_row.progress.bar_style == "danger"
    assert_one_line(clip_row.status.value, "download-models")
    assert "loaded" in app.steps["load"].rows["face_emotion"].status.value
    assert_one_line(app.steps["load"].message.value, "could not be loaded", "clip")
    app.steps["run"].button.click()
    result = app.result
    assert result is not None and "clip" in result.missing and result.has_prediction
    missing = app.steps["run"].missing.value
    assert "<b>clip</b>" in missing and "download-models" in missing
    assert "zeros were used" in missing  # features no extractor produced
    assert_no_traceback(app)


def test_corrupt_weights_fail_one_row_and_the_rest_runs(tiny_models, tmp_path):
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    (models / "openai").symlink_to(tiny_models / "openai", target_is_directory=True)
    face = models / "trpakov" / "vit-face-expression"
    shutil.copytree(tiny_models / "trpakov" / "vit-face-expression", face)
    weights = face / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])  # an interrupted download
    app = VemoclapApp(
        models_dir=models, extractors=["clip", "face_emotion"], analyzer_options=FAST, output_dir=tmp_path / "out"
    )
    app.widget()
    app.steps["load"].button.click()
    row = app.steps["load"].rows["face_emotion"]
    assert row.progress.bar_style == "danger" and ("failed" in row.status.value or "unavailable" in row.status.value)
    assert_one_line(row.status.value)
    assert "loaded" in app.steps["load"].rows["clip"].status.value
    app.steps["run"].button.click()
    assert app.result is not None and "clip" in app.result.outputs
    assert "face_emotion" in app.result.missing and "<b>face_emotion</b>" in app.steps["run"].missing.value
    assert_no_traceback(app)


@pytest.mark.slow
def test_broken_classifier_is_one_line_and_the_rest_runs(tiny_models, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "classifier.json").write_text("{ not json")
    (broken / "classifier.safetensors").write_bytes(b"junk")
    app = VemoclapApp(
        models_dir=tiny_models,
        classifier=broken,
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
    )
    app.widget()
    app.steps["load"].button.click()
    row = app.steps["load"].rows["classifier"]
    assert "unavailable" in row.status.value and "extractor outputs only" in row.status.value
    assert_one_line(row.status.value)
    assert "loaded" in app.steps["load"].rows["face_emotion"].status.value
    app.steps["run"].button.click()
    assert app.result is not None and not app.result.has_prediction
    assert "No emotion prediction" in app.steps["run"].summary.value
    assert_no_traceback(app)


def test_corrupt_video_is_one_line(tiny_models, tmp_path):
    from vemoclap.generated_video import make_sample

    good = make_sample(tmp_path / "good.mp4", seconds=1.0, size=(160, 90), fps=10).read_bytes()
    app = VemoclapApp(
        models_dir=tiny_models,
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
        samples={"cut file": str(tmp_path / "cut.mp4")},
    )
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 3])  # a truncated download
    app.widget()
    app.steps["source"].toggle.value = "sample"
    app.steps["pick"].sample.value = str(tmp_path / "cut.mp4")
    app.steps["run"].button.click()
    assert app.result is None
    assert_one_line(app.steps["run"].message.value, "cut.mp4", "not a readable media file")
    app.steps["source"].toggle.value = "upload"
    _upload(app, "my clip.mp4", good[: len(good) // 3])
    # the person's file name, not the path of our copy
    assert_one_line(app.steps["pick"].upload_message.value, "my clip.mp4: is not a readable media file")
    assert "uploads" not in app.steps["pick"].upload_message.value and app.uploaded_path is None
    assert_no_traceback(app)


def test_setup_step_reports_device_and_versions(tiny_models, tmp_path):
    app = VemoclapApp(models_dir=tiny_models, output_dir=tmp_path)
    text = visible_text(app.setup_step().children[0].value)
    assert "CPU" in text or "GPU" in text
    for name in ("torch", "transformers", "ipywidgets", str(tiny_models)):
        assert name in text
    # the folder holds tiny models: step 1 says so and names them, not what the default would be
    assert "RANDOM WEIGHTS" in text and "classifier" in text and "trained classifier" not in text
    assert app.setup_step() is app.setup_step()  # rerunning the cell shows the same widget


@pytest.mark.slow
def test_page_and_notebook_each_have_their_own_words(tmp_path):
    """The page `vemoclap app` serves speaks of no cells, installs, Colab or `app.result`; the
    notebook does. On the page, no widget speaks of cells either, whatever source is chosen."""
    from vemoclap.app.notebook import notebook_cells

    def words(page: bool) -> str:
        return " ".join(source for kind, source in notebook_cells(page=page) if kind == "markdown").lower()

    for word in ("cell", "colab", "app.result", "install", "run all"):
        assert word not in words(page=True), word
    for word in ("cell", "colab", "app.result", "install"):
        assert word in words(page=False), word
    app = VemoclapApp(output_dir=tmp_path)
    app.widget()
    assert not app.on_colab
    for _, kind in app.controller.source_choices():
        app.steps["source"].toggle.value = kind
        shown = " ".join(visible_text(text) for text in texts(app)).lower()
        assert "cell" not in shown and "colab" not in shown, (kind, shown)


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VEMOCLAP_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("VEMOCLAP_EXTRACTORS", "clip, face_emotion")
    monkeypatch.setenv("VEMOCLAP_FACE_DETECTOR", "opencv")
    monkeypatch.setenv("VEMOCLAP_FRAMES", "4")
    monkeypatch.setenv("VEMOCLAP_OUTPUT_DIR", str(tmp_path / "out"))
    app = VemoclapApp.from_env(classifier="")
    assert app.models_dir == tmp_path and app.classifier is None
    assert app.extractor_names == ["clip", "face_emotion"]
    assert app.analyzer_options == {"face_detector": "opencv", "frames": 4}
    assert app.output_dir == tmp_path / "out"
    monkeypatch.setenv("VEMOCLAP_FRAMES", "many")
    with pytest.raises(ValueError, match="whole number"):
        VemoclapApp.from_env()


def test_app_command_arguments():
    parser = argparse.ArgumentParser(prog="vemoclap")
    sub = parser.add_subparsers(dest="command", required=True)
    app_module.add_commands(sub)
    args = parser.parse_args(["app", "--port", "9999", "--no-browser", "--models-dir", "w", "--classifier", "c"])
    assert (args.port, args.no_browser, args.models_dir, args.classifier) == (9999, True, Path("w"), Path("c"))
    assert args.func is launch.cmd_app
    command = app_module.voila_command(Path("nb.ipynb"), 9999, PageGuard.new())
    assert "--Voila.ip=127.0.0.1" in command and "--no-browser" in command and "--port=9999" in command


def test_missing_model_path_is_one_line(capsys, tmp_path):
    code = app_module.main(["--no-browser", "--models-dir", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such file or folder" in err


@pytest.mark.slow
def test_no_annotated_video_is_offered_when_no_face_is_found(tiny_models, tmp_path):
    from vemoclap.app.controller import Controller, NothingToCut
    from vemoclap.synth import make_video

    blank = make_video(
        tmp_path / "blank.mp4", duration=1.0, size=(160, 96), frame_fn=lambda i: np.full((96, 160, 3), 90, np.uint8)
    )
    controller = Controller(
        models_dir=tiny_models,
        classifier=tiny_models / "classifier",
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=tmp_path / "out",
    )
    controller.source_kind, controller.path_text = "path", str(blank)
    controller.run()
    with pytest.raises(
        NothingToCut, match=r"^no face was found in any of the 25 frames of .*, so no annotated video was written$"
    ):
        controller.annotated_video()
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_each_step_is_written_once_in_the_steps_table(tmp_path):
    """Number, title, cell and class of each step come from STEPS: the page, the notebook, the app's
    column and the controller's messages all say them from there; the app has no second names."""
    from vemoclap.app import steps as step_classes
    from vemoclap.app.notebook import notebook_cells
    from vemoclap.app.step_table import STEP, STEPS
    from vemoclap.sources import SourceError

    assert [s.number for s in STEPS] == [1, 2, 3, 4, 5] and len({s.key for s in STEPS}) == 5
    for page in (True, False):
        cells = notebook_cells(page=page, wheel=("vemoclap-0-py3-none-any.whl", b"wheel"))
        headings = [source for kind, source in cells if kind == "markdown" and source.startswith("## ")]
        assert headings[:5] == [f"## {s.heading}" for s in STEPS]
        codes = [source for kind, source in cells if kind == "code"]
        for step in STEPS:  # one cell opens with the step's comment, and it shows that step
            (cell,) = [c for c in codes if c.startswith(step.comment(""))]
            assert f"app.{step.key}_step()" in cell
    app = VemoclapApp(output_dir=tmp_path)
    shown = [visible_text(w.value) for w in app.widget().children[::2]]
    assert shown == [s.heading for s in STEPS]
    assert [type(app.step(s.key)).__name__ for s in STEPS] == [s.factory for s in STEPS]
    assert all(isinstance(app.steps[s.key], getattr(step_classes, s.factory)) for s in STEPS)
    # the step objects are the only names of their widgets: no alias properties on the app
    aliases = [name for name, value in vars(VemoclapApp).items() if isinstance(value, property)]
    assert aliases == []
    with pytest.raises(AttributeError):
        app.run_button  # noqa: B018
    # step 5 owns its button's action; the controller's messages name the step from the table
    app.controller.source_kind = "link"
    app.steps["run"].button.click()
    assert_one_line(app.steps["run"].message.value, f"paste a video link in {STEP['pick'].name} first")
    with pytest.raises(SourceError, match=f"run {STEP['run'].name} first"):
        app.controller.export_dir()
