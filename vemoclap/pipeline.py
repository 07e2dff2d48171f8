"""Analyze videos: load the extractors once, run them on a clip, fuse, and build a :class:`Result`."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Mapping

import numpy as np

from . import models, recipes
from .errors import OptionError, UserError, one_line
from .extractors import Clip, Extractor, ExtractorOutput, get
from .media import MediaError, check_frame_count
from .models import ModelUnavailable
from .notice import random_weights_notice
from .registry import EXTRACTORS, default_extractors, run_order, with_shortcuts
from .results import NO_CLASSIFIER, Result
from .sources import resolve_source
from .timeline import emotion_windows

log = logging.getLogger(__name__)

# progress(stage, done, total): stages are "load", "media" and each extractor's name.
ProgressFn = Callable[[str, int, int], None]

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
            self.parallel = default_parallel() if parallel is None else int(parallel)
        except (TypeError, ValueError):
            raise OptionError(f"parallel must be a whole number, 1 or more, not {parallel!r}") from None
        if self.parallel < 1:
            raise OptionError(f"parallel must be 1 (one extractor at a time) or more, got {parallel}")
        self.models_dir = models_dir
        self.window_s, self.hop_s = window_s, hop_s
        self.skip_unavailable = skip_unavailable
        options = with_shortcuts(extractor_options, whisper_model=whisper_model, face_detector=face_detector)
        self.classifier = None
        self.classifier_name: str | None = None
        self.unavailable: dict[str, str] = {}  # extractor → why it could not be loaded
        self.classifier_missing: str | None = None  # why there is no classifier when one was wanted
        self.bugs: list[tuple[str, BaseException]] = []  # extractor → exception that was not the input's fault
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
        self.extractors: dict[str, Extractor] = {
            name: self._build(name, planned.extractor_options[name], options.get(name, {})) for name in names
        }
        if reference:  # fetched (verified) together with whatever else is missing, then loaded
            from .fusion import load_classifier

            self.fetch_missing([("classifier", None)])
            path = models.classifier_dir(models_dir)
            self.classifier = load_classifier(path, device="cpu" if device == "auto" else device, heads=heads)
            self.classifier_name = f"reference ({path})"
        if self.classifier is not None:
            self.classifier.autocast = self.recipe.classifier_precision == "fp16-autocast"

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
        if name in self.extractors:
            log.warning("skipping %s: %s", name, reason)
            self.unavailable[name] = reason
            del self.extractors[name]

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
            reason = str(exc) if isinstance(exc, ModelUnavailable) else f"{name} could not be loaded: {one_line(exc)}"
            log.warning("skipping %s: %s", name, reason, exc_info=not isinstance(exc, ModelUnavailable))
            self.unavailable[name] = reason
            del self.extractors[name]
            return False

    # ---- analysis ------------------------------------------------------------------------
    def read_clip(self, path, *, random: bool = False, seed: int | None = None, n_frames: int | None = None) -> Clip:
        """The clip the extractors see, with the recipe's media options (``n_frames``: default the recipe's)."""
        n = self.n_frames if n_frames is None else n_frames
        return Clip.from_file(path, n, random=random, seed=seed, **self._media_options)

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

        running: list[str] = []
        done = 1

        def started(name: str) -> None:
            running.append(name)
            if report:
                report(" + ".join(running), done, total)

        for name, output in self._run_all(clip, started):
            done += 1
            if name in running:
                running.remove(name)
                if report and running:
                    report(" + ".join(running), done, total)
            if output is None:
                continue
            result.outputs[name] = output
            timings[name] = output.seconds
            if output.missing:
                result.missing[name] = output.missing
        order = list(self.extractors)  # the report's order, whichever finished first
        result.outputs = {name: result.outputs[name] for name in order if name in result.outputs}
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

    def _run_all(
        self, clip: Clip, started: Callable[[str], None] = lambda name: None
    ) -> Iterable[tuple[str, ExtractorOutput | None]]:
        """(name, output) of every extractor as each finishes; ``started(name)`` as each starts.

        Up to ``parallel`` run at once, in registry order; one that reads others' outputs starts
        when they are done. Extractors load first, one after another (model loading records what
        it loaded per thread, and not every library loads safely from two threads)."""
        names = list(self.extractors)
        loaded = [name for name in names if self._load_one(name)]
        for name in names:
            if name not in loaded:  # could not be loaded: skipped, listed in self.unavailable
                yield name, None
        outputs: dict[str, ExtractorOutput | None] = {}
        if self.parallel == 1 or len(loaded) < 2:
            for name in loaded:
                started(name)
                outputs[name] = self._run_one(name, clip, outputs)
                yield name, outputs[name]
            return
        # Only on those earlier in run order (which puts what an extractor reads first): no cycle can wait forever.
        waits_for = {name: set(EXTRACTORS[name].reads) & set(loaded[: loaded.index(name)]) for name in loaded}
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="vemoclap")
        running: dict = {}  # future → name, in the order submitted (the order the pool starts them)
        reported: set[str] = set()
        try:
            while True:
                for name in loaded:
                    if name not in outputs and name not in running.values() and waits_for[name] <= outputs.keys():
                        running[pool.submit(self._run_one, name, clip, dict(outputs))] = name
                if not running:
                    return
                for name in running.values():  # a queued one starts when a thread is free
                    if name not in reported and len(reported) - len(outputs) < self.parallel:
                        reported.add(name)
                        started(name)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: loaded.index(running[f])):
                    name = running.pop(future)
                    outputs[name] = future.result()
                    if name not in reported:
                        reported.add(name)
                        started(name)
                    yield name, outputs[name]
        finally:  # stopped early (Ctrl-C, an error): queued extractors never start
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_one(self, name: str, clip: Clip, earlier: Mapping[str, ExtractorOutput]) -> ExtractorOutput | None:
        if not self._load_one(name):
            return None
        extractor = self.extractors[name]
        try:
            return extractor(clip, earlier)
        except UserError as exc:  # the input or an option: the other extractors' results still count
            log.warning("extractor %s: %s", name, one_line(exc))
            return extractor.output_type(name=name, missing=f"failed: {one_line(exc)}")
        except Exception as exc:  # a bug: keep the others' results, and the traceback (self.bugs; --debug logs it)
            log.error("extractor %s failed: %s: %s", name, type(exc).__name__, one_line(exc))
            log.debug("extractor %s traceback", name, exc_info=True)
            self.bugs.append((name, exc))
            return extractor.output_type(
                name=name, missing=f"internal error ({type(exc).__name__}: {one_line(exc, limit=200)}); this is a bug"
            )

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

    # ---- what needs the models after the run ----------------------------------------------
    def face_model(self):
        """The loaded face extractor (image → faces), for annotated videos and live mode."""
        from .errors import UserError

        if "face_emotion" not in self.extractors:
            raise UserError("no face model is loaded (run the face_emotion extractor) to annotate the video")
        return self.extractors["face_emotion"].load()

    def export_annotated_video(self, result: Result, out_path, *, every: int = 1, progress: "bool | Callable" = True):
        """Every frame of ``result``'s video with face boxes and smoothed expressions (audio kept,
        labels per frame in a CSV beside). It runs this Analyzer's face model on the frames again —
        on every ``every``-th one, boxes carried in between — so it needs the loaded Analyzer, not
        only the Result."""
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
        )


def analyze(
    source, *, progress: bool | ProgressFn = False, allow_private: bool = False, cookies=None, **options
) -> Result:
    """Analyze one video with a fresh :class:`Analyzer` (use an Analyzer to keep models loaded)."""
    return Analyzer(**options).analyze(source, progress=progress, allow_private=allow_private, cookies=cookies)
