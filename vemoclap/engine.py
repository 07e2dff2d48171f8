"""The one extraction engine: loaded extractors run on a clip, each output made once.

Its shape is a transformers pipeline's: *preprocess* (decode a video into a :class:`Clip`, done by
the caller: :meth:`vemoclap.pipeline.Analyzer.read_clip`), *forward* (:meth:`Engine.run`: every
extractor on the clip, those that read others' outputs after them, up to ``parallel`` at once, a
``Missing`` modality or a failing extractor becoming that output's ``missing`` reason, progress
reported as they go) and *postprocess* into one of two views of the same outputs: a
:class:`~vemoclap.results.Result` (``Analyzer.analyze``; also ``predict``) or the fusion features of
a feature file (:func:`feature_rows`; dataset extraction in process and on Ray, ``parity``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Union

import numpy as np

from .errors import UserError, one_line
from .extractors import Clip, Extractor, ExtractorOutput
from .models import ModelUnavailable
from .registry import EXTRACTORS, FEATURES

log = logging.getLogger(__name__)

# progress(stage, done, total): stages are "load", "media" and each extractor's name.
ProgressFn = Callable[[str, int, int], None]
# The clip single-vector frame features see instead (dataset extraction samples more frames for the
# sequences than inference does), or a function that decodes it when first needed.
SingleClip = Union[Clip, Callable[[], Clip], None]


class Engine:
    """Loaded extractors (name → extractor, in run order) and what happened to them.

    ``skip_unavailable``: an extractor that cannot be loaded is dropped and its reason kept in
    ``unavailable`` instead of raising. ``bugs`` lists (name, exception) of every extractor that
    failed for a reason that was not the input's."""

    def __init__(self, extractors: Mapping[str, Extractor], *, parallel: int = 1, skip_unavailable: bool = False):
        self.extractors: dict[str, Extractor] = dict(extractors)
        self.parallel = parallel
        self.skip_unavailable = skip_unavailable
        self.unavailable: dict[str, str] = {}  # extractor → why it could not be loaded
        self.bugs: list[tuple[str, BaseException]] = []

    # ---- loading ---------------------------------------------------------------------------------
    def skip(self, name: str, reason: str) -> None:
        """Drop ``name`` (its model cannot be had) and keep why."""
        if name in self.extractors:
            log.warning("skipping %s: %s", name, reason)
            self.unavailable[name] = reason
            del self.extractors[name]

    def load_one(self, name: str) -> bool:
        """Load ``name``; False when it is not there or, with ``skip_unavailable``, could not load."""
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

    # ---- forward ---------------------------------------------------------------------------------
    def run(
        self,
        clip: Clip,
        *,
        single: SingleClip = None,
        strict: bool = False,
        progress: ProgressFn | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> dict[str, ExtractorOutput]:
        """Every extractor's output on ``clip`` (name → output, in run order; those that could not
        be loaded are left out and listed in ``unavailable``).

        ``single``: the clip that extractors of a single-vector frame feature see instead (see
        :func:`reads_single_frames`). ``strict``: an extractor that fails raises (a dataset video
        fails) instead of giving an output whose ``missing`` says why. ``progress`` hears the names
        of the extractors running, counting from ``done`` steps of ``total``."""
        total = done + len(self.extractors) if total is None else total
        running: list[str] = []
        count = [done]

        def started(name: str) -> None:
            running.append(name)
            if progress:
                progress(" + ".join(running), count[0], total)

        outputs: dict[str, ExtractorOutput] = {}
        for name, output in self._stream(clip, _lazy(single), strict, started):
            count[0] += 1
            if name in running:
                running.remove(name)
                if progress and running:
                    progress(" + ".join(running), count[0], total)
            if output is not None:
                outputs[name] = output
        order = list(self.extractors)  # run order, whichever finished first
        return {name: outputs[name] for name in order if name in outputs}

    def _stream(
        self, clip: Clip, single: Callable[[], Clip] | None, strict: bool, started: Callable[[str], None]
    ) -> Iterable[tuple[str, ExtractorOutput | None]]:
        """(name, output) of every extractor as each finishes; ``started(name)`` as each starts.

        Up to ``parallel`` run at once, in run order; one that reads others' outputs starts when
        they are done. Extractors load first, one after another (model loading records what it
        loaded per thread, and not every library loads safely from two threads)."""
        names = list(self.extractors)
        loaded = [name for name in names if self.load_one(name)]
        for name in names:
            if name not in loaded:  # could not be loaded: skipped, listed in self.unavailable
                yield name, None

        def one(name: str, earlier: Mapping[str, ExtractorOutput]) -> ExtractorOutput | None:
            use = single() if single is not None and reads_single_frames(self.extractors[name]) else clip
            return self._run_one(name, use, earlier, strict)

        outputs: dict[str, ExtractorOutput | None] = {}
        if self.parallel == 1 or len(loaded) < 2:
            for name in loaded:
                started(name)
                outputs[name] = one(name, outputs)
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
                        running[pool.submit(one, name, dict(outputs))] = name
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

    def _run_one(
        self, name: str, clip: Clip, earlier: Mapping[str, ExtractorOutput], strict: bool
    ) -> ExtractorOutput | None:
        """One extractor's output; ``Missing`` input becomes its ``missing`` (in the extractor's call),
        and so does a failure unless ``strict``."""
        if not self.load_one(name):
            return None
        extractor = self.extractors[name]
        try:
            return extractor(clip, earlier)
        except UserError as exc:  # the input or an option: the other extractors' results still count
            if strict:
                raise
            log.warning("extractor %s: %s", name, one_line(exc))
            return extractor.output_type(name=name, missing=f"failed: {one_line(exc)}")
        except Exception as exc:  # a bug: keep the others' results, and the traceback (self.bugs; --debug logs it)
            if strict:
                raise
            log.error("extractor %s failed: %s: %s", name, type(exc).__name__, one_line(exc))
            log.debug("extractor %s traceback", name, exc_info=True)
            self.bugs.append((name, exc))
            return extractor.output_type(
                name=name, missing=f"internal error ({type(exc).__name__}: {one_line(exc, limit=200)}); this is a bug"
            )


def reads_single_frames(extractor: Extractor) -> bool:
    """Whether ``extractor`` fills a single-vector feature from frames (it sees the inference frames
    when a dataset samples more of them for the sequences)."""
    spec = FEATURES.get(extractor.feature_name) if extractor.feature_name else None
    return spec is not None and not spec.sequence and "frames" in extractor.inputs


def _lazy(single: SingleClip) -> Callable[[], Clip] | None:
    """``single`` as a function that makes it once (from any thread)."""
    if single is None or isinstance(single, Clip):
        return None if single is None else (lambda: single)
    lock, made = threading.Lock(), []

    def get() -> Clip:
        with lock:
            if not made:
                made.append(single())
        return made[0]

    return get


# ---- postprocess: the feature-file view ---------------------------------------------------------


@dataclass(frozen=True)
class FeatureRows:
    """The fusion features in a set of outputs: feature → k × dim float32 rows, their times in
    seconds (where an extractor gives one per row), and feature → why it has no rows."""

    features: dict[str, np.ndarray]
    times: dict[str, np.ndarray]
    missing: dict[str, str]


def feature_rows(outputs: Mapping[str, ExtractorOutput], extractors: Mapping[str, Extractor]) -> FeatureRows:
    """The features of ``outputs`` as a feature file stores them: a single vector becomes one row;
    a row width other than the feature's raises (a bug in the extractor, not the video's fault)."""
    features: dict[str, np.ndarray] = {}
    times: dict[str, np.ndarray] = {}
    missing: dict[str, str] = {}
    for name, output in outputs.items():
        feature = extractors[name].feature_name
        if not feature:
            continue
        if output.feature is None or np.asarray(output.feature).size == 0:
            missing[feature] = output.missing or "no rows"
            continue
        array = np.asarray(output.feature, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]
        spec = FEATURES.get(feature)
        if spec is not None and (array.ndim != 2 or array.shape[1] != spec.dim):
            raise ValueError(f"{name} gave shape {tuple(array.shape)}, expected (k, {spec.dim})")
        features[feature] = array
        if output.times is not None and len(output.times) == len(array):
            times[feature] = np.asarray(output.times, dtype=np.float64)
    return FeatureRows(features, times, missing)


__all__ = ["Engine", "FeatureRows", "ProgressFn", "SingleClip", "feature_rows", "reads_single_frames"]
