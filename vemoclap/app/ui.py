"""The five-step widget app: the controller plus one widget class per step.

Works with ipywidgets 7.7 (Colab's own) and 8 (Jupyter, Voila). Figures are PNG bytes in
``widgets.Image`` so they look the same in Colab, Jupyter, Voila and tests; everything a person can
get wrong ends as one line in a message widget, tracebacks go to the log file.
"""

from __future__ import annotations

import contextlib
import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..draw.figures import faces_figure, features_heatmap, figure_png, frames_grid
from ..samples import GENERATED
from ..sources import is_url
from . import steps as step_classes
from ._widgets import walk, widgets
from .controller import Controller, settings_from_env
from .step_table import STEP, STEPS
from .steps import Explorer
from .views import features_table_html, message_html, visible_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import Result

log = logging.getLogger(__name__)


class VemoclapApp:
    """The five-step widget app: one step object per row of :data:`~vemoclap.app.step_table.STEPS`
    in ``app.steps`` (``app.steps["run"].button``), each owning its widgets and actions; tests and
    users drive those.

    Arguments are the :class:`Controller`'s: ``samples`` maps a label to a source offered beside
    vemoclap's samples; ``analyzer_options`` go to :class:`vemoclap.pipeline.Analyzer`; files the app
    writes (uploads, exports, its log) go under ``output_dir`` (default ``./vemoclap_outputs``).
    """

    def __init__(self, **settings: Any):
        self.controller = Controller(**settings)
        self._busy = False
        self._column = None
        self._reproduce = None  # the optional cell after the views: built when first shown
        self.explorers: dict[str, Explorer] = {}  # the views below step 5, by kind
        self.steps: dict[str, Any] = {}  # the step objects of STEPS, by key; each owns its widgets and actions
        for step in STEPS:
            if step.key != "setup":  # step 1 checks the machine: built when first shown
                self.steps[step.key] = self._build(step)

    def _build(self, step):
        return getattr(step_classes, step.factory)(self)

    @classmethod
    def from_env(cls, **overrides: Any) -> "VemoclapApp":
        """An app configured from VEMOCLAP_* environment variables; non-empty ``overrides`` win."""
        settings = settings_from_env()
        settings.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**settings)

    def __getattr__(self, name: str) -> Any:
        # settings and state live on the controller (models_dir, output_dir, result, analyzer, ...)
        if name in ("controller", "steps", "explorers"):
            raise AttributeError(name)
        return getattr(self.controller, name)

    # ---- the five steps (STEPS), one method per notebook cell ---------------------------
    def step(self, key: str):
        """The step object of ``key`` ("setup", "load", "source", "pick", "run")."""
        if key not in self.steps:
            self.steps[key] = self._build(STEP[key])
        return self.steps[key]

    def setup_step(self):
        """Step 1: the device found, library versions and where models come from."""
        return self.step("setup").widget

    def load_step(self):
        """Step 2: the Load button and one row per model."""
        return self.step("load").widget

    def source_step(self):
        """Step 3: sample video, YouTube link, upload or a file path."""
        return self.step("source").widget

    def pick_step(self):
        """Step 4: the control for the chosen source (changes with step 3)."""
        return self.step("pick").widget

    def run_step(self):
        """Step 5: Run, progress, then the results."""
        return self.step("run").widget

    def widget(self):
        """All five steps in one column, with headings (for a page)."""
        if self._column is None:
            children: list = []
            for step in STEPS:
                children += [widgets.HTML(f"<h3>{html.escape(step.heading)}</h3>"), self.step(step.key).widget]
            self._column = widgets.VBox(children)
        return self._column

    def show(self) -> None:
        from IPython.display import display

        display(self.widget())

    def all_widgets(self) -> list:
        """Every widget the app shows (for tests that look for stray text)."""
        roots = [self.widget(), *(e.box for e in self.explorers.values())]
        seen: dict[int, Any] = {}
        for root in roots:
            for w in walk(root):
                seen.setdefault(id(w), w)
        return list(seen.values())

    # ---- actions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def working(self) -> Iterator[bool]:
        """Disable the buttons while one job runs; yields False (do nothing) when one already runs."""
        if self._busy:
            yield False
            return
        load, run = self.steps["load"], self.steps["run"]
        buttons = [load.button, run.button, run.video_button, run.clips_button]
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
        return self.steps["load"].load()

    def accept_upload(self, name: str, data: bytes) -> Path:
        """Take uploaded bytes as step 4's video (SourceError when they are not one)."""
        path, text = self.controller.accept_upload(name, data)
        self.steps["pick"].upload_message.value = message_html(text, ok=True)
        return path

    def colab_upload(self):
        """Colab's own uploader (the notebook runs it in its own cell); the file becomes step 4's video."""
        self.steps["source"].toggle.value = "upload"
        return self.steps["pick"].colab_upload()

    def run(self) -> "Result | None":
        """Analyze the chosen video and show the results (step 5's button)."""
        return self.steps["run"].run()

    def make_annotated_video(self) -> Path | None:
        """Step 5's annotated video (:meth:`RunStep.make_annotated_video`)."""
        return self.steps["run"].make_annotated_video()

    def make_emotion_clips(self, emotion: str | None = None) -> Path | None:
        """Step 5's emotion clips (:meth:`RunStep.make_emotion_clips`)."""
        return self.steps["run"].make_emotion_clips(emotion)

    def autorun(self, source: str = GENERATED) -> "Result":
        """Load, pick ``source`` and run without clicks (headless notebook runs, CI). Raises on failure."""
        toggle, pick = self.steps["source"].toggle, self.steps["pick"]
        if is_url(source):
            toggle.value, pick.url.value = "link", source
        elif Path(source).is_file() and source not in self.controller.samples.values():
            toggle.value, pick.path.value = "path", source
        else:
            if source not in self.controller.samples.values():
                self.controller.samples[source] = source
                pick.sample.options = list(self.controller.samples.items())
            toggle.value, pick.sample.value = "sample", source
        return self._press_load_and_run()

    def run_upload(self) -> "Result":
        """Analyze the file taken by step 4's upload (headless runs after ``colab_upload``)."""
        self.steps["source"].toggle.value = "upload"
        return self._press_load_and_run()

    def _press_load_and_run(self) -> "Result":
        self.steps["load"].button.click()
        self.steps["run"].button.click()
        if self.result is None:
            raise RuntimeError(visible_text(self.steps["run"].message.value) or "the analysis did not run")
        return self.result

    # ---- exploring the result (later notebook cells) -------------------------------------
    def _explorer(self, kind: str, draw: Callable[["Result"], list]):
        explorer = Explorer(kind, draw)
        self.explorers[kind] = explorer
        explorer.refresh(self.result, self.controller.last_error)
        return explorer.box

    def refresh_explorers(self) -> None:
        """Redraw the views below step 5 (after each run)."""
        for explorer in self.explorers.values():
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

    def reproduce_step(self):
        """The paper's Ekman-6 table from the published features (`vemoclap reproduce ekman6`), with a button."""
        if self._reproduce is None:
            from .reproduce import ReproduceView

            self._reproduce = ReproduceView(self)
        return self._reproduce.widget


def _png_image(fig: "Figure"):
    return widgets.Image(value=figure_png(fig), format="png", layout=widgets.Layout(max_width="100%", height="auto"))
