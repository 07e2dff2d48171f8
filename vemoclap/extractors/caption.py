"""A caption of one frame (readable only; no fusion feature).

Model: BLIP base captioning (``Salesforce/blip-image-captioning-base``,
``BlipForConditionalGeneration`` + ``BlipProcessor``). Why this one: it is one transformers class
with its processor (no extra package, no remote code), about 250 M parameters (~1 GB of weights),
so it fits beside the other extractors on a free Colab T4 (fp16 there) and still runs on a CPU;
its COCO captioning score (about 130 CIDEr in the BLIP paper) is close to the large BLIP's. BLIP
large (2× the size) gains little; BLIP-2 and LLaVA-class captioners write better but are over ten
times larger, which a T4 shared with Whisper, NLLB and the rest cannot spare. The reference itself captioned with a
CLIP-prefix GPT-2 model whose weights are a Google-Drive file, not a transformers model.

Generation: BLIP was trained with the text prompt "a picture of", so captions are generated after
that prompt (the prompt is then removed); beam search with 3 beams as in BLIP's own captioning
settings, at most 30 new tokens. Unconditional generation (``prompt=""``) is known to start captions
with junk words such as "arafed" on this checkpoint.

``captioner="clipcap"``: the reference's CLIPCap (:mod:`.clipcap`, a CLIP prefix into GPT-2) on the
CLIP embedding of the frame — :meth:`CaptionExtractor.caption_embedding` takes an embedding the
CLIP extractor already made. When its weights cannot be had, BLIP captions instead and the output
says so (``captioner_note``): the caption is shown, never fed to the classifier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .. import models
from ..errors import OptionError, UserError, one_line
from .base import Clip, Extractor, ExtractorOutput, Missing, as_rgb

log = logging.getLogger(__name__)
CAPTIONERS = ("blip", "clipcap")


@dataclass
class CaptionOutput(ExtractorOutput):
    text: str = ""
    frame_index: int | None = None
    timestamp: float | None = None
    captioner: str = ""  # the one that ran: "blip" or "clipcap"
    captioner_note: str = ""  # why it is not the one asked for (a fallback), else empty
    frame_note: str = ""  # why the frame is not the one asked for, else empty

    def describe(self) -> list[str]:
        at = f" (frame at {self.timestamp:.1f} s)" if self.timestamp is not None else ""
        return [f"caption: {self.text!r}{at}"] + ([f"  ({self.captioner_note})"] if self.captioner_note else [])


BOX_FRAMES = ("most-boxes", "faces-and-text")  # frame rules that read the face and OCR boxes


@dataclass(frozen=True)
class Options:
    captioner: str = "blip"  # one of CAPTIONERS
    # "middle", "most-boxes" (most face + text boxes), "faces-and-text" (the reference's rule: among the
    # frames having both faces and text the most boxes, else the most boxes) or a frame index
    frame: str | int = "middle"
    # decoding
    prompt: str = "a picture of"  # BLIP's text prefix
    max_new_tokens: int = 30
    num_beams: int = 3


class CaptionExtractor(Extractor):
    """BLIP caption of one frame of the clip (the middle one unless told otherwise)."""

    name = "caption"
    inputs = ("frames",)
    output_type = CaptionOutput

    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        captioner, frame = self.options.captioner, self.options.frame
        prompt, max_new_tokens, num_beams = self.options.prompt, self.options.max_new_tokens, self.options.num_beams
        if captioner not in CAPTIONERS:
            raise OptionError(f"captioner '{captioner}' is unknown; choose from {', '.join(CAPTIONERS)}")
        self.captioner, self.captioner_used, self.captioner_note = captioner, captioner, ""
        self.clipcap = self.clip = None
        if not (
            frame in BOX_FRAMES + ("middle",) or (isinstance(frame, (int, np.integer)) and not isinstance(frame, bool))
        ):
            raise OptionError(f"frame must be 'middle', 'most-boxes', 'faces-and-text' or a frame index, got {frame!r}")
        self.frame = frame
        self.prompt = prompt.strip()
        self.max_new_tokens = int(max_new_tokens)
        self.num_beams = int(num_beams)

    def _load(self) -> None:
        if self.captioner == "clipcap":
            import torch

            from .clip import ClipExtractor
            from .clipcap import ClipCaptioner

            try:
                self.clipcap = ClipCaptioner(self.device, self.dtype, self.models_dir)
                # Its own CLIP loads only for an image without a CLIP row (the pipeline passes the row).
                self.clip = ClipExtractor(
                    device=str(self.device), models_dir=self.models_dir, half=self.dtype == torch.float16
                )
                return
            except UserError as exc:  # the weights cannot be had (missing, offline, a failed download)
                self.captioner_used = "blip"
                self.captioner_note = f"CLIPCap unavailable ({one_line(exc, limit=160)}); BLIP captioned instead"
                log.warning("caption: %s", self.captioner_note)
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.processor = models.load_pretrained("caption", BlipProcessor, self.models_dir)
        model = models.load_pretrained("caption", BlipForConditionalGeneration, self.models_dir)
        self.model = model.to(self.device, self.dtype).eval()

    def caption_embedding(self, embedding) -> str:
        """CLIPCap's caption of one CLIP image embedding (the ``clip`` feature's row of a frame)."""
        self.load()
        if self.clipcap is None:
            raise Missing(self.captioner_note or "CLIPCap is not the captioner here (captioner='clipcap')")
        return self.clipcap.caption(embedding)

    def caption_image(self, image) -> str:
        """One caption (lower-case English) for an H × W × 3 uint8 RGB image."""
        import torch

        self.load()
        if self.clipcap is not None:
            return self.clipcap.caption(self.clip.embed(as_rgb(image)[None])[0])
        rgb = as_rgb(image)
        if self.prompt:
            inputs = self.processor(images=rgb, text=self.prompt, return_tensors="pt")
        else:
            inputs = self.processor(images=rgb, return_tensors="pt")
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)
        text = self.processor.decode(ids[0], skip_special_tokens=True).strip()
        prompt = self.prompt.lower()
        if prompt and text.lower().startswith(prompt):  # the output repeats the prompt
            text = text[len(prompt) :].strip()
        return text

    def frame_index(self, n_frames: int) -> int:
        """Which of ``n_frames`` frames gets captioned; Missing when the asked index is not there."""
        if n_frames == 0:
            raise Missing("the clip has no frames")
        if self.frame in BOX_FRAMES + ("middle",):  # the box rules need the boxes: see most_boxes_index
            return n_frames // 2
        index = int(self.frame)
        if not -n_frames <= index < n_frames:
            raise Missing(f"frame {index} was asked for but the clip has {n_frames} frames")
        return index % n_frames

    @staticmethod
    def most_boxes_index(face_boxes, ocr_boxes) -> int:
        """The frame with the most face + OCR boxes (the first of a tie): the frame the reference
        captioned. Both are per-frame counts over the same frames."""
        counts = np.asarray(face_boxes, dtype=np.int64) + np.asarray(ocr_boxes, dtype=np.int64)
        if counts.size == 0:
            raise Missing("the clip has no frames")
        return int(np.argmax(counts))

    @staticmethod
    def faces_and_text_index(face_boxes, ocr_boxes) -> int:
        """The reference's caption frame (its ``find_common_nonzero_argmax``): among the frames with
        both a face and text, the one with the most face + OCR boxes; when no frame has both, the
        one with the most boxes. The first of a tie either way."""
        faces = np.asarray(face_boxes, dtype=np.int64)
        texts = np.asarray(ocr_boxes, dtype=np.int64)
        both = np.flatnonzero((faces > 0) & (texts > 0))
        if both.size == 0:
            return CaptionExtractor.most_boxes_index(faces, texts)
        return int(both[np.argmax(faces[both] + texts[both])])

    def caption_at(self, clip: Clip, index: int, embedding=None) -> CaptionOutput:
        """The caption of frame ``index`` (e.g. :meth:`most_boxes_index` of the face and OCR
        outputs); ``embedding``: its CLIP row when the CLIP extractor already made it (CLIPCap)."""
        frames = clip.frames
        if embedding is not None and self.load().clipcap is not None:
            text = self.clipcap.caption(embedding)
        else:
            text = self.caption_image(frames.images[index])
        if not text:
            raise Missing("the caption model produced no text for this frame")
        return CaptionOutput(
            text=text,
            frame_index=index,
            timestamp=float(frames.timestamps[index]),
            captioner=self.captioner_used,
            captioner_note=self.captioner_note,
        )

    def _run(self, clip: Clip) -> CaptionOutput:
        return self._run_with(clip, {})

    def _run_with(self, clip: Clip, earlier: Mapping[str, ExtractorOutput]) -> CaptionOutput:
        """The caption, reusing what ran before: the face and OCR boxes pick the frame
        (``most-boxes``), and CLIPCap captions that frame's CLIP row instead of embedding it again."""
        n = len(clip.frames)
        index, note = self.frame_index(n), ""
        if self.frame in BOX_FRAMES:
            counts = _boxes_per_frame(earlier, n)
            if counts is None:
                note = "the frame with the most face + OCR boxes needs their outputs; the middle frame was captioned"
            elif self.frame == "most-boxes":
                index = self.most_boxes_index(*counts)
            else:
                index = self.faces_and_text_index(*counts)
        rows = getattr(earlier.get("clip"), "feature", None)
        embedding = rows[index] if rows is not None and len(rows) == n else None
        output = self.caption_at(clip, index, embedding)
        output.frame_note = note
        return output


def _boxes_per_frame(earlier: Mapping[str, ExtractorOutput], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(face boxes, OCR boxes) per frame from the face and OCR outputs (one that ran and found
    nothing counts zeros, as in the reference); None when neither ran."""
    faces, ocr = earlier.get("face_emotion"), earlier.get("ocr_sentiment")
    if faces is None and ocr is None:
        return None
    face_counts, ocr_counts = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for frame in getattr(faces, "frames", []):
        if 0 <= frame.frame_index < n:
            face_counts[frame.frame_index] += len(frame.faces)
    for line in getattr(ocr, "lines", []):
        if 0 <= line.frame_index < n:
            ocr_counts[line.frame_index] += 1
    return face_counts, ocr_counts
