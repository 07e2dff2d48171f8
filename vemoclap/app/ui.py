"""The five-step widget app: the controller plus one widget class per step.

Works with ipywidgets 7.7 (Colab's own) and 8 (Jupyter, Voila). Figures are PNG bytes in
``widgets.Image`` so they look the same in Colab, Jupyter, Voila and tests; everything a person can
get wrong ends as one line in a message widget, tracebacks go to the log file.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..draw.figures import faces_figure, features_heatmap, figure_png, frames_grid
from ..errors import one_line
from ..samples import GENERATED
from ..sources import is_url
from ._widgets import walk, widgets
from .controller import Controller, describe_error, settings_from_env
from .logs import quiet
from .steps import Explorer, LoadStep, PickStep, RunStep, SetupStep, SourceStep, _log_failure
from .views import (
    details_html,
    downloads_html,
    features_table_html,
    file_html,
    message_html,
    missing_html,
    summary_html,
    visible_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import Result

log = logging.getLogger(__name__)

TITLES = ["1 · Setup", "2 · Load the models", "3 · Choose the source", "4 · Pick the video", "5 · Run and show"]


class VemoclapApp:
    """The five-step widget app. Widgets are public attributes so tests (and users) can drive it.

    Arguments are the :class:`Controller`'s: ``samples`` maps a label to a source offered beside
    vemoclap's samples; ``analyzer_options`` go to :class:`vemoclap.pipeline.Analyzer`; files the app
    writes (uploads, exports, its log) go under ``output_dir`` (default ``./vemoclap_outputs``).
    """

    def __init__(self, **settings: Any):
        self.controller = Controller(**settings)
        self._busy = False
        self._steps: dict[str, Any] = {}
        self._explorers: dict[str, Explorer] = {}
        self.setup = None
        self.loader = LoadStep(self.controller, self._working)
        self.chooser = SourceStep(self.controller)
        self.picker = PickStep(self.controller, self.chooser)
        self.runner = RunStep()
        self.runner.button.on_click(lambda _: self.run())
        self.runner.video_button.on_click(lambda _: self.make_annotated_video())
        self.runner.clips_button.on_click(lambda _: self.make_emotion_clips())

    @classmethod
    def from_env(cls, **overrides: Any) -> "VemoclapApp":
        """An app configured from VEMOCLAP_* environment variables; non-empty ``overrides`` win."""
        settings = settings_from_env()
        settings.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**settings)

    # ---- what tests and users reach -----------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # settings and state live on the controller (models_dir, output_dir, result, analyzer, ...)
        if name in ("controller", "loader", "chooser", "picker", "runner"):
            raise AttributeError(name)
        return getattr(self.controller, name)

    load_button = property(lambda self: self.loader.button)
    load_message = property(lambda self: self.loader.message)
    model_rows = property(lambda self: self.loader.rows)
    source = property(lambda self: self.chooser.toggle)
    sample_dropdown = property(lambda self: self.picker.sample)
    url_text = property(lambda self: self.picker.url)
    path_text = property(lambda self: self.picker.path)
    upload = property(lambda self: self.picker.upload)
    upload_message = property(lambda self: self.picker.upload_message)
    pick_box = property(lambda self: self.picker.box)
    run_button = property(lambda self: self.runner.button)
    progress = property(lambda self: self.runner.progress.bar)
    progress_label = property(lambda self: self.runner.progress.label)
    message = property(lambda self: self.runner.message)
    summary_html = property(lambda self: self.runner.summary)
    chart_image = property(lambda self: self.runner.chart)
    circumplex_image = property(lambda self: self.runner.circumplex)
    frame_image = property(lambda self: self.runner.frame)
    timeline_image = property(lambda self: self.runner.timeline)
    details_html = property(lambda self: self.runner.details)
    missing_html = property(lambda self: self.runner.missing)
    downloads_html = property(lambda self: self.runner.downloads)
    video_button = property(lambda self: self.runner.video_button)
    video_message = property(lambda self: self.runner.video_message)
    emotion_dropdown = property(lambda self: self.runner.emotion)
    clips_button = property(lambda self: self.runner.clips_button)
    clips_message = property(lambda self: self.runner.clips_message)
    results = property(lambda self: self.runner.results)
    explorer_boxes = property(lambda self: {kind: e.box for kind, e in self._explorers.items()})

    # ---- the five steps ------------------------------------------------------------------
    def setup_step(self):
        """Step 1: the device found, library versions and where models come from."""
        if self.setup is None:
            self.setup = SetupStep(self.controller)
        return self.setup.widget

    def load_step(self):
        """Step 2: the Load button and one row per model."""
        return self.loader.widget

    def source_step(self):
        """Step 3: sample video, YouTube link, upload or a file path."""
        return self.chooser.widget

    def pick_step(self):
        """Step 4: the control for the chosen source (changes with step 3)."""
        return self.picker.widget

    def run_step(self):
        """Step 5: Run, progress, then the results."""
        return self.runner.widget

    def widget(self):
        """All five steps in one column, with headings (for a page)."""
        if "all" not in self._steps:
            steps = [self.setup_step(), self.load_step(), self.source_step(), self.pick_step(), self.run_step()]
            children: list = []
            for title, step in zip(TITLES, steps):
                children += [widgets.HTML(f"<h3>{html.escape(title)}</h3>"), step]
            self._steps["all"] = widgets.VBox(children)
        return self._steps["all"]

    def show(self) -> None:
        from IPython.display import display

        display(self.widget())

    def all_widgets(self) -> list:
        """Every widget the app shows (for tests that look for stray text)."""
        roots = [self.widget(), *(e.box for e in self._explorers.values())]
        seen: dict[int, Any] = {}
        for root in roots:
            for w in walk(root):
                seen.setdefault(id(w), w)
        return list(seen.values())

    # ---- actions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _working(self) -> Iterator[bool]:
        """Disable the buttons while one job runs; yields False (do nothing) when one already runs."""
        if self._busy:
            yield False
            return
        buttons = [self.load_button, self.run_button, self.video_button, self.clips_button]
        self._busy = True
        for b in buttons:
            b.disabled = True
        try:
            yield True
        finally:
            self._busy = False
            for b in buttons:
                b.disabled = False

    def load(self):
        """Step 2's button. Returns the Analyzer, or None when nothing works."""
        return self.loader.load()

    def accept_upload(self, name: str, data: bytes) -> Path:
        """Take uploaded bytes as step 4's video (SourceError when they are not one)."""
        path, text = self.controller.accept_upload(name, data)
        self.upload_message.value = message_html(text, ok=True)
        return path

    def colab_upload(self):
        """Colab's own uploader (the notebook runs it in its own cell); the file becomes step 4's video."""
        self.source.value = "upload"
        return self.picker.colab_upload()

    def run(self) -> "Result | None":
        """Analyze the chosen video and show the results (step 5's button)."""
        with self._working() as free:
            if not free:
                return None
            self.runner.clear()
            start = time.perf_counter()
            with quiet():
                try:
                    result = self.controller.run(self.runner.progress.show, self.loader.show_model)
                except Exception as exc:
                    _log_failure(exc, "the analysis")
                    self.runner.progress.failed()
                    self.message.value = message_html(describe_error(exc, "the analysis"))
                    if self.controller.loaded is not None:
                        self.loader.show_loaded()
                    self._refresh_explorers()
                    return None
                if self.controller.loaded is not None:
                    self.loader.show_loaded()
                self.runner.progress.show(_drawing())
                self._render(result)
                self.runner.progress.done(f"done in {time.perf_counter() - start:.1f} s")
                self._refresh_explorers()
        return result

    def autorun(self, source: str = GENERATED) -> "Result":
        """Load, pick ``source`` and run without clicks (headless notebook runs, CI). Raises on failure."""
        if is_url(source):
            self.source.value, self.url_text.value = "link", source
        elif Path(source).is_file() and source not in self.controller.samples.values():
            self.source.value, self.path_text.value = "path", source
        else:
            if source not in self.controller.samples.values():
                self.controller.samples[source] = source
                self.sample_dropdown.options = list(self.controller.samples.items())
            self.source.value, self.sample_dropdown.value = "sample", source
        self.load_button.click()
        self.run_button.click()
        if self.result is None:
            raise RuntimeError(visible_text(self.message.value) or "the analysis did not run")
        return self.result

    def run_upload(self) -> "Result":
        """Analyze the file taken by step 4's upload (headless runs after ``colab_upload``)."""
        self.source.value = "upload"
        self.load_button.click()
        self.run_button.click()
        if self.result is None:
            raise RuntimeError(visible_text(self.message.value) or "the analysis did not run")
        return self.result

    # ---- drawing results -----------------------------------------------------------------
    def _render(self, result: "Result") -> None:
        r = self.runner
        timeline = None
        try:
            timeline = self.controller.timeline(result)
        except Exception:
            log.exception("the timeline failed")
        r.summary.value = self._guard("the summary", lambda: summary_html(result))
        self._set_image(r.chart, "the probability chart", result.plot)
        self._set_image(r.circumplex, "the valence–arousal plot", result.plot_circumplex)
        has_frames = result.frames is not None and len(result.frames) > 0
        self._set_image(r.frame, "the annotated frame", result.plot_annotated_frame if has_frames else None)
        self._set_image(
            r.timeline,
            "the timeline",
            timeline.plot if timeline is not None and result.info and result.info.duration > 0 else None,
        )
        r.details.value = self._guard("the details", lambda: details_html(result))
        r.missing.value = self._guard("the missing list", lambda: missing_html(result))
        r.downloads.value = self._guard("the downloads", lambda: downloads_html(result))
        r.emotion.options = list(result.labels)
        if result.top_label:
            r.emotion.value = result.top_label
        r.layout()

    @staticmethod
    def _guard(what: str, build: Callable[[], str]) -> str:
        try:
            return build()
        except Exception as exc:
            log.exception("drawing %s failed", what)
            return message_html(f"could not show {what}: {one_line(exc)}")

    def _set_image(self, image, what: str, plot: Callable[[], "Figure"] | None) -> None:
        image.value = b""
        if plot is None:
            return
        try:
            image.value = figure_png(plot())
        except Exception:
            log.exception("drawing %s failed", what)
            self.message.value = message_html(f"could not draw {what} (details in the log)")

    # ---- exports -------------------------------------------------------------------------
    def make_annotated_video(self) -> Path | None:
        """Write every frame with faces and expressions (audio kept) and offer it for download."""
        with self._working() as free:
            if not free:
                return None
            with quiet():
                try:
                    self.video_message.value = "making the annotated video…"
                    video, csv_path = self.controller.annotated_video(self.runner.progress.show)
                except Exception as exc:
                    _log_failure(exc, "the annotated video")
                    self.runner.progress.failed()
                    self.video_message.value = message_html(describe_error(exc, "the annotated video"))
                    return None
                parts = [self.offer(video, "annotated video"), self.offer(csv_path, "per-frame labels (CSV)")]
                self.video_message.value = " · ".join(parts)
                self.runner.progress.done("the annotated video is ready")
                return video

    def make_emotion_clips(self, emotion: str | None = None) -> Path | None:
        """Write one video of the windows where ``emotion`` (default: the dropdown's) is on top."""
        with self._working() as free:
            if not free:
                return None
            with quiet():
                emotion = emotion or self.emotion_dropdown.value
                try:
                    self.clips_message.value = f"finding the {html.escape(str(emotion))} windows…"
                    written, segments = self.controller.emotion_clips(emotion, self.runner.progress.show)
                except Exception as exc:
                    _log_failure(exc, "the emotion clips")
                    self.runner.progress.reset()
                    self.clips_message.value = message_html(describe_error(exc, "the emotion clips"))
                    return None
                spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments)
                self.clips_message.value = f"{self.offer(written, f'{emotion} clips')} ({html.escape(spans)})"
                self.runner.progress.done(f"the {emotion} clips are ready")
                return written

    def offer(self, path: Path, label: str) -> str:
        """HTML offering a written file; on Colab the browser download starts too."""
        if self.controller.on_colab:
            try:
                from google.colab import files

                files.download(str(path))
            except Exception:  # the link / path still works
                log.exception("Colab download of %s failed", path)
        return file_html(path, label)

    # ---- exploring the result (later notebook cells) -------------------------------------
    def _explorer(self, kind: str, draw: Callable[["Result"], list]):
        explorer = Explorer(kind, draw)
        self._explorers[kind] = explorer
        explorer.refresh(self.result, self.controller.last_error)
        return explorer.box

    def _refresh_explorers(self) -> None:
        for explorer in self._explorers.values():
            explorer.refresh(self.result, self.controller.last_error)

    def explore_frames(self, columns: int = 4):
        """Every sampled frame with faces and text boxes drawn; redrawn after each run."""

        def draw(result: "Result") -> list:
            fig = frames_grid(result, columns)
            return [_png_image(fig)] if fig is not None else [widgets.HTML("no video frames")]

        return self._explorer("frames", draw)

    def explore_faces(self, limit: int = 24):
        """Crops of the detected faces with their expression; redrawn after each run."""

        def draw(result: "Result") -> list:
            fig, text = faces_figure(result, limit)
            return [widgets.HTML(html.escape(text))] + ([_png_image(fig)] if fig is not None else [])

        return self._explorer("faces", draw)

    def explore_features(self):
        """The features' shapes and a heatmap of each; redrawn after each run."""

        def draw(result: "Result") -> list:
            fig = features_heatmap(result)
            return [widgets.HTML(features_table_html(result))] + ([_png_image(fig)] if fig is not None else [])

        return self._explorer("features", draw)


def _drawing():
    from .controller import Progress

    return Progress("drawing the results…", 1.0)


def _png_image(fig: "Figure"):
    return widgets.Image(value=figure_png(fig), format="png", layout=widgets.Layout(max_width="100%", height="auto"))
