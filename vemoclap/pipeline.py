"""Analyze videos: load the extractors once, run them on a clip, fuse, and build a :class:`Result`."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from . import models, recipes
from .engine import Engine, ProgressFn, SingleClip
from .errors import OptionError, one_line
from .extractors import Clip, Extractor, ExtractorOutput, get
from .media import MediaError, check_frame_count
from .notice import random_weights_notice
from .registry import default_extractors, run_order, with_shortcuts
from .results import NO_CLASSIFIER, Result
from .sources import resolve_source
from .timeline import emotion_windows

log = logging.getLogger(__name__)

REFERENCE_CLASSIFIER = "reference"  # the default: the reference's trained classifier, fetched and verified


def default_parallel() -> int:
    """Extractors run at once by default: ``$VEMOCLAP_PARALLEL``, else 2 (audio beside vision)."""
    value = os.environ.get("VEMOCLAP_PARALLEL", "").strip()
    if not value:
        return 2
    if not value.isdigit() or int(value) < 1:
        raise OptionError(f"VEMOCLAP_PARALLEL is '{value}'; set it to 1 (one extractor at a time) or more")
    return int(value)


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

    The extractors run in its :class:`~vemoclap.engine.Engine` (``self.engine``), the one place
    that runs them: :meth:`run` gives their outputs, :meth:`analyze` makes a Result of them.

    ``extractors`` names the extractors to run (default: the reference's set). ``classifier`` is a
    checkpoint path (our format or the reference's pair) or None for extractor outputs only.
    Per-extractor options go in ``extractor_options`` (e.g. ``{"asr_sentiment": {"whisper_model":
    "small"}}``); ``whisper_model`` and ``face_detector`` are shortcuts for the common ones.
    ``heads`` runs a reference-layout classifier with that many attention heads (default 4, the
    reference app's; the Result says the count is unverified unless it is given).
    Extractors are built from a feature recipe (``vemoclap.recipes``): ``recipe`` when given, else
    the loaded classifier's, else ``vemoclap``; the user's options override the recipe's, and
    ``self.recipe`` (also in every Result) is the recipe actually run with its deviations.
    ``parallel``: how many extractors run at once (threads; an extractor that reads another's
    output waits for it). The default, 2, runs the audio and the visual extractors side by side:
    the models release the GIL, and much of their work (decoders, small batches) cannot use two
    cores alone. 1 runs them one after another in registry order.
    ``window_s``/``hop_s``: the timeline's sliding windows, which the classifier scores during
    ``analyze`` (default: a quarter of the video, 3–10 s, hop half of it; see ``Result.timeline``).
    """

    def __init__(
        self,
        extractors: Iterable[str] | None = None,
        *,
        frames: int | None = None,
        device: str = "auto",
        models_dir=None,
        classifier=REFERENCE_CLASSIFIER,
        skip_unavailable: bool = False,
        whisper_model: str | None = None,
        face_detector: str | None = None,
        short_side: int | None | str = "recipe",
        extractor_options: Mapping[str, Mapping] | None = None,
        recipe=None,
        announce: Callable[[str], None] | None = None,
        parallel: int | None = None,
        heads: int | None = None,
        window_s: float | None = None,
        hop_s: float | None = None,
    ):
        from .extractors import resolve_device

        resolve_device(device)  # a bad device name is an OptionError here, before any model loads
        if frames is not None:
            check_frame_count(frames)
        self.device = device
        try:
            parallel = default_parallel() if parallel is None else int(parallel)
        except (TypeError, ValueError):
            raise OptionError(f"parallel must be a whole number, 1 or more, not {parallel!r}") from None
        if parallel < 1:
            raise OptionError(f"parallel must be 1 (one extractor at a time) or more, got {parallel}")
        self.models_dir = models_dir
        self.window_s, self.hop_s = window_s, hop_s
        options = with_shortcuts(extractor_options, whisper_model=whisper_model, face_detector=face_detector)
        self.classifier = None
        self.classifier_name: str | None = None
        self.classifier_missing: str | None = None  # why there is no classifier when one was wanted
        self.announce = announce
        self._fetched = False
        if isinstance(extractors, str):  # "clip,face_emotion", or one name
            extractors = [name.strip() for name in extractors.split(",") if name.strip()]
        names = run_order(extractors if extractors is not None else default_extractors())
        reference = isinstance(classifier, str) and classifier == REFERENCE_CLASSIFIER
        if classifier is not None and not reference:
            from .fusion import load_classifier

            self.classifier = load_classifier(classifier, device="cpu" if device == "auto" else device, heads=heads)
            self.classifier_name = str(classifier)
        # The reference classifier's recipe is known before it is fetched: its checkpoint names none.
        chosen = recipes.choose(recipe if recipe is not None or not reference else "reference", self.classifier)
        planned = recipes.plan(chosen, names, device=device, overrides=options, n_frames=frames, short_side=short_side)
        self.recipe, self._media_options = planned.recipe, planned.media_options
        self.n_frames = self.recipe.frames.n_frames
        built = {name: self._build(name, planned.extractor_options[name], options.get(name, {})) for name in names}
        self.engine = Engine(built, parallel=parallel, skip_unavailable=skip_unavailable)
        if reference:  # fetched (verified) together with whatever else is missing, then loaded
            from .fusion import load_classifier

            self.fetch_missing([("classifier", None)])
            path = models.classifier_dir(models_dir)
            self.classifier = load_classifier(path, device="cpu" if device == "auto" else device, heads=heads)
            self.classifier_name = f"reference ({path})"
        if self.classifier is not None:
            self.classifier.autocast = self.recipe.classifier_precision == "fp16-autocast"

    # The engine's state, under the names callers know.
    extractors = property(lambda self: self.engine.extractors, doc="Name → extractor, in run order.")
    unavailable = property(lambda self: self.engine.unavailable, doc="Extractor → why it could not be loaded.")
    bugs = property(lambda self: self.engine.bugs, doc="(extractor, exception) not the input's fault.")
    skip_unavailable = property(lambda self: self.engine.skip_unavailable)

    @property
    def parallel(self) -> int:
        """How many extractors run at once."""
        return self.engine.parallel

    @parallel.setter
    def parallel(self, value: int) -> None:
        self.engine.parallel = int(value)

    def _build(self, name: str, opts: dict, user: Mapping) -> Extractor:
        try:
            return get(name, device=self.device, models_dir=self.models_dir, **opts)
        except OptionError as exc:  # a recipe value this version of the extractor does not support yet
            recipe_only = {k: v for k, v in opts.items() if k not in user and k != "half"}
            if not recipe_only:
                raise
            self.recipe.deviations.append(recipes.Deviation(name, recipe_only, "defaults", one_line(exc)))
            log.info("recipe %s: %s", self.recipe.label, self.recipe.deviations[-1].line())  # in the report
            return get(
                name,
                device=self.device,
                models_dir=self.models_dir,
                **{k: v for k, v in opts.items() if k not in recipe_only},
            )

    # ---- fetching and loading --------------------------------------------------------------
    def needed_models(self) -> list[models.Need]:
        """Every model the extractors will load: its key, Whisper size, extractor, and whether the
        extractor can go on without it (or with a stand-in, offline)."""
        needed = []
        for name, extractor in self.extractors.items():
            optional, stand_ins = extractor.optional_models(), extractor.alternatives()
            needed += [
                models.Need(key, stem, name, key in optional, stand_ins.get(key))
                for key, stem in extractor.needed_models().items()
            ]
        return needed

    def fetch_missing(
        self,
        extra: list[tuple[str, str | None]] = (),
        *,
        progress: ProgressFn | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        """Download (verified) the models that are not in the models dir yet (``extra``: (key, Whisper
        size) the classifier needs); see :func:`vemoclap.models.fetch_needed`. With
        ``skip_unavailable``, an extractor whose model cannot be had is skipped and listed instead."""
        wanted = [models.Need(key, stem) for key, stem in extra]
        if extra or not self._fetched:
            wanted += self.needed_models()
        self._fetched = True
        skipped = models.fetch_needed(
            wanted,
            self.models_dir,
            skip=self.skip_unavailable,
            progress=progress,
            announce=announce or self.announce,
        )
        for name, reason in skipped.items():
            self._skip(name, reason)

    def _skip(self, name: str, reason: str) -> None:
        self.engine.skip(name, reason)

    def load(self, progress: bool | ProgressFn = False) -> "Analyzer":
        """Load every extractor now (otherwise they load on first use).

        A model that cannot be had raises ModelUnavailable, or with ``skip_unavailable`` is
        dropped and listed in ``self.unavailable`` (and in every Result's ``missing``).
        """
        report = _tqdm_progress() if progress is True else (progress or None)
        names = list(self.extractors)  # those skipped while fetching still get their progress step
        self.fetch_missing()
        for done, name in enumerate(names):
            if report:
                report("load", done, len(names))
            self.engine.load_one(name)
        if report:
            report("load", len(names), len(names))
        return self

    # ---- analysis ------------------------------------------------------------------------
    def read_clip(self, path, *, random: bool = False, seed: int | None = None, n_frames: int | None = None) -> Clip:
        """The clip the extractors see, with the recipe's media options (``n_frames``: default the recipe's)."""
        n = self.n_frames if n_frames is None else n_frames
        return Clip.from_file(path, n, random=random, seed=seed, **self._media_options)

    def with_frames(self, clip: Clip, path, n_frames: int) -> Clip:
        """``clip`` (of the file at ``path``) with ``n_frames`` frames instead, sampled as
        :meth:`read_clip` samples them; the audio is shared, not decoded again."""
        from .media import sample_frames

        options = {k: v for k, v in self._media_options.items() if k != "audio_resampler"}
        return dataclasses.replace(clip, frames=sample_frames(path, n_frames, **options))

    def analyze(
        self, source, *, progress: bool | ProgressFn = False, allow_private: bool = False, cookies=None
    ) -> Result:
        """Analyze one video: a path, "sample", an http(s) link (yt-dlp) or uploaded bytes.

        ``allow_private`` lets links reach private/loopback addresses; ``cookies`` is a Netscape
        cookies file for sites that ask to sign in (a login: yt-dlp gets a private copy).
        """
        report = _tqdm_progress() if progress is True else (progress or None)
        path = resolve_source(
            source,
            allow_private=allow_private,
            cookies=cookies,
            models_dir=self.models_dir,
            progress=progress if callable(progress) else None,
        )
        timings: dict[str, float] = {}
        total = 1 + len(self.extractors)

        start = time.perf_counter()
        if report:
            report("media", 0, total)
        clip = self.read_clip(path)
        if len(clip.frames) == 0 and not len(clip.audio):  # e.g. a PNG whose picture does not decode
            raise MediaError(f"{path}: has no decodable picture and no audio; nothing to analyze")
        timings["media"] = time.perf_counter() - start
        self.fetch_missing()  # after the video: a file that cannot be read is said first

        result = Result(
            source=str(source) if not isinstance(source, (bytes, bytearray, memoryview)) else path.name,
            info=clip.info,
            frames=clip.frames,
            timings=timings,
            path=str(path),
            warnings=clip.warnings,
            feature_of=self.feature_names(),
            recipe=self.recipe.to_dict(),
        )
        result.missing.update(self.unavailable)
        if len(clip.frames) == 0:
            kind = "no video frame could be decoded" if clip.info and clip.info.video_codec else "no video stream"
            result.warnings.append(f"the file has {kind}: only audio was analyzed")

        result.outputs = self.run(clip, progress=report, done=1, total=total)
        order = list(result.outputs)
        timings.update({name: output.seconds for name, output in result.outputs.items()})
        result.missing.update({name: output.missing for name, output in result.outputs.items() if output.missing})
        result.timings = {stage: timings[stage] for stage in ["media", *order] if stage in timings}
        result.missing.update(self.unavailable)  # extractors skipped while loading lazily above
        if report:
            report("done", total, total)

        self._classify(result)
        result.weights = self.weights()
        if result.random_weights:
            result.warnings.insert(0, random_weights_notice(result.random_weights, result.weights))
        return result

    __call__ = analyze

    def run(
        self,
        video,
        *,
        single: SingleClip = None,
        strict: bool = False,
        progress: ProgressFn | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> dict[str, ExtractorOutput]:
        """Every extractor's output for ``video`` (a file, or a :class:`Clip` already read): the
        engine's forward step (:meth:`vemoclap.engine.Engine.run`, which takes the other arguments),
        without the classifier. ``analyze`` and dataset extraction make their views from it."""
        clip = video if isinstance(video, Clip) else self.read_clip(video)
        self.fetch_missing()  # after the video: a file that cannot be read is said first
        return self.engine.run(clip, single=single, strict=strict, progress=progress, done=done, total=total)

    def weights(self) -> dict[str, list[dict[str, str | None]]]:
        """Extractor (and "classifier") → the models it runs on: key, local path, origin ("random" for
        the tiny builders' weights, read from their provenance files)."""
        out = {
            name: [dataclasses.asdict(use) for use in getattr(ex, "weights", [])]
            for name, ex in self.extractors.items()
            if ex.loaded
        }
        if self.classifier is not None:
            out["classifier"] = [
                {
                    "key": "classifier",
                    "path": self.classifier_name,
                    "origin": getattr(self.classifier, "origin", "local"),
                }
            ]
        return out

    def feature_names(self) -> dict[str, str]:
        """Extractor name → the fusion feature it fills (extractors that fill none are left out)."""
        return {name: ext.feature_name for name, ext in self.extractors.items() if ext.feature_name}

    def features(self, result: Result) -> dict[str, np.ndarray | None]:
        """Fusion feature name → array (None when its extractor gave none)."""
        return {
            feature: result.outputs[name].feature
            for name, feature in self.feature_names().items()
            if name in result.outputs
        }

    def _classify(self, result: Result) -> None:
        if self.classifier is None:
            result.classifier = None
            missing = self.classifier_missing
            result.warnings.append(
                f"no emotion classifier: {missing}; extractor outputs only" if missing else NO_CLASSIFIER
            )
            return
        start = time.perf_counter()
        features = self.features(result)
        for feature in self.classifier.config.features:
            if features.get(feature) is None and feature not in result.missing:
                result.missing[feature] = "no extractor produced it; zeros were used"
        result.probabilities = np.asarray(self.classifier.predict(features), dtype=np.float64)  # JSON-exact
        result.labels = tuple(self.classifier.config.labels)
        result.classifier = self.classifier_name
        note = self.classifier.heads_note()
        if note:
            result.warnings.append(note)
        result.windows = emotion_windows(result, self.classifier, self.window_s, self.hop_s)
        result.timings["classifier"] = time.perf_counter() - start
        from .fusion.explain import explain

        start = time.perf_counter()
        result.explanation = explain(self.classifier, features, self.feature_times(result))
        result.timings["explanation"] = time.perf_counter() - start

    def feature_times(self, result: Result) -> dict[str, np.ndarray | None]:
        """Fusion feature name → the seconds of each of its rows (None when its extractor gave none)."""
        return {
            feature: result.outputs[name].times
            for name, feature in self.feature_names().items()
            if name in result.outputs
        }

    # ---- what needs the models after the run ----------------------------------------------
    def face_model(self):
        """The loaded face extractor (image → faces), for annotated videos and live mode."""
        from .errors import UserError

        if "face_emotion" not in self.extractors:
            raise UserError("no face model is loaded (run the face_emotion extractor) to annotate the video")
        return self.extractors["face_emotion"].load()

    def export_annotated_video(self, result: Result, out_path, *, every: int = 1, progress: "bool | Callable" = True):
        """Every frame of ``result``'s video with face boxes and smoothed expressions (audio kept,
        labels per frame in a CSV beside), each face numbered as its person in ``result``. It runs
        this Analyzer's face model on the frames again — on every ``every``-th one, boxes carried in
        between — so it needs the loaded Analyzer, not only the Result."""
        from .video_export import export_annotated_video

        analyze_image = self.face_model().analyze_image
        return export_annotated_video(
            result.local_video(),
            out_path,
            analyze_image,
            every=every,
            progress=progress,
            random_weights=result.random_weights,
            used=list(result.weights),
            people=getattr(result.face_output, "looks", None),  # numbered as the analysis's people
        )


def analyze(
    source, *, progress: bool | ProgressFn = False, allow_private: bool = False, cookies=None, **options
) -> Result:
    """Analyze one video with a fresh :class:`Analyzer` (use an Analyzer to keep models loaded)."""
    return Analyzer(**options).analyze(source, progress=progress, allow_private=allow_private, cookies=cookies)
