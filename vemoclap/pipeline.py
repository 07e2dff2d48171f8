"""Analyze videos: load the extractors once, run them on a clip, fuse, and build a :class:`Result`."""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from .extractors import DEFAULT_EXTRACTORS, Clip, Extractor, ExtractorOutput, get
from .errors import one_line
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
    """

    def __init__(self, extractors: Iterable[str] | None = None, *, frames: int = 16, device: str = "auto",
                 models_dir=None, classifier=None, skip_unavailable: bool = False,
                 whisper_model: str | None = None, face_detector: str | None = None,
                 short_side: int | None = 360, extractor_options: Mapping[str, Mapping] | None = None):
        from .extractors import resolve_device

        resolve_device(device)  # a bad device name is an OptionError here, before any model loads
        self.n_frames = frames
        self.short_side = short_side
        self.device = device
        self.models_dir = models_dir
        self.skip_unavailable = skip_unavailable
        options = {name: dict(opts) for name, opts in (extractor_options or {}).items()}
        if whisper_model:
            options.setdefault("asr_sentiment", {})["whisper_model"] = whisper_model
        if face_detector:
            options.setdefault("face_emotion", {})["detector"] = face_detector
        self.extractors: dict[str, Extractor] = {
            name: get(name, device=device, models_dir=models_dir, **options.get(name, {}))
            for name in (extractors if extractors is not None else DEFAULT_EXTRACTORS)
        }
        self.unavailable: dict[str, str] = {}  # extractor → why it could not be loaded
        self.classifier = None
        self.classifier_name: str | None = None
        if classifier is not None:
            from .fusion import load_classifier

            self.classifier = load_classifier(classifier, device="cpu" if device == "auto" else device)
            self.classifier_name = str(classifier)

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
        return Clip.from_file(path, self.n_frames, random=random, seed=seed, short_side=self.short_side)

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
                        warnings=list(clip.frames.warnings), feature_of=self.feature_names())
        faces = self.extractors.get("face_emotion")
        if faces is not None and hasattr(faces, "analyze_image"):
            result.face_model = faces.analyze_image
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
        except Exception as exc:  # one broken extractor must not lose the others' results
            log.exception("extractor %s failed", name)
            reason = one_line(exc)
            return extractor.output_type(name=name, missing=f"failed: {reason}")

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
        result.probabilities = self.classifier.predict(features)
        result.labels = tuple(self.classifier.config.labels)
        result.classifier = self.classifier_name
        result.classifier_model = self.classifier
        result.timings["classifier"] = time.perf_counter() - start


def analyze(source, *, progress: bool | ProgressFn = False, allow_private: bool = False, cookies=None,
            **options) -> Result:
    """Analyze one video with a fresh :class:`Analyzer` (use an Analyzer to keep models loaded)."""
    return Analyzer(**options).analyze(source, progress=progress, allow_private=allow_private, cookies=cookies)
