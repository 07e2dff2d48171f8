"""Vision extractors (CLIP, faces, caption) on tiny models of the real classes, loaded through the real code.

The offline face detectors (scikit-image's LBP cascade; OpenCV's Haar cascade where OpenCV < 5 has
it) are used for real on real photos (scikit-image's astronaut).
"""

from __future__ import annotations

import json
import logging
import pathlib

import numpy as np
import pytest

from vemoclap import extractors, models
from vemoclap.extractors.base import Clip
from vemoclap.labels import FACE_EXPRESSIONS
from vemoclap.media import Frames

CLIP_MEAN = np.array((0.48145466, 0.4578275, 0.40821073))
CLIP_STD = np.array((0.26862954, 0.26130258, 0.27577711))
# Where the astronaut's face is in skimage.data.astronaut() (512 × 512): x0, y0, x1, y1, by inspection.
ASTRONAUT_FACE = (175, 60, 275, 170)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> pathlib.Path:
    from vemoclap.tiny import vision as tiny_vision

    root = tmp_path_factory.mktemp("tiny-vision")
    tiny_vision.build(root)
    return root


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def make_clip(images, fps: float = 2.0) -> Clip:
    images = np.stack(images).astype(np.uint8)
    return Clip(frames=Frames(images, np.arange(len(images)) / fps), audio=np.zeros(0, np.float32))


def gradient(width: int = 640, height: int = 360) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 128)], -1).astype(np.uint8)


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ---------------------------------------------------------------- CLIP


@pytest.fixture(scope="module")
def clip_extractor(tiny_dir):
    return extractors.get("clip", models_dir=tiny_dir, device="cpu").load()


def test_clip_feature_shape_and_times(clip_extractor, astronaut):
    import cv2

    frames = [cv2.resize(astronaut, (640, 360)), gradient(), np.zeros((360, 640, 3), np.uint8), 255 - gradient()]
    clip = make_clip(frames)
    out = clip_extractor(clip)
    assert out.ok and out.missing is None
    assert out.feature.shape == (4, 512) and out.feature.dtype == np.float32
    assert np.isfinite(out.feature).all()
    np.testing.assert_array_equal(out.times, clip.frames.timestamps)
    assert len({row.tobytes() for row in out.feature}) == 4  # every frame has its own embedding
    assert out.readable()["model"].endswith("openai/clip-vit-base-patch32")


def test_clip_preprocessing_matches_the_reference(clip_extractor, astronaut):
    """Resize short side 224 bicubic, center crop 224 (offset rounded, as CLIP does), CLIP mean/std."""
    import cv2
    from PIL import Image

    def reference(image: np.ndarray) -> np.ndarray:
        pil = Image.fromarray(image)
        width, height = pil.size
        scale = 224 / min(width, height)
        new = (224, int(height * scale)) if width <= height else (int(width * scale), 224)
        pil = pil.resize(new, Image.BICUBIC)
        left, top = int(round((new[0] - 224) / 2)), int(round((new[1] - 224) / 2))
        pixels = np.asarray(pil.crop((left, top, left + 224, top + 224)), np.float64) / 255
        return ((pixels - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)

    # 481 × 360 resizes to 299 × 224: an odd offset (37.5), where rounding and flooring differ.
    for frame in (
        cv2.resize(astronaut, (481, 360), interpolation=cv2.INTER_AREA),
        cv2.resize(astronaut, (640, 360), interpolation=cv2.INTER_AREA),
    ):
        ours = clip_extractor.preprocess(frame[None]).numpy()[0]
        assert ours.shape == (3, 224, 224)
        # Bicubic in torchvision vs PIL differ by rounding only: at most one grey level.
        levels = np.abs(ours - reference(frame)) * CLIP_STD[:, None, None] * 255
        assert levels.max() <= 1.01, levels.max()
        assert levels.mean() < 0.05


def test_clip_feature_is_the_projected_unnormalized_embedding(clip_extractor, tiny_dir, astronaut):
    import torch
    from transformers import CLIPModel

    full = CLIPModel.from_pretrained(tiny_dir / "openai/clip-vit-base-patch32").eval()
    frames = np.stack([astronaut, astronaut[::-1].copy()])
    with torch.inference_mode():
        expected = full.get_image_features(pixel_values=clip_extractor.preprocess(frames))
    expected = (expected if torch.is_tensor(expected) else expected.pooler_output).numpy()
    ours = clip_extractor(make_clip(frames)).feature
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0)  # not L2-normalized


def test_clip_batches_give_the_same_rows(tiny_dir, astronaut):
    frames = np.stack([astronaut, astronaut[:, ::-1], astronaut[::-1], 255 - astronaut]).copy()
    one = extractors.get("clip", models_dir=tiny_dir, device="cpu", batch_size=1)(make_clip(frames)).feature
    all_ = extractors.get("clip", models_dir=tiny_dir, device="cpu", batch_size=8)(make_clip(frames)).feature
    np.testing.assert_allclose(one, all_, rtol=1e-4, atol=1e-5)


def test_clip_load_is_quiet_about_the_unused_text_tower(tiny_dir, caplog):
    with caplog.at_level(logging.WARNING):
        extractors.get("clip", models_dir=tiny_dir, device="cpu").load()
    assert "text_model" not in caplog.text and "unexpected" not in caplog.text.lower()


def test_clip_checkpoint_without_vision_weights_is_unavailable(tmp_path):
    from safetensors.torch import load_file, save_file

    from vemoclap.tiny import vision as tiny_vision

    folder = tiny_vision.build_clip(tmp_path / "openai" / "clip-vit-base-patch32")
    weights = load_file(folder / "model.safetensors")
    del weights["visual_projection.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(models.ModelUnavailable, match="visual_projection"):
        extractors.get("clip", models_dir=tmp_path, device="cpu").load()


def test_clip_without_frames_is_missing(clip_extractor):
    clip = Clip(frames=Frames(np.zeros((0, 360, 640, 3), np.uint8), np.zeros(0)), audio=np.zeros(0, np.float32))
    out = clip_extractor(clip)
    assert not out.ok and out.missing == "no video frames"


# ---------------------------------------------------------------- faces: detectors


def test_lbp_detector_finds_the_astronauts_face_under_any_opencv(astronaut):
    from vemoclap.extractors.faces import LbpFaceDetector

    boxes = LbpFaceDetector().detect([astronaut])
    assert len(boxes) == 1 and len(boxes[0]) == 1
    assert iou(boxes[0][0].as_tuple(), ASTRONAUT_FACE) > 0.5
    assert LbpFaceDetector().detect([np.zeros((360, 640, 3), np.uint8), gradient()]) == [[], []]


def test_lbp_min_face_size_zero_means_no_minimum(astronaut):
    import cv2

    from vemoclap.extractors.faces import LbpFaceDetector

    small = cv2.resize(astronaut, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)  # the face is ~40 px
    found = LbpFaceDetector(min_face_size=0).detect([small])[0]
    assert found and max(min(b.width, b.height) for b in found) < 48
    assert LbpFaceDetector(min_face_size=60).detect([small]) == [[]]


@pytest.mark.skipif(
    not __import__("vemoclap.extractors.faces", fromlist=["x"]).haar_available(),
    reason="this OpenCV has no Haar cascades (OpenCV 5)",
)
def test_haar_detector_finds_the_astronauts_face(astronaut):
    from vemoclap.extractors.faces import OpenCVFaceDetector

    boxes = OpenCVFaceDetector().detect([astronaut])
    assert len(boxes) == 1 and len(boxes[0]) == 1
    box = boxes[0][0]
    assert iou(box.as_tuple(), ASTRONAUT_FACE) > 0.5


def test_haar_is_refused_with_a_way_out_where_opencv_lacks_it():
    from vemoclap.extractors.faces import OpenCVFaceDetector, haar_available

    if haar_available():
        assert OpenCVFaceDetector().detect([np.zeros((360, 640, 3), np.uint8), gradient()]) == [[], []]
        return
    with pytest.raises(models.ModelUnavailable, match="lbp"):
        OpenCVFaceDetector()


def test_yolo_checkpoint_loads_through_the_yolo_path(tiny_dir, astronaut):
    extractor = extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", detector="yolo", conf=0.001).load()
    assert extractor.detector.name == "yolo"
    images = [astronaut, gradient(320, 240)]
    found = extractor.detector.detect(images)  # random weights: only the form of the answer can be checked
    assert isinstance(found, list) and len(found) == 2
    for image, boxes in zip(images, found):
        height, width = image.shape[:2]
        assert boxes, "a near-zero threshold keeps some boxes even from random weights"
        for box in boxes:
            assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height
            assert 0.0 <= box.score <= 1.0


def test_yolo_leaves_torch_threads_as_they_were(tiny_dir, astronaut):
    import torch
    from ultralytics.utils import NUM_THREADS

    extractor = extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", detector="yolo").load()
    before = torch.get_num_threads()
    wanted = NUM_THREADS + 1  # not what ultralytics sets (cores − 1): its change would show
    torch.set_num_threads(wanted)
    try:
        extractor.detect([astronaut])
        assert torch.get_num_threads() == wanted  # the face ViT and every model after YOLO keep their threads
    finally:
        torch.set_num_threads(before)


def test_auto_prefers_yolo_and_falls_back_to_lbp_and_says_so(tiny_dir, tmp_path, caplog, astronaut):
    assert extractors.get("face_emotion", models_dir=tiny_dir, device="cpu").load().detector.name == "yolo"
    # A models dir with the expression model but no YOLO checkpoint.
    only_vit = tmp_path / "models"
    (only_vit / "trpakov").mkdir(parents=True)
    (only_vit / "trpakov" / "vit-face-expression").symlink_to(tiny_dir / "trpakov" / "vit-face-expression")
    with caplog.at_level(logging.WARNING, logger="vemoclap.extractors.faces"):
        extractor = extractors.get("face_emotion", models_dir=only_vit, device="cpu").load()
    assert extractor.detector.name == "lbp"
    assert "yolo" in caplog.text.lower() and "lbp" in caplog.text.lower()
    out = extractor(make_clip([astronaut]))
    assert out.detector == "lbp" and "YOLO face model unavailable" in out.detector_note
    assert any("fell back" in line and "LBP" in line for line in out.describe())
    # Asking for YOLO explicitly does not fall back.
    with pytest.raises(models.ModelUnavailable, match="yolo_face"):
        extractors.get("face_emotion", models_dir=only_vit, device="cpu", detector="yolo").load()


def test_yolo_refuses_a_checkpoint_that_is_not_a_plain_detector(tiny_dir, tmp_path):
    import torch

    marker = tmp_path / "unpickled"

    class Payload:  # unpickling this would create the marker file
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, evil)
    with pytest.raises(models.ModelUnavailable, match="refusing"):
        extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", yolo_model=evil).load()
    assert not marker.exists()


def test_missing_yolo_file_names_the_file(tiny_dir, tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(models.ModelUnavailable, match="nope.pt"):
        extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", yolo_model=missing).load()


# ---------------------------------------------------------------- faces: expression extractor


@pytest.fixture(scope="module")
def faces_extractor(tiny_dir):
    return extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", detector="opencv").load()


def test_faces_feature_and_readable_output(faces_extractor, astronaut):
    clip = make_clip([astronaut, np.zeros_like(astronaut), astronaut[:, ::-1]])
    out = faces_extractor(clip)
    assert out.ok, out.missing
    assert out.feature.shape == (2, 768) and out.feature.dtype == np.float32  # the black frame gives no row
    np.testing.assert_array_equal(out.times, clip.frames.timestamps[[0, 2]])
    assert out.detector in ("haar", "lbp")  # "opencv": Haar where OpenCV has it, else LBP
    assert out.detector == "haar" or "no Haar cascade" in out.detector_note
    counts = [len(frame.faces) for frame in out.frames]
    assert counts[0] == 1 and counts[1] == 0 and counts[2] >= 1  # LBP may see a second face in the mirror image
    assert [frame.frame_index for frame in out.frames] == [0, 1, 2]
    face = out.frames[0].faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.5
    assert set(face.probabilities) == set(FACE_EXPRESSIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert face.expression == max(face.probabilities, key=face.probabilities.get)
    assert face.confidence == pytest.approx(face.probabilities[face.expression])
    assert sum(out.expression_counts().values()) == out.n_faces == sum(counts)
    readable = json.loads(json.dumps(out.readable()))
    assert readable["frames"][0]["faces"][0]["box"] == list(face.box)
    assert f"{sum(counts)} faces" in out.summary()


def test_one_astronaut_frame_gives_one_row(faces_extractor, astronaut):
    out = faces_extractor(make_clip([astronaut]))
    assert out.feature.shape == (1, 768)


@pytest.mark.slow
def test_frame_row_is_the_mean_of_the_two_largest_faces(faces_extractor, astronaut):
    import cv2

    # Three copies of the photo at falling scales: three faces of different sizes in one frame.
    parts = [cv2.resize(astronaut, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) for s in (1.0, 0.6, 0.4)]
    canvas = np.zeros((512, sum(p.shape[1] for p in parts), 3), np.uint8)
    x = 0
    for part in parts:
        canvas[: part.shape[0], x : x + part.shape[1]] = part
        x += part.shape[1]
    faces = faces_extractor.analyze_image(canvas)
    assert len(faces) == 3
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)  # largest first
    crops = []
    for face in faces:
        from vemoclap.extractors.faces import Box

        box = Box(*face.box).expanded(faces_extractor.margin, canvas.shape[1], canvas.shape[0])
        crops.append(canvas[box.y0 : box.y1, box.x0 : box.x1])
    _, features = faces_extractor.classify(crops)
    row = faces_extractor(make_clip([canvas])).feature
    np.testing.assert_allclose(row[0], features[:2].mean(axis=0), rtol=1e-4, atol=1e-4)
    assert not np.allclose(row[0], features.mean(axis=0), atol=1e-4)  # the smallest face is left out


def test_face_feature_is_cls_of_last_encoder_layer_before_layer_norm(faces_extractor, astronaut):
    import torch

    model = faces_extractor.model
    vit = model.vit
    layers = vit.layers if hasattr(vit, "layers") else vit.encoder.layer  # transformers 5 / 4
    captured = {}

    def keep(_module, _inputs, output):
        captured["last"] = output[0] if isinstance(output, tuple) else output

    crops = [astronaut[60:170, 175:275], astronaut[200:400, 100:300]]
    probabilities, features = faces_extractor.classify(crops)
    pixels = faces_extractor.processor(images=crops, return_tensors="pt")["pixel_values"]
    handle = layers[-1].register_forward_hook(keep)
    try:
        with torch.inference_mode():
            logits = model(pixel_values=pixels).logits
            last = captured["last"]
            normalized = vit.layernorm(last)
    finally:
        handle.remove()
    np.testing.assert_allclose(features, last[:, 0].numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(features, normalized[:, 0].numpy(), atol=1e-3)  # not after the final layer norm
    np.testing.assert_allclose(probabilities, logits.softmax(-1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "frames", [[np.zeros((360, 640, 3), np.uint8)] * 2, [gradient(), gradient()[::-1]]], ids=["black", "gradient"]
)
def test_no_face_is_missing_with_a_reason(faces_extractor, frames):
    out = faces_extractor(make_clip(frames))
    assert not out.ok and out.feature is None
    assert out.missing.startswith("no face found in 2 frames (")


def test_analyze_image(faces_extractor, astronaut):
    faces = faces_extractor.analyze_image(astronaut)
    assert len(faces) == 1 and faces[0].expression in FACE_EXPRESSIONS
    assert faces_extractor.analyze_image(np.zeros((240, 320, 3), np.uint8)) == []
    assert faces_extractor.analyze_images([astronaut, gradient()])[1] == []
    with pytest.raises(ValueError, match="uint8"):
        faces_extractor.analyze_image(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        faces_extractor.analyze_image(np.zeros((4, 4, 4, 3), np.uint8))


def test_bad_face_options():
    with pytest.raises(ValueError, match="detector"):
        extractors.get("face_emotion", detector="mtcnn", device="cpu")
    with pytest.raises(ValueError, match="faces_per_frame"):
        extractors.get("face_emotion", faces_per_frame=0, device="cpu")


# ---------------------------------------------------------------- caption


@pytest.fixture(scope="module")
def caption_extractor(tiny_dir):
    return extractors.get("caption", models_dir=tiny_dir, device="cpu").load()


def test_caption_of_the_middle_frame(caption_extractor, astronaut):
    frames = [gradient(512, 512), astronaut, np.zeros_like(astronaut), astronaut[:, ::-1]]
    clip = make_clip(frames)
    out = caption_extractor(clip)
    assert out.ok is False and out.feature is None and out.missing is None  # readable only
    assert isinstance(out.text, str) and out.text.strip()
    assert out.frame_index == 2 and out.timestamp == clip.frames.timestamps[2]
    assert out.text == caption_extractor.caption_image(frames[2])
    assert not out.text.startswith("a picture of")  # the prompt is removed


def test_caption_of_a_chosen_frame(tiny_dir, astronaut):
    frames = [astronaut, gradient(512, 512), np.zeros_like(astronaut)]
    first = extractors.get("caption", models_dir=tiny_dir, device="cpu", frame=0)(make_clip(frames))
    assert first.frame_index == 0 and first.timestamp == 0.0 and first.text
    last = extractors.get("caption", models_dir=tiny_dir, device="cpu", frame=-1)(make_clip(frames))
    assert last.frame_index == 2
    far = extractors.get("caption", models_dir=tiny_dir, device="cpu", frame=9)(make_clip(frames))
    assert far.missing == "frame 9 was asked for but the clip has 3 frames"
    with pytest.raises(ValueError, match="frame"):
        extractors.get("caption", frame="first", device="cpu")


# ---------------------------------------------------------------- unavailable models


@pytest.mark.parametrize(
    "name, key, hub_id",
    [
        ("clip", "clip", "openai/clip-vit-base-patch32"),
        ("face_emotion", "face_expression", "trpakov/vit-face-expression"),
        ("caption", "caption", "Salesforce/blip-image-captioning-base"),
    ],
)
def test_unavailable_model_names_the_model_and_the_fix(tmp_path, name, key, hub_id):
    extractor = extractors.get(name, models_dir=tmp_path, device="cpu")
    with pytest.raises(models.ModelUnavailable) as error:
        extractor.load()
    message = str(error.value)
    assert f"'{key}'" in message and hub_id in message and "download-models" in message
    assert not extractor.loaded


def test_tiny_models_are_deterministic(tmp_path):
    from vemoclap.tiny import vision as tiny_vision

    a = tiny_vision.build_clip(tmp_path / "a")
    b = tiny_vision.build_clip(tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_yolo_keeps_every_box_when_min_face_size_is_zero(tiny_dir, astronaut):
    image = np.ascontiguousarray(astronaut[::4, ::4])  # 128 px: random boxes of every size
    every = (
        extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", detector="yolo", conf=0.001, min_face_size=0)
        .load()
        .detector
    )
    raw = every.model.predict([image[..., ::-1].copy()], conf=0.001, iou=0.5, imgsz=640, device="cpu", verbose=False)[0]
    boxes = every.detect([image])[0]
    assert len(boxes) == len(raw.boxes)  # nothing dropped for its size
    at_20 = (
        extractors.get("face_emotion", models_dir=tiny_dir, device="cpu", detector="yolo", conf=0.001, min_face_size=20)
        .load()
        .detector.detect([image])[0]
    )
    assert [b for b in boxes if min(b.width, b.height) >= 20] == at_20
    assert every.iou == 0.5 and every.confidence == 0.001


def test_face_options_conf_iou_and_sizes_are_checked():
    with pytest.raises(ValueError, match="min_face_size"):
        extractors.get("face_emotion", device="cpu", min_face_size=-1)
    with pytest.raises(ValueError, match="conf"):
        extractors.get("face_emotion", device="cpu", conf=1.5)
    assert extractors.get("face_emotion", device="cpu", detection_threshold=0.3).conf == 0.3  # the old name
