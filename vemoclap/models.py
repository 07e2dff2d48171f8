"""Every pretrained file vemoclap uses, in one table, and where to find each one.

Lookup order for a model: the models directory (``--models-dir`` / ``VEMOCLAP_MODELS_DIR``, else
``$VEMOCLAP_CACHE/models``), then the Hugging Face hub or the model's download URL
(``VEMOCLAP_OFFLINE=1`` or the hub's own ``HF_HUB_OFFLINE=1`` forbid every download). Inside a
models directory the layout is:

* Hugging Face models: ``<dir>/<hub id>/`` holding ``save_pretrained`` files
  (e.g. ``weights/openai/clip-vit-base-patch32/config.json``);
* checkpoint files: ``<dir>/<file name>`` (e.g. ``weights/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``,
  ``weights/whisper/small.pt``);
* files of the reference repository: ``<dir>/reference/<path in that repository>`` (the trained
  classifier is ``weights/reference/weights/classifier/{model.pt,model_config.pt}``).

Beside what it wrote, every download leaves a provenance file (:data:`PROVENANCE`) saying where it
came from, how it was verified and its licence; the tiny builders (:mod:`vemoclap.tiny`) write one
that says the weights are random, and :func:`origin` reads it, so whatever was made from random
weights can say so. ``vemoclap download-models`` fills the layout (:mod:`vemoclap.fetch`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ._util import cache_root
from .errors import ModelUnavailable, one_line

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "VEMOCLAP_MODELS_DIR"
OFFLINE_ENV = "VEMOCLAP_OFFLINE"
PROVENANCE = "vemoclap-source.json"  # inside a model folder; "<file>.vemoclap-source.json" beside a file
RANDOM = "random"  # origin of weights made by vemoclap.tiny


class MissingModels(ModelUnavailable):
    """Several models cannot be had: one line per model, then the command that fetches them."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("; ".join(self.lines))


@dataclass(frozen=True)
class ModelRef:
    key: str  # short name used by the extractors and the CLI
    kind: str  # "hf" (from_pretrained folder), "file" (a checkpoint), "whisper", "reference" (reference repo files)
    hub_id: str | None = None  # Hugging Face repo id
    filename: str | None = None  # file name inside the models dir (and inside the hub repo, if any)
    url: str | None = None  # direct download URL for "file" models hosted outside the hub
    purpose: str = ""
    size_mb: int = 0  # approximate download size
    license: str | None = None  # known licence; None: read from the hub's metadata on download, "unknown" until then
    revision: str | None = None  # pinned hub revision; None: the hub's main, recorded at download
    files: tuple[str, ...] = ()  # "reference": paths inside the reference repository
    folder: str | None = None  # "reference": the local folder that makes it complete (relative to <dir>/reference)


BEATS_CHECKPOINT = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
REFERENCE_DIR = "reference"
CLASSIFIER_FILES = ("weights/classifier/model.pt", "weights/classifier/model_config.pt")
SAMPLE_NAMES = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "sample")
SAMPLE_FILES = tuple(f"sample_data/{name}.mp4" for name in SAMPLE_NAMES)

MODELS: dict[str, ModelRef] = {
    ref.key: ref
    for ref in [
        ModelRef(
            "classifier",
            "reference",
            files=CLASSIFIER_FILES,
            folder="weights/classifier",
            purpose="the reference's trained emotion classifier (VEMOCLAP, Ekman-6)",
            size_mb=42,
            license="GPL-3.0",
        ),
        ModelRef(
            "clip",
            "hf",
            hub_id="openai/clip-vit-base-patch32",
            purpose="CLIP ViT-B/32 frame embeddings",
            size_mb=605,
            license="MIT",
        ),
        ModelRef(
            "beats",
            "file",
            hub_id="WeiChihChen/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2",
            filename=BEATS_CHECKPOINT,
            purpose="BEATs audio embeddings and AudioSet labels",
            size_mb=345,
            license="MIT",
        ),
        ModelRef(
            "ast",
            "hf",
            hub_id="MIT/ast-finetuned-audioset-10-10-0.4593",
            purpose="AST audio embeddings and AudioSet labels (alternative to BEATs)",
            size_mb=346,
        ),
        ModelRef(
            "face_expression",
            "hf",
            hub_id="trpakov/vit-face-expression",
            purpose="ViT facial-expression classifier (7 classes)",
            size_mb=343,
        ),
        ModelRef(
            "yolo_face",
            "file",
            hub_id="arnabdhar/YOLOv8-Face-Detection",
            filename="yolo_face/model.pt",
            purpose="YOLOv8 face detector (ultralytics)",
            size_mb=6,
            license="AGPL-3.0",
        ),
        ModelRef(
            "whisper",
            "whisper",
            filename="whisper/{name}.pt",
            purpose="Whisper speech recognition, translated to English",
            size_mb=1457,
            license="MIT",
        ),
        ModelRef(
            "whisper_ct2",
            "ct2",
            hub_id="Systran/faster-whisper-{name}",
            filename="whisper-ct2/{name}",
            purpose="Whisper for faster-whisper (CTranslate2 folder), the faster ASR backend",
            size_mb=484,
        ),
        ModelRef(
            "sentiment",
            "hf",
            hub_id="cardiffnlp/twitter-roberta-base-sentiment-latest",
            purpose="RoBERTa sentiment of transcript and on-screen text",
            size_mb=499,
        ),
        ModelRef(
            "language_id",
            "hf",
            hub_id="papluca/xlm-roberta-base-language-detection",
            purpose="language of on-screen text",
            size_mb=1112,
        ),
        ModelRef(
            "translation",
            "hf",
            hub_id="facebook/nllb-200-distilled-600M",
            purpose="NLLB-200 translation of on-screen text to English",
            size_mb=2460,
            license="CC-BY-NC-4.0",
        ),
        ModelRef(
            "spell",
            "hf",
            hub_id="ai-forever/T5-large-spell",
            purpose="T5 spelling correction of on-screen text (optional)",
            size_mb=2950,
        ),
        ModelRef(
            "caption",
            "hf",
            hub_id="Salesforce/blip-image-captioning-base",
            purpose="BLIP caption of one frame",
            size_mb=990,
            license="BSD-3-Clause",
        ),
        ModelRef(
            "samples",
            "reference",
            files=SAMPLE_FILES,
            folder="sample_data",
            purpose="the reference's sample videos (Ekman-6), fetched on first use",
            size_mb=30,
            license="GPL-3.0",
        ),
        ModelRef("gpt2", "hf", hub_id="gpt2", purpose="GPT-2 under the CLIPCap caption (the reference's)", size_mb=548),
        ModelRef(
            "clipcap",
            "file",
            filename="clipcap/conceptual_weights.pt",
            url="https://drive.google.com/uc?export=download&id=14pXWwB4Zm82rsDdvbGguLfx9F8aM7ovT",
            purpose="CLIPCap conceptual-captions weights (prefix 10 on GPT-2): the reference's caption",
            size_mb=636,
        ),
    ]
}

# What `vemoclap download-models` fetches when no --only is given: the samples come on first use; the
# CLIPCap pair (a Google Drive file with no published hash) only when asked: the caption falls back to BLIP.
DEFAULT_DOWNLOADS = tuple(key for key in MODELS if key not in ("samples", "ast", "gpt2", "clipcap"))


def default_models_dir() -> Path:
    """``$VEMOCLAP_MODELS_DIR``, else ``$VEMOCLAP_CACHE/models`` (``~/.cache/vemoclap/models``)."""
    value = os.environ.get(MODELS_DIR_ENV)
    return Path(value).expanduser() if value else cache_root() / "models"


def downloads_allowed() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes") and os.environ.get("HF_HUB_OFFLINE", "") not in (
        "1",
        "true",
        "yes",
    )


def models_root(models_dir: str | os.PathLike | None = None) -> Path:
    return Path(models_dir).expanduser() if models_dir else default_models_dir()


def target_path(key: str, models_dir: str | os.PathLike | None = None, **fmt: str) -> Path:
    """Where the model lives inside the models dir (whether or not it is there)."""
    ref = MODELS[key]
    root = models_root(models_dir)
    if ref.kind == "hf":
        return root / ref.hub_id
    if ref.kind == "reference":
        return root / REFERENCE_DIR / ref.folder
    return root / ref.filename.format(**fmt)  # "ct2": <dir>/whisper-ct2/<size>/


def reference_target(path: str, models_dir: str | os.PathLike | None = None) -> Path:
    """The local copy of one reference-repository file."""
    return models_root(models_dir) / REFERENCE_DIR / path


def local_path(key: str, models_dir: str | os.PathLike | None = None, **fmt: str) -> Path | None:
    """The model's path inside the models dir, or None when it is not (completely) there."""
    ref = MODELS[key]
    path = target_path(key, models_dir, **fmt)
    if ref.kind == "hf":
        found = path if (path / "config.json").is_file() else None
    elif ref.kind == "ct2":
        found = path if (path / "model.bin").is_file() else None
    elif ref.kind == "reference":
        found = path if all(reference_target(f, models_dir).is_file() for f in ref.files) else None
    else:
        found = path if path.is_file() else None
    if found is not None:
        _record(key, found)
    return found


# ---- provenance: where weights came from, and whether they are random ----------------------------


def provenance_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / PROVENANCE if path.is_dir() else path.with_name(path.name + "." + PROVENANCE)


def read_provenance(path: str | os.PathLike | None) -> dict:
    """The provenance record beside/inside ``path`` ({} when there is none or it is unreadable)."""
    if path is None:
        return {}
    try:
        value = json.loads(provenance_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_provenance(path: str | os.PathLike, record: dict) -> None:
    from ._util import atomic_write_json

    atomic_write_json(provenance_file(path), record)


def mark_random(path: str | os.PathLike, note: str = "") -> None:
    """Mark weights as randomly initialised (what the tiny builders call on everything they write)."""
    write_provenance(
        path,
        {
            "origin": RANDOM,
            "made_by": "vemoclap.tiny",
            "note": note or "tiny randomly initialised model: its outputs mean nothing",
        },
    )


def origin(path: str | os.PathLike | None) -> str:
    """ "random" (made by vemoclap.tiny), "download" (fetched and verified by vemoclap), or "local"."""
    return read_provenance(path).get("origin") or "local"


def is_random(path: str | os.PathLike | None) -> bool:
    return origin(path) == RANDOM


def license_of(key: str, models_dir: str | os.PathLike | None = None) -> str:
    """A model's licence: the known one, else what its download recorded from the hub, else "unknown"."""
    ref = MODELS[key]
    if ref.license:
        return ref.license
    path = target_path(key, models_dir, name="small")
    if ref.kind == "ct2":
        path = whisper_ct2_dir("small", models_dir)
    return read_provenance(path).get("license") or "unknown"


@dataclass(frozen=True)
class ModelUse:
    """One model an extractor loaded: its key, the local path (None: the hub's cache) and its origin."""

    key: str
    path: str | None
    origin: str

    @property
    def random(self) -> bool:
        return self.origin == RANDOM


_USES: contextvars.ContextVar[list[ModelUse] | None] = contextvars.ContextVar("vemoclap_model_uses", default=None)


@contextlib.contextmanager
def recording():
    """Collect the :class:`ModelUse` of every model looked up inside the block (the loaders call
    :func:`local_path`, which records what it found)."""
    uses: list[ModelUse] = []
    token = _USES.set(uses)
    try:
        yield uses
    finally:
        _USES.reset(token)


def _record(key: str, path: Path | None, how: str | None = None) -> None:
    uses = _USES.get()
    if uses is None:
        return
    use = ModelUse(key, str(path) if path else None, how or origin(path))
    if use not in uses:
        uses.append(use)


def replay(uses: list[ModelUse]) -> None:
    """Record ``uses`` again (a model shared between extractors is loaded once but used by each)."""
    for use in uses:
        current = _USES.get()
        if current is not None and use not in current:
            current.append(use)


# ---- loading -------------------------------------------------------------------------------------


def fetch_command(keys: list[str] | tuple[str, ...], models_dir: str | os.PathLike | None = None) -> str:
    """The command that fetches ``keys`` into the models dir in use."""
    where = f" --dir {models_dir}" if models_dir else ""
    return f"vemoclap download-models --only {','.join(keys)}{where}"


def unavailable(key: str, models_dir: str | os.PathLike | None, why: str = "", **fmt: str) -> ModelUnavailable:
    """The error for a model that cannot be had, saying where it was looked for and what to do."""
    ref = MODELS[key]
    root = models_root(models_dir)
    where = (ref.hub_id or ref.filename or f"{REFERENCE_DIR}/{ref.folder}").format(**fmt)
    if ref.kind == "ct2":
        where = f"{ref.filename.format(**fmt)}, or {ct2_hub_id(fmt.get('name', 'small'))} from the hub"
    hint = f"run `{fetch_command([key], models_dir)}` where there is internet"
    if not models_dir:
        hint += f" (or pass --models-dir / set {MODELS_DIR_ENV} to a folder that has it)"
    why = one_line(why, limit=200) if why else ""  # one line for people
    reason = f": {why}" if why else ""
    return ModelUnavailable(f"model '{key}' ({where}) is unavailable (not in {root}){reason}; {hint}")


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
    if not local and downloads_allowed():  # fetched (verified) into the models dir, never unchecked
        from .fetch import fetch_model

        try:
            fetch_model(key, models_dir)
        except ModelUnavailable:
            raise
        except Exception as exc:  # network and hub errors come in many types
            raise unavailable(key, models_dir, f"download failed: {one_line(exc)}") from exc
        source, local = resolve(key, models_dir), True
    if not local:
        _record(key, None, "hub")
        kwargs.setdefault("local_files_only", True)  # offline: only the hub's local cache can serve it
    try:
        with _quiet_transformers():
            return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:  # transformers raises OSError for missing repos/files
        raise unavailable(key, models_dir, one_line(exc)) from exc
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":  # a truncated or damaged weights file is the files' fault
            raise
        raise unavailable(
            key, models_dir, f"damaged weights file ({one_line(exc)}); delete the folder and fetch it again"
        ) from exc


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
    """A checkpoint file of a "file" model: from the models dir, else downloaded (verified) into it."""
    local = local_path(key, models_dir, **fmt)
    if local is not None:
        return local
    if not downloads_allowed():
        raise unavailable(key, models_dir, "downloads are off (offline mode)", **fmt)
    from .fetch import fetch_model

    fetch_model(key, models_dir)
    local = local_path(key, models_dir, **fmt)
    if local is None:
        raise unavailable(key, models_dir, "the download did not produce the file", **fmt)
    return local


def classifier_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """The reference's trained classifier folder in the models dir (the Analyzer fetches it first)."""
    local = local_path("classifier", models_dir)
    if local is None:
        raise unavailable("classifier", models_dir)
    return local


def whisper_names(size: str) -> list[str]:
    """File stems a Whisper size may be saved under ("large" downloads as large-v3.pt)."""
    try:
        import whisper

        url = getattr(whisper, "_MODELS", {}).get(size)
    except ImportError:
        url = None
    names = [size]
    if url and Path(url).stem != size:
        names.append(Path(url).stem)
    return names


def table(models_dir: str | os.PathLike | None = None, whisper_size: str = "small") -> list[dict]:
    """One row per entry of :data:`MODELS`: source, size, licence, the extractors that use it, local state."""
    from .registry import used_by

    rows = []
    for key, ref in MODELS.items():
        if ref.kind == "whisper":
            found = [p for p in (local_path(key, models_dir, name=n) for n in whisper_names(whisper_size)) if p]
            local = found[0] if found else None
            where = f"openai-whisper {ref.filename.format(name=whisper_size)}"
        elif ref.kind == "ct2":
            local = whisper_ct2_dir(whisper_size, models_dir)
            where = ct2_hub_id(whisper_size)
        elif ref.kind == "reference":
            local = local_path(key, models_dir)
            where = f"github.com/serkansulun/video-emotion {ref.folder}/"
        else:
            local = local_path(key, models_dir)
            where = (ref.hub_id or ref.url or "") + (f" {ref.filename}" if ref.kind == "file" and ref.hub_id else "")
        users = used_by(key) or (["fusion"] if key == "classifier" else ["samples"] if key == "samples" else [])
        record = read_provenance(local) if local else {}
        rows.append(
            {
                "key": key,
                "source": where,
                "size_mb": ref.size_mb,
                "license": license_of(key, models_dir),
                "used_by": users,
                "local": str(local) if local else None,
                "origin": record.get("origin") or ("local" if local else None),
                "verified": record.get("verified"),
                "purpose": ref.purpose,
            }
        )
    return rows


DEFAULT_WHISPER_SIZES = ("small", "medium")  # what --whisper-model auto picks on CPU / GPU


def download_models(
    directory: str | os.PathLike | None = None,
    only: list[str] | None = None,
    whisper_sizes: tuple[str, ...] = DEFAULT_WHISPER_SIZES,
    progress=None,
    announce=None,
) -> dict[str, Path]:
    """Fetch every model (or ``only`` these keys) into ``directory``, verified; see :mod:`vemoclap.fetch`.

    ``progress``: None or True for progress bars, False for none, or ``progress(stage, bytes, total)``."""
    from .fetch import download_models as fetch_all

    return fetch_all(
        directory,
        only=only,
        whisper_sizes=whisper_sizes,
        progress=True if progress is None else progress,
        announce=announce,
    )


# ---- CTranslate2 Whisper folders (faster-whisper) -------------------------------------------------

CT2_HUB_NAMES = {"large": "large-v3"}  # the hub folder of a whisper name, where it differs


def ct2_hub_id(name: str) -> str:
    return MODELS["whisper_ct2"].hub_id.format(name=CT2_HUB_NAMES.get(name, name))


def whisper_ct2_dir(name: str, models_dir: str | os.PathLike | None = None) -> Path | None:
    """The faster-whisper model folder for whisper size ``name``: ``<models dir>/whisper-ct2/<name>/``
    or ``<models dir>/Systran/faster-whisper-<name>/`` (holding ``model.bin``), else None."""
    root = models_root(models_dir)
    for path in (root / MODELS["whisper_ct2"].filename.format(name=name), root / ct2_hub_id(name)):
        if (path / "model.bin").is_file():
            _record("whisper_ct2", path)
            return path
    return None
