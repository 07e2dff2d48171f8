"""Every pretrained model vemoclap uses, in one table, and where to find each one.

Lookup order for a model: the models directory (``--models-dir`` / ``VEMOCLAP_MODELS_DIR``), then
the Hugging Face hub or the model's download URL (the hub's own ``HF_HUB_OFFLINE`` is respected;
``VEMOCLAP_OFFLINE=1`` forbids every download). Inside a models directory the layout is:

* Hugging Face models: ``<dir>/<hub id>/`` holding ``save_pretrained`` files
  (e.g. ``weights/openai/clip-vit-base-patch32/config.json``);
* checkpoint files: ``<dir>/<file name>`` (e.g. ``weights/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``,
  ``weights/whisper/small.pt``).

``vemoclap download-models --dir weights`` fills that layout.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelUnavailable, one_line

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "VEMOCLAP_MODELS_DIR"
OFFLINE_ENV = "VEMOCLAP_OFFLINE"


@dataclass(frozen=True)
class ModelRef:
    key: str  # short name used by the extractors and the CLI
    kind: str  # "hf" (transformers from_pretrained), "file" (a checkpoint file), "whisper"
    hub_id: str | None = None  # Hugging Face repo id
    filename: str | None = None  # file name inside the models dir (and inside the hub repo, if any)
    url: str | None = None  # direct download URL for "file" models hosted outside the hub
    purpose: str = ""
    size_mb: int = 0


BEATS_CHECKPOINT = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"

MODELS: dict[str, ModelRef] = {
    ref.key: ref
    for ref in [
        ModelRef("clip", "hf", hub_id="openai/clip-vit-base-patch32",
                 purpose="CLIP ViT-B/32 frame embeddings", size_mb=605),
        ModelRef("beats", "file", filename=BEATS_CHECKPOINT,
                 url=("https://valle.blob.core.windows.net/share/BEATs/" + BEATS_CHECKPOINT
                      + "?sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z"
                        "&sr=c&sp=rl&sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D"),
                 purpose="BEATs audio embeddings and AudioSet labels", size_mb=345),
        ModelRef("ast", "hf", hub_id="MIT/ast-finetuned-audioset-10-10-0.4593",
                 purpose="AST audio embeddings and AudioSet labels (alternative to BEATs)", size_mb=346),
        ModelRef("face_expression", "hf", hub_id="trpakov/vit-face-expression",
                 purpose="ViT facial-expression classifier (7 classes)", size_mb=343),
        ModelRef("yolo_face", "file", hub_id="arnabdhar/YOLOv8-Face-Detection", filename="yolo_face/model.pt",
                 purpose="YOLOv8 face detector (ultralytics)", size_mb=6),
        ModelRef("whisper", "whisper", filename="whisper/{name}.pt",
                 purpose="Whisper speech recognition, translated to English", size_mb=1457),
        ModelRef("whisper_ct2", "ct2", hub_id="Systran/faster-whisper-{name}", filename="whisper-ct2/{name}",
                 purpose="Whisper for faster-whisper (CTranslate2 folder), the faster ASR backend", size_mb=484),
        ModelRef("sentiment", "hf", hub_id="cardiffnlp/twitter-roberta-base-sentiment-latest",
                 purpose="RoBERTa sentiment of transcript and on-screen text", size_mb=499),
        ModelRef("language_id", "hf", hub_id="papluca/xlm-roberta-base-language-detection",
                 purpose="language of on-screen text", size_mb=1112),
        ModelRef("translation", "hf", hub_id="facebook/nllb-200-distilled-600M",
                 purpose="NLLB-200 translation of on-screen text to English", size_mb=2460),
        ModelRef("spell", "hf", hub_id="ai-forever/T5-large-spell",
                 purpose="T5 spelling correction of on-screen text (optional)", size_mb=2950),
        ModelRef("caption", "hf", hub_id="Salesforce/blip-image-captioning-base",
                 purpose="BLIP caption of one frame", size_mb=990),
    ]
}


def default_models_dir() -> Path | None:
    value = os.environ.get(MODELS_DIR_ENV)
    return Path(value).expanduser() if value else None


def downloads_allowed() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes") and os.environ.get(
        "HF_HUB_OFFLINE", ""
    ) not in ("1", "true", "yes")


def _models_dir(models_dir: str | os.PathLike | None) -> Path | None:
    return Path(models_dir).expanduser() if models_dir else default_models_dir()


def local_path(key: str, models_dir: str | os.PathLike | None = None, **fmt: str) -> Path | None:
    """The model's path inside the models dir, or None when it is not there."""
    ref = MODELS[key]
    root = _models_dir(models_dir)
    if root is None:
        return None
    if ref.kind == "hf":
        path = root / ref.hub_id
        return path if (path / "config.json").is_file() else None
    path = root / ref.filename.format(**fmt)
    return path if path.is_file() else None


def unavailable(key: str, models_dir: str | os.PathLike | None, why: str = "", **fmt: str) -> ModelUnavailable:
    """The error for a model that cannot be had, saying where it was looked for and what to do."""
    ref = MODELS[key]
    root = _models_dir(models_dir)
    where = ref.hub_id if ref.kind == "hf" else ref.filename.format(**fmt)
    looked = f"not in {root}" if root else "no models dir given"
    hint = (f"run `vemoclap download-models --only {key} --dir weights` where there is internet, "
            f"then pass --models-dir weights (or set {MODELS_DIR_ENV})")
    why = one_line(why, limit=200) if why else ""  # one line for people
    reason = f": {why}" if why else ""
    return ModelUnavailable(f"model '{key}' ({where}) is unavailable ({looked}){reason}; {hint}")


def resolve(key: str, models_dir: str | os.PathLike | None = None) -> str:
    """For a Hugging Face model: a local directory when present, else the hub id.

    ``from_pretrained`` on the returned string does the right thing either way; pair it with
    :func:`load_pretrained` so a failure becomes a :class:`ModelUnavailable` with a hint.
    """
    ref = MODELS[key]
    assert ref.kind == "hf", key
    local = local_path(key, models_dir)
    if local is not None:
        return str(local)
    return ref.hub_id


def load_pretrained(key: str, cls, models_dir: str | os.PathLike | None = None, **kwargs):
    """``cls.from_pretrained`` on the model's local dir or hub id; errors name the model and the fix."""
    source = resolve(key, models_dir)
    local = source != MODELS[key].hub_id
    if not local and not downloads_allowed():
        # Only the local HF cache can serve it now.
        kwargs.setdefault("local_files_only", True)
    try:
        with _quiet_transformers():
            return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:  # transformers raises OSError for missing repos/files
        raise unavailable(key, models_dir, one_line(exc)) from exc


@contextlib.contextmanager
def _quiet_transformers():
    """Hide transformers' per-load progress bars and layout notices; our own logs say what loaded."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # a class from another library
        yield
        return
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def checkpoint_file(key: str, models_dir: str | os.PathLike | None = None, **fmt: str) -> Path:
    """A checkpoint file of a "file" model: from the models dir, else downloaded into the cache."""
    ref = MODELS[key]
    local = local_path(key, models_dir, **fmt)
    if local is not None:
        return local
    if not downloads_allowed():
        raise unavailable(key, models_dir, "downloads are off (offline mode)", **fmt)
    filename = ref.filename.format(**fmt)
    try:
        if ref.hub_id:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(ref.hub_id, Path(filename).name))
        if ref.url:
            import torch.hub

            target = Path(torch.hub.get_dir()) / "vemoclap" / filename
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(ref.url, str(target), progress=True)
            return target
    except Exception as exc:  # network errors come in many types
        raise unavailable(key, models_dir, f"download failed: {exc}", **fmt) from exc
    raise unavailable(key, models_dir, **fmt)


DEFAULT_WHISPER_SIZES = ("small", "medium")  # what --whisper-model auto picks on CPU / GPU


def download_models(directory: str | os.PathLike = "weights", only: list[str] | None = None,
                    whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES, progress: bool = True) -> dict[str, Path]:
    """Fetch every model (or ``only`` these keys) into ``directory`` in the models-dir layout.

    Returns key → path. Needs internet; each file shows a progress bar. Already present models are
    skipped, so an interrupted run can be repeated.
    """
    from tqdm.auto import tqdm

    directory = Path(directory).expanduser()
    keys = list(only) if only else list(MODELS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if os.environ.get(OFFLINE_ENV, "") in ("1", "true", "yes"):
        raise ModelUnavailable(f"downloads are off ({OFFLINE_ENV}=1); unset it to download models")
    written: dict[str, Path] = {}
    for key in tqdm(keys, desc="models", unit="model", disable=not progress):
        ref = MODELS[key]
        try:
            written[key] = _download_one(ref, directory, whisper_sizes)
        except ModelUnavailable:
            raise
        except Exception as exc:  # network/hub errors come in many types
            raise unavailable(key, directory, f"download failed: {exc}", name=whisper_sizes[0]) from exc
        log.info("%s → %s", key, written[key])
    return written


def _download_one(ref: ModelRef, directory: Path, whisper_sizes: tuple[str, ...]) -> Path:
    if ref.kind == "hf":
        from huggingface_hub import snapshot_download

        target = directory / ref.hub_id
        if not (target / "config.json").is_file():
            snapshot_download(ref.hub_id, local_dir=target)
        return target
    if ref.kind == "whisper":
        import whisper

        root = directory / Path(ref.filename).parent
        for size in whisper_sizes:
            if not (root / f"{size}.pt").is_file():
                # whisper's own downloader checks the file's SHA-256; it names the file <size>.pt
                whisper._download(whisper._MODELS[size], str(root), in_memory=False)
        return root
    target = directory / ref.filename
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if ref.hub_id:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(ref.hub_id, Path(ref.filename).name, local_dir=target.parent))
    import torch.hub

    tmp = target.with_suffix(target.suffix + ".part")
    torch.hub.download_url_to_file(ref.url, str(tmp), progress=True)
    os.replace(tmp, target)
    return target


# ---- CTranslate2 Whisper folders (faster-whisper) -------------------------------------------------

CT2_HUB_NAMES = {"large": "large-v3"}  # the hub folder of a whisper name, where it differs


def whisper_ct2_dir(name: str, models_dir: str | os.PathLike | None = None) -> Path | None:
    """The faster-whisper model folder for whisper size ``name``: ``<models dir>/whisper-ct2/<name>/``
    or ``<models dir>/Systran/faster-whisper-<name>/`` (holding ``model.bin``), else None."""
    root = _models_dir(models_dir)
    if root is None:
        return None
    ref = MODELS["whisper_ct2"]
    hub_name = CT2_HUB_NAMES.get(name, name)
    for path in (root / ref.filename.format(name=name), root / ref.hub_id.format(name=hub_name)):
        if (path / "model.bin").is_file():
            return path
    return None


def download_whisper_ct2(directory: str | os.PathLike, sizes: tuple[str, ...]) -> Path:
    """Fetch faster-whisper folders of ``sizes`` into ``<directory>/whisper-ct2/<size>/``; returns the parent."""
    from huggingface_hub import snapshot_download

    ref = MODELS["whisper_ct2"]
    root = Path(directory).expanduser()
    for size in sizes:
        target = root / ref.filename.format(name=size)
        if not (target / "model.bin").is_file():
            snapshot_download(ref.hub_id.format(name=CT2_HUB_NAMES.get(size, size)), local_dir=target)
    return root / Path(ref.filename).parent
