"""Every pretrained file vemoclap uses, one row each: :data:`MODELS`, which code may add rows to
(:func:`register`). Whatever is derived from the rows is computed when asked, so a row added at run
time is listed, planned and fetched like the others."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRef:
    key: str  # short name used by the extractors and the CLI
    kind: str  # a key of vemoclap.models.kinds.KINDS: "hf", "file", "whisper", "ct2", "reference"
    hub_id: str | None = None  # Hugging Face repo id
    filename: str | None = None  # file name inside the models dir (and inside the hub repo, if any)
    url: str | None = None  # direct download URL for "file" models hosted outside the hub
    sha256: str | None = None  # "file" from a URL: the SHA-256 its publisher lists (checked on download)
    purpose: str = ""
    size_mb: int = 0  # approximate download size, MB (10**6 bytes); the sized kinds: of the default variant
    license: str | None = None  # known licence; None: read from the hub's metadata on download, "unknown" until then
    revision: str | None = None  # pinned hub revision; None: the hub's main, recorded at download
    files: tuple[str, ...] = ()  # "reference": paths inside the reference repository
    folder: str | None = None  # "reference": the local folder that makes it complete (relative to <dir>/reference)
    fetched_by_default: bool = True  # by `vemoclap download-models --all`
    variants_mib: tuple[tuple[str, int], ...] = ()  # the sized kinds: (Whisper size, download size in MiB)


BEATS_CHECKPOINT = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
CLASSIFIER_FILES = ("weights/classifier/model.pt", "weights/classifier/model_config.pt")
SAMPLE_NAMES = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "sample")
SAMPLE_FILES = tuple(f"sample_data/{name}.mp4" for name in SAMPLE_NAMES)
# rapidocr 3.10's model host, as its default_models.yaml lists it (URL and SHA-256 of each ONNX file).
PPOCR_BASE_URL = "https://www.modelscope.cn/models/RapidAI/RapidOCR/resolve/v3.10.0/onnx/"

# Download sizes per Whisper size, MiB: openai-whisper's checkpoints (the files behind whisper._MODELS)
# and faster-whisper's CTranslate2 folders on the hub (Systran/faster-whisper-<size>: model.bin, config,
# tokenizer, vocabulary). An English-only size (".en") is the size of its multilingual twin.
WHISPER_MIB = (
    ("tiny", 72),
    ("base", 139),
    ("small", 461),
    ("medium", 1457),
    ("large-v1", 2944),
    ("large-v2", 2944),
    ("large-v3", 2940),
    ("large", 2940),
    ("large-v3-turbo", 1543),
    ("turbo", 1543),
)
CT2_MIB = (
    ("tiny", 74),
    ("base", 141),
    ("small", 463),
    ("medium", 1459),
    ("large-v1", 2946),
    ("large-v2", 2946),
    ("large-v3", 2946),
    ("large", 2946),
    ("large-v3-turbo", 1546),
    ("turbo", 1546),
)

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
            fetched_by_default=False,  # its extractor does not run by default
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
            size_mb=483,
            license="MIT",
            variants_mib=WHISPER_MIB,
        ),
        ModelRef(
            "whisper_ct2",
            "ct2",
            hub_id="Systran/faster-whisper-{name}",
            filename="whisper-ct2/{name}",
            purpose="Whisper for faster-whisper (CTranslate2 folder), the faster ASR backend",
            size_mb=486,
            license="MIT",
            variants_mib=CT2_MIB,
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
            fetched_by_default=False,  # each sample comes on first use
        ),
        # The reference's English PP-OCR pair (PaddleOCR 2.8 lang='en'), not in the rapidocr wheel; without
        # them the bundled models read the text, as a named deviation. They come on first use.
        ModelRef(
            "ppocr_en_det",
            "file",
            filename="ppocr/en_PP-OCRv3_det_mobile.onnx",
            url=PPOCR_BASE_URL + "PP-OCRv4/det/en_PP-OCRv3_det_mobile.onnx",
            sha256="ea07c15d38ac40cd69da3c493444ec75b44ff23840553ff8ba102c1219ed39c2",
            purpose="en_PP-OCRv3 text detector (ONNX, from rapidocr's model list): the reference's OCR",
            size_mb=3,
            license="Apache-2.0",
            fetched_by_default=False,
        ),
        ModelRef(
            "ppocr_en_rec",
            "file",
            filename="ppocr/en_PP-OCRv4_rec_mobile.onnx",
            url=PPOCR_BASE_URL + "PP-OCRv4/rec/en_PP-OCRv4_rec_mobile.onnx",
            sha256="e8770c967605983d1570cdf5352041dfb68fa0c21664f49f47b155abd3e0e318",
            purpose="en_PP-OCRv4 text recognizer (ONNX, from rapidocr's model list): the reference's OCR",
            size_mb=8,
            license="Apache-2.0",
            fetched_by_default=False,
        ),
        # The CLIPCap pair (a Google Drive file with no published hash) comes only when asked: the caption
        # falls back to BLIP.
        ModelRef(
            "gpt2",
            "hf",
            hub_id="gpt2",
            purpose="GPT-2 under the CLIPCap caption (the reference's)",
            size_mb=548,
            fetched_by_default=False,
        ),
        ModelRef(
            "clipcap",
            "file",
            filename="clipcap/conceptual_weights.pt",
            url="https://drive.google.com/uc?export=download&id=14pXWwB4Zm82rsDdvbGguLfx9F8aM7ovT",
            purpose="CLIPCap conceptual-captions weights (prefix 10 on GPT-2): the reference's caption",
            size_mb=636,
            fetched_by_default=False,
        ),
    ]
}


DEFAULT_WHISPER_SIZES = ("small", "medium")  # what --whisper-model auto picks on CPU / GPU


def register(ref: ModelRef) -> ModelRef:
    """Add a row to :data:`MODELS` (a model of an extractor registered at run time); returns it."""
    known = MODELS.get(ref.key)
    if known is not None and known != ref:
        raise ValueError(f"model key {ref.key!r} is taken by another row")
    MODELS[ref.key] = ref
    return ref


def default_downloads() -> tuple[str, ...]:
    """What ``vemoclap download-models --all`` fetches (with no option it fetches what the default
    recipe needs on this device: :mod:`vemoclap.needs`)."""
    return tuple(key for key, ref in MODELS.items() if ref.fetched_by_default)


MIB = 2**20


def size_mib(key: str, variant: str | None = None) -> int:
    """A model's approximate download size in MiB (per variant for the sized kinds: ``variant`` is
    the Whisper size, ``None`` the default one), from the table."""
    ref = MODELS[key]
    sizes = dict(ref.variants_mib)
    if variant is not None and sizes:
        stem = variant.removesuffix(".en")
        if stem in sizes:
            return sizes[stem]
    return round(ref.size_mb * 1e6 / MIB)
