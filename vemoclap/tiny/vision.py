"""Tiny randomly initialized vision models of the real classes and file formats, for tests and demos.

``build(directory)`` lays them out as a models directory expects (see ``vemoclap.models``), so the
extractors load them through exactly the code a user runs:

* ``openai/clip-vit-base-patch32/``: ``CLIPModel`` + ``CLIPImageProcessor`` (the real preprocessing
  config; projection_dim 512 so the feature has the reference shape; only the vision tower is used);
* ``trpakov/vit-face-expression/``: ``ViTForImageClassification`` with hidden size 768 (the feature
  width) and the 7 expression labels, + ``ViTImageProcessor`` configured for its small input size;
* ``Salesforce/blip-image-captioning-base/``: ``BlipForConditionalGeneration`` + ``BlipProcessor``
  with a BERT word-piece tokenizer built offline;
* ``yolo_face/model.pt``: an ultralytics YOLOv8n detector with one class, in ultralytics' own
  checkpoint format.

Everything is seeded, so the same directory content comes out every time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from .._util import ultralytics_offline
from ..labels import FACE_EXPRESSIONS
from ..models import MODELS
from .marks import marked

log = logging.getLogger(__name__)

SEED = 0

# Words the tiny caption tokenizer knows: the prompt plus a few caption words, so generated ids
# decode to real words.
_CAPTION_WORDS = (
    "a picture of an the man woman person people group in on at with and two smiling sitting standing "
    "holding riding looking camera room street table car dog cat horse beach space suit flag white black red"
).split()


def build_clip(target: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config=dict(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=224,
            patch_size=32,
        ),
        projection_dim=512,  # the real width of the projected image embedding
    )
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = CLIPModel(config).eval()
    model.save_pretrained(target)
    # The processor's defaults are openai/clip-vit-base-patch32's preprocessing (224, bicubic, CLIP mean/std).
    CLIPImageProcessor().save_pretrained(target)
    return target


def build_face_expression(target: Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    size = 32  # small input (4×4 patches of 8 px) keeps it fast; the processor resizes to match
    config = ViTConfig(
        hidden_size=768,  # the reference feature width (CLS of the last encoder layer)
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=size,
        patch_size=8,
        id2label=dict(enumerate(FACE_EXPRESSIONS)),
        label2id={label: i for i, label in enumerate(FACE_EXPRESSIONS)},
    )
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = ViTForImageClassification(config).eval()
    model.save_pretrained(target)
    # Same settings as trpakov/vit-face-expression's processor except the size: bilinear, mean/std 0.5.
    ViTImageProcessor(
        size={"height": size, "width": size}, resample=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]
    ).save_pretrained(target)
    return target


def _bert_tokenizer():
    """A BERT word-piece tokenizer over a small vocabulary, with BLIP's "[DEC]" bos token."""
    import transformers
    from transformers import BertTokenizer

    chars = sorted({c for word in _CAPTION_WORDS for c in word})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    tokens += list(dict.fromkeys(_CAPTION_WORDS)) + chars + ["##" + c for c in chars] + [".", ","]
    if int(transformers.__version__.split(".")[0]) >= 5:
        return BertTokenizer(vocab={token: i for i, token in enumerate(tokens)}, bos_token="[DEC]")
    with tempfile.TemporaryDirectory() as tmp:  # transformers 4 reads the vocabulary from a file
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("\n".join(tokens) + "\n")
        return BertTokenizer(vocab_file=str(vocab), bos_token="[DEC]")


def build_caption(target: Path) -> Path:
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tokenizer = _bert_tokenizer()
    size = 64
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            encoder_hidden_size=32,
            max_position_embeddings=64,
            bos_token_id=tokenizer.bos_token_id,
            sep_token_id=tokenizer.sep_token_id,
            eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=size,
            patch_size=16,
        ),
        projection_dim=32,
    )
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = BlipForConditionalGeneration(config).eval()
    model.save_pretrained(target)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": size, "width": size}), tokenizer=tokenizer
    )
    processor.save_pretrained(target)
    return target


def ensure_ultralytics_font() -> None:
    """Put matplotlib's DejaVuSans at $YOLO_CONFIG_DIR/Ultralytics/Arial.ttf so ultralytics never fetches a font."""
    ultralytics_offline()
    config_dir = os.environ.get("YOLO_CONFIG_DIR")
    if not config_dir:
        return
    font = Path(config_dir) / "Ultralytics" / "Arial.ttf"
    if font.is_file():
        return
    try:
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, font)
    except (ImportError, OSError) as exc:  # drawing may then try the web; detection does not need it
        log.debug("could not place a font for ultralytics: %s", exc)


def build_yolo_face(target: Path) -> Path:
    """A random one-class YOLOv8n saved by ultralytics itself (``YOLO.save``), loadable with ``YOLO(path)``."""
    import torch

    ensure_ultralytics_font()
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load
    from ultralytics.utils import YAML

    target.parent.mkdir(parents=True, exist_ok=True)
    cfg = yaml_model_load("yolov8n.yaml")  # ships inside ultralytics
    cfg["nc"] = 1
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng():
        torch.manual_seed(SEED)
        yaml_path = Path(tmp) / "yolov8n-face.yaml"  # the "n" in the name selects the nano scale
        YAML.save(yaml_path, {k: v for k, v in cfg.items() if k not in ("yaml_file",)})
        model = YOLO(str(yaml_path), task="detect")
    model.model.names = {0: "face"}
    model.save(str(target))
    return target


def build_clip_models(directory: str | os.PathLike) -> dict[str, Path]:
    return {"clip": build_clip(Path(directory) / MODELS["clip"].hub_id)}


def build_face_models(directory: str | os.PathLike) -> dict[str, Path]:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    return {
        "face_expression": build_face_expression(root / MODELS["face_expression"].hub_id),
        "yolo_face": build_yolo_face(root / MODELS["yolo_face"].filename),
    }


def build_caption_models(directory: str | os.PathLike) -> dict[str, Path]:
    return {"caption": build_caption(Path(directory) / MODELS["caption"].hub_id)}


def build(directory: str | os.PathLike) -> dict[str, Path]:
    """Write every tiny vision model into ``directory`` (a models dir); returns model key → path."""
    return marked({**build_clip_models(directory), **build_face_models(directory), **build_caption_models(directory)})


__all__ = [
    "build",
    "build_clip_models",
    "build_face_models",
    "build_caption_models",
    "build_clip",
    "build_face_expression",
    "build_caption",
    "build_yolo_face",
    "ensure_ultralytics_font",
]
