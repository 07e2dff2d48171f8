"""AST audio embeddings per 3-s chunk and AudioSet tags (an alternative to BEATs).

"MIT/ast-finetuned-audioset-10-10-0.4593" through transformers. Each 3-s chunk goes through
``ASTFeatureExtractor`` unchanged: it pads the 298 fbank frames to the model's 1024 (10.24 s),
the length its positional embeddings were trained on. The embedding of a chunk is ASTModel's
pooled output — the mean of the final-layer-normed CLS and distillation tokens (768-d) — and
the AudioSet probabilities are the sigmoid of the classifier on that same pooled output.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..media import SAMPLE_RATE
from ..models import load_pretrained
from .audio import AudioOutput, audio_output, clip_chunks
from .base import Clip, Extractor, batches


@dataclass(frozen=True)
class Options:
    n_chunks: int = 16  # 3-s chunks read, at most, equidistant over the track
    top_k: int = 5  # AudioSet tags shown


class AstExtractor(Extractor):
    """Audio Spectrogram Transformer: 768-d per 3-s chunk (≤ n_chunks chunks) plus top AudioSet tags."""

    name = "ast"
    inputs = ("audio",)
    output_type = AudioOutput
    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        self.n_chunks = self.options.n_chunks
        self.top_k = self.options.top_k

    def _load(self) -> None:
        from transformers import ASTFeatureExtractor, ASTForAudioClassification

        with warnings.catch_warnings():
            # Without torchaudio it builds Kaldi's 128 mel filters itself; like Kaldi's, the
            # lowest few cover no FFT bin, which it warns about.
            warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
            self.processor = load_pretrained("ast", ASTFeatureExtractor, self.models_dir)
        model = load_pretrained("ast", ASTForAudioClassification, self.models_dir)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        id2label = self.model.config.id2label
        self.labels = [
            str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(self.model.config.num_labels)
        ]

    @torch.inference_mode()
    def _run(self, clip: Clip) -> AudioOutput:
        chunks, starts = clip_chunks(clip, self.n_chunks)
        features, probs = [], []
        for batch in batches(chunks, self.batch_size):
            inputs = self.processor(list(batch), sampling_rate=SAMPLE_RATE, return_tensors="pt")
            values = inputs["input_values"].to(device=self.device, dtype=self.dtype)
            pooled = self.model.audio_spectrogram_transformer(values).pooler_output
            logits = self.model.classifier(pooled)
            features.append(pooled.float().cpu().numpy())
            probs.append(torch.sigmoid(logits.float()).cpu().numpy())
        return audio_output(np.concatenate(features), np.concatenate(probs), starts, self.labels, self.top_k)
