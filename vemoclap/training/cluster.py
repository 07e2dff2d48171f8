"""The Ray driver of dataset extraction: one actor per worker, each with its own set of models.

The driver hands out videos and writes every file itself (through the ``finish`` it is given),
so the output folder needs to be reachable only from the driver — the videos must be readable by
the workers (a shared file system on a multi-node cluster), and vemoclap installed there. A local
Ray is started so that nothing leaves the machine: no dashboard, usage stats off, bound to
127.0.0.1, and a ``ray_bootstrap_config.yaml`` with ``provider: {type: local}`` in the Ray
processes' home folder (Ray otherwise probes cloud metadata addresses to guess its provider).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .._util import atomic_write_text
from .dataset import Video
from .loop import run_on_read, safe_run
from .store import VideoFeatures, typed_one_line
from .worker import ExtractionConfig, ExtractionError, FeatureWorker

log = logging.getLogger(__name__)


class RayWorker:
    """The actor: a :class:`~vemoclap.training.worker.FeatureWorker` living in a Ray process. Like :meth:`VideoLoop.run` with
    ``prefetch``, it decodes the video it gets next in a thread while it works on the current one."""

    def __init__(self, config: dict[str, Any], device: str, models_dir, env: dict[str, str]):
        from concurrent.futures import ThreadPoolExecutor

        os.environ.update(env)
        logging.basicConfig(level=logging.WARNING)
        self.worker = FeatureWorker(ExtractionConfig.from_dict(config), device=device, models_dir=models_dir)
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="vemoclap-read")
        self.ahead: dict[str, Any] = {}  # video id → future of safe_run(read): at most one
        self.prefetched = 0  # videos whose decoding was done ahead (for tests and logs)

    def ready(self) -> bool:
        return True

    def extract(self, video: Video, ahead: Video | None = None) -> tuple[Video, VideoFeatures | None, str | None]:
        """The features of ``video``; ``ahead``: the video this actor gets next, read meanwhile."""
        pending = self.ahead.pop(video.id, None)
        self.ahead.clear()  # a read nobody asked for (the driver went another way) is dropped
        if ahead is not None:
            self.ahead[ahead.id] = self.reader.submit(safe_run, self.worker.read, ahead)
        if pending is None:
            return self.worker.extract_safe(video)
        self.prefetched += 1
        return run_on_read(self.worker.extract, video, pending.result())

    def stats(self) -> dict[str, int]:
        return {"prefetched": self.prefetched}


def _actor_failure(exc: BaseException) -> str:
    """The one line that says why an actor could not start (its __init__'s exception)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):  # the original exception's "Type: message" line
        if re.match(r"^[\w.]+(Error|Exception|Unavailable|Missing): ", line):
            return line
    return lines[0] if lines else type(exc).__name__


# Settings the workers share with the driver: offline switches always; folders only on a local Ray
# (on a remote cluster the driver's paths mean nothing).
_FORWARD_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VEMOCLAP_OFFLINE", "YOLO_OFFLINE")
_FORWARD_LOCAL_ENV = ("VEMOCLAP_MODELS_DIR", "YOLO_CONFIG_DIR", "HF_HOME", "TORCH_HOME", "XDG_CACHE_HOME")


@contextmanager
def local_ray(
    num_cpus: int | None = None, num_gpus: int | None = None, *, temp_dir: str | None = None
) -> Iterator[None]:
    """Start a local Ray that talks to nobody but this machine, and shut it down afterwards.

    * no dashboard, usage stats off (``RAY_USAGE_STATS_ENABLED=0``);
    * loopback only: Ray on Linux replaces 127.0.0.1 by the host's address (found with a UDP
      "connect" to 8.8.8.8) and binds that; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` while it
      starts keeps every socket on 127.0.0.1 / ::1 (checked with strace: no other address);
    * Ray's system processes read ``$HOME/ray_bootstrap_config.yaml`` to learn the cluster's
      provider and otherwise probe cloud metadata addresses (169.254.169.254): when the user's
      home has no such file, Ray starts with HOME set to a private folder holding one
      (``provider: {type: local}``, in ``<cache>/vemoclap/ray-home``). Ray keeps its auth token in
      that HOME, so the workers keep it too; their caches (Hugging Face, torch, Whisper,
      ultralytics) stay in the real home through ``XDG_CACHE_HOME`` / ``XDG_CONFIG_HOME``.

    The driver's environment is restored once Ray is up (its processes keep what they started with).
    """
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    real_home = os.environ.get("HOME") or str(Path.home())
    saved = {name: os.environ.get(name) for name in ("HOME", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    private = None
    runtime_env = None
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read by Ray's processes when they start
    # ... and by the driver once, when ray is imported: set the value it read as well, while Ray starts.
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_cluster = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved_cluster is not None:
        constants.ENABLE_RAY_CLUSTER = False
    if not (Path(real_home) / "ray_bootstrap_config.yaml").is_file():
        private = _ray_home(real_home)
        os.environ["HOME"] = str(private)
        runtime_env = {
            "env_vars": {
                "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path(real_home) / ".cache"),
                "XDG_CONFIG_HOME": os.environ.get("XDG_CONFIG_HOME") or str(Path(real_home) / ".config"),
            }
        }
    try:
        ray.init(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
            log_to_driver=True,
            configure_logging=False,
            _temp_dir=temp_dir,
        )
    finally:
        if saved_cluster is not None:
            constants.ENABLE_RAY_CLUSTER = saved_cluster
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield
    finally:
        ray.shutdown()


_RAY_HOME: Path | None = None  # the private home this process gave Ray first


def _ray_home(real_home: str) -> Path:
    """The home folder local Ray runs with: ``<cache>/vemoclap/ray-home`` holding the bootstrap file.

    It is kept between runs, and one process always uses the same one: Ray writes its auth token
    there and a driver keeps the token it first read, so every later Ray it starts must find the
    same token.
    """
    global _RAY_HOME
    if _RAY_HOME is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path(real_home) / ".cache")
        _RAY_HOME = cache / "vemoclap" / "ray-home"
    home = _RAY_HOME
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    bootstrap = home / "ray_bootstrap_config.yaml"
    if not bootstrap.is_file():
        atomic_write_text(bootstrap, "provider:\n  type: local\n")
    return home


def run_on_ray(
    todo: list[Video],
    config: ExtractionConfig,
    finish,
    *,
    device: str,
    models_dir,
    address: str | None,
    num_workers: int | None,
    cpus_per_worker: float | None,
    gpus_per_worker: float | None,
) -> int:
    try:
        import ray
    except ImportError:
        raise ExtractionError("Ray is not installed: pip install 'vemoclap[ray]' (or run without --ray)") from None

    started_here = False
    context = None
    if not ray.is_initialized():
        if address in (None, "", "local"):
            cpus = os.cpu_count() or 1
            if num_workers:
                cpus = max(cpus, int(math.ceil(num_workers * (cpus_per_worker or 1))))
            context = local_ray(num_cpus=cpus)
            context.__enter__()
        else:
            ray.init(address=address, logging_level=logging.WARNING, configure_logging=False)
        started_here = True
    try:
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        use_gpu = gpus > 0 and device != "cpu"
        cpus = float(resources.get("CPU", 1))
        if num_workers is None:  # one per GPU; on CPUs one per 4 cores (each holds a whole model set)
            num_workers = int(gpus) if use_gpu and gpus >= 1 else max(1, int(cpus // 4))
        num_workers = max(1, min(int(num_workers), len(todo)))
        if cpus_per_worker is None:
            cpus_per_worker = max(1, int(cpus // num_workers))
        if gpus_per_worker is None:
            gpus_per_worker = min(1.0, gpus / num_workers) if use_gpu else 0.0
        forward = _FORWARD_ENV + (_FORWARD_LOCAL_ENV if context is not None else ())
        env = {name: os.environ[name] for name in forward if name in os.environ}
        actor_class = ray.remote(RayWorker).options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=2)
        # Paths as the driver means them: a worker's home and working folder may differ.
        models = os.path.abspath(os.path.expanduser(str(models_dir))) if models_dir is not None else None
        todo = [dataclasses.replace(v, path=Path(os.path.abspath(v.path))) for v in todo]
        actors = [actor_class.remote(config.to_dict(), device, models, env) for _ in range(num_workers)]
        try:  # models load in each actor's __init__: surface a missing model as its own error
            ray.get([actor.ready.remote() for actor in actors])
        except ray.exceptions.RayError as exc:
            raise ExtractionError(f"a Ray worker could not start: {_actor_failure(exc)}") from None
        log.info(
            "extracting on Ray with %d workers (%s CPU, %s GPU each)", num_workers, cpus_per_worker, gpus_per_worker
        )
        queue = list(reversed(todo))
        pending: dict[Any, tuple[int, Video]] = {}
        following: dict[int, Video] = {}  # actor → the video it gets next, which it decodes ahead

        def submit(index: int) -> None:
            video = following.pop(index) if index in following else queue.pop()
            if queue:
                following[index] = queue.pop()
            pending[actors[index].extract.remote(video, following.get(index))] = (index, video)

        for index in range(len(actors)):  # one in flight per actor; it decodes its next video meanwhile
            if queue:
                submit(index)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, video = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the worker died (e.g. out of memory); it restarts
                result = (video, None, f"worker died: {typed_one_line(exc)[:200]}")
            except ray.exceptions.RayError as exc:
                result = (video, None, typed_one_line(exc)[:300])
            finish(*result)
            if queue or index in following:
                submit(index)
        try:
            prefetched = sum(stats["prefetched"] for stats in ray.get([actor.stats.remote() for actor in actors]))
            log.info("Ray workers decoded %d of %d videos ahead", prefetched, len(todo))
        except ray.exceptions.RayError:  # a worker that died and restarted lost its count
            pass
        for actor in actors:
            ray.kill(actor)
        return num_workers
    finally:
        if started_here:
            if context is not None:
                context.__exit__(None, None, None)
            else:
                ray.shutdown()


__all__ = ["RayWorker", "local_ray", "run_on_ray"]
