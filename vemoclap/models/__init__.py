"""Every pretrained file vemoclap uses, and where to find each one.

Lookup order for a model: the models directory (``--models-dir`` / ``VEMOCLAP_MODELS_DIR``, else
``$VEMOCLAP_CACHE/models``), then the Hugging Face hub or the model's download URL
(``VEMOCLAP_OFFLINE=1`` or the hub's own ``HF_HUB_OFFLINE=1`` forbid every download).

* :mod:`~vemoclap.models.table`: one row per model (:data:`MODELS`, :func:`register`);
* :mod:`~vemoclap.models.kinds`: each kind of model (hub folder, checkpoint file, Whisper checkpoint,
  CTranslate2 folder, reference files) — its place in the models dir, how it is found and fetched;
* :mod:`~vemoclap.models.fetch`: download plans, ``vemoclap download-models``, what a run needs;
* :mod:`~vemoclap.models.download` and :mod:`~vemoclap.models.hub`: verified downloads;
* :mod:`~vemoclap.models.connection`: whether a download host answers (asked once; offline said as such);
* :mod:`~vemoclap.models.provenance`: where weights came from, and whether they are random;
* :mod:`~vemoclap.models.loading`: loading through the models dir, with errors that say the fix;
* :mod:`~vemoclap.models.inventory`: the ``vemoclap models`` listing.
"""

from __future__ import annotations

from ..errors import ModelUnavailable
from .advice import MissingModels, fetch_command, unavailable
from .connection import Offline
from .download import fetch_reference_file
from .fetch import Need, download_models, fetch_model, fetch_needed
from .inventory import license_of, table
from .kinds import CT2_HUB_NAMES, ct2_hub_id, local_path, target_path, whisper_ct2_dir, whisper_names
from .layout import (
    MODELS_DIR_ENV,
    OFFLINE_ENV,
    REFERENCE_DIR,
    default_models_dir,
    downloads_allowed,
    models_root,
    reference_target,
)
from .loading import checkpoint_file, classifier_dir, load_pretrained, resolve
from .provenance import (
    PROVENANCE,
    RANDOM,
    ModelUse,
    is_random,
    mark_random,
    origin,
    provenance_file,
    read_provenance,
    recording,
    replay,
    write_provenance,
)
from .table import (
    BEATS_CHECKPOINT,
    CLASSIFIER_FILES,
    DEFAULT_WHISPER_SIZES,
    MODELS,
    SAMPLE_FILES,
    SAMPLE_NAMES,
    ModelRef,
    default_downloads,
    register,
    size_mib,
)

__all__ = [
    "BEATS_CHECKPOINT",
    "CLASSIFIER_FILES",
    "CT2_HUB_NAMES",
    "DEFAULT_WHISPER_SIZES",
    "MODELS",
    "MODELS_DIR_ENV",
    "OFFLINE_ENV",
    "PROVENANCE",
    "RANDOM",
    "REFERENCE_DIR",
    "SAMPLE_FILES",
    "SAMPLE_NAMES",
    "MissingModels",
    "ModelRef",
    "ModelUnavailable",
    "ModelUse",
    "Need",
    "Offline",
    "checkpoint_file",
    "classifier_dir",
    "ct2_hub_id",
    "default_downloads",
    "default_models_dir",
    "download_models",
    "downloads_allowed",
    "fetch_command",
    "fetch_model",
    "fetch_needed",
    "fetch_reference_file",
    "is_random",
    "license_of",
    "load_pretrained",
    "local_path",
    "mark_random",
    "models_root",
    "origin",
    "provenance_file",
    "read_provenance",
    "recording",
    "reference_target",
    "register",
    "replay",
    "resolve",
    "size_mib",
    "table",
    "target_path",
    "unavailable",
    "whisper_ct2_dir",
    "whisper_names",
    "write_provenance",
]
