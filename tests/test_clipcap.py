"""CLIPCap, the reference's captioner: a tiny GPT-2 and CLIPCap checkpoint of the real layout,
loaded through the real code; the beam search's scoring rule; BLIP when the weights are missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vemoclap.extractors.clipcap import PREFIX_LENGTH, ClipCaptioner, beam_search, build_model, load_weights


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from vemoclap.testing import make_tiny_models
    from vemoclap.tiny.clipcap import build

    directory = tmp_path_factory.mktemp("clipcap-models")
    make_tiny_models(directory, classifier=False)
    build(directory)
    return directory


@pytest.fixture(scope="module")
def captioner(models_dir):
    return ClipCaptioner("cpu", models_dir=models_dir)


def _log_prob(model, prefix, tokens):
    """Teacher-forced summed log-probability of ``tokens`` after ``prefix``."""
    wte = model.gpt.transformer.wte
    with torch.inference_mode():
        inputs = torch.cat([prefix, wte(torch.tensor(tokens[:-1]))[None]], dim=1) if len(tokens) > 1 else prefix
        logits = model.gpt(inputs_embeds=inputs).logits[0, PREFIX_LENGTH - 1 :].float().log_softmax(-1)
        return float(sum(logits[i, t] for i, t in enumerate(tokens)))


@pytest.mark.slow
def test_prefix_is_ten_gpt2_embeddings_of_the_clip_embedding(captioner):
    width = captioner.model.gpt.transformer.wte.weight.shape[1]
    prefix = captioner.model.prefix(torch.zeros(2, 512))
    assert prefix.shape == (2, PREFIX_LENGTH, width)
    project = captioner.model.clip_project.model
    assert [type(m).__name__ for m in project] == ["Linear", "Tanh", "Linear"]
    assert project[0].out_features == width * PREFIX_LENGTH // 2 and project[2].out_features == width * PREFIX_LENGTH


def test_beams_are_scored_by_mean_log_probability_and_stop_at_the_first_full_stop(captioner):
    model = captioner.model
    prefix = model.prefix(torch.from_numpy(np.random.default_rng(1).normal(size=(1, 512))).float())
    beams = beam_search(model, prefix, captioner.stop_id, beams=5, max_tokens=12)
    assert len(beams) == 5 and [b.score for b in beams] == sorted((b.score for b in beams), reverse=True)
    for beam in beams:
        assert beam.score == pytest.approx(_log_prob(model, prefix, beam.tokens) / len(beam.tokens), abs=1e-4)
        assert captioner.stop_id not in beam.tokens[:-1]  # a beam ends at its first "."
        assert len(beam.tokens) <= 12
    greedy = beam_search(model, prefix, captioner.stop_id, beams=1, max_tokens=6)[0].tokens
    expected, generated = [], prefix
    with torch.inference_mode():
        for _ in range(6):
            token = int(model.gpt(inputs_embeds=generated).logits[0, -1].argmax())
            expected.append(token)
            if token == captioner.stop_id:
                break
            generated = torch.cat([generated, model.gpt.transformer.wte(torch.tensor([[token]]))], dim=1)
    assert greedy == expected


def test_caption_extractor_with_clipcap_reuses_a_clip_embedding(models_dir, tmp_path):
    from vemoclap.extractors import get
    from vemoclap.extractors.base import Clip
    from vemoclap.synth import make_video

    extractor = get("caption", device="cpu", models_dir=models_dir, captioner="clipcap")
    clip = Clip.from_file(make_video(tmp_path / "v.mp4", duration=1.0, fps=4, size=(64, 48), audio=None), 4)
    output = extractor(clip)
    assert output.captioner == "clipcap" and not output.captioner_note and isinstance(output.text, str)
    row = get("clip", device="cpu", models_dir=models_dir)(clip).feature[output.frame_index]
    assert extractor.caption_embedding(row) == extractor.clipcap.caption(row)


def test_missing_clipcap_weights_fall_back_to_blip_and_say_so(tiny_models, tmp_path):
    from vemoclap.extractors import get
    from vemoclap.extractors.base import Clip
    from vemoclap.synth import make_video

    models = tmp_path / "models"  # BLIP and CLIP, but no CLIPCap weights
    models.mkdir()
    for folder in ("Salesforce", "openai"):
        (models / folder).symlink_to(tiny_models / folder, target_is_directory=True)
    extractor = get("caption", device="cpu", models_dir=models, captioner="clipcap")
    clip = Clip.from_file(make_video(tmp_path / "v.mp4", duration=1.0, fps=4, size=(64, 48), audio=None), 4)
    output = extractor(clip)
    assert output.captioner == "blip" and "CLIPCap unavailable" in output.captioner_note and output.text


def test_a_checkpoint_without_the_prefix_mlp_is_refused(captioner, tmp_path):
    from vemoclap.models import ModelUnavailable

    state = {k: v for k, v in captioner.model.state_dict().items() if not k.startswith("clip_project")}
    torch.save(state, tmp_path / "bad.pt")
    model = build_model(captioner.model.gpt)
    with pytest.raises(ModelUnavailable, match="clip_project") as exc:
        load_weights(model, tmp_path / "bad.pt")
    assert "\n" not in str(exc.value)


def test_the_frame_with_the_most_boxes(models_dir, tmp_path):
    from vemoclap.extractors import get
    from vemoclap.extractors.base import Clip
    from vemoclap.synth import make_video

    extractor = get("caption", device="cpu", models_dir=models_dir, captioner="clipcap", frame="most-boxes")
    assert extractor.most_boxes_index([0, 2, 1, 2], [1, 0, 3, 1]) == 2
    assert extractor.most_boxes_index([1, 1], [0, 0]) == 0  # a tie: the first
    clip = Clip.from_file(make_video(tmp_path / "v.mp4", duration=1.0, fps=4, size=(64, 48), audio=None), 4)
    alone = extractor(clip)  # no boxes to count: the middle frame, and it says so
    assert alone.frame_index == 2 and "middle frame" in alone.frame_note
    row = get("clip", device="cpu", models_dir=models_dir)(clip).feature[3]
    chosen = extractor.caption_at(clip, 3, embedding=row)
    assert chosen.frame_index == 3 and chosen.text == extractor.clipcap.caption(row)


def test_after_the_other_extractors_the_caption_reuses_their_outputs(models_dir, tmp_path):
    """In a run, the caption comes after CLIP, faces and OCR: their boxes pick the frame and CLIPCap
    captions that frame's CLIP row, so the captioner's own CLIP is never loaded."""
    from vemoclap.extractors import get
    from vemoclap.extractors.base import Clip
    from vemoclap.extractors.faces import Face, FacesOutput, FrameFaces
    from vemoclap.extractors.ocr import OcrLine, OcrOutput
    from vemoclap.registry import run_order
    from vemoclap.synth import make_video

    assert run_order(["caption", "ocr_sentiment", "clip"]) == ["clip", "ocr_sentiment", "caption"]
    assert run_order(["beats", "caption"]) == ["beats", "caption"]
    clip = Clip.from_file(make_video(tmp_path / "v.mp4", duration=1.0, fps=4, size=(64, 48), audio=None), 4)
    clip_out = get("clip", device="cpu", models_dir=models_dir)(clip)
    face = Face(box=(0, 0, 8, 8), detection_score=0.9, expression="happy", confidence=0.9)
    faces = FacesOutput(
        frames=[FrameFaces(i, float(t), [face] * (i == 1)) for i, t in enumerate(clip.frames.timestamps)]
    )
    line = OcrLine(3, float(clip.frames.timestamps[3]), [[0, 0], [1, 0], [1, 1], [0, 1]], "hi", 0.9)
    ocr = OcrOutput(lines=[line, line])  # frame 3: two boxes, more than frame 1's one face
    extractor = get("caption", device="cpu", models_dir=models_dir, captioner="clipcap", frame="most-boxes")
    earlier = {"clip": clip_out, "face_emotion": faces, "ocr_sentiment": ocr}
    output = extractor(clip, earlier)
    assert output.frame_index == 3 and not output.frame_note
    assert output.text == extractor.clipcap.caption(clip_out.feature[3])
    assert not extractor.clip.loaded  # the frame was not embedded a second time
    no_boxes = extractor(clip, {"clip": clip_out, "face_emotion": FacesOutput(missing="no face found")})
    assert no_boxes.frame_index == 0 and not no_boxes.frame_note  # ran, found nothing: the first frame, as argmax
