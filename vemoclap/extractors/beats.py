"""BEATs audio embeddings (one 768-d vector per 3-s chunk) and the top AudioSet labels.

BEATs (Chen et al. 2022, microsoft/unilm ``beats``) is implemented here for inference only, so
neither unilm nor torchaudio is needed. Module and parameter names follow the official code
exactly, so the official checkpoint (``torch.load`` of ``{"cfg", "model", "label_dict"}``) loads
with ``strict=True``. The input is a Kaldi-compatible 128-bin log-mel filterbank computed here in
torch, matching ``torchaudio.compliance.kaldi.fbank`` with the settings BEATs uses.

Per the reference, the feature of a chunk is the encoder output averaged over its tokens (before
the AudioSet predictor); the predictor gives the AudioSet probabilities shown as tags.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OptionError, one_line
from ..models import checkpoint_file, unavailable
from .audio import (
    SILENCE,
    AudioOutput,
    audio_output,
    audioset_labels,
    audioset_names_by_mid,
    clip_chunks,
    select_chunk_starts,
)
from .base import Clip, Extractor, batches

log = logging.getLogger(__name__)

FBANK_MEAN = 15.41663  # BEATs' AudioSet fbank statistics
FBANK_STD = 6.55582
# --------------------------------------------------------------------------- Kaldi fbank


def _kaldi_mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def kaldi_mel_banks(
    num_bins: int = 128, n_fft: int = 512, sample_rate: float = 16000.0, low_freq: float = 20.0, high_freq: float = 0.0
) -> torch.Tensor:
    """Kaldi's triangular mel filters (num_bins × n_fft/2+1), triangles drawn on the mel scale."""
    nyquist = sample_rate / 2
    if high_freq <= 0.0:
        high_freq += nyquist  # Kaldi: non-positive high_freq is an offset from Nyquist
    mel_low, mel_high = _kaldi_mel(torch.tensor([low_freq, high_freq], dtype=torch.float64))
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * torch.arange(num_bins + 2, dtype=torch.float64)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    # Kaldi leaves the Nyquist bin out of the filters (its weight stays 0).
    bin_mel = _kaldi_mel(torch.arange(n_fft // 2, dtype=torch.float64) * (sample_rate / n_fft))[None, :]
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return F.pad(banks, (0, 1))


def kaldi_fbank(
    waveforms: torch.Tensor,
    num_mel_bins: int = 128,
    sample_rate: int = 16000,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Log mel filterbank of each row of ``waveforms`` (B × samples) → B × frames × bins.

    Same numbers as ``torchaudio.compliance.kaldi.fbank`` with its defaults (povey window,
    DC offset removed, dither 0, power spectrum, FFT size rounded up to a power of two,
    snip_edges=True, low_freq 20 Hz, log floored at float32 eps). Computed in ``dtype``
    (float32 like Kaldi and torchaudio; float64 only for checking).
    """
    waveforms = waveforms.to(dtype)
    if waveforms.dim() == 1:
        waveforms = waveforms[None]
    window = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    n_fft = 1 << (window - 1).bit_length()
    if waveforms.shape[-1] < window:
        return waveforms.new_zeros(waveforms.shape[0], 0, num_mel_bins)
    frames = waveforms.unfold(-1, window, shift)  # B × T × window (snip_edges: whole frames only)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)  # first sample repeats itself
    frames = frames - preemphasis * previous
    povey = torch.hann_window(window, periodic=False, dtype=dtype, device=frames.device).pow(0.85)
    spectrum = torch.fft.rfft(frames * povey, n=n_fft).abs().pow(2.0)
    banks = kaldi_mel_banks(num_mel_bins, n_fft, float(sample_rate)).to(frames.device, dtype)
    energies = spectrum @ banks.T
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


def beats_fbank(waveforms: torch.Tensor) -> torch.Tensor:
    """BEATs' input: fbank of the waveform scaled to 16-bit range, normalized by AudioSet stats."""
    fbank = kaldi_fbank(waveforms.to(torch.float32) * 2**15)
    return (fbank - FBANK_MEAN) / (2 * FBANK_STD)


# --------------------------------------------------------------------------- the BEATs model


@dataclass
class BeatsConfig:
    """The architecture fields of the official ``cfg`` dict (dropouts and training-only keys ignored)."""

    input_patch_size: int = -1
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_class: int = 527

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "BeatsConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})


class SamePad(nn.Module):
    """Drops the extra last step an even-sized 'same' convolution produces."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.remove] if self.remove else x


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d stored as weight norm over dim 2: ``weight = g * v / ||v||`` per kernel tap.

    Keeps the official parameter names (``weight_g``, ``weight_v``, ``bias``) without the
    deprecated ``nn.utils.weight_norm`` hook.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.padding = kernel_size // 2
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel_size * channels)))
        with torch.no_grad():
            self.weight_g.copy_(self._norm(self.weight_v))

    @staticmethod
    def _norm(v: torch.Tensor) -> torch.Tensor:
        return v.float().pow(2).sum(dim=(0, 1), keepdim=True).sqrt().to(v.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_v * (self.weight_g / self._norm(self.weight_v))
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


def _activation(name: str):
    if name == "gelu":
        return lambda x: F.gelu(x.float()).type_as(x)
    if name == "relu":
        return F.relu
    raise ValueError(f"BEATs activation '{name}' is not supported here")


class MultiheadAttention(nn.Module):
    """Self-attention with bucketed relative position bias and its GRU-style gate (BEATs/WavLM)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        has_relative_attention_bias: bool,
        num_buckets: int,
        max_distance: int,
        gru_rel_pos: bool,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError("BEATs: encoder_embed_dim must be divisible by encoder_attention_heads")
        self.scaling = self.head_dim**-0.5
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.has_relative_attention_bias = has_relative_attention_bias
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, num_heads, 1, 1))

    def _buckets(self, relative: torch.Tensor) -> torch.Tensor:
        """T5-style bidirectional buckets: half for each direction, exact near 0, log-spaced beyond."""
        half = self.num_buckets // 2
        buckets = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        far = (
            exact + (torch.log(distance.float() / exact) / math.log(self.max_distance / exact) * (half - exact)).long()
        )
        far = far.clamp(max=half - 1)
        return buckets + torch.where(distance < exact, distance, far)

    def compute_bias(self, length: int) -> torch.Tensor:
        """Heads × length × length bias from the relative distance of every key to every query."""
        positions = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = self._buckets(positions[None, :] - positions[:, None])
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = x.shape
        if self.has_relative_attention_bias and position_bias is None:
            position_bias = self.compute_bias(length)  # shared by every later layer
        split = lambda t: t.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q_raw = split(self.q_proj(x))
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        # Logits and softmax in fp32: BEATs' own fp16 guard (scale by 1/32, subtract the row max)
        # only exists to keep these finite, and the result is the same softmax.
        logits = torch.matmul(q_raw.float() * self.scaling, k.float().transpose(-1, -2))
        if position_bias is not None:
            bias = position_bias.float()[None]
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(q_raw).float().view(batch, self.num_heads, length, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)
                bias = (gate_a * (gate_b * self.grep_a.float() - 1.0) + 2.0) * bias
            logits = logits + bias
        attn = torch.matmul(logits.softmax(dim=-1).type_as(v), v)
        attn = attn.transpose(1, 2).reshape(batch, length, self.embed_dim)
        return self.out_proj(attn), position_bias


class TransformerSentenceEncoderLayer(nn.Module):
    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = MultiheadAttention(
            dim,
            cfg.encoder_attention_heads,
            has_relative_attention_bias=cfg.relative_position_embedding,
            num_buckets=cfg.num_buckets,
            max_distance=cfg.max_distance,
            gru_rel_pos=cfg.gru_rel_pos,
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _activation(cfg.activation_fn)
        self.layer_norm_first = cfg.layer_norm_first
        # DeepNorm up-weights the residual branch of post-LN layers.
        self.residual_scale = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None):
        if self.layer_norm_first:
            attn, position_bias = self.self_attn(self.self_attn_layer_norm(x), position_bias)
            x = x + attn
            x = x + self.fc2(self.activation(self.fc1(self.final_layer_norm(x))))
        else:
            attn, position_bias = self.self_attn(x, position_bias)
            x = self.self_attn_layer_norm(x * self.residual_scale + attn)
            x = self.final_layer_norm(x * self.residual_scale + self.fc2(self.activation(self.fc1(x))))
        return x, position_bias


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), SamePad(cfg.conv_pos), nn.GELU()
        )
        self.layers = nn.ModuleList(TransformerSentenceEncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        if cfg.relative_position_embedding:
            # One bias table serves every layer; the official model registers it under each layer
            # name, so the state dict (and checkpoint) carries it once per layer.
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.layer_norm_first = cfg.layer_norm_first
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        position_bias = None
        for layer in self.layers:
            x, position_bias = layer(x, position_bias)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x


class BEATs(nn.Module):
    """BEATs for inference: fbank patches → transformer encoder (→ AudioSet predictor when fine-tuned)."""

    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        self.cfg = cfg
        self.post_extract_proj = (
            nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim) if cfg.embed_dim != cfg.encoder_embed_dim else None
        )
        self.patch_embedding = nn.Conv2d(
            1, cfg.embed_dim, kernel_size=cfg.input_patch_size, stride=cfg.input_patch_size, bias=cfg.conv_bias
        )
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class) if cfg.finetuned_model else None

    def extract_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """Normalized fbank (B × frames × 128) → encoder output (B × patches × encoder_embed_dim)."""
        patches = self.patch_embedding(fbank.unsqueeze(1))  # B × C × time/16 × freq/16
        x = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)

    def forward(self, fbank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(time-averaged encoder output B × D, AudioSet probabilities B × C or None).

        The official head averages the per-token logits; the predictor is affine, so that equals
        the predictor applied to the averaged encoder output.
        """
        pooled = self.extract_features(fbank).mean(dim=1)
        probs = torch.sigmoid(self.predictor(pooled).float()) if self.predictor is not None else None
        return pooled, probs


def _label_names(label_dict: Any, n_classes: int) -> list[str]:
    """Display names in predictor order from the checkpoint's label_dict (index → AudioSet mid)."""
    names = audioset_names_by_mid()
    if isinstance(label_dict, dict) and label_dict:
        mapping = dict(label_dict)
        if all(isinstance(k, str) for k in mapping) and all(isinstance(v, int) for v in mapping.values()):
            mapping = {v: k for k, v in mapping.items()}  # tolerate mid → index
        mapping = {int(k): str(v) for k, v in mapping.items()}
        return [names.get(mapping.get(i, ""), mapping.get(i, f"class {i}")) for i in range(n_classes)]
    log.warning("BEATs checkpoint has no label_dict; assuming AudioSet class-index order")
    order = [name for _, name in audioset_labels()]
    return [order[i] if i < len(order) else f"class {i}" for i in range(n_classes)]


def load_beats(path: str | Path, models_dir=None) -> tuple[BEATs, list[str] | None]:
    """Build BEATs from an official checkpoint file (strict load); labels when it is fine-tuned."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        cfg = BeatsConfig.from_dict(dict(checkpoint["cfg"]))
        state = checkpoint["model"]
    except Exception as exc:  # unpickling refusals, truncated files, wrong layout
        raise unavailable("beats", models_dir, f"{path} is not a readable BEATs checkpoint ({exc})") from exc
    model = BEATs(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise unavailable("beats", models_dir, f"{path} does not match the BEATs layout: {one_line(exc)}") from exc
    labels = _label_names(checkpoint.get("label_dict"), cfg.predictor_class) if cfg.finetuned_model else None
    return model.eval(), labels


# --------------------------------------------------------------------------- the extractor


@dataclass(frozen=True)
class Options:
    # which 3-s chunks are read (see vemoclap.extractors.audio.select_chunk_starts)
    n_chunks: int = 16  # at most this many, equidistant over the track
    chunk_selection: str = "equidistant"  # or "reference-indices"
    chunk_end: str = "inclusive"  # or "exclusive"
    silence: str = "missing"  # "missing": a silent track gives no feature; "embed": it is embedded
    # readable output
    top_k: int = 5  # AudioSet tags shown


class BeatsExtractor(Extractor):
    """BEATs iter3+ AS2M (fine-tuned, cpt2): 768-d per 3-s chunk, ≤ n_chunks chunks, plus tags."""

    name = "beats"
    inputs = ("audio",)
    output_type = AudioOutput
    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        self.n_chunks = o.n_chunks
        self.top_k = o.top_k
        select_chunk_starts(0, 1, selection=o.chunk_selection, end=o.chunk_end)  # bad values fail now
        if o.silence not in SILENCE:
            raise OptionError(f"beats silence '{o.silence}' is unknown; choose from {', '.join(SILENCE)}")
        self.chunk_selection, self.chunk_end, self.silence = o.chunk_selection, o.chunk_end, o.silence

    def _load(self) -> None:
        path = checkpoint_file("beats", self.models_dir)
        model, labels = load_beats(path, self.models_dir)
        if labels is None:
            raise unavailable("beats", self.models_dir, f"{path} has no AudioSet predictor (not a fine-tuned model)")
        self.model = model.to(device=self.device, dtype=self.dtype)
        self.labels = labels

    @torch.inference_mode()
    def _run(self, clip: Clip) -> AudioOutput:
        chunks, starts = clip_chunks(
            clip, self.n_chunks, selection=self.chunk_selection, end=self.chunk_end, silence=self.silence
        )
        features, probs = [], []
        for batch in batches(chunks, self.batch_size):
            waveforms = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            fbank = beats_fbank(waveforms)  # always fp32
            pooled, p = self.model(fbank.to(self.dtype))
            features.append(pooled.float().cpu().numpy())
            probs.append(p.cpu().numpy())
        return audio_output(np.concatenate(features), np.concatenate(probs), starts, self.labels, self.top_k)
