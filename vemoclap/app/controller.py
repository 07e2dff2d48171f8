"""The app without widgets: its state and the actions of the five steps.

Step 1 reports the machine, step 2 fetches (optionally) and loads the models through the Analyzer's
own ``load(progress=...)``, steps 3–4 choose a source (sample, link, upload, a file path), step 5
runs ``Analyzer.analyze(progress=...)``. Every action returns plain values or raises; progress goes
to a callback as one :class:`Progress` (text and fraction together, so a label never disagrees with
its bar). The widget steps in ``steps.py`` only display what this class says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .. import samples as sample_videos
from ..errors import UserError, one_line, user_errors
from ..media import VIDEO_EXTENSIONS
from ..models.provenance import is_random
from ..notice import random_models_notice, random_names, random_weights_notice
from ..sources import SourceError, check_url, is_url, save_upload
from . import cache, colab
from .cache import LoadedModels, ModelState
from .logs import LOG_FILE, log_to_file
from .settings import SETTINGS_ENV, settings_from_env  # noqa: F401  (re-exported)
from .step_table import STEP
from .views import safe_stem

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import Analyzer
    from ..results import Result

log = logging.getLogger(__name__)

SOURCES = {
    "sample": "Sample video",
    "link": "YouTube link",
    "upload": "Upload",
    "path": "File on this machine or Google Drive",
}
# Colab's uploader holds the whole file in the kernel's memory (about 12 GB on the free tier).
COLAB_UPLOAD_MB = 200
# The reference's Colab app (VEMOCLAP) runs step 5 in about 30 s for a one-minute video on the free
# T4; the CPU figure is a rough guide.
GPU_SPEED_NOTE = (
    f"no GPU: {STEP['run'].name} runs on the CPU, several minutes for a one-minute video instead of about "
    f"30 s on Colab's free T4; choose Runtime → Change runtime type → T4 GPU, then rerun from {STEP['setup'].name}"
)


@dataclass(frozen=True)
class Progress:
    """What to show while something runs: a line of text and how far along it is (0–1)."""

    text: str
    fraction: float


ProgressFn = Callable[[Progress], None]
ModelFn = Callable[[str, ModelState], None]


def describe_error(exc: BaseException, doing: str) -> str:
    """One line for people; unexpected errors (bugs) say where the details are."""
    if isinstance(exc, user_errors()):
        return one_line(exc)
    return f"{doing} failed: {type(exc).__name__}: {one_line(exc)} (details in the log)"


def default_classifier() -> Any:
    """What the Analyzer loads when no classifier is passed (None: extractor outputs only)."""
    from ..pipeline import REFERENCE_CLASSIFIER

    return REFERENCE_CLASSIFIER


RANDOM_CLASSIFIER = " — a tiny RANDOM classifier (vemoclap.tiny): its emotions mean nothing"


class NothingToCut(UserError):
    """Nothing to export: no window has the chosen emotion on top, or no face for the annotated video."""


class Controller:
    """State and actions of the five steps; see the module docstring."""

    def __init__(
        self,
        models_dir=None,
        classifier=None,
        device: str = "auto",
        extractors: Sequence[str] | None = None,
        samples: Mapping[str, str] | None = None,
        max_upload_mb: float = 200,
        allow_private: bool = False,
        analyzer_options: Mapping[str, Any] | None = None,
        output_dir=None,
        fetch_models: bool | None = None,
    ):
        from ..models import default_models_dir
        from ..registry import default_extractors

        self.on_colab = colab.on_colab()
        self.models_dir = Path(models_dir).expanduser() if models_dir else default_models_dir()
        self.classifier = Path(classifier).expanduser() if classifier else None
        self.device = device or "auto"
        self.extractor_names = list(extractors) if extractors is not None else list(default_extractors())
        self.samples: dict[str, str] = {}
        for index, name in enumerate(sample_videos.names()):  # the first is the generated (offline) one
            offline = index == 0
            label = "vemoclap sample (generated, offline; no real emotion)" if offline else f"reference sample: {name}"
            self.samples[label] = name if offline else f"{sample_videos.PREFIX}{name}"
        self.samples.update(samples or {})
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.colab_upload_bytes = min(self.max_upload_bytes, COLAB_UPLOAD_MB * 1024 * 1024)
        self.allow_private = allow_private
        self.analyzer_options = dict(analyzer_options or {})
        self.fetch_models = self.on_colab if fetch_models is None else fetch_models
        self.output_dir = Path(output_dir).expanduser() if output_dir else Path.cwd() / "vemoclap_outputs"
        self.log_path = self.output_dir / LOG_FILE
        log_to_file(self.log_path)

        self.analyzer: "Analyzer | None" = None
        self.loaded: LoadedModels | None = None
        self.result: "Result | None" = None
        self.last_error: str = ""  # why the last run gave no result
        self.source_kind = "sample"
        self.sample = sample_videos.GENERATED
        self.url = ""
        self.path_text = ""
        self.uploaded_path: Path | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> "Controller":
        """Configured from VEMOCLAP_* environment variables; non-empty ``overrides`` win."""
        settings = settings_from_env()
        settings.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**settings)

    # ---- step 1 --------------------------------------------------------------------------
    def gpu(self) -> str | None:
        """The GPU that will be used ("name (N GB)"), or None."""
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available() and (self.device == "auto" or str(self.device).startswith("cuda")):
                index = torch.device(self.device if self.device != "auto" else "cuda").index or 0
                props = torch.cuda.get_device_properties(index)
                return f"{props.name} ({props.total_memory / 2**30:.0f} GB)"
        return None

    def setup_rows(self) -> tuple[list[tuple[str, str]], list[str]]:
        """(what, value) rows for step 1, and warnings to show above them."""
        from importlib import metadata

        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "not installed"

        warnings: list[str] = []
        gpu = self.gpu()
        if gpu:
            device = f"GPU: {gpu}"
        elif str(self.device).startswith("cuda"):
            device = f"'{self.device}' was asked for but there is no CUDA GPU; use device='auto' or 'cpu'"
            warnings.append(device)
        else:
            device = f"CPU ({os.cpu_count()} cores)"
            if self.on_colab:
                warnings.append(GPU_SPEED_NOTE)
        rows = [
            ("device", device),
            ("python", sys.version.split()[0]),
            ("vemoclap", version("vemoclap")),
            ("torch", version("torch")),
            ("transformers", version("transformers")),
            ("ipywidgets", version("ipywidgets")),
        ]
        if self.models_dir is None:
            rows.append(
                (
                    "models",
                    "no models dir: models download from the hub on first use "
                    "(set VEMOCLAP_MODELS_DIR for a local folder)",
                )
            )
        elif self.models_dir.is_dir():
            rows.append(("models", f"{self.models_dir}"))
            random, present = self.folder_random()
            if random:
                warnings.append(random_models_notice(random, present))
        else:
            rows.append(
                (
                    "models",
                    f"{self.models_dir} does not exist yet ({STEP['load'].name} fetches the models into it)"
                    if self.fetch_models
                    else f"{self.models_dir} does not exist (models will be looked up on the hub)",
                )
            )
        if self.classifier is not None:
            random = is_random(self.classifier) or is_random(Path(self.classifier).parent)
            rows.append(("classifier", f"{self.classifier}" + (RANDOM_CLASSIFIER if random else "")))
        elif default_classifier() is None:
            rows.append(
                (
                    "classifier",
                    "none: extractor outputs only, no emotion probabilities "
                    "(set VEMOCLAP_CLASSIFIER to a trained checkpoint)",
                )
            )
        else:
            rows.append(("classifier", self._default_classifier_row()))
        rows.append(("outputs", str(self.output_dir)))
        return rows, warnings

    def folder_random(self) -> tuple[list[str], list[str]]:
        """Of the models in the models folder, those with random weights (vemoclap.tiny's), and all present."""
        from ..models import table

        if self.models_dir is None or not self.models_dir.is_dir():
            return [], []
        rows = [row for row in table(self.models_dir) if row["local"]]
        return [row["key"] for row in rows if row["origin"] == "random"], [row["key"] for row in rows]

    def _default_classifier_row(self) -> str:
        """Step 1's classifier row: what the models folder holds, not only what the default would be."""
        if default_classifier() != "reference":
            return f"{default_classifier()} (the default)"
        from ..models import table

        found = next((r for r in table(self.models_dir) if r["key"] == "classifier"), None)
        if found and found["local"] and found["origin"] == "random":
            return f"{found['local']}{RANDOM_CLASSIFIER}"
        if found and found["local"] and found["origin"] == "download":
            return f"the reference's trained classifier (VEMOCLAP, GPL-3.0), fetched and verified: {found['local']}"
        return f"the reference's trained classifier (VEMOCLAP, GPL-3.0), fetched and verified in {STEP['load'].name}"

    # ---- step 2 --------------------------------------------------------------------------
    def uses_classifier(self) -> bool:
        return self.classifier is not None or default_classifier() is not None

    def model_names(self) -> list[str]:
        """One row per model in step 2: the classifier (when one loads), then each extractor."""
        return (["classifier"] if self.uses_classifier() else []) + self.extractor_names

    def use_drive_models(self) -> Path:
        """Keep the models on Google Drive (mounted now), so a new Colab session need not fetch them."""
        colab.mount_drive()
        self.models_dir = colab.drive_models()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.fetch_models = True
        return self.models_dir

    def cache_key(self) -> str:
        return json.dumps(
            {
                "extractors": self.extractor_names,
                "device": self.device,
                "models_dir": str(self.models_dir) if self.models_dir else None,
                "classifier": str(self.classifier) if self.classifier else None,
                "options": self.analyzer_options,
            },
            sort_keys=True,
            default=str,
        )

    def cached(self) -> LoadedModels | None:
        """The models this configuration loaded before in this process (adopted), if any."""
        loaded = cache.get(self.cache_key())
        if loaded is not None:
            self.loaded, self.analyzer = loaded, loaded.analyzer
        return loaded

    def cost(self):
        """What this configuration needs and costs (:class:`vemoclap.needs.Cost`): worked out once per
        configuration, what is missing looked up each time."""
        from ..needs import cost, recipe_needs

        key = self.cache_key()
        if getattr(self, "_needs", (None,))[0] != key:
            classifier = self.classifier if self.classifier is not None else default_classifier()
            options = {k: v for k, v in self.analyzer_options.items() if k != "skip_unavailable"}
            planned = recipe_needs(
                self.extractor_names, device=self.device, models_dir=self.models_dir, classifier=classifier, **options
            )
            self._needs = (key, planned)
        needs, device, recipe = self._needs[1]
        return cost(needs, self.models_dir, device=device, recipe=recipe)

    def cost_line(self) -> str:
        """Step 2's line on the cost: what the chosen recipe needs, its disk use and what is left to fetch."""
        try:
            return self.cost().line()
        except Exception as exc:  # the cost is a courtesy: loading says what is wrong
            log.info("the cost of the models is unknown: %s", exc)
            return ""

    def fetch(self, on_progress: ProgressFn | None = None) -> str:
        """Download the models into the models dir (what is there already is kept). Returns a line."""
        from .. import models

        if self.models_dir is None:
            return "no models dir: models are fetched from the hub as each one loads"
        report = on_progress or (lambda p: None)

        def bytes_done(stage: str, done: int, total: int) -> None:
            total_mb = f" of {total / 2**20:.0f} MB" if total else ""
            fraction = min(1.0, done / total) if total else 0.0
            report(Progress(f"fetching {stage}: {done / 2**20:.0f}{total_mb}", fraction))

        wanted = self.cost().wanted
        keys = list(dict.fromkeys(key for key, _ in wanted))
        sizes = tuple(dict.fromkeys(name for _, name in wanted if name)) or models.DEFAULT_WHISPER_SIZES
        models.download_models(self.models_dir, only=keys or None, whisper_sizes=sizes, progress=bytes_done)
        report(Progress("the models are fetched", 1.0))
        return f"models fetched into {self.models_dir}"

    def load(self, on_model: ModelFn | None = None, on_progress: ProgressFn | None = None) -> LoadedModels:
        """Build the Analyzer once and load every model, one row's state at a time.

        A model that cannot be had is a row's reason; the others load. A classifier that cannot be
        loaded leaves extractor outputs only. Cached across apps by configuration.
        """
        from ..extractors import extractor_class
        from ..pipeline import Analyzer

        tell = on_model or (lambda name, state: None)
        report = on_progress or (lambda p: None)
        loaded = self.cached()
        if loaded is not None:
            return loaded
        cache.make_room()

        states: dict[str, ModelState] = {}
        not_importable: dict[str, str] = {}
        names: list[str] = []
        for name in self.extractor_names:  # a module that cannot be imported is one row's reason
            try:
                extractor_class(name)
                names.append(name)
            except Exception as exc:
                log.exception("extractor %s cannot be imported", name)
                not_importable[name] = one_line(exc)
                states[name] = ModelState("unavailable", 0.0, one_line(exc))
                tell(name, states[name])

        options = dict(device=self.device, models_dir=self.models_dir, skip_unavailable=True, **self.analyzer_options)
        start = time.perf_counter()
        if self.uses_classifier():
            tell("classifier", ModelState("loading"))
        try:
            kwargs = {"classifier": self.classifier} if self.classifier is not None else {}
            analyzer = Analyzer(names, **kwargs, **options)
            if self.uses_classifier():
                states["classifier"] = ModelState("loaded", time.perf_counter() - start)
        except Exception as exc:
            if not self.uses_classifier():
                raise
            # Only the classifier loads in the constructor: go on without it, extractor outputs still count.
            log.exception("the classifier %s cannot be loaded", self.classifier or default_classifier())
            states["classifier"] = ModelState(
                "unavailable", time.perf_counter() - start, f"{one_line(exc)}; extractor outputs only"
            )
            analyzer = Analyzer(names, classifier=None, **options)
            analyzer.classifier_missing = f"the classifier could not be loaded ({one_line(exc)})"
        if "classifier" in states:
            tell("classifier", states["classifier"])

        order = list(analyzer.extractors)
        clock = {"start": time.perf_counter()}

        def finish(name: str) -> None:
            seconds = time.perf_counter() - clock["start"]
            if name in analyzer.extractors:
                states[name] = ModelState("loaded", seconds)
            else:
                reason = analyzer.unavailable.get(name, "could not be loaded")
                status = "unavailable" if "could not be loaded" not in reason else "failed"
                states[name] = ModelState(status, seconds, one_line(reason))
            tell(name, states[name])
            clock["start"] = time.perf_counter()

        def loading(stage: str, done: int, total: int) -> None:
            if done > 0:
                finish(order[done - 1])
            if done < total:
                tell(order[done], ModelState("loading"))
                report(Progress(f"loading {order[done]} ({done + 1}/{total})", done / max(1, total)))
            else:
                report(Progress(f"{total} of {total} tried", 1.0))

        analyzer.load(progress=loading)
        loaded = cache.put(self.cache_key(), LoadedModels(analyzer, states, not_importable))
        self.loaded, self.analyzer = loaded, analyzer
        return loaded

    def load_summary(self) -> tuple[str, bool]:
        """One line about step 2, and whether everything loaded."""
        if self.loaded is None:
            return "", False
        bad = [name for name, state in self.loaded.states.items() if not state.ok]
        if bad and not self.loaded.analyzer.extractors:
            return f"no extractor could be loaded ({', '.join(bad)}); see each row for why", False
        if bad == ["classifier"]:
            return "the extractors are loaded, the classifier is not: extractor outputs only, no emotion", False
        if bad:
            return (
                f"{len(bad)} model(s) could not be loaded ({', '.join(bad)}); the others will run "
                "and the results say what is missing.",
                False,
            )
        return "all models are loaded", True

    def loaded_random(self) -> str:
        """The random-weights notice of what step 2 loaded (empty when every model is trained)."""
        if self.loaded is None:
            return ""
        weights = self.loaded.analyzer.weights()
        random = random_names(weights)
        return random_weights_notice(random, weights, loaded=True) if random else ""

    # ---- steps 3 and 4 -------------------------------------------------------------------
    def source_choices(self) -> list[tuple[str, str]]:
        return [(label, key) for key, label in SOURCES.items()]

    def accept_upload(self, name: str, data: bytes, limit: int | None = None) -> tuple[Path, str]:
        """Save uploaded bytes under a safe name in the output dir and check that they are a video.

        Returns the saved path and a line saying it is ready; a SourceError when it is not usable."""

        limit = self.max_upload_bytes if limit is None else limit
        self.uploaded_path = None
        shown = Path(str(name).replace("\\", "/")).name or "upload"
        if Path(shown).suffix.lower() not in VIDEO_EXTENSIONS:
            raise SourceError(f"{shown!r} is not a video file; use one of {', '.join(sorted(VIDEO_EXTENSIONS))}")
        if len(data) > limit:
            raise SourceError(
                f"{shown}: {len(data) / 2**20:.0f} MB is over the {limit / 2**20:.0f} MB upload "
                "limit; put it on Google Drive or this machine and choose "
                f"“{SOURCES['path']}”, or use a link"
            )
        directory = self.output_dir / "uploads"
        directory.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=directory))  # a fresh folder: no overwrites
        path = save_upload(data, name, folder, max_bytes=limit)
        try:
            message = self._check_video(path, shown)
        except Exception:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
            raise
        self.uploaded_path = path
        return path, message

    def _check_video(self, path: Path, shown: str) -> str:
        from .. import media

        try:
            info = media.probe(path)
        except media.MediaError as exc:  # name the file as the person knows it, not our copy
            reason = one_line(exc)
            reason = reason[len(str(path)) :].lstrip(": ") if reason.startswith(str(path)) else reason
            raise SourceError(f"{shown}: {reason}") from None
        if not (info.width and info.height) and not info.has_audio:
            raise SourceError(f"{shown}: the file has neither video nor audio")
        size = f"{info.width}×{info.height}, " if info.width else "audio only, "
        return f"{shown} is ready ({path.stat().st_size / 2**20:.1f} MB, {size}{info.duration:.1f} s)"

    def colab_upload(self) -> tuple[Path, str] | None:
        """Colab's own uploader (blocks until a file is chosen); the copy Colab wrote in the cwd is
        moved into the output dir. None when nothing was chosen."""
        chosen = colab.upload()
        if chosen is None:
            return None
        name, data, written = chosen
        try:
            return self.accept_upload(name, data, limit=self.colab_upload_bytes)
        finally:
            if written is not None:
                written.unlink(missing_ok=True)

    def accept_path(self, text: str) -> tuple[Path, str]:
        """A video file on this machine (or mounted Google Drive), checked like an upload."""
        text = (text or "").strip().strip('"').strip("'")
        if not text:
            raise SourceError(f"type the path of a video file in {STEP['pick'].name} first")
        if "\0" in text:
            raise SourceError("the path holds a NUL byte, which no file name can; type the video's path again")
        path = Path(text).expanduser()
        try:
            found = path.is_file()
        except OSError as exc:  # a 5,000-character path: ENAMETOOLONG
            raise SourceError(f"{text[:60]}…: {exc.strerror or exc}; type a shorter path") from None
        if not found:
            hint = (
                " (mount Google Drive first)" if str(path).startswith(str(colab.drive_root())) and self.on_colab else ""
            )
            raise SourceError(f"{path}: no such file{hint}")
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise SourceError(f"{path.name!r} is not a video file; use one of {', '.join(sorted(VIDEO_EXTENSIONS))}")
        return path, self._check_video(path, path.name)

    def chosen_source(self) -> str | Path:
        """What step 5 will analyze, from steps 3 and 4 (SourceError with one line when unusable)."""
        if self.source_kind == "link":
            url = self.url.strip()
            if not url:
                raise SourceError(f"paste a video link in {STEP['pick'].name} first")
            if not is_url(url):
                raise SourceError(f"{url!r} is not a link; it must start with https:// (or http://)")
            check_url(url, allow_private=self.allow_private)
            return url
        if self.source_kind == "upload":
            if self.uploaded_path is None or not self.uploaded_path.is_file():
                raise SourceError(f"upload a video file in {STEP['pick'].name} first")
            return self.uploaded_path
        if self.source_kind == "path":
            return self.accept_path(self.path_text)[0]
        if not self.sample:
            raise SourceError(f"choose a sample in {STEP['pick'].name} first")
        return self.sample

    # ---- step 5 --------------------------------------------------------------------------
    def run(self, on_progress: ProgressFn | None = None, on_model: ModelFn | None = None) -> "Result":
        """Analyze the chosen video (loading the models first if step 2 was skipped).

        A failed run leaves no result: views of the previous video must not look like this one's."""
        report = on_progress or (lambda p: None)
        self.result, self.last_error = None, ""
        try:
            source = self.chosen_source()
            if self.analyzer is None:
                report(Progress("loading the models…", 0.0))
                self.load(on_model, report)
            report(Progress("getting the video…", 0.0))
            result = self.analyzer.analyze(
                source, progress=self._analysis_progress(report), allow_private=self.allow_private
            )
        except Exception as exc:
            self.last_error = describe_error(exc, "the analysis")
            raise
        if self.loaded is not None:
            for name, reason in self.loaded.not_importable.items():
                result.missing.setdefault(name, reason)
        self.result = result
        return result

    @staticmethod
    def _analysis_progress(report: ProgressFn) -> Callable[[str, int, int], None]:
        def update(stage: str, done: int, total: int) -> None:
            text = {
                "media": "reading frames and audio",
                "done": "combining the features",
                "load": "loading the models",
            }.get(stage, f"running {stage}")
            report(Progress(f"{text} ({done}/{total})", min(1.0, done / max(1, total))))

        return update

    # ---- exports -------------------------------------------------------------------------
    def export_dir(self) -> Path:
        if self.result is None:
            raise SourceError(f"run {STEP['run'].name} first")
        directory = self.output_dir / safe_stem(self.result.source)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    @staticmethod
    def _export_progress(
        what: str, report: ProgressFn | None, unit: str = ""
    ) -> Callable[[str, float, float | None], None]:
        """An export's (stage, done, total) as one Progress: the percent shown is the bar's, capped
        at 100 % (a header's frame count can be short); without a total, a count and no percent."""

        def update(stage: str, done: float, total: float | None) -> None:
            if report is None:
                return
            if total:
                fraction = min(1.0, max(0.0, done / total))
                report(Progress(f"{what}: {fraction:.0%}", fraction))
            else:
                report(Progress(f"{what}: {done:.0f} {unit}".rstrip(), 0.0))

        return update

    def loaded_classifier(self):
        """The loaded emotion classifier (None: extractor outputs only)."""
        return self.analyzer.classifier if self.analyzer is not None else None

    def timeline(self, result=None):
        """The result's timeline (its classifier's windows, scored during the analysis)."""
        result = result if result is not None else self.result
        return result.timeline()

    def annotation_cost(self):
        """What the annotated video will cost: the face model on every k-th frame, k chosen as the
        command's ``--every auto`` chooses it (within a budget of the analysis's own time)."""
        from ..video_export import annotation_cost

        return annotation_cost(self.result)

    def annotated_video(self, on_progress: ProgressFn | None = None) -> tuple[Path, Path]:
        """Every frame with faces and expressions (audio kept; the face model on every k-th frame, as
        :meth:`annotation_cost` says); the video and its per-frame CSV."""
        directory = self.export_dir()
        if self.analyzer is None or "face_emotion" not in self.analyzer.extractors:
            raise SourceError(
                f"the annotated video needs the face_emotion extractor; load it in {STEP['load'].name} and run again"
            )
        path = directory / f"{safe_stem(self.result.source)}_annotated.mp4"
        video = self.analyzer.export_annotated_video(
            self.result,
            path,
            every=self.annotation_cost().every,
            progress=self._export_progress("annotating", on_progress, "frames"),
        )
        if video.path is None:  # no face anywhere: nothing was written
            raise NothingToCut(video.line())
        return Path(video.path), Path(video.csv_path)

    def emotion_clips(
        self, emotion: str | None, on_progress: ProgressFn | None = None
    ) -> tuple[Path, list[tuple[float, float]]]:
        """One video of the timeline windows where ``emotion`` is on top, and their times."""
        directory = self.export_dir()
        if not emotion:
            raise SourceError("choose an emotion first")
        path = directory / f"{safe_stem(self.result.source)}_{emotion}.mp4"
        written, segments = self.result.export_emotion_clips(
            emotion, path, progress=self._export_progress("cutting", on_progress, "s")
        )
        if written is None:
            headline = " although it leads for the whole video" if emotion == self.result.top_label else ""
            raise NothingToCut(
                f"no window of the timeline has {emotion} on top{headline}, so there is "
                "nothing to cut; the headline is for the whole video, clips follow the windows"
            )
        return Path(written), segments
