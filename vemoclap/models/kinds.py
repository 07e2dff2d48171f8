"""Each kind of model (a row's ``kind``) is one small class: where it lies in the models dir
(``target``), whether it is there (``present``), how it is fetched and verified (``fetch``) and where
it comes from (``describe``). Inside a models directory the layout is:

* hub folders (``hf``): ``<dir>/<hub id>/`` holding ``save_pretrained`` files
  (e.g. ``weights/openai/clip-vit-base-patch32/config.json``);
* checkpoint files (``file``, ``whisper``): ``<dir>/<file name>`` (e.g.
  ``weights/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``, ``weights/whisper/small.pt``);
* CTranslate2 folders (``ct2``): ``<dir>/whisper-ct2/<size>/`` or ``<dir>/<hub id>/``;
* files of the reference repository (``reference``): ``<dir>/reference/<path in that repository>``
  (the trained classifier is ``weights/reference/weights/classifier/{model.pt,model_config.pt}``).

``name`` is a Whisper size for the kinds with one copy per size (``sized``), ignored by the others.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import ClassVar

from ..errors import OptionError
from . import download, hub
from .layout import REFERENCE_DIR, models_root
from .provenance import record, write_provenance
from .table import DEFAULT_WHISPER_SIZES, MODELS, PPOCR_BASE_URL, ModelRef

ProgressFn = download.ProgressFn
WHISPER_BASE_ENV = "VEMOCLAP_WHISPER_BASE_URL"
WHISPER_URL_PREFIX = "https://openaipublic.azureedge.net/main/whisper/models/"
PPOCR_BASE_ENV = "VEMOCLAP_PPOCR_BASE_URL"
CT2_HUB_NAMES = {"large": "large-v3"}  # the hub folder of a whisper name, where it differs


class Kind:
    """A checkpoint file at ``<dir>/<filename>``; the other kinds change what differs."""

    sized: ClassVar[bool] = False

    def target(self, ref: ModelRef, root: Path, name: str) -> Path:
        return root / ref.filename.format(name=name)

    def present(self, ref: ModelRef, root: Path, name: str) -> Path | None:
        path = self.target(ref, root, name)
        return path if path.is_file() else None

    def fetch(self, ref: ModelRef, root: Path, name: str, progress: ProgressFn | None) -> Path:
        raise NotImplementedError

    def describe(self, ref: ModelRef, name: str) -> str:
        """Where it comes from, for the models table."""
        return ref.hub_id or ref.url or ""

    def label(self, ref: ModelRef, name: str) -> str:
        """What an error calls it."""
        return (ref.hub_id or ref.filename).format(name=name)

    def download_size(self, ref: ModelRef, name: str) -> int | None:
        """Bytes to download, asked of the server (None when it does not say)."""
        return None

    def source_url(self, ref: ModelRef, name: str) -> str:
        """The address it is downloaded from (its host is the one that must answer)."""
        return file_url(ref) if ref.url and not ref.hub_id else hub.hub_endpoint() or hub.HUB_URL


class HubFolder(Kind):
    """A ``from_pretrained`` folder of the hub."""

    def target(self, ref, root, name):
        return root / ref.hub_id

    def present(self, ref, root, name):
        path = self.target(ref, root, name)
        return path if (path / "config.json").is_file() else None

    def fetch(self, ref, root, name, progress):
        return hub.fetch_folder(ref, self.target(ref, root, name), progress)

    def download_size(self, ref, name):
        return sum(s.size or 0 for s in hub.hf_files(hub.hub_info(ref).siblings))


def file_url(ref: ModelRef) -> str:
    """A row's download URL, with its host's base replaced where a setting names a mirror (the
    PP-OCR models: ``$VEMOCLAP_PPOCR_BASE_URL``)."""
    base = os.environ.get(PPOCR_BASE_ENV)
    if base and ref.url.startswith(PPOCR_BASE_URL):
        return base.rstrip("/") + "/" + ref.url[len(PPOCR_BASE_URL) :]
    return ref.url


class Checkpoint(Kind):
    """One checkpoint file: from a hub repository, else from a plain URL, checked against the
    row's published SHA-256 (or the manifest's ``"file"`` entry for its key); a URL with no
    published hash gets its SHA-256 recorded, unverified."""

    def fetch(self, ref, root, name, progress):
        target = self.target(ref, root, name)
        if ref.hub_id:
            return hub.fetch_file(ref, target, progress)
        url, sha = file_url(ref), download.expected_sha256("file", ref.key, ref.sha256)
        path = download.download_file(url, target, sha256=sha, progress=progress, stage=ref.key)
        write_provenance(
            path,
            {
                "origin": "download",
                "source": url,
                "verified": "sha256" if sha else None,
                "sha256": sha or download.sha256_file(path),
                "license": ref.license,
            },
        )
        return path

    def describe(self, ref, name):
        return f"{ref.hub_id} {ref.filename}" if ref.hub_id else ref.url or ""

    def download_size(self, ref, name):
        if not ref.hub_id:
            return download.remote_size(file_url(ref)) if ref.url and ref.sha256 else None
        base = Path(ref.filename).name
        return next((s.size for s in hub.hub_info(ref).siblings if s.rfilename == base), None)


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


def whisper_url(size: str) -> tuple[str, str]:
    """The download URL of a Whisper size and its SHA-256 (published inside openai-whisper's URL)."""
    import whisper

    try:
        url = whisper._MODELS[size]
    except KeyError:
        raise OptionError(
            f"unknown Whisper size {size!r}; choose from {', '.join(whisper.available_models())}"
        ) from None
    sha = download.expected_sha256("whisper", size, url.split("/")[-2])
    base = os.environ.get(WHISPER_BASE_ENV)
    if base and url.startswith(WHISPER_URL_PREFIX):
        url = base.rstrip("/") + "/" + url[len(WHISPER_URL_PREFIX) :]
    return url, sha


class WhisperCheckpoint(Kind):
    """An openai-whisper checkpoint per size, checked against the SHA-256 in its URL."""

    sized = True

    def present(self, ref, root, name):
        for stem in whisper_names(name):  # "large" is saved as large-v3.pt
            path = self.target(ref, root, stem)
            if path.is_file():
                return path
        return None

    def fetch(self, ref, root, name, progress):
        url, sha = whisper_url(name)
        target = self.target(ref, root, Path(urllib.parse.urlparse(url).path).stem)
        if not target.is_file():
            download.download_file(url, target, sha256=sha, progress=progress, stage=f"whisper {name}")
        write_provenance(
            target,
            {"origin": "download", "source": url, "verified": "sha256", "sha256": sha, "license": ref.license},
        )
        return target

    def describe(self, ref, name):
        return f"openai-whisper {ref.filename.format(name=name)}"

    def label(self, ref, name):
        return ref.filename.format(name=name)

    def download_size(self, ref, name):
        return download.remote_size(whisper_url(name)[0])

    def source_url(self, ref, name):
        try:
            return whisper_url(name)[0]
        except (ImportError, OptionError):  # no openai-whisper here: the host its files come from
            return os.environ.get(WHISPER_BASE_ENV) or WHISPER_URL_PREFIX


def ct2_hub_id(name: str) -> str:
    """The hub repository of faster-whisper's CTranslate2 folder for Whisper size ``name``."""
    return MODELS["whisper_ct2"].hub_id.format(name=CT2_HUB_NAMES.get(name, name))


class Ct2Folder(Kind):
    """A whole CTranslate2 folder of the hub (model.bin, config, tokenizer, vocabulary) per Whisper
    size: ``<dir>/whisper-ct2/<size>/``, or the hub's layout ``<dir>/Systran/faster-whisper-<size>/``."""

    sized = True

    def present(self, ref, root, name):
        for path in (self.target(ref, root, name), root / ct2_hub_id(name)):
            if (path / "model.bin").is_file():
                return path
        return None

    def fetch(self, ref, root, name, progress):
        target = self.target(ref, root, name)
        return hub.fetch_folder(ref, target, progress, hub_id=ct2_hub_id(name), select=hub.top_files, needs="model.bin")

    def describe(self, ref, name):
        return ct2_hub_id(name)

    def label(self, ref, name):
        return f"{ref.filename.format(name=name)}, or {ct2_hub_id(name)} from the hub"

    def download_size(self, ref, name):
        return sum(s.size or 0 for s in hub.hub_info(ref, ct2_hub_id(name)).siblings if "/" not in s.rfilename)


class ReferenceFiles(Kind):
    """Files of the reference repository, each checked against its pinned git blob id; the row's
    ``folder`` holds them all."""

    def target(self, ref, root, name):
        return root / REFERENCE_DIR / ref.folder

    def present(self, ref, root, name):
        complete = all((root / REFERENCE_DIR / f).is_file() for f in ref.files)
        return self.target(ref, root, name) if complete else None

    def fetch(self, ref, root, name, progress):
        def report(stage: str, done: int, total: int) -> None:
            progress(f"{ref.key} ({Path(stage).name})", done, total)

        for path in ref.files:
            download.fetch_reference_file(path, root, report if progress else None)
        folder = self.target(ref, root, name)
        write_provenance(
            folder,
            {
                "origin": "download",
                "source": download.REFERENCE_REPO,
                "commit": download.REFERENCE_COMMIT,
                "verified": "git-blob",
                "files": {f: download.reference_blob(f) for f in ref.files},
                "license": ref.license,
            },
        )
        return folder

    def describe(self, ref, name):
        return f"github.com/{download.REFERENCE_REPO} {ref.folder}/"

    def label(self, ref, name):
        return f"{REFERENCE_DIR}/{ref.folder}"

    def source_url(self, ref, name):
        return download.reference_base_url()

    def download_size(self, ref, name):
        sizes = [download.remote_size(download.reference_base_url() + f) for f in ref.files]
        return sum(sizes) if all(s is not None for s in sizes) else None


KINDS: dict[str, Kind] = {
    "hf": HubFolder(),
    "file": Checkpoint(),
    "whisper": WhisperCheckpoint(),
    "ct2": Ct2Folder(),
    "reference": ReferenceFiles(),
}


def kind_of(key: str) -> tuple[ModelRef, Kind]:
    ref = MODELS[key]
    return ref, KINDS[ref.kind]


def target_path(key: str, models_dir: str | os.PathLike | None = None, *, name: str | None = None) -> Path:
    """Where the model lives inside the models dir (whether or not it is there)."""
    ref, kind = kind_of(key)
    return kind.target(ref, models_root(models_dir), name or DEFAULT_WHISPER_SIZES[0])


def local_path(key: str, models_dir: str | os.PathLike | None = None, *, name: str | None = None) -> Path | None:
    """The model's path inside the models dir, or None when it is not (completely) there."""
    ref, kind = kind_of(key)
    found = kind.present(ref, models_root(models_dir), name or DEFAULT_WHISPER_SIZES[0])
    if found is not None:
        record(key, found)
    return found


def whisper_ct2_dir(name: str, models_dir: str | os.PathLike | None = None) -> Path | None:
    """The faster-whisper model folder for Whisper size ``name`` in the models dir, else None."""
    return local_path("whisper_ct2", models_dir, name=name)
