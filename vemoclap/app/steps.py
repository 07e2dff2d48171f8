"""One widget class per step of :data:`vemoclap.app.step_table.STEPS`, each built as ``cls(app)``.
Each owns its widgets and its actions (step 2 loads, step 5 runs, draws and exports); the controller
holds the state and does the work."""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..draw.figures import figure_png
from ..errors import one_line, user_errors
from ..media import VIDEO_EXTENSIONS
from . import colab
from ._widgets import clear_upload, upload_entries, widgets
from .cache import ModelState
from .controller import SOURCES, Progress, describe_error
from .logs import quiet
from .step_table import STEP
from .views import (
    CLIPS_NOTE,
    ERROR_COLOR,
    OK_COLOR,
    details_html,
    downloads_html,
    file_html,
    message_html,
    missing_html,
    note_html,
    people_html,
    random_html,
    summary_html,
    table_html,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import Result
    from .ui import VemoclapApp

log = logging.getLogger(__name__)


def _log_failure(exc: BaseException, doing: str) -> None:
    if isinstance(exc, user_errors()):
        log.info("%s: %s", doing, exc)
    else:
        log.exception("%s failed", doing)


class ProgressLine:
    """A bar and its label, always set together from one Progress."""

    def __init__(self, width: str = "320px"):
        self.bar = widgets.IntProgress(value=0, min=0, max=1000, layout=widgets.Layout(width=width))
        self.label = widgets.Label("")
        self.box = widgets.HBox([self.bar, self.label], layout=widgets.Layout(align_items="center"))

    def show(self, progress: Progress) -> None:
        self.bar.bar_style = "info"
        self.bar.value = round(1000 * min(1.0, max(0.0, progress.fraction)))
        self.label.value = progress.text

    def reset(self, text: str = "") -> None:
        self.bar.value, self.bar.bar_style, self.label.value = 0, "", text

    def done(self, text: str) -> None:
        self.bar.value, self.bar.bar_style, self.label.value = 1000, "success", text

    def failed(self, text: str = "") -> None:
        self.bar.bar_style, self.label.value = "danger", text

    def partly(self, text: str) -> None:
        """Finished, but not everything worked: an amber bar, never a green one."""
        self.bar.value, self.bar.bar_style, self.label.value = 1000, "warning", text


class SetupStep:
    """Step 1: the device found (a warning without a GPU on Colab), versions, where models come from."""

    def __init__(self, app: "VemoclapApp"):
        rows, warnings = app.controller.setup_rows()
        self.html = widgets.HTML(
            "".join(f"<div>{message_html(w)}</div>" for w in warnings) + table_html(rows, "vemoclap-setup")
        )
        self.widget = widgets.VBox([self.html])


@dataclass
class ModelRow:
    """One row of step 2: name, progress bar, seconds taken, status."""

    name: str
    progress: Any
    seconds: Any
    status: Any
    box: Any

    @classmethod
    def create(cls, name: str) -> "ModelRow":
        label = widgets.Label(name, layout=widgets.Layout(min_width="130px", flex="0 0 auto"))  # never cut
        progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="160px"))
        seconds = widgets.Label("", layout=widgets.Layout(width="70px"))
        status = widgets.HTML("waiting", layout=widgets.Layout(flex="1 1 auto"))
        box = widgets.HBox([label, progress, seconds, status], layout=widgets.Layout(align_items="center"))
        box.add_class("vemoclap-model-row")
        return cls(name, progress, seconds, status, box)

    def show(self, state: ModelState, cached: bool = False) -> None:
        if state.status == "loading":
            self.progress.value, self.progress.bar_style = 0, "info"
            self.seconds.value, self.status.value = "", "loading…"
            return
        self.progress.value = 1
        self.seconds.value = f"{state.seconds:.1f} s"
        if state.ok:
            self.progress.bar_style = "success"
            note = " (kept from before, not reloaded)" if cached else ""
            self.status.value = f'<span style="color:{OK_COLOR}">loaded{note}</span>'
        else:
            self.progress.bar_style = "danger"
            self.status.value = (
                f'<span style="color:{ERROR_COLOR}">{html.escape(state.status)}: {html.escape(state.reason)}</span>'
            )


class LoadStep:
    """Step 2: optionally a Drive cache (Colab), the Load button, one row per model."""

    def __init__(self, app: "VemoclapApp"):
        self.controller = controller = app.controller
        self.busy = app.working
        self.button = widgets.Button(
            description="Load models",
            icon="download",
            button_style="primary",
            tooltip="fetch (if needed) and load every model once; later runs reuse them",
        )
        self.button.add_class("vemoclap-load")
        self.message = widgets.HTML()
        self.progress = ProgressLine()
        self.rows: dict[str, ModelRow] = {name: ModelRow.create(name) for name in controller.model_names()}
        cost = controller.cost_line()
        self.cost = widgets.HTML(note_html(cost) if cost else "")
        self.cost.add_class("vemoclap-cost")
        self.drive = widgets.Checkbox(
            value=False,
            indent=False,
            description=f"keep the models on Google Drive ({colab.drive_models()})",
            layout=widgets.Layout(width="auto"),
        )
        self.fetch = widgets.Checkbox(
            value=controller.fetch_models,
            indent=False,
            description="fetch missing models into the models folder first",
            layout=widgets.Layout(width="auto"),
        )
        options = [self.drive] if controller.on_colab else []
        options.append(self.fetch)
        self.widget = widgets.VBox(
            [
                self.cost,
                *options,
                self.button,
                self.progress.box,
                widgets.VBox([row.box for row in self.rows.values()]),
                self.message,
            ]
        )
        self.button.on_click(lambda _: self.load())
        if controller.cached() is not None:  # rerunning the cell: show what is already loaded
            self.show_loaded(cached=True)

    def show_model(self, name: str, state: ModelState) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.show(state)

    def show_loaded(self, cached: bool = False) -> None:
        for name, state in self.controller.loaded.states.items():
            if name in self.rows:
                self.rows[name].show(state, cached=cached)
        text, ok = self.controller.load_summary()
        self.message.value = message_html(text, ok=ok) + random_html(self.controller.loaded_random())
        if ok:
            self.progress.done("kept from before" if cached else "the models are loaded")
        elif self.controller.loaded.analyzer.extractors:
            self.progress.partly("loaded in part: see the rows")
        else:
            self.progress.failed("nothing loaded: see the rows")
        cost = self.controller.cost_line()
        self.cost.value = note_html(cost) if cost else ""

    def load(self):
        """Fetch (when asked) and load the models. Returns the Analyzer, or None when nothing works."""
        with self.busy() as free:
            if not free:
                return self.controller.analyzer
            with quiet():
                return self.load_now()

    def load_now(self):
        controller = self.controller
        try:
            if self.drive.value and controller.models_dir != colab.drive_models():
                controller.use_drive_models()
            controller.fetch_models = self.fetch.value
            cached = controller.cached() is not None
            if not cached and controller.fetch_models:
                try:
                    controller.fetch(self.progress.show)
                except Exception as exc:  # what is there may still load: say why and go on
                    _log_failure(exc, "fetching the models")
                    self.message.value = message_html(describe_error(exc, "fetching the models"))
            self.progress.reset("loading…")
            controller.load(self.show_model, self.progress.show)
        except Exception as exc:
            _log_failure(exc, "loading the models")
            self.progress.failed()
            self.message.value = message_html(describe_error(exc, "loading the models"))
            return None
        fetch_note = self.message.value
        self.show_loaded(cached=cached)
        if fetch_note and "⚠" in fetch_note:
            self.message.value = fetch_note + "<br>" + self.message.value
        return controller.analyzer


class SourceStep:
    """Step 3: sample, link, upload or a file path."""

    def __init__(self, app: "VemoclapApp"):
        self.controller = controller = app.controller
        self.toggle = widgets.ToggleButtons(
            options=controller.source_choices(),
            value=controller.source_kind,
            style={"button_width": "auto"},  # whole labels, never "File on this machin…"
            tooltips=[
                "a bundled sample",
                "a YouTube (or any yt-dlp) link",
                "a video file from this computer",
                "a path on the machine running this (Google Drive once mounted)",
            ],
        )
        self.toggle.observe(self._changed, names="value")
        self.widget = widgets.VBox([self.toggle])

    def _changed(self, change: Mapping[str, Any]) -> None:
        self.controller.source_kind = change["new"]


class PickStep:
    """Step 4: the control for the chosen source (changes with step 3)."""

    def __init__(self, app: "VemoclapApp"):
        self.controller = controller = app.controller
        source: SourceStep = app.steps["source"]
        self.hint = widgets.HTML()
        self.sample = widgets.Dropdown(
            options=list(controller.samples.items()),
            value=controller.sample,
            description="Sample",
            layout=widgets.Layout(width="420px"),
        )
        self.url = widgets.Text(
            placeholder="https://www.youtube.com/watch?v=…", description="Link", layout=widgets.Layout(width="560px")
        )
        self.upload = widgets.FileUpload(
            accept=",".join(sorted(VIDEO_EXTENSIONS)), multiple=False, description="Choose video"
        )
        self.upload_message = widgets.HTML()
        self.path = widgets.Text(
            placeholder="/content/drive/MyDrive/videos/clip.mp4" if controller.on_colab else "/home/me/Videos/clip.mp4",
            description="Path",
            layout=widgets.Layout(width="560px"),
        )
        self.path_message = widgets.HTML()
        self.mount = widgets.Button(description="Mount Google Drive", icon="hdd-o")
        self.mount.on_click(lambda _: self.mount_drive())
        self.box = widgets.VBox()
        self.widget = widgets.VBox([self.box])
        self.sample.observe(lambda c: setattr(controller, "sample", c["new"]), names="value")
        self.url.observe(lambda c: setattr(controller, "url", c["new"]), names="value")
        self.path.observe(self._path_changed, names="value")
        self.upload.observe(self._uploaded, names="value")
        source.toggle.observe(lambda _: self.show(), names="value")
        self.show()

    def show(self) -> None:
        c = self.controller
        kinds = ", ".join(sorted(VIDEO_EXTENSIONS))
        if c.source_kind == "link":
            self.hint.value = (
                "Paste a link to one video (YouTube or any site yt-dlp reads). "
                "It is downloaded at 360p; long videos take longer."
            )
            children = [self.hint, self.url]
        elif c.source_kind == "upload" and c.on_colab:
            self.hint.value = html.escape(
                f"Run the cell below this one: it opens Colab's own file chooser (up to "
                f"{c.colab_upload_bytes / 2**20:.0f} MB, held in memory while it uploads). For bigger files "
                f"put the video on Google Drive and choose “{SOURCES['path']}”."
            )
            children = [self.hint, self.upload_message]
        elif c.source_kind == "upload":
            self.hint.value = f"Choose a video file ({kinds}), at most {c.max_upload_bytes / 2**20:.0f} MB."
            children = [self.hint, self.upload, self.upload_message]
        elif c.source_kind == "path":
            drive = " Mount Google Drive to use a file from it (/content/drive/MyDrive/…)." if c.on_colab else ""
            self.hint.value = html.escape(f"Type the full path of a video file ({kinds}).{drive}")
            children = [self.hint, self.path, self.path_message] + ([self.mount] if c.on_colab else [])
        else:
            self.hint.value = "Choose a sample video."
            children = [self.hint, self.sample]
        self.box.children = children

    def _uploaded(self, change: Mapping[str, Any]) -> None:
        entries = upload_entries(change.get("new"))
        if not entries:
            return
        with quiet():
            try:
                _, text = self.controller.accept_upload(*entries[0])
                # The file stays in the widget so that its button counts it: "Choose video (1)".
                self.upload_message.value = message_html(text, ok=True)
            except Exception as exc:
                _log_failure(exc, "the upload")
                self.upload_message.value = message_html(describe_error(exc, "the upload"))
                clear_upload(self.upload)

    def colab_upload(self):
        """Colab's uploader, from its own cell (not known to work inside a widget callback)."""
        with quiet():
            try:
                accepted = self.controller.colab_upload()
            except Exception as exc:
                _log_failure(exc, "the upload")
                self.upload_message.value = message_html(describe_error(exc, "the upload"))
                return None
        if accepted is None:
            self.upload_message.value = message_html("no file was chosen")
            return None
        self.upload_message.value = message_html(accepted[1], ok=True)
        return accepted[0]

    def _path_changed(self, change: Mapping[str, Any]) -> None:
        self.controller.path_text = change["new"]
        self.path_message.value = ""

    def mount_drive(self) -> None:
        try:
            where = colab.mount_drive()
            self.path_message.value = message_html(f"Google Drive is mounted at {where}", ok=True)
        except Exception as exc:
            _log_failure(exc, "mounting Google Drive")
            self.path_message.value = message_html(describe_error(exc, "mounting Google Drive"))


def _image(css_class: str, max_width: str):
    image = widgets.Image(format="png", layout=widgets.Layout(max_width=f"min(100%, {max_width})", height="auto"))
    image.add_class(css_class)
    return image


class RunStep:
    """Step 5: Run, one progress line, then the results with downloads and video exports; its
    buttons' actions (:meth:`run`, :meth:`make_annotated_video`, :meth:`make_emotion_clips`)."""

    def __init__(self, app: "VemoclapApp"):
        self.app = app
        self.controller = app.controller
        W = widgets
        self.button = W.Button(
            description="Run", icon="play", button_style="success", tooltip="analyze the chosen video"
        )
        self.button.add_class("vemoclap-run")
        self.progress = ProgressLine()
        self.message = W.HTML()
        self.message.add_class("vemoclap-message")
        self.summary = W.HTML()
        self.summary.add_class("vemoclap-summary")
        self.chart = _image("vemoclap-chart", "600px")
        self.circumplex = _image("vemoclap-circumplex", "460px")
        self.why = _image("vemoclap-why", "600px")  # each input's contribution, the frames attended to most
        self.frame = _image("vemoclap-frame", "760px")
        self.timeline = _image("vemoclap-timeline", "900px")
        self.people = W.HTML()
        self.people.add_class("vemoclap-people")
        self.details = W.HTML()
        self.details.add_class("vemoclap-details")
        self.missing = W.HTML()
        self.missing.add_class("vemoclap-missing")
        self.downloads = W.HTML()
        self.video_button = W.Button(
            description="Make annotated video",
            icon="film",
            layout=W.Layout(width="auto"),
            tooltip="every frame with face boxes and expressions",
        )
        self.video_message = W.HTML()
        self.video_message.add_class("vemoclap-video-message")
        self.emotion = W.Dropdown(options=[], description="Emotion", layout=W.Layout(width="220px"))
        self.clips_button = W.Button(
            description="Make emotion clips",
            icon="scissors",
            layout=W.Layout(width="auto"),
            tooltip="one video of the timeline windows where this emotion is on top",
        )
        self.clips_note = W.HTML(note_html(CLIPS_NOTE))
        self.clips_message = W.HTML()
        self.clips_message.add_class("vemoclap-clips-message")
        self.results = W.VBox()
        self.results.add_class("vemoclap-results")
        self.widget = W.VBox([self.button, self.progress.box, self.message, self.results])
        self.button.on_click(lambda _: self.run())
        self.video_button.on_click(lambda _: self.make_annotated_video())
        self.clips_button.on_click(lambda _: self.make_emotion_clips())

    def clear(self) -> None:
        self.message.value = ""
        self.results.children = ()
        for image in (self.chart, self.circumplex, self.why, self.frame, self.timeline):
            image.value = b""
        self.video_message.value = self.clips_message.value = ""
        self.progress.reset()

    def layout(self) -> None:
        W = widgets
        images = [w for w in (self.chart, self.why, self.circumplex) if w.value]
        rows: list = [self.summary]
        if images:
            rows.append(W.HBox(images, layout=W.Layout(flex_flow="row wrap", align_items="flex-start")))
        rows += [w for w in (self.frame, self.timeline, self.people) if w.value]
        rows += [
            self.details,
            self.missing,
            W.HTML("<h4>Downloads</h4>"),
            self.downloads,
            W.HBox([self.video_button]),
            self.video_message,
            W.HBox([self.emotion, self.clips_button]),
            self.clips_note,
            self.clips_message,
        ]
        self.results.children = rows

    # ---- actions -------------------------------------------------------------------------
    def run(self) -> "Result | None":
        """Analyze the chosen video and show the results (the Run button)."""
        loader = self.app.steps["load"]
        with self.app.working() as free:
            if not free:
                return None
            self.clear()
            start = time.perf_counter()
            with quiet():
                try:
                    result = self.controller.run(self.progress.show, loader.show_model)
                except Exception as exc:
                    _log_failure(exc, "the analysis")
                    self.progress.failed()
                    self.message.value = message_html(describe_error(exc, "the analysis"))
                    if self.controller.loaded is not None:
                        loader.show_loaded()
                    self.app.refresh_explorers()
                    return None
                if self.controller.loaded is not None:
                    loader.show_loaded()
                self.progress.show(Progress("drawing the results…", 1.0))
                self.render(result)
                self.progress.done(f"done in {time.perf_counter() - start:.1f} s")
                self.app.refresh_explorers()
        return result

    def render(self, result: "Result") -> None:
        timeline = None
        try:
            timeline = self.controller.timeline(result)
        except Exception:
            log.exception("the timeline failed")
        self.summary.value = _guard("the summary", lambda: summary_html(result))
        self._set_image(self.chart, "the probability chart", result.plot)
        self._set_image(self.circumplex, "the valence–arousal plot", result.plot_circumplex)
        self._set_image(self.why, "why this emotion", result.plot_contributions if result.explanation else None)
        has_frames = result.frames is not None and len(result.frames) > 0
        self._set_image(self.frame, "the annotated frame", result.plot_annotated_frame if has_frames else None)
        self._set_image(
            self.timeline,
            "the timeline",
            timeline.plot if timeline is not None and result.info and result.info.duration > 0 else None,
        )
        self.people.value = _guard("the people", lambda: people_html(result))
        self.details.value = _guard("the details", lambda: details_html(result))
        self.missing.value = _guard("the missing list", lambda: missing_html(result))
        self.downloads.value = _guard("the downloads", lambda: downloads_html(result))
        self.emotion.options = list(result.labels)
        if result.top_label:
            self.emotion.value = result.top_label
        self.layout()

    def _set_image(self, image, what: str, plot: Callable[[], "Figure"] | None) -> None:
        image.value = b""
        if plot is None:
            return
        try:
            image.value = figure_png(plot())
        except Exception:
            log.exception("drawing %s failed", what)
            self.message.value = message_html(f"could not draw {what} (details in the log)")

    def make_annotated_video(self) -> Path | None:
        """Write every frame with faces and expressions (audio kept) and offer it for download."""
        with self.app.working() as free:
            if not free:
                return None
            with quiet():
                try:
                    self.video_message.value = html.escape(self.controller.annotation_cost().line(option=False)) + "…"
                    video, csv_path = self.controller.annotated_video(self.progress.show)
                except Exception as exc:
                    _log_failure(exc, "the annotated video")
                    self.progress.failed()
                    self.video_message.value = message_html(describe_error(exc, "the annotated video"))
                    return None
                parts = [self.offer(video, "annotated video"), self.offer(csv_path, "per-frame labels (CSV)")]
                self.video_message.value = " · ".join(parts)
                self.progress.done("the annotated video is ready")
                return video

    def make_emotion_clips(self, emotion: str | None = None) -> Path | None:
        """Write one video of the windows where ``emotion`` (default: the dropdown's) is on top."""
        with self.app.working() as free:
            if not free:
                return None
            with quiet():
                emotion = emotion or self.emotion.value
                try:
                    self.clips_message.value = f"finding the {html.escape(str(emotion))} windows…"
                    written, segments = self.controller.emotion_clips(emotion, self.progress.show)
                except Exception as exc:
                    _log_failure(exc, "the emotion clips")
                    self.progress.reset()
                    self.clips_message.value = message_html(describe_error(exc, "the emotion clips"))
                    return None
                spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments)
                self.clips_message.value = f"{self.offer(written, f'{emotion} clips')} ({html.escape(spans)})"
                self.progress.done(f"the {emotion} clips are ready")
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


def _guard(what: str, build: Callable[[], str]) -> str:
    try:
        return build()
    except Exception as exc:
        log.exception("drawing %s failed", what)
        return message_html(f"could not show {what}: {one_line(exc)}")


class Explorer:
    """A view redrawn after every run (the notebook's cells below step 5)."""

    def __init__(self, kind: str, draw: Callable[["Result"], list]):
        self.kind = kind
        self.draw = draw
        self.box = widgets.VBox([widgets.HTML(f"<i>appears after {STEP['run'].name} has run</i>")])
        self.box.add_class(f"vemoclap-explore-{kind}")

    def refresh(self, result: "Result | None", why: str = "") -> None:
        if result is None:
            text = f"no result: {why}" if why else f"appears after {STEP['run'].name} has run"
            self.box.children = [widgets.HTML(f"<i>{html.escape(text)}</i>")]
            return
        try:
            self.box.children = self.draw(result)
        except Exception as exc:
            log.exception("vemoclap-explore-%s failed", self.kind)
            self.box.children = [widgets.HTML(message_html(f"could not draw this: {one_line(exc)}"))]
