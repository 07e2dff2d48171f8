"""Full-size architectures with random weights, laid out as a models dir, for honest timings offline.

Same classes and sizes as the real models (CLIP ViT-B/32, ViT-B/16 faces, BLIP base, RoBERTa base,
XLM-R base, NLLB-600M, T5-large, AST base, BEATs iter3, GPT-2 under CLIPCap, YOLOv8n, Whisper small
and on request medium or large-v3 — also converted for faster-whisper): the compute is the real
one, the outputs are noise. Tokenizers and processors come from the tiny builders: the embedding
and output layers keep real sizes, but a tiny vocabulary splits text into more tokens (T5 reads
"grammar: what a wonderful day" as 13), which lengthens what a decoder is allowed to write.
Random-weight decoders (Whisper, T5, NLLB, CLIPCap, BLIP) run to their length limits, so their
times are upper bounds of what real weights cost.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

CACHE = Path(os.environ.get("VEMOCLAP_BENCH_CACHE", Path.home() / ".cache" / "vemoclap-bench"))
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)


def _update_config(directory: Path, **changes) -> dict:
    config = json.loads((directory / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def _rebuild(directory: Path, model_cls, config_cls, **changes) -> None:
    """Replace the tiny weights in ``directory`` by a random full-size model (tokenizer files kept)."""
    import torch

    config = config_cls.from_dict(_update_config(directory, **changes))
    torch.manual_seed(0)
    model = model_cls(config).eval()
    for stale in directory.glob("*.safetensors"):
        stale.unlink()
    model.save_pretrained(directory)


def _set_image_size(directory: Path, size: int) -> None:
    """Set the processor's square input size (transformers 5 may nest it in processor_config.json)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = directory / name
        if not path.is_file():
            continue
        config = json.loads(path.read_text())
        target = config.get("image_processor", config)
        target["size"] = {"height": size, "width": size}
        path.write_text(json.dumps(config, indent=2))


WHISPER_DIMS = {
    "small": dict(
        n_audio_state=768, n_audio_head=12, n_audio_layer=12, n_text_state=768, n_text_head=12, n_text_layer=12
    ),
    "medium": dict(
        n_audio_state=1024, n_audio_head=16, n_audio_layer=24, n_text_state=1024, n_text_head=16, n_text_layer=24
    ),
    "large-v3": dict(
        n_mels=128,
        n_vocab=51866,
        n_audio_state=1280,
        n_audio_head=20,
        n_audio_layer=32,
        n_text_state=1280,
        n_text_head=20,
        n_text_layer=32,
    ),
}


def build_full_size_models(
    directory: Path | None = None, *, spell: bool = True, whisper_sizes: tuple[str, ...] = ("small",)
) -> Path:
    """Write (once) random full-size models into ``directory``; returns it. ``spell``: T5-large too
    (the ``reference`` recipe corrects spelling on any device); ``whisper_sizes``: the Whisper
    checkpoints made full size (the others stay tiny), each also converted for faster-whisper."""
    directory = Path(directory or CACHE / "full-size")
    if not (directory / ".complete").is_file():
        _build_base(directory)
    if spell:
        _full_size_spell(directory)
    for size in whisper_sizes:
        full_size_whisper(directory, size)
    convert_whispers(directory, whisper_sizes)
    _full_size_clipcap(directory)
    return directory


def _build_base(directory: Path) -> None:
    """Every model but T5, Whisper and GPT-2 at full size, over the tiny models' layout and tokenizers."""
    import torch
    import transformers as tf

    from vemoclap.extractors.audio import audioset_labels
    from vemoclap.models import MODELS
    from vemoclap.testing import make_tiny_classifier, make_tiny_models
    from vemoclap.tiny.audio import TINY_BEATS_CFG

    if directory.exists():
        shutil.rmtree(directory)
    make_tiny_models(directory, classifier=False)
    hub = {key: directory / ref.hub_id for key, ref in MODELS.items() if ref.kind == "hf"}

    log.info("building full-size random models in %s", directory)
    _rebuild(
        hub["clip"],
        tf.CLIPModel,
        tf.CLIPConfig,
        projection_dim=512,
        vision_config=dict(BASE, image_size=224, patch_size=32, projection_dim=512),
    )
    _rebuild(hub["face_expression"], tf.ViTForImageClassification, tf.ViTConfig, **BASE, image_size=224, patch_size=16)
    _set_image_size(hub["face_expression"], 224)
    _rebuild(
        hub["caption"],
        tf.BlipForConditionalGeneration,
        tf.BlipConfig,
        projection_dim=512,
        vision_config=dict(BASE, image_size=384, patch_size=16),
        text_config=dict(BASE, vocab_size=30524, encoder_hidden_size=768, max_position_embeddings=512),
    )
    _set_image_size(hub["caption"], 384)
    _rebuild(
        hub["sentiment"],
        tf.RobertaForSequenceClassification,
        tf.RobertaConfig,
        **BASE,
        vocab_size=50265,
        max_position_embeddings=514,
    )
    _rebuild(
        hub["language_id"],
        tf.XLMRobertaForSequenceClassification,
        tf.XLMRobertaConfig,
        **BASE,
        vocab_size=250002,
        max_position_embeddings=514,
    )
    _rebuild(
        hub["translation"],
        tf.M2M100ForConditionalGeneration,
        tf.M2M100Config,
        vocab_size=256206,
        d_model=1024,
        encoder_layers=12,
        decoder_layers=12,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        encoder_ffn_dim=4096,
        decoder_ffn_dim=4096,
        max_position_embeddings=1024,
    )
    names = [name for _, name in audioset_labels()]
    _rebuild(hub["ast"], tf.ASTForAudioClassification, tf.ASTConfig, **BASE, id2label=dict(enumerate(names)))

    from vemoclap.extractors.beats import BEATs, BeatsConfig

    cfg = dict(TINY_BEATS_CFG, encoder_layers=12, encoder_ffn_embed_dim=3072, encoder_attention_heads=12, conv_pos=128)
    torch.manual_seed(0)
    beats = BEATs(BeatsConfig.from_dict(cfg))
    label_dict = {index: mid for index, (mid, _) in enumerate(audioset_labels())}
    torch.save(
        {"cfg": cfg, "model": beats.state_dict(), "label_dict": label_dict}, directory / MODELS["beats"].filename
    )

    make_tiny_classifier(directory / "classifier")
    (directory / ".complete").write_text("ok\n")


def _full_size_spell(directory: Path) -> None:
    """T5-large (the spelling model, 738 M) in place of the tiny one (once)."""
    import transformers as tf

    from vemoclap.models import MODELS

    done = directory / ".complete-spell"
    if done.is_file():
        return
    log.info("building a full-size T5-large spelling model")
    _rebuild(
        directory / MODELS["spell"].hub_id,
        tf.T5ForConditionalGeneration,
        tf.T5Config,
        d_model=1024,
        d_kv=64,
        d_ff=2816,
        num_layers=24,
        num_decoder_layers=24,
        num_heads=16,
        vocab_size=32128,
        feed_forward_proj="gated-gelu",
    )
    done.write_text("ok\n")


def full_size_whisper(directory: Path, size: str) -> None:
    """An openai-whisper checkpoint of ``size``'s real dimensions in ``whisper/<size>.pt`` (once)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    from vemoclap.models import mark_random

    done = directory / f".complete-whisper-{size}"
    if done.is_file():
        return
    if size not in WHISPER_DIMS:
        raise SystemExit(f"no full-size dimensions for Whisper {size!r}; choose from {', '.join(WHISPER_DIMS)}")
    log.info("building a full-size Whisper %s", size)
    dims = ModelDimensions(
        **{"n_mels": 80, "n_vocab": 51865, "n_audio_ctx": 1500, "n_text_ctx": 448, **WHISPER_DIMS[size]}
    )
    torch.manual_seed(0)
    whisper = Whisper(dims)
    with torch.no_grad():  # whisper leaves these uninitialized
        torch.nn.init.normal_(whisper.decoder.positional_embedding, std=0.02)
    state = {k: v.half() for k, v in whisper.state_dict().items()}
    del whisper
    target = directory / "whisper" / f"{size}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims.__dict__, "model_state_dict": state}, target)
    mark_random(target, f"full-size Whisper {size} architecture, random weights (benchmarks/full_size.py)")
    done.write_text("ok\n")


def _full_size_clipcap(directory: Path) -> None:
    """GPT-2 small (124 M) under a CLIPCap checkpoint of the real shapes, in place of the tiny pair (once)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from vemoclap.extractors.clipcap import PREFIX_LENGTH, PREFIX_SIZE, build_model
    from vemoclap.models import MODELS

    gpt_dir = directory / MODELS["gpt2"].hub_id
    config = json.loads((gpt_dir / "config.json").read_text())
    if config.get("n_embd") == 768:
        return
    log.info("building a full-size GPT-2 and CLIPCap checkpoint")
    config.update(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)
    torch.manual_seed(0)
    gpt = GPT2LMHeadModel(GPT2Config.from_dict(config)).eval()
    for stale in gpt_dir.glob("*.safetensors"):
        stale.unlink()
    gpt.save_pretrained(gpt_dir)
    model = build_model(gpt, PREFIX_LENGTH, PREFIX_SIZE)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, directory / MODELS["clipcap"].filename)


def convert_whispers(directory: Path, whisper_sizes: tuple[str, ...]) -> None:
    """The same Whisper weights for faster-whisper: ``whisper-ct2/<size>/`` (once)."""
    from vemoclap.tiny.whisper_ct2 import CT2_DIR, convert_checkpoint

    for size in whisper_sizes:
        target, checkpoint = directory / CT2_DIR / size, directory / "whisper" / f"{size}.pt"
        # make_tiny_models may have converted the tiny checkpoint that the full-size one replaced
        if not (target / "model.bin").is_file() or (target / "model.bin").stat().st_mtime < checkpoint.stat().st_mtime:
            log.info("converting whisper %s for faster-whisper", size)
            convert_checkpoint(checkpoint, target)
