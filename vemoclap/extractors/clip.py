"""CLIP ViT-B/32 image embeddings, one per sampled frame: the reference's "clip" feature (n × 512).

The feature is CLIP's projected image embedding (``image_embeds`` of
``CLIPVisionModelWithProjection``), not L2-normalized. ``CLIPVisionModelWithProjection`` loads the
vision tower and projection out of the full ``openai/clip-vit-base-patch32`` checkpoint and skips
the text tower.

Preprocessing, as in the reference: resize the short side to 224 (bicubic, antialiased), center
crop 224 × 224, normalize with CLIP's mean/std. The checkpoint's ``CLIPImageProcessor`` resizes and
normalizes; the crop is torchvision's ``center_crop``, because CLIP's own preprocessing (and the
reference's, both torchvision ``CenterCrop``) rounds the crop offset while transformers floors it:
for some frame shapes (e.g. 481 × 360 → 299 × 224) the two crops are one pixel apart. 16:9 and 4:3
frames at 360p give even offsets, where both agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import models
from ..quiet import quiet_logger
from .base import Clip, Extractor, ExtractorOutput, batches

log = logging.getLogger(__name__)

# The full CLIP checkpoint also holds the text tower; these keys are expected to go unused.
_TEXT_KEYS = ("text_model.", "text_projection.", "logit_scale")


@dataclass(frozen=True)
class Options:
    """CLIP takes no options beyond the ones every extractor takes."""


@dataclass
class ClipOutput(ExtractorOutput):
    model: str = ""  # where the weights came from: a local directory or the hub id


class ClipExtractor(Extractor):
    """Projected CLIP image embedding of every frame → feature n × 512, times = frame timestamps."""

    name = "clip"
    inputs = ("frames",)
    output_type = ClipOutput
    options_type = Options

    def _load(self) -> None:
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        self.source = models.resolve("clip", self.models_dir)
        self.processor = models.load_pretrained("clip", CLIPImageProcessor, self.models_dir)
        with quiet_logger("transformers.modeling_utils"):
            model, info = models.load_pretrained(
                "clip", CLIPVisionModelWithProjection, self.models_dir, output_loading_info=True
            )
        # The report was silenced, so check it here: a missing vision weight means a broken checkpoint.
        missing = list(info.get("missing_keys") or [])
        if missing:
            raise models.unavailable(
                "clip",
                self.models_dir,
                f"the checkpoint lacks {len(missing)} vision weights (e.g. {sorted(missing)[0]})",
            )
        unexpected = [key for key in info.get("unexpected_keys") or [] if not key.startswith(_TEXT_KEYS)]
        if unexpected:
            log.warning("CLIP checkpoint has %d unexpected weights (e.g. %s)", len(unexpected), sorted(unexpected)[0])
        self.model = model.to(self.device, self.dtype).eval()
        crop = self.processor.crop_size
        self.crop_size = (int(crop["height"]), int(crop["width"]))

    def preprocess(self, images: np.ndarray):
        """n × H × W × 3 uint8 RGB frames → n × 3 × 224 × 224 float32 pixel values (on the CPU)."""
        from torchvision.transforms.functional import center_crop

        self.load()
        pixels = self.processor(
            images=list(images), do_center_crop=False, return_tensors="pt", input_data_format="channels_last"
        )["pixel_values"]
        return center_crop(pixels, list(self.crop_size))

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Projected image embeddings (n × 512 float32) of n RGB frames, in batches."""
        import torch

        self.load()
        rows = []
        with torch.inference_mode():
            for batch in batches(images, self.batch_size):
                pixels = self.preprocess(batch).to(self.device, self.dtype)
                rows.append(self.model(pixel_values=pixels).image_embeds.float().cpu().numpy())
        return np.concatenate(rows, axis=0)

    def _run(self, clip: Clip) -> ClipOutput:
        frames = clip.frames
        feature = self.embed(frames.images)
        return ClipOutput(feature=feature, times=np.asarray(frames.timestamps, dtype=np.float64), model=self.source)
