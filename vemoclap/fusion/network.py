"""The fusion network: only the ``nn.Module`` (building and loading it is in ``checkpoints``)."""

from __future__ import annotations

import re
from itertools import permutations
from typing import TYPE_CHECKING, Iterable, Mapping

import torch
from torch import nn

from .prepare import is_sequence

if TYPE_CHECKING:
    from .checkpoints import ClassifierConfig

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class AttentionClassifier(nn.Module):
    """Per-feature linear encoders, cross-attention for every ordered pair of sequence features,
    mean over time, concatenation (sorted by name) with the single-vector features, ReLU, linear.

    Parameter names match the reference's checkpoint: ``encoders.<f>``, ``query_proj.<s>``,
    ``key_proj.<s>``, ``value_proj.<s>``, ``attention_layers.<a>_<b>``, ``attn_norms.<a>_<b>``,
    ``cls_mlp.0``. The reference also applies ``dropout`` to the attention weights; so do we.
    A model with a single sequence feature has no pairs: that feature is encoded and averaged
    over time instead.
    """

    def __init__(
        self,
        feature_dims: Mapping[str, int],
        d_model: int = 512,
        n_labels: int = 6,
        dropout: float = 0.5,
        num_heads: int = 4,
        sequence_features: Iterable[str] | None = None,
    ):
        super().__init__()
        if not feature_dims:
            raise ValueError("the classifier needs at least one feature")
        bad = [name for name in feature_dims if not _NAME.match(name)]
        if bad:
            raise ValueError(f"feature names may hold only letters, digits and '_': {bad}")
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.feature_dims = {name: int(dim) for name, dim in feature_dims.items()}
        if sequence_features is None:
            sequence_features = [name for name in self.feature_dims if is_sequence(name)]
        sequence_features = list(sequence_features)
        unknown = [name for name in sequence_features if name not in self.feature_dims]
        if unknown:
            raise ValueError(f"sequence features {unknown} are not in feature_dims")
        self.sequence_features = [name for name in self.feature_dims if name in sequence_features]
        self.single_features = [name for name in self.feature_dims if name not in sequence_features]
        self.d_model, self.n_labels, self.num_heads, self.dropout_p = d_model, n_labels, num_heads, dropout
        self.pairs = [(a, b) for a, b in permutations(self.sequence_features, 2)]

        # Names of the pooled parts, in the order they are concatenated.
        parts = list(self.single_features) + [f"{a}_{b}" for a, b in self.pairs]
        if len(self.sequence_features) == 1:
            parts.append(self.sequence_features[0])
        if len(set(parts)) != len(parts):
            raise ValueError(f"feature names collide with pair names ('<a>_<b>'): {sorted(parts)}")
        self.part_names = sorted(parts)

        self.encoders = nn.ModuleDict({name: nn.Linear(dim, d_model) for name, dim in self.feature_dims.items()})
        paired = self.sequence_features if self.pairs else []
        self.query_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.key_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.value_proj = nn.ModuleDict({name: nn.Linear(d_model, d_model) for name in paired})
        self.attention_layers = nn.ModuleDict(
            {
                f"{a}_{b}": nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
                for a, b in self.pairs
            }
        )
        self.attn_norms = nn.ModuleDict({f"{a}_{b}": nn.LayerNorm(d_model) for a, b in self.pairs})
        self.cls_mlp = nn.Sequential(nn.Linear(d_model * len(self.part_names), n_labels))
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    @classmethod
    def from_config(cls, config: "ClassifierConfig") -> "AttentionClassifier":
        return cls(
            config.feature_dims,
            d_model=config.d_model,
            n_labels=config.n_labels,
            dropout=config.dropout,
            num_heads=config.num_heads,
            sequence_features=config.sequence_features,
        )

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(
        self, batch: Mapping[str, torch.Tensor], attention: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``batch``: name → ``B × L × D`` (or ``B × D`` for a single vector) → logits ``B × n_labels``.

        A feature absent from ``batch`` is zeros (one row: in eval mode the output is the same
        for all-zero rows of any length). ``attention``, a dict, receives each pair's attention
        weights, ``"<a>_<b>"`` → ``B × L_a × L_b`` averaged over heads (``a`` the query side)."""
        unknown = sorted(set(batch) - set(self.feature_dims))
        if unknown:
            raise ValueError(
                f"features {unknown} are not inputs of this classifier (it takes {sorted(self.feature_dims)})"
            )
        if not batch:
            raise ValueError("empty batch: give at least one feature")
        first = next(iter(batch.values()))
        weight = self.cls_mlp[0].weight
        encoded: dict[str, torch.Tensor] = {}
        for name, dim in self.feature_dims.items():
            x = batch.get(name)
            if x is None:
                x = torch.zeros(first.shape[0], 1, dim)
            if x.dim() == 2:
                x = x.unsqueeze(1)
            encoded[name] = self.dropout(self.encoders[name](x.to(device=weight.device, dtype=weight.dtype)))

        pooled = {name: encoded[name].mean(1) for name in self.single_features}
        if self.pairs:
            q = {m: self.dropout(self.query_proj[m](encoded[m])) for m in self.sequence_features}
            k = {m: self.dropout(self.key_proj[m](encoded[m])) for m in self.sequence_features}
            v = {m: self.dropout(self.value_proj[m](encoded[m])) for m in self.sequence_features}
            for a, b in self.pairs:
                key = f"{a}_{b}"
                want = attention is not None
                attended, weights = self.attention_layers[key](q[a], k[b], v[b], need_weights=want)
                if want:
                    attention[key] = weights
                pooled[key] = self.dropout(self.attn_norms[key](attended)).mean(1)
        elif self.sequence_features:
            name = self.sequence_features[0]
            pooled[name] = encoded[name].mean(1)
        x = torch.cat([pooled[name] for name in self.part_names], dim=1)
        return self.cls_mlp(self.relu(x))
