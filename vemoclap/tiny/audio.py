"""Tiny random audio models in the real file formats, for tests and offline demos.

* BEATs: ``<dir>/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``, a ``torch.save`` of
  ``{"cfg", "model", "label_dict"}`` exactly as the official file is laid out: the same cfg keys
  (values of the real model, except fewer/smaller layers), official parameter names, 527
  AudioSet classes and ``label_dict`` mapping class index → AudioSet mid.
* AST: ``<dir>/MIT/ast-finetuned-audioset-10-10-0.4593/``, an ``ASTForAudioClassification``
  and ``ASTFeatureExtractor`` saved with ``save_pretrained``. The feature extractor keeps the real
  settings (max_length 1024 frames, AudioSet mean/std), and so the model keeps the real patch
  grid and positional embeddings (1214 positions); only depth and widths inside a layer shrink.

Both keep the real 768-d hidden size, so features have the reference shape.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..models import BEATS_CHECKPOINT, MODELS
from .marks import marked

BEATS_FILE = BEATS_CHECKPOINT
AST_ID = MODELS["ast"].hub_id

# The official cfg of BEATs iter3+ fine-tuned on AS2M, with the depth and widths shrunk.
TINY_BEATS_CFG: dict = {
    "encoder_layers": 2,  # real: 12
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 64,  # real: 3072
    "encoder_attention_heads": 4,  # real: 12
    "activation_fn": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "layer_norm_first": False,
    "conv_bias": False,
    "conv_pos": 16,  # real: 128
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "deep_norm": True,
    "input_patch_size": 16,
    "layer_wise_gradient_decay_ratio": 0.6,
    "embed_dim": 512,
    "finetuned_model": True,
    "predictor_dropout": 0.0,
    "predictor_class": 527,
}


def build_beats(path: Path, seed: int = 0) -> Path:
    import torch

    from ..extractors.audio import audioset_labels
    from ..extractors.beats import BEATs, BeatsConfig

    torch.manual_seed(seed)
    model = BEATs(BeatsConfig.from_dict(TINY_BEATS_CFG))
    with torch.no_grad():  # visible spread in the predictor so tags differ between sounds
        model.predictor.weight.normal_(std=0.05)
    label_dict = {index: mid for index, (mid, _) in enumerate(audioset_labels())}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"cfg": dict(TINY_BEATS_CFG), "model": model.state_dict(), "label_dict": label_dict}, path)
    return path


def build_ast(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    from ..extractors.audio import audioset_labels

    names = [name for _, name in audioset_labels()]
    config = ASTConfig(
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        max_length=1024,
        num_mel_bins=128,
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )
    torch.manual_seed(seed)
    model = ASTForAudioClassification(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    with warnings.catch_warnings():  # Kaldi's lowest 128-bin mel filters are empty; expected
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        ASTFeatureExtractor().save_pretrained(directory)  # the real defaults
    return directory


def build_beats_models(directory: Path) -> dict[str, Path]:
    return {"beats": build_beats(Path(directory) / BEATS_FILE)}


def build_ast_models(directory: Path) -> dict[str, Path]:
    return {"ast": build_ast(Path(directory) / AST_ID)}


def build(directory: Path) -> dict[str, Path]:
    """Write the tiny BEATs checkpoint and tiny AST into ``directory`` (a models dir)."""
    return marked({**build_beats_models(directory), **build_ast_models(directory)})
