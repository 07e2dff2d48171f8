"""The notebook app: five widget steps that run on Colab as they are, and the same app as a local page.

Steps (one notebook cell each): 1 setup (device, versions, models dir), 2 load models (one progress
row per model, cached across reruns), 3 choose the source (sample, link, upload), 4 pick the video,
5 run and show (probabilities, valence–arousal, annotated frame, timeline, every extractor's readable
output, what is missing and why, downloads and video exports). Later cells explore ``app.result``.

Everything a person can get wrong (a bad link, a non-video upload, a missing model) ends as one line
in a message widget; tracebacks go to the log file (``<output dir>/vemoclap-app.log``), never to the
page. Figures are rendered to PNG bytes into ``widgets.Image`` so they look the same in Colab,
Jupyter, Voila and tests.

``vemoclap app`` serves the notebook as a local page with Voila (127.0.0.1 only); the plain
equivalent is ``voila notebooks/vemoclap.ipynb --Voila.ip=127.0.0.1 --port=8866`` with
``VEMOCLAP_MODELS_DIR`` / ``VEMOCLAP_CLASSIFIER`` set in the environment.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import html
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from .errors import one_line, user_errors
from .sources import SAMPLE, VIDEO_EXTENSIONS, SourceError, check_url, is_url, save_upload

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .pipeline import Analyzer
    from .results import Result

log = logging.getLogger(__name__)


class _LazyWidgets:
    """ipywidgets, imported on first use: the CLI builds `vemoclap app`'s parser from this module and
    must work without the app extra installed."""

    def __getattr__(self, name: str) -> Any:
        try:
            import ipywidgets
        except ImportError:
            raise ImportError("the notebook app needs ipywidgets: pip install 'vemoclap[app]'") from None
        return getattr(ipywidgets, name)


widgets = _LazyWidgets()

# Chrome refuses data: URLs over 2 MB, so larger files are offered by path (or Colab's download).
DATA_URI_LIMIT = 1_500_000
# Analyzers kept loaded (module-wide, so rerunning a cell or building a new app reuses the models).
# One set of models fills a Colab T4, so a different configuration replaces the cached one.
MAX_CACHED_ANALYZERS = 1
LOG_FILE = "vemoclap-app.log"
ERROR_COLOR = "#b00020"
OK_COLOR = "#1b7f3b"

SETTINGS_ENV = {
    "models_dir": "VEMOCLAP_MODELS_DIR",
    "classifier": "VEMOCLAP_CLASSIFIER",
    "device": "VEMOCLAP_DEVICE",
    "extractors": "VEMOCLAP_EXTRACTORS",  # comma-separated
    "face_detector": "VEMOCLAP_FACE_DETECTOR",
    "whisper_model": "VEMOCLAP_WHISPER_MODEL",
    "frames": "VEMOCLAP_FRAMES",
    "output_dir": "VEMOCLAP_OUTPUT_DIR",
}


# --------------------------------------------------------------------------- small helpers

def describe_error(exc: BaseException, doing: str) -> str:
    """One line for people; unexpected errors say where the details are."""
    if isinstance(exc, user_errors()):
        return one_line(exc)
    return f"{doing} failed: {type(exc).__name__}: {one_line(exc)} (details in the log)"


def figure_png(fig: "Figure", dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib figure; the figure is closed so notebooks never show it twice."""
    import matplotlib.pyplot as plt

    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def data_uri_link(data: bytes, filename: str, mime: str, label: str | None = None) -> str:
    payload = base64.b64encode(data).decode("ascii")
    return (f'<a download="{html.escape(filename, quote=True)}" href="data:{mime};base64,{payload}" '
            f'target="_blank" style="color:#1565c0;text-decoration:underline">{html.escape(label or filename)}</a>')


def _safe_stem(text: str) -> str:
    stem = Path(str(text).split("?")[0].rstrip("/")).stem or "video"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60] or "video"


def _message_html(text: str, ok: bool = False) -> str:
    if not text:
        return ""
    color = OK_COLOR if ok else ERROR_COLOR
    mark = "✓" if ok else "⚠"
    return f'<span style="color:{color}">{mark} {html.escape(text)}</span>'


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def _env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """App keyword arguments from the VEMOCLAP_* environment variables (unset ones left out)."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for key in ("models_dir", "classifier", "device", "output_dir"):
        value = env.get(SETTINGS_ENV[key], "").strip()
        if value:
            settings[key] = value
    names = env.get(SETTINGS_ENV["extractors"], "").strip()
    if names:
        settings["extractors"] = [n.strip() for n in names.split(",") if n.strip()]
    options: dict[str, Any] = {}
    for key in ("face_detector", "whisper_model"):
        value = env.get(SETTINGS_ENV[key], "").strip()
        if value:
            options[key] = value
    frames = env.get(SETTINGS_ENV["frames"], "").strip()
    if frames:
        try:
            options["frames"] = int(frames)
        except ValueError:
            raise ValueError(f"{SETTINGS_ENV['frames']}={frames!r}: give a whole number of frames") from None
    if options:
        settings["analyzer_options"] = options
    return settings


def _upload_entries(value: Any) -> list[tuple[str, bytes]]:
    """(name, content) of each uploaded file, for ipywidgets 8 (tuple of dicts) and 7 (dict by name)."""
    entries: list[tuple[str, bytes]] = []
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        for name, item in value.items():
            meta = item.get("metadata", {}) if isinstance(item, Mapping) else {}
            entries.append((str(meta.get("name", name)), bytes(item.get("content", b""))))
        return entries
    for item in value or ():
        get = item.get if isinstance(item, Mapping) else (lambda k, d=None, _i=item: getattr(_i, k, d))
        entries.append((str(get("name", "upload")), bytes(get("content", b"") or b"")))
    return entries


def _walk(widget) -> Iterator[widgets.Widget]:
    """Every widget below (and including) ``widget``."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _walk(child)


# --------------------------------------------------------------------------- the model cache

@dataclass
class ModelState:
    """How loading one model went (kept with the cached Analyzer so reruns can show it)."""

    status: str  # "loaded", "unavailable", "failed"
    seconds: float = 0.0
    reason: str = ""


@dataclass
class LoadedModels:
    analyzer: "Analyzer"
    states: dict[str, ModelState] = field(default_factory=dict)
    loads: int = 1  # how many times this configuration has been built in this process (hits do not count)


_ANALYZERS: "OrderedDict[str, LoadedModels]" = OrderedDict()
_BUILDS: Counter[str] = Counter()


def cached_models() -> dict[str, LoadedModels]:
    """A copy of the module-wide cache of loaded models, by configuration key."""
    return dict(_ANALYZERS)


def clear_cache() -> None:
    """Forget every cached Analyzer (their memory is freed when nothing else holds them)."""
    _ANALYZERS.clear()
    _free_memory()


def _free_memory() -> None:
    import gc

    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# --------------------------------------------------------------------------- the app

@dataclass
class ModelRow:
    """One row of step 2: name, progress bar, seconds taken, status."""

    name: str
    progress: widgets.IntProgress
    seconds: widgets.Label
    status: widgets.HTML
    box: widgets.HBox

    @classmethod
    def create(cls, name: str) -> "ModelRow":
        label = widgets.Label(name, layout=widgets.Layout(width="130px"))
        progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="160px"))
        seconds = widgets.Label("", layout=widgets.Layout(width="70px"))
        status = widgets.HTML("waiting", layout=widgets.Layout(flex="1 1 auto"))
        box = widgets.HBox([label, progress, seconds, status], layout=widgets.Layout(align_items="center"))
        box.add_class("vemoclap-model-row")
        return cls(name, progress, seconds, status, box)

    def show(self, state: ModelState, cached: bool = False) -> None:
        self.progress.value = 1
        self.seconds.value = f"{state.seconds:.1f} s"
        if state.status == "loaded":
            self.progress.bar_style = "success"
            note = " (kept from before, not reloaded)" if cached else ""
            self.status.value = f'<span style="color:{OK_COLOR}">loaded{note}</span>'
        else:
            self.progress.bar_style = "danger"
            self.status.value = (f'<span style="color:{ERROR_COLOR}">{html.escape(state.status)}: '
                                 f'{html.escape(state.reason)}</span>')

    def loading(self) -> None:
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.seconds.value = ""
        self.status.value = "loading…"


class VemoclapApp:
    """The five-step widget app. Widgets are public attributes so tests (and users) can drive it.

    ``samples`` maps a label to a source (a path or link) offered beside vemoclap's generated
    sample. ``analyzer_options`` go to :class:`vemoclap.pipeline.Analyzer` (``frames``,
    ``face_detector``, ``whisper_model``, ``extractor_options``...). Files the app writes (uploads,
    exports, its log) go under ``output_dir`` (default ``./vemoclap_outputs``).
    """

    def __init__(self, models_dir=None, classifier=None, device: str = "auto",
                 extractors: Sequence[str] | None = None, samples: Mapping[str, str] | None = None,
                 max_upload_mb: float = 200, allow_private: bool = False,
                 analyzer_options: Mapping[str, Any] | None = None, output_dir=None):
        from .extractors import DEFAULT_EXTRACTORS
        from .models import default_models_dir
        from .results import Result  # noqa: F401  (fail early if the package is broken)

        self.models_dir = Path(models_dir).expanduser() if models_dir else default_models_dir()
        self.classifier = Path(classifier).expanduser() if classifier else None
        self.device = device or "auto"
        self.extractor_names = list(extractors) if extractors is not None else list(DEFAULT_EXTRACTORS)
        self.samples: dict[str, str] = {"vemoclap sample (astronaut, 8 s)": SAMPLE}
        self.samples.update(samples or {})
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.allow_private = allow_private
        self.analyzer_options = dict(analyzer_options or {})
        self.output_dir = Path(output_dir).expanduser() if output_dir else Path.cwd() / "vemoclap_outputs"
        self.log_path = self.output_dir / LOG_FILE
        _log_to_file(self.log_path)

        self.analyzer: "Analyzer | None" = None
        self.result: "Result | None" = None
        self.uploaded_path: Path | None = None
        self._busy = False
        self._explorers: list[Callable[["Result"], None]] = []
        self.explorer_boxes: dict[str, widgets.VBox] = {}  # the latest view of each kind
        self._steps: dict[str, widgets.Widget] = {}
        self._build_widgets()

    @classmethod
    def from_env(cls, **overrides: Any) -> "VemoclapApp":
        """An app configured from VEMOCLAP_* environment variables; non-empty ``overrides`` win."""
        settings = _env_settings()
        settings.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**settings)

    # ---- widgets -------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        W = widgets
        # step 1
        self.setup_html = W.HTML()
        # step 2
        self.load_button = W.Button(description="Load models", icon="download", button_style="primary",
                                    tooltip="load every model once; later runs reuse them")
        self.load_message = W.HTML()
        names = (["classifier"] if self.classifier else []) + self.extractor_names
        self.model_rows: dict[str, ModelRow] = {name: ModelRow.create(name) for name in names}
        self.load_button.add_class("vemoclap-load")
        self.load_button.on_click(lambda _: self.load())
        # step 3
        self.source = W.ToggleButtons(options=[("Sample video", "sample"), ("YouTube link", "link"),
                                               ("Upload", "upload")], value="sample",
                                      tooltips=["a bundled sample", "a YouTube (or any yt-dlp) link",
                                                "a video file from this computer"])
        # step 4
        self.sample_dropdown = W.Dropdown(options=list(self.samples.items()), value=SAMPLE,
                                          description="Sample", layout=W.Layout(width="420px"))
        self.url_text = W.Text(placeholder="https://www.youtube.com/watch?v=…", description="Link",
                               layout=W.Layout(width="560px"))
        accept = ",".join(sorted(VIDEO_EXTENSIONS))
        self.upload = W.FileUpload(accept=accept, multiple=False, description="Choose video")
        self.upload_message = W.HTML()
        self.pick_hint = W.HTML()
        self.pick_box = W.VBox()
        self.upload.observe(self._on_upload, names="value")
        self.source.observe(lambda _: self._show_pick(), names="value")
        self._show_pick()
        # step 5
        self.run_button = W.Button(description="Run", icon="play", button_style="success",
                                   tooltip="analyze the chosen video")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="320px"))
        self.progress_label = W.Label("")
        self.message = W.HTML()
        self.message.add_class("vemoclap-message")
        self.summary_html = W.HTML()
        self.summary_html.add_class("vemoclap-summary")
        self.chart_image = self._image("vemoclap-chart", "600px")
        self.circumplex_image = self._image("vemoclap-circumplex", "460px")
        self.frame_image = self._image("vemoclap-frame", "760px")
        self.timeline_image = self._image("vemoclap-timeline", "900px")
        self.details_html = W.HTML()
        self.details_html.add_class("vemoclap-details")
        self.missing_html = W.HTML()
        self.missing_html.add_class("vemoclap-missing")
        self.downloads_html = W.HTML()
        self.video_button = W.Button(description="Make annotated video", icon="film", layout=W.Layout(width="auto"),
                                     tooltip="every frame with face boxes and expressions")
        self.emotion_dropdown = W.Dropdown(options=[], description="Emotion", layout=W.Layout(width="220px"))
        self.clips_button = W.Button(description="Make emotion clips", icon="scissors", layout=W.Layout(width="auto"),
                                     tooltip="one video of the parts where this emotion dominates")
        self.export_message = W.HTML()
        self.video_button.on_click(lambda _: self.make_annotated_video())
        self.clips_button.on_click(lambda _: self.make_emotion_clips())
        self.results = W.VBox()
        self.results.add_class("vemoclap-results")
        self.run_button.add_class("vemoclap-run")
        self.run_button.on_click(lambda _: self.run())

    @staticmethod
    def _image(css_class: str, max_width: str) -> widgets.Image:
        image = widgets.Image(format="png", layout=widgets.Layout(max_width=f"min(100%, {max_width})", height="auto"))
        image.add_class(css_class)
        return image

    # ---- the five steps ------------------------------------------------------------------
    def setup_step(self) -> widgets.Widget:
        """Step 1: the device found, library versions and where models come from."""
        if "setup" not in self._steps:
            self.setup_html.value = self._setup_report()
            self._steps["setup"] = widgets.VBox([self.setup_html])
        return self._steps["setup"]

    def load_step(self) -> widgets.Widget:
        """Step 2: the Load button and one row per model."""
        if "load" not in self._steps:
            rows = widgets.VBox([row.box for row in self.model_rows.values()])
            self._steps["load"] = widgets.VBox([self.load_button, rows, self.load_message])
            cached = _ANALYZERS.get(self._cache_key())
            if cached is not None:  # rerunning the cell: show what is already loaded
                self._adopt(cached)
        return self._steps["load"]

    def source_step(self) -> widgets.Widget:
        """Step 3: sample video, YouTube link or upload."""
        if "source" not in self._steps:
            self._steps["source"] = widgets.VBox([self.source])
        return self._steps["source"]

    def pick_step(self) -> widgets.Widget:
        """Step 4: the control for the chosen source (changes with step 3)."""
        if "pick" not in self._steps:
            self._steps["pick"] = widgets.VBox([self.pick_box])
        return self._steps["pick"]

    def run_step(self) -> widgets.Widget:
        """Step 5: Run, progress per stage, then the results."""
        if "run" not in self._steps:
            progress = widgets.HBox([self.progress, self.progress_label], layout=widgets.Layout(align_items="center"))
            self._steps["run"] = widgets.VBox([self.run_button, progress, self.message, self.results])
        return self._steps["run"]

    def widget(self) -> widgets.Widget:
        """All five steps in one column, with headings (for a page)."""
        if "all" not in self._steps:
            titles = ["1 · Setup", "2 · Load the models", "3 · Choose the source", "4 · Pick the video",
                      "5 · Run and show"]
            steps = [self.setup_step(), self.load_step(), self.source_step(), self.pick_step(), self.run_step()]
            children: list[widgets.Widget] = []
            for title, step in zip(titles, steps):
                children += [widgets.HTML(f"<h3>{html.escape(title)}</h3>"), step]
            self._steps["all"] = widgets.VBox(children)
        return self._steps["all"]

    def show(self) -> None:
        """Display all five steps at once."""
        from IPython.display import display

        display(self.widget())

    def all_widgets(self) -> list[widgets.Widget]:
        """Every widget the app shows (for tests that look for stray text)."""
        roots = [self.widget(), *self._steps.values()]
        seen: dict[int, widgets.Widget] = {}
        for root in roots:
            for w in _walk(root):
                seen.setdefault(id(w), w)
        return list(seen.values())

    # ---- step 1 --------------------------------------------------------------------------
    def _setup_report(self) -> str:
        from importlib import metadata

        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "not installed"

        rows: list[tuple[str, str]] = []
        try:
            import torch

            if self.device in ("auto", None) and torch.cuda.is_available() or str(self.device).startswith("cuda"):
                if torch.cuda.is_available():
                    index = torch.device(self.device if self.device != "auto" else "cuda").index or 0
                    props = torch.cuda.get_device_properties(index)
                    rows.append(("device", f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GB)"))
                else:
                    rows.append(("device", f"'{self.device}' was asked for but there is no CUDA GPU; "
                                           "use device='auto' or 'cpu'"))
            else:
                rows.append(("device", f"CPU ({os.cpu_count()} cores)"
                             + ("; no GPU found — on Colab choose Runtime → Change runtime type → GPU"
                                if _on_colab() else "")))
        except Exception as exc:  # torch missing or broken: say so instead of failing the cell
            log.exception("checking the device failed")
            rows.append(("device", f"unknown ({one_line(exc)})"))
        rows += [("python", sys.version.split()[0]), ("vemoclap", version("vemoclap")),
                 ("torch", version("torch")), ("transformers", version("transformers")),
                 ("ipywidgets", widgets.__version__)]
        if self.models_dir is None:
            rows.append(("models", "no models dir: models download from the hub on first use "
                                   "(set VEMOCLAP_MODELS_DIR for a local folder)"))
        elif self.models_dir.is_dir():
            rows.append(("models", f"{self.models_dir}"))
        else:
            rows.append(("models", f"{self.models_dir} does not exist (models will be looked up on the hub)"))
        if self.classifier is None:
            rows.append(("classifier", "none: extractor outputs only, no emotion probabilities "
                                       "(set VEMOCLAP_CLASSIFIER to a trained checkpoint)"))
        else:
            rows.append(("classifier", str(self.classifier)))
        rows.append(("outputs", str(self.output_dir)))
        body = "".join(f"<tr><td style='padding-right:1em'><b>{html.escape(k)}</b></td>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table class='vemoclap-setup'>{body}</table>"

    # ---- step 2 --------------------------------------------------------------------------
    def _cache_key(self) -> str:
        return json.dumps({"extractors": self.extractor_names, "device": self.device,
                           "models_dir": str(self.models_dir) if self.models_dir else None,
                           "classifier": str(self.classifier) if self.classifier else None,
                           "options": self.analyzer_options}, sort_keys=True, default=str)

    def _adopt(self, loaded: LoadedModels) -> None:
        self.analyzer = loaded.analyzer
        for name, state in loaded.states.items():
            if name in self.model_rows:
                self.model_rows[name].show(state, cached=True)
        self._load_summary(loaded)

    def _load_summary(self, loaded: LoadedModels) -> None:
        bad = [name for name, state in loaded.states.items() if state.status != "loaded"]
        if bad and not loaded.analyzer.extractors:
            self.load_message.value = _message_html(
                f"no extractor could be loaded ({', '.join(bad)}); see each row for why")
        elif bad:
            self.load_message.value = _message_html(
                f"{len(bad)} model(s) could not be loaded ({', '.join(bad)}); the others will run "
                "and the results say what is missing.")
        else:
            self.load_message.value = _message_html("all models are loaded", ok=True)

    def load(self) -> "Analyzer | None":
        """Load every model once (step 2's button). Returns the Analyzer, or None when nothing works."""
        if self._busy:
            return self.analyzer
        with self._working(self.load_button), _quiet():
            return self._load_safely()

    def _load_safely(self) -> "Analyzer | None":
        try:
            return self._load()
        except Exception as exc:
            log.exception("loading the models failed")
            self.load_message.value = _message_html(describe_error(exc, "loading the models"))
            return None

    def _load(self) -> "Analyzer":
        from .extractors import extractor_class
        from .pipeline import Analyzer

        key = self._cache_key()
        cached = _ANALYZERS.get(key)
        if cached is not None:
            _ANALYZERS.move_to_end(key)
            self._adopt(cached)
            return cached.analyzer
        while len(_ANALYZERS) >= MAX_CACHED_ANALYZERS:  # a new configuration replaces the old models
            _ANALYZERS.popitem(last=False)
            _free_memory()

        self.load_message.value = "loading…"
        states: dict[str, ModelState] = {}
        names: list[str] = []
        for name in self.extractor_names:  # a module that cannot be imported is one row's message
            try:
                extractor_class(name)
                names.append(name)
            except Exception as exc:
                log.exception("extractor %s cannot be imported", name)
                states[name] = ModelState("unavailable", 0.0, one_line(exc))
                self._row(name, states[name])

        options = dict(self.analyzer_options)
        analyzer = Analyzer(names, device=self.device, models_dir=self.models_dir, classifier=None,
                            skip_unavailable=True, **options)
        _BUILDS[key] += 1
        if self.classifier is not None:
            row = self.model_rows.get("classifier")
            if row:
                row.loading()
            start = time.perf_counter()
            try:
                analyzer = Analyzer(names, device=self.device, models_dir=self.models_dir,
                                    classifier=self.classifier, skip_unavailable=True, **options)
                states["classifier"] = ModelState("loaded", time.perf_counter() - start)
            except Exception as exc:  # go on without it: the extractors' outputs are still worth showing
                log.exception("the classifier %s cannot be loaded", self.classifier)
                states["classifier"] = ModelState("unavailable", time.perf_counter() - start,
                                                  f"{one_line(exc)}; extractor outputs only")
            self._row("classifier", states["classifier"])
        for name, state in states.items():  # results list what could not even be imported
            if name != "classifier":
                analyzer.unavailable[name] = state.reason

        for name in names:
            row = self.model_rows.get(name)
            if row:
                row.loading()
            start = time.perf_counter()
            try:
                ok = analyzer._load_one(name)
                state = ModelState("loaded") if ok else ModelState("unavailable", reason=one_line(
                    analyzer.unavailable.get(name, "could not be loaded")))
            except Exception as exc:  # a broken (not just absent) model: this row fails, the rest go on
                log.exception("loading %s failed", name)
                state = ModelState("failed", reason=one_line(exc))
                analyzer.unavailable[name] = f"failed to load: {state.reason}"
                analyzer.extractors.pop(name, None)
            state.seconds = time.perf_counter() - start
            states[name] = state
            self._row(name, state)

        loaded = LoadedModels(analyzer, states, loads=_BUILDS[key])
        _ANALYZERS[key] = loaded
        self.analyzer = analyzer
        self._load_summary(loaded)
        return analyzer

    def _row(self, name: str, state: ModelState) -> None:
        row = self.model_rows.get(name)
        if row:
            row.show(state)

    # ---- steps 3 and 4 -------------------------------------------------------------------
    def _show_pick(self) -> None:
        choice = self.source.value
        if choice == "link":
            self.pick_hint.value = ("Paste a link to one video (YouTube or any site yt-dlp reads). "
                                    "It is downloaded at 360p; long videos take longer.")
            children = [self.pick_hint, self.url_text]
        elif choice == "upload":
            self.pick_hint.value = (f"Choose a video file ({', '.join(sorted(VIDEO_EXTENSIONS))}), at most "
                                    f"{self.max_upload_bytes / 2**20:.0f} MB.")
            children = [self.pick_hint, self.upload, self.upload_message]
        else:
            self.pick_hint.value = "Choose a sample video."
            children = [self.pick_hint, self.sample_dropdown]
        self.pick_box.children = children

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        entries = _upload_entries(change.get("new"))
        if not entries:
            return
        with _quiet():
            try:
                self.uploaded_path = None
                self.uploaded_path = self.accept_upload(*entries[0])
            except Exception as exc:
                if not isinstance(exc, user_errors()):
                    log.exception("the upload failed")
                self.upload_message.value = _message_html(describe_error(exc, "the upload"))
            finally:
                self._clear_upload_widget()

    def accept_upload(self, name: str, data: bytes) -> Path:
        """Save uploaded bytes under a safe name in the output dir and check that they are a video."""
        from . import media

        shown = Path(str(name).replace("\\", "/")).name or "upload"
        if Path(shown).suffix.lower() not in VIDEO_EXTENSIONS:
            raise SourceError(f"{shown!r} is not a video file; use one of {', '.join(sorted(VIDEO_EXTENSIONS))}")
        if len(data) > self.max_upload_bytes:
            raise SourceError(f"{shown}: {len(data) / 2**20:.0f} MB is over the "
                              f"{self.max_upload_bytes / 2**20:.0f} MB upload limit; use a link or a shorter clip")
        directory = self.output_dir / "uploads"
        directory.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=directory))  # a fresh folder: no overwrites
        path = save_upload(data, name, folder, max_bytes=self.max_upload_bytes)
        try:
            info = media.probe(path)
        except Exception as exc:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
            if isinstance(exc, media.MediaError):  # name the file as the person knows it, not our copy
                reason = one_line(exc)
                reason = reason[len(str(path)):].lstrip(": ") if reason.startswith(str(path)) else reason
                raise SourceError(f"{shown}: {reason}") from None
            raise
        if not (info.width and info.height) and not info.has_audio:
            raise SourceError(f"{path.name}: the file has neither video nor audio")
        size = f"{info.width}×{info.height}, " if info.width else "audio only, "
        self.upload_message.value = _message_html(
            f"{path.name} is ready ({len(data) / 2**20:.1f} MB, {size}{info.duration:.1f} s)", ok=True)
        return path

    def _clear_upload_widget(self) -> None:
        # The bytes are saved; dropping them from the widget frees memory (ipywidgets 8 only).
        if isinstance(self.upload.value, tuple) and self.upload.value:
            with contextlib.suppress(Exception):
                self.upload.value = ()

    def chosen_source(self) -> str | Path:
        """What step 5 will analyze, from steps 3 and 4 (SourceError with one line when unusable)."""
        choice = self.source.value
        if choice == "link":
            url = self.url_text.value.strip()
            if not url:
                raise SourceError("paste a video link in step 4 first")
            if not is_url(url):
                raise SourceError(f"{url!r} is not a link; it must start with https:// (or http://)")
            check_url(url, allow_private=self.allow_private)
            return url
        if choice == "upload":
            if self.uploaded_path is None or not self.uploaded_path.is_file():
                raise SourceError("upload a video file in step 4 first")
            return self.uploaded_path
        value = self.sample_dropdown.value
        if not value:
            raise SourceError("choose a sample in step 4 first")
        return value

    # ---- step 5 --------------------------------------------------------------------------
    def run(self) -> "Result | None":
        """Analyze the chosen video and show the results (step 5's button)."""
        if self._busy:
            return None
        self.message.value = ""
        self.results.children = ()
        self.progress.value, self.progress.bar_style = 0, ""
        start = time.perf_counter()
        with self._working(self.run_button), _quiet():
            try:
                source = self.chosen_source()
            except Exception as exc:
                return self._fail(exc, "choosing the video")
            analyzer = self.analyzer
            if analyzer is None:  # Run without Load: load first, with the same rows
                self.progress_label.value = "loading the models…"
                analyzer = self._load_safely()
                if analyzer is None:
                    return self._fail(SourceError("the models could not be loaded; see step 2"), "loading")
            try:
                self.progress_label.value = "getting the video…"
                result = analyzer.analyze(source, progress=self._on_progress, allow_private=self.allow_private)
            except Exception as exc:
                return self._fail(exc, "the analysis")
            self.progress_label.value = "drawing the results…"
            self.result = result
            self._render(result)
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            self.progress_label.value = f"done in {time.perf_counter() - start:.1f} s"
            self._refresh_explorers(result)
        return result

    def autorun(self, source: str = SAMPLE) -> "Result":
        """Load, pick ``source`` and run without clicks (headless notebook runs, CI). Raises on failure."""
        if is_url(source):
            self.source.value, self.url_text.value = "link", source
        else:
            if source not in self.samples.values():
                self.samples[source] = source
                self.sample_dropdown.options = list(self.samples.items())
            self.source.value, self.sample_dropdown.value = "sample", source
        self.load_button.click()
        self.run_button.click()
        if self.result is None:
            raise RuntimeError(re.sub(r"<[^>]+>", "", self.message.value) or "the analysis did not run")
        return self.result

    def _fail(self, exc: BaseException, doing: str) -> None:
        if not isinstance(exc, user_errors()):
            log.exception("%s failed", doing)
        else:
            log.info("%s: %s", doing, exc)
        self.progress.bar_style = "danger"
        self.progress_label.value = ""
        self.message.value = _message_html(describe_error(exc, doing))
        return None

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.max = max(1, total)
        self.progress.value = min(done, total)
        self.progress.bar_style = "info"
        if stage == "media":
            text = "reading frames and audio"
        elif stage == "done":
            text = "combining the features"
        elif stage == "load":
            text = "loading the models"
        else:
            text = f"running {stage}"
        self.progress_label.value = f"{text} ({done}/{total})"

    # ---- drawing results -----------------------------------------------------------------
    def _render(self, result: "Result") -> None:
        timeline = None
        try:
            timeline = self.analyzer.timeline(result)
        except Exception:
            log.exception("the timeline failed")
        self.summary_html.value = self._guard("the summary", lambda: summary_html(result), html_out=True)
        self._set_image(self.chart_image, "the probability chart", result.plot)
        self._set_image(self.circumplex_image, "the valence–arousal plot", result.plot_circumplex)
        has_frames = result.frames is not None and len(result.frames) > 0
        self._set_image(self.frame_image, "the annotated frame", result.plot_annotated_frame if has_frames else None)
        self._set_image(self.timeline_image, "the timeline",
                        timeline.plot if timeline is not None and result.info and result.info.duration > 0 else None)
        self.details_html.value = self._guard("the details", lambda: details_html(result), html_out=True)
        self.missing_html.value = self._guard("the missing list", lambda: missing_html(result), html_out=True)
        self.downloads_html.value = self._guard("the downloads", lambda: self._downloads(result, timeline),
                                                html_out=True)
        self.emotion_dropdown.options = list(result.labels)
        if result.top_label:
            self.emotion_dropdown.value = result.top_label
        self.export_message.value = ""
        W = widgets
        images = [w for w in (self.chart_image, self.circumplex_image) if w.value]
        rows: list[widgets.Widget] = [self.summary_html]
        if images:
            rows.append(W.HBox(images, layout=W.Layout(flex_flow="row wrap", align_items="flex-start")))
        rows += [w for w in (self.frame_image, self.timeline_image) if w.value]
        rows += [self.details_html, self.missing_html, W.HTML("<h4>Downloads</h4>"), self.downloads_html,
                 W.HBox([self.video_button]), W.HBox([self.emotion_dropdown, self.clips_button]),
                 self.export_message]
        self.results.children = rows

    def _guard(self, what: str, build: Callable[[], str], html_out: bool = False) -> str:
        try:
            return build()
        except Exception as exc:
            log.exception("drawing %s failed", what)
            return _message_html(f"could not show {what}: {one_line(exc)}")

    def _set_image(self, image: widgets.Image, what: str, plot: Callable[[], "Figure"] | None) -> None:
        image.value = b""
        if plot is None:
            return
        try:
            image.value = figure_png(plot())
        except Exception:
            log.exception("drawing %s failed", what)
            self.message.value = _message_html(f"could not draw {what} (details in the log)")

    def _downloads(self, result: "Result", timeline) -> str:
        stem = _safe_stem(result.source)
        links = [data_uri_link(result.to_json().encode("utf-8"), f"{stem}.json", "application/json",
                               "result (JSON)"),
                 data_uri_link(result.to_frame().to_csv(index=False).encode("utf-8"), f"{stem}_probabilities.csv",
                               "text/csv", "probabilities (CSV)")]
        if timeline is not None:
            if len(timeline.faces):
                links.append(data_uri_link(timeline.faces.to_csv(index=False).encode("utf-8"),
                                           f"{stem}_frames.csv", "text/csv", "faces per frame (CSV)"))
            if len(timeline.windows):
                links.append(data_uri_link(timeline.windows.to_csv(index=False).encode("utf-8"),
                                           f"{stem}_timeline.csv", "text/csv", "emotion timeline (CSV)"))
        return " · ".join(links)

    # ---- exports -------------------------------------------------------------------------
    def _export_dir(self) -> Path:
        assert self.result is not None
        directory = self.output_dir / _safe_stem(self.result.source)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def make_annotated_video(self) -> Path | None:
        """Write every frame with faces and expressions (audio kept) and offer it for download."""
        if self._busy:
            return None
        with self._working(self.video_button), _quiet():
            try:
                if self.result is None:
                    raise SourceError("run step 5 first")
                self.export_message.value = "making the annotated video…"
                path = self._export_dir() / f"{_safe_stem(self.result.source)}_annotated.mp4"
                video = self.analyzer.export_annotated_video(self.result, path, progress=self._export_progress("annotating"))
                parts = [self.offer(Path(video.path), "annotated video")]
                csv_path = getattr(video, "csv_path", None)
                if csv_path:
                    parts.append(self.offer(Path(csv_path), "per-frame labels (CSV)"))
                self.export_message.value = " · ".join(parts)
                return Path(video.path)
            except Exception as exc:
                if not isinstance(exc, user_errors()):
                    log.exception("the annotated video failed")
                self.export_message.value = _message_html(describe_error(exc, "the annotated video"))
                return None

    def make_emotion_clips(self, emotion: str | None = None) -> Path | None:
        """Write one video of the segments where ``emotion`` (default: the dropdown's) dominates."""
        if self._busy:
            return None
        with self._working(self.clips_button), _quiet():
            try:
                if self.result is None:
                    raise SourceError("run step 5 first")
                emotion = emotion or self.emotion_dropdown.value
                if not emotion:
                    raise SourceError("choose an emotion first")
                self.export_message.value = f"finding the {html.escape(emotion)} segments…"
                path = self._export_dir() / f"{_safe_stem(self.result.source)}_{emotion}.mp4"
                written, segments = self.analyzer.export_emotion_clips(self.result, emotion, path,
                                                                      progress=self._export_progress("cutting"))
                if written is None:
                    self.export_message.value = _message_html(f"no part of the video has {emotion} on top; "
                                                              "nothing to cut")
                    return None
                spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in segments)
                self.export_message.value = (f"{self.offer(Path(written), f'{emotion} clips')} "
                                             f"({html.escape(spans)})")
                return Path(written)
            except Exception as exc:
                if not isinstance(exc, user_errors()):
                    log.exception("the emotion clips failed")
                self.export_message.value = _message_html(describe_error(exc, "the emotion clips"))
                return None

    def _export_progress(self, what: str) -> Callable[[str, float, float | None], None]:
        """Drive step 5's progress bar from an export (frames or seconds done of total)."""
        self.progress.bar_style = "info"
        self.progress.value, self.progress.max = 0, 1000

        def update(stage: str, done: float, total: float | None) -> None:
            if total:
                self.progress.value = min(1000, int(1000 * done / total))
                self.progress_label.value = f"{what}: {done / total:.0%}"
            else:
                self.progress_label.value = f"{what}: {done:.0f}"

        return update

    def offer(self, path: Path, label: str) -> str:
        """HTML offering a written file: a download link when small, else its path; on Colab the
        browser download starts too."""
        size = path.stat().st_size
        if _on_colab():
            try:
                from google.colab import files

                files.download(str(path))
            except Exception:  # the link / path below still works
                log.exception("Colab download of %s failed", path)
        mime = "video/mp4" if path.suffix == ".mp4" else "text/csv" if path.suffix == ".csv" else \
            "application/octet-stream"
        where = f"saved to <code>{html.escape(str(path))}</code>"
        if size <= DATA_URI_LIMIT:
            return f"{data_uri_link(path.read_bytes(), path.name, mime, label)} ({size / 2**20:.1f} MB, {where})"
        return f"{html.escape(label)}: {where} ({size / 2**20:.1f} MB)"

    # ---- exploring the result (later notebook cells) -------------------------------------
    def _explorer(self, kind: str, draw: Callable[["Result"], list[widgets.Widget]]) -> widgets.VBox:
        css_class = f"vemoclap-explore-{kind}"
        box = widgets.VBox([widgets.HTML("<i>appears after step 5 has run</i>")])
        box.add_class(css_class)
        self.explorer_boxes[kind] = box

        def refresh(result: "Result") -> None:
            try:
                box.children = draw(result)
            except Exception as exc:
                log.exception("%s failed", css_class)
                box.children = [widgets.HTML(_message_html(f"could not draw this: {one_line(exc)}"))]

        self._explorers.append(refresh)
        if self.result is not None:
            refresh(self.result)
        return box

    def _refresh_explorers(self, result: "Result") -> None:
        for refresh in self._explorers:
            refresh(result)

    def explore_frames(self, columns: int = 4) -> widgets.VBox:
        """Every sampled frame with faces and text boxes drawn; redrawn after each run."""
        def draw(result: "Result") -> list[widgets.Widget]:
            fig = frames_grid(result, columns)
            if fig is None:
                return [widgets.HTML("no video frames")]
            return [self._png_image(fig)]

        return self._explorer("frames", draw)

    def explore_faces(self, limit: int = 24) -> widgets.VBox:
        """Crops of the detected faces with their expression; redrawn after each run."""
        def draw(result: "Result") -> list[widgets.Widget]:
            fig, text = faces_figure(result, limit)
            return [widgets.HTML(html.escape(text))] + ([self._png_image(fig)] if fig is not None else [])

        return self._explorer("faces", draw)

    def explore_features(self) -> widgets.VBox:
        """The features' shapes and a heatmap of each; redrawn after each run."""
        def draw(result: "Result") -> list[widgets.Widget]:
            table = features_table_html(result)
            fig = features_heatmap(result)
            return [widgets.HTML(table)] + ([self._png_image(fig)] if fig is not None else [])

        return self._explorer("features", draw)

    @staticmethod
    def _png_image(fig: "Figure") -> widgets.Image:
        return widgets.Image(value=figure_png(fig), format="png",
                             layout=widgets.Layout(max_width="100%", height="auto"))

    # ---- plumbing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _working(self, button: widgets.Button) -> Iterator[None]:
        """Disable the buttons while one job runs (clicks during it are ignored)."""
        buttons = [self.load_button, self.run_button, self.video_button, self.clips_button]
        self._busy = True
        for b in buttons:
            b.disabled = True
        try:
            yield
        finally:
            self._busy = False
            for b in buttons:
                b.disabled = False


# --------------------------------------------------------------------------- result → HTML / figures

def _sentiment_text(sentiment) -> str:
    if sentiment is None:
        return ""
    label, score = getattr(sentiment, "label", None), getattr(sentiment, "score", None)
    if label is None:
        return ""
    return f"{label} ({score:.0%})" if isinstance(score, (int, float)) else str(label)


def summary_html(result: "Result") -> str:
    """The headline: top emotion (or why there is none), valence–arousal, the video, and the text report."""
    from .results import NO_CLASSIFIER

    parts: list[str] = []
    if result.has_prediction:
        va = result.valence_arousal
        va_text = f" · valence {va[0]:+.2f}, arousal {va[1]:+.2f}" if va else ""
        parts.append(f"<h3 style='margin:0.2em 0'>Emotion: <span class='vemoclap-top'>"
                     f"{html.escape(result.top_label)}</span> ({result.top_probability:.0%})"
                     f"{html.escape(va_text)}</h3>")
        ranked = sorted(result.scores.items(), key=lambda kv: -kv[1])
        parts.append("<div>" + " · ".join(f"{html.escape(k)} {v:.0%}" for k, v in ranked) + "</div>")
    else:
        parts.append(f"<h3 style='margin:0.2em 0'>No emotion prediction</h3><div>{html.escape(NO_CLASSIFIER)}</div>")
    info = result.info
    if info is not None:
        parts.append(f"<div>{html.escape(Path(result.source).name or result.source)}: {info.duration:.1f} s, "
                     f"{info.width}×{info.height}, {info.fps:.1f} fps, audio: {'yes' if info.has_audio else 'no'}"
                     "</div>")
    if result.timings:
        total = sum(result.timings.values())
        slowest = sorted(result.timings.items(), key=lambda kv: -kv[1])[:4]
        parts.append("<div style='color:#666'>time: " + html.escape(
            f"{total:.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in slowest) + ")") + "</div>")
    parts.append("<details><summary>text report</summary><pre class='vemoclap-report'>"
                 f"{html.escape(result.summary())}</pre></details>")
    return "\n".join(parts)


def _section(title: str, body: str) -> str:
    return f"<h4 style='margin:0.8em 0 0.2em'>{html.escape(title)}</h4>{body}"


def _faces_summary(output) -> str:
    frames = getattr(output, "frames", None) or []
    faces = [face for frame in frames for face in getattr(frame, "faces", [])]
    if not faces:
        return "no faces found"
    with_faces = sum(1 for frame in frames if getattr(frame, "faces", None))
    counts: dict[str, int] = {}
    for face in faces:
        counts[face.expression] = counts.get(face.expression, 0) + 1
    ranked = ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    best = max(faces, key=lambda f: f.confidence)
    return (f"{len(faces)} face(s) in {with_faces} frame(s); expressions: {ranked}; "
            f"most confident: {best.expression} ({best.confidence:.0%})")


def details_html(result: "Result") -> str:
    """Every extractor's readable output: transcript, on-screen text, audio events, faces, caption."""
    sections: list[str] = []
    done: set[str] = set()
    outputs = {name: out for name, out in result.outputs.items() if not out.missing}

    asr = outputs.get("asr_sentiment")
    if asr is not None:
        done.add("asr_sentiment")
        text = getattr(asr, "text", "") or ""
        language = getattr(asr, "language_name", None) or getattr(asr, "language", None)
        lines = [f"<blockquote class='vemoclap-transcript'>{html.escape(text) or '<i>no words</i>'}</blockquote>"]
        meta = [f"spoken language: {language}"] if language else []
        sentiment = _sentiment_text(getattr(asr, "sentiment", None))
        if sentiment:
            meta.append(f"sentiment: {sentiment}")
        if meta:
            lines.append(f"<div>{html.escape(' · '.join(meta))}</div>")
        sections.append(_section("Speech (transcript, translated to English)", "".join(lines)))

    ocr = outputs.get("ocr_sentiment")
    if ocr is not None:
        done.add("ocr_sentiment")
        originals = getattr(ocr, "unique_lines", None) or []
        english = getattr(ocr, "english_lines", None) or []
        items = []
        for i, line in enumerate(originals):
            translated = english[i] if i < len(english) else ""
            extra = f" → {translated}" if translated and translated != line else ""
            items.append(f"<li>{html.escape(line + extra)}</li>")
        body = f"<ul class='vemoclap-ocr'>{''.join(items)}</ul>" if items else "<i>no text</i>"
        sentiment = _sentiment_text(getattr(ocr, "sentiment", None))
        if sentiment:
            body += f"<div>sentiment: {html.escape(sentiment)}</div>"
        sections.append(_section("On-screen text", body))

    for name, out in outputs.items():
        tags = getattr(out, "tags", None)
        if tags:
            done.add(name)
            listed = ", ".join(f"{html.escape(str(t.label))} {t.score:.0%}" for t in tags[:8])
            sections.append(_section(f"Audio events ({name})", f"<div>{listed}</div>"))

    faces = outputs.get("face_emotion")
    if faces is not None:
        done.add("face_emotion")
        sections.append(_section("Faces", f"<div>{html.escape(_faces_summary(faces))}</div>"))

    caption = outputs.get("caption")
    if caption is not None:
        done.add("caption")
        text = getattr(caption, "text", "") or ""
        sections.append(_section("Caption", f"<div><i>{html.escape(text) or 'none'}</i></div>"))

    others = [out for name, out in outputs.items() if name not in done]
    if others:
        lines = [line for out in others for line in out.describe()]
        sections.append(_section("Other features", "<br>".join(html.escape(line) for line in lines)))
    return "\n".join(sections)


def missing_html(result: "Result") -> str:
    """What is missing and why, and any warnings, escaped."""
    parts: list[str] = []
    if result.missing:
        items = "".join(f"<li><b>{html.escape(name)}</b>: {html.escape(reason)}</li>"
                        for name, reason in result.missing.items())
        parts.append(_section("Missing", f"<ul>{items}</ul>"))
    if result.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
        parts.append(_section("Notes", f"<ul>{items}</ul>"))
    return "\n".join(parts)


def frames_grid(result: "Result", columns: int = 4) -> "Figure | None":
    """All sampled frames with faces and text boxes drawn, time above each."""
    import matplotlib.pyplot as plt

    if result.frames is None or len(result.frames) == 0:
        return None
    n = len(result.frames)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(result.annotated_frame(i))
            ax.set_title(f"{result.frames.timestamps[i]:.1f} s", fontsize=8)
    fig.tight_layout()
    return fig


def faces_figure(result: "Result", limit: int = 24) -> tuple["Figure | None", str]:
    """Crops of the detected faces (largest first within each frame) labelled with their expression."""
    import matplotlib.pyplot as plt

    output = result.outputs.get("face_emotion")
    if output is None:
        return None, "the face extractor did not run"
    if output.missing:
        return None, f"no faces: {output.missing}"
    crops: list[tuple[Any, str]] = []
    for frame in getattr(output, "frames", None) or []:
        image = result.frames.images[frame.frame_index]
        for face in frame.faces:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            x0, y0 = max(0, x0), max(0, y0)
            x1, y1 = min(image.shape[1], x1), min(image.shape[0], y1)
            if x1 > x0 and y1 > y0:
                time_s = result.frames.timestamps[frame.frame_index]
                crops.append((image[y0:y1, x0:x1], f"{face.expression} {face.confidence:.0%}\n{time_s:.1f} s"))
    if not crops:
        return None, "no faces were found"
    shown = crops[:limit]
    columns = min(8, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (crop, title) in zip(axes.flat, shown):
        ax.imshow(crop)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    more = f" (first {limit} shown)" if len(crops) > limit else ""
    return fig, f"{len(crops)} face crop(s){more}"


def features_table_html(result: "Result") -> str:
    rows = []
    for name, out in result.outputs.items():
        feature = getattr(out, "feature", None)
        shape = "×".join(map(str, feature.shape)) if feature is not None else "—"
        note = out.missing or (f"mean {feature.mean():+.3f}, std {feature.std():.3f}" if feature is not None else "")
        fusion = result.feature_of.get(name, "")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(fusion)}</td><td>{html.escape(shape)}</td>"
                    f"<td>{html.escape(note)}</td></tr>")
    head = "<tr><th>extractor</th><th>fusion feature</th><th>shape</th><th>values / why missing</th></tr>"
    return f"<table class='vemoclap-features'>{head}{''.join(rows)}</table>"


def features_heatmap(result: "Result") -> "Figure | None":
    """One heatmap per feature (rows: time steps or the single vector; columns: dimensions)."""
    import matplotlib.pyplot as plt
    import numpy as np

    features = [(name, np.atleast_2d(out.feature)) for name, out in result.outputs.items()
                if getattr(out, "feature", None) is not None]
    if not features:
        return None
    fig, axes = plt.subplots(len(features), 1, figsize=(9, 1.3 + 0.9 * len(features)), squeeze=False)
    for ax, (name, array) in zip(axes[:, 0], features):
        image = ax.imshow(array, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name} {array.shape[0]}×{array.shape[1]}", fontsize=9, loc="left")
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- logging / quiet output

def _log_to_file(path: Path) -> None:
    """Send vemoclap's log (tracebacks included) to a file, so nothing lands on the page."""
    logger = logging.getLogger("vemoclap")
    for handler in list(logger.handlers):  # one app log at a time: the newest app's
        if getattr(handler, "_vemoclap_app", None) is not None:
            if handler._vemoclap_app == str(path):
                return
            logger.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:  # a read-only place: keep the log in memory rather than on the page
        handler = logging.NullHandler()
    handler._vemoclap_app = str(path)  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Library chatter (prints, progress bars, warnings) goes to the log instead of the page."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("default")
        yield
    for w in caught:
        log.debug("warning: %s", w.message)
    for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
        if text.strip():
            log.debug("%s: %s", stream, text.strip()[-4000:])


# --------------------------------------------------------------------------- the notebook

NOTEBOOK_NAME = "vemoclap.ipynb"

_INTRO = """# vemoclap — what emotion does this video carry?

Run the five steps in order (on Colab: *Runtime → Run all*, then use the buttons). Step 1 installs
vemoclap on Colab, step 2 loads the models once, steps 3–4 choose a video, step 5 analyzes it and
shows the six Ekman emotions (anger, disgust, fear, joy, sadness, surprise), what every model found,
and downloads. The cells below step 5 explore the last result (`app.result`)."""

_SETUP = '''# Step 1 · Setup. On Colab this installs vemoclap (Colab's own torch is kept); elsewhere it only checks.
import os
import subprocess
import sys

# What pip installs on Colab: the PyPI name, or a wheel / folder / git link of your copy.
INSTALL_SOURCE = os.environ.get("VEMOCLAP_INSTALL_SOURCE", "vemoclap[models,app]")
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", INSTALL_SOURCE], check=True)
    from google.colab import output
    output.enable_custom_widget_manager()  # widgets newer than Colab's built-in ones

# Optional settings; the environment variables let CI point the notebook at tiny test models.
MODELS_DIR = os.environ.get("VEMOCLAP_MODELS_DIR", "")  # folder from `vemoclap download-models`; empty: the hub
CLASSIFIER = os.environ.get("VEMOCLAP_CLASSIFIER", "")  # trained emotion classifier; empty: extractor outputs only

from vemoclap.app import VemoclapApp

app = VemoclapApp.from_env(models_dir=MODELS_DIR, classifier=CLASSIFIER)
app.setup_step()'''

_LOAD = '''# Step 2 · Load the models (once: rerunning this cell or the app keeps them loaded).
app.load_step()'''

_SOURCE = '''# Step 3 · Choose the source: a sample video, a YouTube link or an upload.
app.source_step()'''

_PICK = '''# Step 4 · Pick the video.
app.pick_step()'''

_RUN = '''# Step 5 · Run and show. VEMOCLAP_AUTORUN=1 presses Load and Run on the sample (headless runs, CI).
display(app.run_step())
if os.environ.get("VEMOCLAP_AUTORUN") == "1":
    app.autorun(os.environ.get("VEMOCLAP_SOURCE", "sample"))'''

_EXPLORE = """## Explore the result

Each view below redraws after every run of step 5. `app.result` is the last result
(`.summary()`, `.to_frame()`, `.plot()`, `.save(folder)`, `.export_annotated_video(path)`, ...)."""

_FRAMES = '''# The sampled frames, with faces and on-screen text boxes.
app.explore_frames()'''

_FACES = '''# The detected faces and their expressions.
app.explore_faces()'''

_FEATURES = '''# The features the emotion classifier reads: shapes and values.
app.explore_features()'''


def notebook_cells() -> list[tuple[str, str]]:
    """(cell type, source) of the app notebook, in order: one source of truth for the file and Voila."""
    return [("markdown", _INTRO),
            ("markdown", "## 1 · Setup"), ("code", _SETUP),
            ("markdown", "## 2 · Load the models"), ("code", _LOAD),
            ("markdown", "## 3 · Choose the source"), ("code", _SOURCE),
            ("markdown", "## 4 · Pick the video"), ("code", _PICK),
            ("markdown", "## 5 · Run and show"), ("code", _RUN),
            ("markdown", _EXPLORE), ("code", _FRAMES), ("code", _FACES), ("code", _FEATURES)]


def build_notebook():
    """The app notebook as an nbformat object."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "name": NOTEBOOK_NAME},
        "accelerator": "GPU",
    })
    for kind, source in notebook_cells():
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.pop("id", None)
        nb.cells.append(cell)
    nb.nbformat_minor = 4  # no cell ids: the file stays byte-stable when regenerated
    return nb


def write_notebook(path) -> Path:
    """Write the app notebook to ``path``."""
    import nbformat

    from ._util import atomic_write_text

    path = Path(path)
    atomic_write_text(path, nbformat.writes(build_notebook()) + "\n")
    return path


def find_notebook() -> Path | None:
    """notebooks/vemoclap.ipynb of a source checkout, when there is one."""
    candidate = Path(__file__).resolve().parent.parent / "notebooks" / NOTEBOOK_NAME
    return candidate if candidate.is_file() else None


# --------------------------------------------------------------------------- `vemoclap app`

def voila_command(notebook: Path, port: int, open_browser: bool = True) -> list[str]:
    """The Voila command line that serves ``notebook`` on 127.0.0.1 only."""
    command = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1",
               "--VoilaConfiguration.show_tracebacks=False", "--theme=light"]
    if not open_browser:
        command.append("--no-browser")
    return command


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8866, help="local port (default 8866)")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="directory searched first for every model (also $VEMOCLAP_MODELS_DIR)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="emotion classifier checkpoint (also $VEMOCLAP_CLASSIFIER)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda ...")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where uploads and exports go (default ./vemoclap_outputs)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def _cmd_app(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    try:
        import voila  # noqa: F401
    except ImportError:
        raise FileNotFoundError("the app page needs Voila: pip install 'vemoclap[app]'") from None
    env = os.environ.copy()
    for key, value in (("models_dir", args.models_dir), ("classifier", args.classifier)):
        if value:
            env[SETTINGS_ENV[key]] = str(Path(value).expanduser().resolve())
    if args.device:
        env[SETTINGS_ENV["device"]] = args.device
    if args.output_dir or not env.get(SETTINGS_ENV["output_dir"]):
        output_dir = args.output_dir or Path.cwd() / "vemoclap_outputs"
        env[SETTINGS_ENV["output_dir"]] = str(output_dir.expanduser().resolve())
    for key in ("models_dir", "classifier"):  # a wrong path is one line now, not a broken page later
        value = env.get(SETTINGS_ENV[key])
        if value and not Path(value).exists():
            raise FileNotFoundError(f"{value}: no such file or folder (--{key.replace('_', '-')})")

    notebook = find_notebook()
    tmp = None
    if notebook is None:  # an installed package has no notebooks/ folder: write the same notebook
        tmp = Path(tempfile.mkdtemp(prefix="vemoclap-app-"))
        notebook = write_notebook(tmp / NOTEBOOK_NAME)
    command = voila_command(notebook, args.port, open_browser=not args.no_browser)
    print(f"vemoclap app: http://127.0.0.1:{args.port}/ (Ctrl+C stops it)", flush=True)
    log.info("running %s", " ".join(command))
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def add_commands(subparsers) -> None:
    """Add ``vemoclap app`` to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "app", help="the notebook app as a local web page (Voila, 127.0.0.1 only)",
        description="Serve the five-step notebook app as a page on this machine. Equivalent to "
                    "`VEMOCLAP_MODELS_DIR=... voila notebooks/vemoclap.ipynb --Voila.ip=127.0.0.1 --port=8866`.")
    _add_arguments(parser)
    parser.set_defaults(func=_cmd_app)


def main(argv: list[str] | None = None) -> int:
    """``python -m vemoclap.app`` — the same as ``vemoclap app``."""
    parser = argparse.ArgumentParser(prog="vemoclap app", description="Serve the notebook app as a local page.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _cmd_app(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"vemoclap: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
