"""CLIPCap: a caption from a CLIP image embedding, the reference's captioner.

A CLIP ViT-B/32 image embedding (the projected one, 512 wide, not normalized — the ``clip``
feature's row) goes through an MLP (512 → 10·e/2 → 10·e, tanh between) that makes a *prefix* of 10
GPT-2 token embeddings (e = GPT-2's width); GPT-2 continues it into a caption. Weights: the
conceptual-captions checkpoint of CLIP_prefix_caption (``conceptual_weights.pt``, a state dict
holding ``clip_project.*`` and the fine-tuned ``gpt.*``) on top of the hub's ``gpt2``; the source
of the file is a setting (:data:`vemoclap.models.MODELS` ``clipcap``: the Google Drive file the
reference downloads).

Decoding, as the reference ran it: beam search with 5 beams over at most 67 tokens, each beam's
score its summed log-probability divided by its length, a beam ending at its first ".", the best
beam's text returned.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass

import numpy as np

from .. import models

log = logging.getLogger(__name__)

PREFIX_LENGTH = 10
PREFIX_SIZE = 512  # CLIP ViT-B/32's projected embedding
BEAMS = 5
MAX_TOKENS = 67
STOP = "."


def _modules():
    from torch import nn

    class MLP(nn.Module):
        def __init__(self, sizes: tuple[int, ...]):
            super().__init__()
            layers: list[nn.Module] = []
            for i in range(len(sizes) - 1):
                layers.append(nn.Linear(sizes[i], sizes[i + 1]))
                if i < len(sizes) - 2:
                    layers.append(nn.Tanh())
            self.model = nn.Sequential(*layers)

        def forward(self, x):
            return self.model(x)

    class ClipCaptionModel(nn.Module):
        """GPT-2 (``gpt``) with an MLP that maps a CLIP embedding to its prefix (``clip_project``)."""

        def __init__(self, gpt, prefix_length: int = PREFIX_LENGTH, prefix_size: int = PREFIX_SIZE):
            super().__init__()
            self.gpt = gpt
            self.prefix_length = prefix_length
            width = gpt.transformer.wte.weight.shape[1]
            self.clip_project = MLP((prefix_size, width * prefix_length // 2, width * prefix_length))

        def prefix(self, embedding):
            return self.clip_project(embedding).view(embedding.shape[0], self.prefix_length, -1)

    return MLP, ClipCaptionModel


def build_model(gpt, prefix_length: int = PREFIX_LENGTH, prefix_size: int = PREFIX_SIZE):
    return _modules()[1](gpt, prefix_length, prefix_size)


def load_weights(model, path) -> None:
    """The checkpoint's state dict into ``model`` (``weights_only``). Like the reference, GPT-2
    weights the file lacks stay the hub's; a file without the prefix MLP is not a CLIPCap checkpoint."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or pickled-object file: torch raises several types
        raise models.unavailable(
            "clipcap", None, f"{path} is not a loadable state dict ({type(exc).__name__})"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise models.unavailable("clipcap", None, f"{path} is not a state dict of tensors")
    expected = model.state_dict()
    project = [k for k in expected if k.startswith("clip_project.")]
    absent = [k for k in project if k not in state]
    wrong = [k for k in project if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if absent or wrong:
        detail = f"lacks {absent[0]}" if absent else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}"
        raise models.unavailable(
            "clipcap",
            None,
            f"{path} does not fit a CLIPCap model with prefix length {model.prefix_length} on this GPT-2 ({detail})",
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        log.warning(
            "CLIPCap checkpoint %s: %d unexpected weights ignored (e.g. %s)", path, len(unexpected), unexpected[0]
        )
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


@dataclass
class Beam:
    tokens: list[int]
    score: float  # summed log-probability / length


@functools.lru_cache(maxsize=None)
def _cache_keyword(model_class) -> str:
    """``cache`` in transformers ≥ 5.2x, ``past_key_values`` before (Colab's may be either)."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _forward(gpt, embeds, cache):
    """Next-token log-probabilities and the key/value cache."""
    extra = {_cache_keyword(type(gpt)): cache} if cache is not None else {}
    out = gpt(inputs_embeds=embeds, use_cache=True, **extra)
    kept = getattr(out, "cache", None)
    return out.logits[:, -1, :].float().log_softmax(-1), kept if kept is not None else out.past_key_values


def beam_search(model, prefix, stop_id: int, beams: int = BEAMS, max_tokens: int = MAX_TOKENS) -> list[Beam]:
    """Beams continuing ``prefix`` (1 × P × e embeddings), best first (see the module docstring)."""
    import torch

    wte = model.gpt.transformer.wte
    with torch.inference_mode():
        # The prefix is run once; each step then feeds only the new tokens against the kept keys and
        # values (reordered with the beams), not the whole sequence again.
        logits, cache = _forward(model.gpt, prefix, None)
        scores, first = logits[0].topk(beams)  # summed log-probabilities
        tokens = first[:, None]
        lengths = torch.ones(beams, device=prefix.device)
        stopped = first.eq(stop_id)
        cache.batch_repeat_interleave(beams)
        step = wte(first)[:, None, :]
        for _ in range(max_tokens - 1):
            if bool(stopped.all()):
                break
            logits, cache = _forward(model.gpt, step, cache)
            logits[stopped] = -float("inf")
            logits[stopped, 0] = 0.0  # a finished beam carries on unchanged, once
            lengths = lengths + (~stopped).float()
            average = (scores[:, None] + logits) / lengths[:, None]
            best, flat = average.view(-1).topk(beams)
            source, token = flat // logits.shape[1], flat % logits.shape[1]
            lengths = lengths[source]
            scores = best * lengths
            stopped = stopped[source]
            tokens = torch.cat([tokens[source], token[:, None]], dim=1)
            cache.reorder_cache(source)
            step = wte(token)[:, None, :]
            stopped = stopped | token.eq(stop_id)
        order = (scores / lengths).argsort(descending=True)
        return [Beam(tokens[i, : int(lengths[i])].tolist(), float(scores[i] / lengths[i])) for i in order.tolist()]


class ClipCaptioner:
    """Loaded CLIPCap: CLIP embedding(s) → caption text."""

    def __init__(self, device="cpu", dtype=None, models_dir=None, prefix_length: int = PREFIX_LENGTH):
        import torch
        from transformers import GPT2LMHeadModel, GPT2TokenizerFast

        self.device = torch.device(device)
        self.tokenizer = models.load_pretrained("gpt2", GPT2TokenizerFast, models_dir)
        gpt = models.load_pretrained("gpt2", GPT2LMHeadModel, models_dir)
        path = models.checkpoint_file("clipcap", models_dir)  # fetched (verified) when missing
        model = build_model(gpt, prefix_length)
        load_weights(model, path)
        self.model = model.to(self.device, dtype or torch.float32).eval()
        self.stop_id = self.tokenizer.convert_tokens_to_ids(STOP)

    def caption(self, embedding: np.ndarray, beams: int = BEAMS, max_tokens: int = MAX_TOKENS) -> str:
        """The caption of one CLIP image embedding (512 floats)."""
        import torch

        vector = torch.as_tensor(np.asarray(embedding, dtype=np.float32).reshape(1, -1), device=self.device)
        with torch.inference_mode():
            prefix = self.model.prefix(vector.to(next(self.model.parameters()).dtype))
        best = beam_search(self.model, prefix, self.stop_id, beams, max_tokens)[0]
        return self.tokenizer.decode(best.tokens).strip()


__all__ = ["ClipCaptioner", "build_model", "load_weights", "beam_search", "Beam", "PREFIX_LENGTH", "PREFIX_SIZE"]
