"""A tiny CLIPCap: a 2-layer GPT-2 with a trained-offline byte-level BPE tokenizer (``<dir>/gpt2``)
and a ``conceptual_weights.pt``-layout state dict (``<dir>/clipcap/``: ``clip_project.*`` and
``gpt.*``), random, loaded by :class:`vemoclap.extractors.clipcap.ClipCaptioner` through the real
code. Deterministic; under 1 MB."""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "a man riding a horse on a beach.",
    "a dog playing in the snow.",
    "people at a party.",
    "a woman crying in the rain.",
    "an angry crowd on a street.",
    "a surprised child with a gift.",
]


def build(directory: str | Path) -> dict[str, Path]:
    """Write the tiny GPT-2 and CLIPCap weights under ``directory``; returns model key → path."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    from .. import models
    from ..extractors.clipcap import PREFIX_LENGTH, PREFIX_SIZE, build_model

    directory = Path(directory)
    gpt_dir = directory / models.MODELS["gpt2"].hub_id
    tokenizer = GPT2TokenizerFast().train_new_from_iterator(_CORPUS * 20, vocab_size=300, show_progress=False)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=96,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    gpt = GPT2LMHeadModel(config)
    gpt.save_pretrained(gpt_dir)
    tokenizer.save_pretrained(gpt_dir)
    # The checkpoint holds its own (fine-tuned) GPT-2 weights beside the prefix MLP, as the real one does.
    model = build_model(GPT2LMHeadModel(config), PREFIX_LENGTH, PREFIX_SIZE)
    weights = directory / models.MODELS["clipcap"].filename
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    return {"gpt2": gpt_dir, "clipcap": weights}


__all__ = ["build"]
