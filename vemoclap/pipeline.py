"""Analyze videos: load the extractors once, run them on a clip, fuse, and build a :class:`Result`."""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from .extractors import DEFAULT_EXTRACTORS, Clip, Extractor, ExtractorOutput, get
from . import recipes
from .errors import OptionError, UserError, one_line
from .media import check_frame_count
from .models import ModelUnavailable
from .results import NO_CLASSIFIER, Result
from .sources import resolve_source

log = logging.getLogger(__name__)

# progress(stage, done, total): stages are "load", "media" and each extractor's name.
ProgressFn = Callable[[str, int, int], None]


def _tqdm_progress() -> ProgressFn:
    from tqdm.auto import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get("all")
        if bar is None:
            bar = bars["all"] = tqdm(total=total, desc="vemoclap", unit="stage", leave=False)
        bar.set_postfix_str(stage)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            bars.clear()

    return update


class Analyzer:
    """Keeps the models loaded across videos: build once, call ``analyze`` many times.

    ``extractors`` names the extractors to run (default: the reference's set). ``classifier`` is a
    checkpoint path (our format or the reference's pair) or None for extractor outputs only.
    Per-extractor options go in ``extractor_options`` (e.g. ``{"asr_sentiment": {"whisper_model":
    "small"}}``); ``whisper_model`` and ``face_detector`` are shortcuts for the common ones.
    Extractors are built from a feature recipe (``vemoclap.recipes``): ``recipe`` when given, else
    the loaded classifier's, else ``vemoclap``; the user's options override the recipe's, and
    ``self.recipe`` (also in every Result) is the recipe actually run with its deviations.
    """

    def __init__(self, extractors: Iterable[str] | None = None, *, frames: int | None = None, device: str = "auto",
                 models_dir=None, classifier=None, skip_unavailable: bool = False,
                 whisper_model: str | None = None, face_detector: str | None = None,
                 short_side: int | None | str = "recipe", extractor_options: Mapping[str, Mapping] | None = None,
                 recipe=None):
        from .extractors import resolve_device

        resolve_device(device)  # a bad device name is an OptionError here, before any model loads
        if frames is not None:
            check_frame_count(frames)
        self.device = device
        self.models_dir = models_dir
        self.skip_unavailable = skip_unavailable
        options = {name: dict(opts) for name, opts in (extractor_options or {}).items()}
        if whisper_model:
            options.setdefault("asr_sentiment", {})["whisper_model"] = whisper_model
        if face_detector:
            options.setdefault("face_emotion", {})["detector"] = face_detector
        self.classifier = None
        self.classifier_name: str | None = None
        if classifier is not None:
            from .fusion import load_classifier

            self.classifier = load_classifier(classifier, device="cpu" if device == "auto" else device)
            self.classifier_name = str(classifier)
        names = list(extractors if extractors is not None else DEFAULT_EXTRACTORS)
        planned = recipes.plan(recipes.choose(recipe, self.classifier), names, device=device, overrides=options,
                               n_frames=frames, short_side=short_side)
        self.recipe, self._media_options = planned.recipe, planned.media_options
        self.n_frames = self.recipe.frames.n_frames
        if self.classifier is not None:
            self.classifier.autocast = self.recipe.classifier_precision == "fp16-autocast"
        self.extractors: dict[str, Extractor] = {
            name: self._build(name, planned.extractor_options[name], options.get(name, {})) for name in names}
        self.unavailable: dict[str, str] = {}  # extractor → why it could not be loaded
        self.bugs: list[tuple[str, BaseException]] = []  # extractor → exception that was not the input's fault

    def _build(self, name: str, opts: dict, user: Mapping) -> Extractor:
        try:
            return get(name, device=self.device, models_dir=self.models_dir, **opts)
        except OptionError as exc:  # a recipe value this version of the extractor does not support yet
            recipe_only = {k: v for k, v in opts.items() if k not in user and k != "half"}
            if not recipe_only:
                raise
            self.recipe.deviations.append(recipes.Deviation(name, recipe_only, "defaults", one_line(exc)))
            log.warning("recipe %s: %s", self.recipe.label, self.recipe.deviations[-1].line())
            return get(name, device=self.device, models_dir=self.models_dir,
                       **{k: v for k, v in opts.items() if k not in recipe_only})

    # ---- loading -------------------------------------------------------------------------
    def load(self, progress: bool | ProgressFn = False) -> "Analyzer":
        """Load every extractor now (otherwise they load on first use).

        A model that cannot be had raises ModelUnavailable, or with ``skip_unavailable`` is
        dropped and listed in ``self.unavailable`` (and in every Result's ``missing``).
        """
        report = _tqdm_progress() if progress is True else (progress or None)
        names = list(self.extractors)
        for done, name in enumerate(names):
            if report:
                report("load", done, len(names))
            self._load_one(name)
        if report:
            report("load", len(names), len(names))
        return self

    def _load_one(self, name: str) -> bool:
        extractor = self.extractors.get(name)
        if extractor is None:
            return False
        try:
            extractor.load()
            return True
        except Exception as exc:  # missing model, corrupt weights, a library that will not import
            if not self.skip_unavailable:
                raise
            reason = str(exc) if isinstance(exc, ModelUnavailable) else \
                f"{name} could not be loaded: {one_line(exc)}"
            log.warning("skipping %s: %s", name, reason, exc_info=not isinstance(exc, ModelUnavailable))
            self.unavailable[name] = reason
            del self.extractors[name]
            return False

    # ---- analysis ------------------------------------------------------------------------
    def read_clip(self, path, *, random: bool = False, seed: int | None = None) -> Clip:
        return Clip.from_file(path, self.n_frames, random=random, seed=seed, **self._media_options)

    def analyze(self, source, *, progress: bool | ProgressFn = False, allow_private: bool = False,
                cookies=None) -> Result:
        """Analyze one video: a path, "sample", an http(s) link (yt-dlp) or uploaded bytes.

        ``allow_private`` lets links reach private/loopback addresses; ``cookies`` is a Netscape
        cookies file for sites that ask to sign in (a login: yt-dlp gets a private copy).
        """
        report = _tqdm_progress() if progress is True else (progress or None)
        path = resolve_source(source, allow_private=allow_private, cookies=cookies)
        timings: dict[str, float] = {}
        total = 1 + len(self.extractors)

        start = time.perf_counter()
        if report:
            report("media", 0, total)
        clip = self.read_clip(path)
        timings["media"] = time.perf_counter() - start

        result = Result(source=str(source) if not isinstance(source, (bytes, bytearray)) else path.name,
                        info=clip.info, frames=clip.frames, timings=timings, path=str(path),
                        warnings=clip.warnings, feature_of=self.feature_names(), recipe=self.recipe.to_dict())
        result.missing.update(self.unavailable)
        if len(clip.frames) == 0:
            result.warnings.append("the file has no video stream: only audio was analyzed")

        for done, name in enumerate(list(self.extractors), start=1):
            if report:
                report(name, done, total)
            output = self._run_one(name, clip)
            if output is None:
                continue
            result.outputs[name] = output
            timings[name] = output.seconds
            if output.missing:
                result.missing[name] = output.missing
        result.missing.update(self.unavailable)  # extractors skipped while loading lazily above
        if report:
            report("done", total, total)

        self._classify(result)
        return result

    __call__ = analyze

    def _run_one(self, name: str, clip: Clip) -> ExtractorOutput | None:
        if not self._load_one(name):
            return None
        extractor = self.extractors[name]
        try:
            return extractor(clip)
        except UserError as exc:  # the input or an option: the other extractors' results still count
            log.warning("extractor %s: %s", name, one_line(exc))
            return extractor.output_type(name=name, missing=f"failed: {one_line(exc)}")
        except Exception as exc:  # a bug: keep the others' results, and the traceback (self.bugs; --debug logs it)
            log.error("extractor %s failed: %s: %s", name, type(exc).__name__, one_line(exc))
            log.debug("extractor %s traceback", name, exc_info=True)
            self.bugs.append((name, exc))
            return extractor.output_type(name=name, missing=f"internal error ({type(exc).__name__}: "
                                                            f"{one_line(exc, limit=200)}); this is a bug")

    def feature_names(self) -> dict[str, str]:
        """Extractor name → the fusion feature it fills (extractors that fill none are left out)."""
        return {name: ext.feature_name for name, ext in self.extractors.items() if ext.feature_name}

    def features(self, result: Result) -> dict[str, np.ndarray | None]:
        """Fusion feature name → array (None when its extractor gave none)."""
        return {feature: result.outputs[name].feature
                for name, feature in self.feature_names().items() if name in result.outputs}

    def _classify(self, result: Result) -> None:
        if self.classifier is None:
            result.classifier = None
            result.warnings.append(NO_CLASSIFIER)
            return
        start = time.perf_counter()
        features = self.features(result)
        for feature in self.classifier.config.features:
            if features.get(feature) is None and feature not in result.missing:
                result.missing[feature] = "no extractor produced it; zeros were used"
        result.probabilities = np.asarray(self.classifier.predict(features), dtype=np.float64)  # JSON-exact
        result.labels = tuple(self.classifier.config.labels)
        result.classifier = self.classifier_name
        result.timings["classifier"] = time.perf_counter() - start

    # ---- what needs the models after the run ----------------------------------------------
    def face_model(self):
        """The loaded face extractor (image → faces), for annotated videos and live mode."""
        from .errors import UserError

        if "face_emotion" not in self.extractors:
            raise UserError("no face model is loaded (run the face_emotion extractor) to annotate the video")
        return self.extractors["face_emotion"].load()

    def timeline(self, result: Result, **options):
        """``result.timeline`` with this Analyzer's classifier."""
        return result.timeline(self.classifier, **options)

    def save(self, result: Result, directory):
        return result.save(directory, self.classifier)

    def export_annotated_video(self, result: Result, out_path, **options):
        return result.export_annotated_video(out_path, self.face_model(), **options)

    def export_emotion_clips(self, result: Result, emotion: str, out_path, **options):
        return result.export_emotion_clips(emotion, out_path, self.classifier, **options)


def analyze(source, *, progress: bool | ProgressFn = False, allow_private: bool = False, cookies=None,
            **options) -> Result:
    """Analyze one video with a fresh :class:`Analyzer` (use an Analyzer to keep models loaded)."""
    return Analyzer(**options).analyze(source, progress=progress, allow_private=allow_private, cookies=cookies)
