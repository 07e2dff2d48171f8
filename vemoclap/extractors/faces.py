"""Faces in each frame and their facial expressions: the reference's "face_emotion" feature (k × 768).

Detection, one small class per detector with one method ``detect(images) -> boxes per image``:

* ``YoloFaceDetector``: an ultralytics YOLOv8 face model (``arnabdhar/YOLOv8-Face-Detection``,
  models key "yolo_face"); the reference used a YOLOv5 face model with confidence 0.6 and NMS IoU
  0.5, which are the defaults here. Its checkpoint is first opened with ultralytics' restricted
  loader (``weights_only=True`` and an allow-list of model classes) so a file that is not a plain
  detector checkpoint is refused before anything is unpickled.
* ``LbpFaceDetector`` ("lbp"): scikit-image's LBP frontal-face cascade, whose model file ships in
  the scikit-image wheel (``skimage.data.lbp_frontal_face_cascade_filename()``): fully offline and
  independent of the OpenCV version (OpenCV 5, Colab's, has no ``CascadeClassifier`` and no Haar
  files). Scale step 1.2 and at least 6 neighbouring windows per face: on scikit-image's LFW
  subset that finds 86 % of the faces with no false alarm, and only the face on the astronaut
  photo (4 neighbours: 92 % with 2 % false alarms, and the helmet's visor as a second "face";
  ``benchmarks/README.md``). Its boxes
  carry score 1.0. It is the offline fallback of ``detector="auto"``.
* ``OpenCVFaceDetector`` ("haar"): OpenCV's bundled Haar cascade ``haarcascade_frontalface_alt2``,
  only where OpenCV < 5 still ships the files; the profile cascade is left out (one facing
  direction per pass, 2× the cost, and the expression model saw mostly frontal faces).
  ``detector="opencv"`` (the old name of the offline choice) runs Haar where OpenCV has it and the
  LBP cascade otherwise; the output's ``detector`` says which ran.

``detector="auto"`` uses YOLO when its checkpoint can be had (models dir, or the hub when downloads
are allowed) and the LBP cascade otherwise; the output names the detector that ran and why
(``detector_note``), and its report line says so.

``min_face_size`` (pixels, the shorter box side) drops smaller faces; 0 keeps every face (the
reference had no minimum; cascades still cannot see faces below their 24-px window). ``conf``
(YOLO confidence, 0.6) and ``iou`` (YOLO NMS IoU, 0.5) are the reference's values by default.

Classification: each face crop → ViT ``trpakov/vit-face-expression`` (7 expressions). A face's
feature is the CLS token of the last encoder layer's output *before* ViT's final layer norm, which
is ``hidden_states[-1]`` (transformers applies ``vit.layernorm`` after collecting hidden states;
the classifier head sees the normalized one). Per frame the feature is the mean over the two
largest faces (by box area); frames without a face give no row. The reference cropped the exact
YOLO box, so the YOLO crop margin is 0; Haar boxes stop at the eyebrows, so their crops get a 10 %
margin on every side to frame the whole face as the expression model's training faces are.
"""

from __future__ import annotations

import collections
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .. import models
from .._util import ultralytics_offline
from ..errors import OptionError, one_line
from ..labels import FACE_EXPRESSIONS
from .base import Clip, Extractor, ExtractorOutput, Missing, as_rgb, batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Box:
    """A detected face in pixel coordinates (x1, y1 exclusive) with the detector's score."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float = 1.0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    def expanded(self, margin: float, width: int, height: int) -> "Box":
        """The box grown by ``margin`` × its size on every side, clamped to a width × height image."""
        dx, dy = int(round(self.width * margin)), int(round(self.height * margin))
        return Box(
            max(0, self.x0 - dx), max(0, self.y0 - dy), min(width, self.x1 + dx), min(height, self.y1 + dy), self.score
        )


def _clamped(x0: float, y0: float, x1: float, y1: float, score: float, width: int, height: int) -> Box | None:
    box = Box(
        max(0, int(round(x0))),
        max(0, int(round(y0))),
        min(width, int(round(x1))),
        min(height, int(round(y1))),
        float(score),
    )
    return box if box.width > 0 and box.height > 0 else None


class FaceDetector(Protocol):
    name: str
    default_margin: float  # crop margin that frames this detector's boxes like the expression model's faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        """Faces in each H × W × 3 uint8 RGB image."""


class LbpFaceDetector:
    """scikit-image's LBP frontal-face cascade (offline, CPU; the model ships in scikit-image)."""

    name = "lbp"
    description = "offline, scikit-image"
    default_margin = 0.1  # the cascade's boxes, like Haar's, stop at the eyebrows
    window = 24  # the cascade's training window: no smaller face can be found

    def __init__(self, *, min_face_size: int = 0, scale_factor: float = 1.2, min_neighbors: int = 6):
        try:
            from skimage import data
            from skimage.feature import Cascade
        except ImportError as exc:
            raise models.ModelUnavailable(
                "the offline face detector needs scikit-image: pip install scikit-image"
            ) from exc
        self.cascade = Cascade(data.lbp_frontal_face_cascade_filename())
        self.min_face_size = int(min_face_size)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        found = []
        for image in images:
            height, width = image.shape[:2]
            grey = np.asarray(image, dtype=np.float32).mean(axis=2) / 255.0
            side = max(self.window, self.min_face_size)
            if min(height, width) < side:
                found.append([])
                continue
            rects = self.cascade.detect_multi_scale(
                img=grey,
                scale_factor=self.scale_factor,
                step_ratio=1,
                min_size=(side, side),
                max_size=(min(height, width), min(height, width)),
                min_neighbor_number=self.min_neighbors,
            )
            boxes = [
                _clamped(r["c"], r["r"], r["c"] + r["width"], r["r"] + r["height"], 1.0, width, height) for r in rects
            ]
            found.append([box for box in boxes if box is not None])
        return found


def haar_available() -> bool:
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    return (
        hasattr(cv2, "CascadeClassifier")
        and bool(folder)
        and (Path(folder) / OpenCVFaceDetector.cascade_file).is_file()
    )


class OpenCVFaceDetector:
    """OpenCV's bundled Haar frontal-face cascade (offline, CPU; OpenCV < 5 only)."""

    name = "haar"
    description = "OpenCV 4 only"
    default_margin = 0.1
    cascade_file = "haarcascade_frontalface_alt2.xml"

    def __init__(self, *, min_face_size: int = 20, scale_factor: float = 1.1, min_neighbors: int = 5):
        import cv2

        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        path = Path(folder) / self.cascade_file if folder else None
        if not hasattr(cv2, "CascadeClassifier") or path is None or not path.is_file():
            raise models.ModelUnavailable(
                f"OpenCV {cv2.__version__} has no Haar face cascade (OpenCV 5 dropped them); "
                "use detector 'lbp' (scikit-image's cascade) or the YOLO face model (vemoclap download-models)"
            )
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise models.ModelUnavailable(f"OpenCV could not read its face cascade {path}; reinstall opencv-python<5")
        self.min_face_size = max(20, int(min_face_size))  # 20 px: the cascade's own window
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        import cv2

        found = []
        for image in images:
            height, width = image.shape[:2]
            # Equalizing the histogram makes the cascade less sensitive to exposure.
            gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
            rects = self.cascade.detectMultiScale(
                gray,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(self.min_face_size, self.min_face_size),
            )
            boxes = [_clamped(x, y, x + w, y + h, 1.0, width, height) for x, y, w, h in np.reshape(rects, (-1, 4))]
            found.append([box for box in boxes if box is not None])
        return found


def _check_restricted_load(path: Path) -> None:
    """Open an ultralytics checkpoint with weights_only=True and an allow-list; refuse anything else."""
    ultralytics_offline()
    from ultralytics.nn import tasks

    safe_load = getattr(tasks, "torch_safe_load", None)
    supported = getattr(getattr(tasks, "_SafeLoad", None), "SUPPORTED", False)
    if safe_load is None or "safe_only" not in inspect.signature(safe_load).parameters or not supported:
        import ultralytics

        log.warning(
            "ultralytics %s (or this torch) cannot load checkpoints restrictedly; loading %s as is — "
            "use only trusted files",
            ultralytics.__version__,
            path,
        )
        return
    try:
        safe_load(str(path), safe_only=True)
    except Exception as exc:  # TypeError (foreign globals, damaged file), UnpicklingError, RuntimeError
        raise models.ModelUnavailable(
            f"refusing to load YOLO checkpoint '{path}': it is not a plain Ultralytics detector checkpoint "
            f"({one_line(exc)}); "
            "use the file from `vemoclap download-models --only yolo_face`"
        ) from exc


class YoloFaceDetector:
    """An ultralytics YOLO face detector loaded from a checkpoint file."""

    name = "yolo"
    description = "YOLOv8-face"
    default_margin = 0.0

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device="cpu",
        confidence: float = 0.6,
        iou: float = 0.5,
        image_size: int = 640,
        half: bool = False,
        min_face_size: int = 0,
    ):
        ultralytics_offline()
        from ultralytics import YOLO

        path = Path(checkpoint)
        if not path.is_file():  # YOLO() would try to download a name it does not find
            raise models.ModelUnavailable(
                f"YOLO face checkpoint '{path}' does not exist; pass an existing file or leave yolo_model unset "
                "to use the models dir (vemoclap download-models --only yolo_face)"
            )
        _check_restricted_load(path)
        self.model = YOLO(str(path), task="detect")
        self.checkpoint = path
        self.device = str(device)
        self.confidence, self.iou, self.image_size = confidence, iou, image_size
        self.min_face_size = min_face_size
        # fp16 on a GPU: ultralytics 8.4 renamed the `half` flag to `quantize`.
        from ultralytics.cfg import DEFAULT_CFG_DICT

        self.precision = ({"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}) if half else {}

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        if len(images) == 0:
            return []
        import torch

        # ultralytics reads numpy images in OpenCV's BGR order.
        bgr = [np.ascontiguousarray(image[..., ::-1]) for image in images]
        threads = torch.get_num_threads()
        try:
            results = self.model.predict(
                bgr,
                conf=self.confidence,
                iou=self.iou,
                imgsz=self.image_size,
                device=self.device,
                verbose=False,
                **self.precision,
            )
        finally:  # on a CPU ultralytics sets torch to cores − 1 threads (1 of 2), for every model after it
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        found = []
        for image, result in zip(images, results):
            height, width = image.shape[:2]
            xyxy = result.boxes.xyxy.float().cpu().numpy().reshape(-1, 4)
            scores = result.boxes.conf.float().cpu().numpy().reshape(-1)
            boxes = [_clamped(*coords, score, width, height) for coords, score in zip(xyxy, scores)]
            found.append([box for box in boxes if box is not None and min(box.width, box.height) >= self.min_face_size])
        return found


# The face detectors by name: the extractor's `detector` option, the CLI's --face-detector choices
# and its help all come from here.
DETECTORS: dict[str, type] = {cls.name: cls for cls in (YoloFaceDetector, LbpFaceDetector, OpenCVFaceDetector)}
# Choices that pick a detector when the models load: the first that can run, else the second.
FALLBACKS: dict[str, tuple[str, str]] = {"auto": ("yolo", "lbp"), "opencv": ("haar", "lbp")}


def detector_choices() -> tuple[str, ...]:
    return ("auto", *DETECTORS, *(name for name in FALLBACKS if name != "auto"))


def detector_help() -> str:
    named = [f"{name} ({cls.description})" for name, cls in DETECTORS.items()]
    fallbacks = [f"{name} ({first}, else {second})" for name, (first, second) in FALLBACKS.items()]
    return "face detector: " + ", ".join(named + fallbacks[1:] + fallbacks[:1])


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)
    detection_score: float
    expression: str  # the most probable of the model's labels
    confidence: float  # its probability
    probabilities: dict[str, float] = field(default_factory=dict)
    person: int | None = None  # the person it is linked to across frames (vemoclap.tracking), from 1
    # The face's CLS feature (the appearance the tracker links by); in memory only, never exported.
    feature: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class FrameFaces:
    frame_index: int
    timestamp: float
    faces: list[Face] = field(default_factory=list)  # largest first


@dataclass
class FacesOutput(ExtractorOutput):
    detector: str = ""  # the detector that ran: "yolo", "lbp" or "haar"
    detector_note: str = ""  # why it is not the one asked for (a fallback), else empty
    min_face_size: int = 0  # pixels; 0: no minimum
    frames: list[FrameFaces] = field(default_factory=list)  # every frame, with or without faces
    # person → appearance (vemoclap.tracking.link_frames): the annotated video numbers people as here;
    # in memory only, never exported
    looks: dict[int, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def n_faces(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def expression_counts(self) -> dict[str, int]:
        """How many faces show each expression, most common first."""
        counts = collections.Counter(face.expression for frame in self.frames for face in frame.faces)
        return dict(counts.most_common())

    @property
    def n_people(self) -> int:
        """How many people the faces were linked into (0 where they were not linked)."""
        return len({face.person for frame in self.frames for face in frame.faces if face.person is not None})

    def readable(self) -> dict:
        data = super().readable()
        data.pop("looks", None)
        for frame in data.get("frames") or []:
            for face in frame.get("faces") or []:
                face.pop("feature", None)  # the appearance feature stays in memory
        return data

    def describe(self) -> list[str]:
        counts = ", ".join(f"{label} ×{n}" for label, n in self.expression_counts().items())
        with_faces = sum(bool(f.faces) for f in self.frames)
        people = f" ({self.n_people} {'person' if self.n_people == 1 else 'people'})" if self.n_people else ""
        lines = [
            f"faces ({self.detector}): {self.n_faces}{people} in {with_faces} of {len(self.frames)} frames: {counts}"
        ]
        if self.detector_note:
            lines.append(f"  face detector: {self.detector_note}")
        return lines

    def summary(self) -> str:
        text = super().summary()
        counts = self.expression_counts()
        if counts:
            top = next(iter(counts))
            text += f" ({self.n_faces} faces in {sum(bool(f.faces) for f in self.frames)} frames; mostly {top})"
        return text


@dataclass(frozen=True)
class Options:
    # detection
    detector: str = "auto"  # a name in DETECTORS, or a fallback policy in FALLBACKS
    yolo_model: str | Path | None = None  # a YOLO face checkpoint (None: the models dir's)
    min_face_size: int = 20  # pixels; smaller faces are ignored (0: no minimum)
    conf: float = 0.6  # YOLO confidence threshold
    iou: float = 0.5  # YOLO non-maximum-suppression IoU
    detection_threshold: float | None = None  # the old name of conf
    # which faces are classified
    faces_per_frame: int = 2  # the largest faces of each frame that fill the feature
    max_faces: int = 20  # faces kept per frame for the readable output
    margin: float | None = None  # crop margin around a box (None: the detector's own)


class FaceEmotionExtractor(Extractor):
    """Faces per frame → facial expression per face; feature k × 768 (k = frames with a face)."""

    name = "face_emotion"
    inputs = ("frames",)
    output_type = FacesOutput

    options_type = Options

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        conf = o.conf if o.detection_threshold is None else o.detection_threshold
        if int(o.min_face_size) < 0:
            raise OptionError(f"min_face_size must be 0 (no minimum) or more pixels, got {o.min_face_size}")
        if not (0.0 <= float(conf) <= 1.0 and 0.0 < float(o.iou) <= 1.0):
            raise OptionError(f"conf must be in [0, 1] and iou in (0, 1], got conf={conf}, iou={o.iou}")
        if o.detector not in detector_choices():
            raise OptionError(f"unknown face detector '{o.detector}'; choose from {', '.join(detector_choices())}")
        if o.faces_per_frame < 1:
            raise OptionError(f"faces_per_frame must be at least 1, got {o.faces_per_frame}")
        self.detector_choice = o.detector
        self.yolo_model = o.yolo_model
        self.min_face_size = int(o.min_face_size)
        self.conf = float(conf)
        self.iou = float(o.iou)
        self.detector_note = ""
        self.faces_per_frame = int(o.faces_per_frame)
        self.max_faces = int(o.max_faces)
        self._margin = o.margin

    def needed_models(self) -> dict[str, str | None]:
        yolo = self.detector_choice in ("auto", "yolo") and not self.yolo_model
        return {"face_expression": None, **({"yolo_face": None} if yolo else {})}

    def optional_models(self) -> set[str]:
        return {"yolo_face"} if self.detector_choice == "auto" else set()  # auto falls back to the LBP cascade

    def _load(self) -> None:
        from transformers import AutoImageProcessor, ViTForImageClassification

        self.processor = models.load_pretrained("face_expression", AutoImageProcessor, self.models_dir)
        model = models.load_pretrained("face_expression", ViTForImageClassification, self.models_dir)
        self.model = model.to(self.device, self.dtype).eval()
        id2label = self.model.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]
        if tuple(self.labels) != FACE_EXPRESSIONS:
            log.warning("face expression model has labels %s, not the expected %s", self.labels, FACE_EXPRESSIONS)
        self.detector = self._build_detector()
        self.margin = self.detector.default_margin if self._margin is None else float(self._margin)

    def _build_detector(self) -> FaceDetector:
        choice = self.detector_choice
        if choice in ("auto", "yolo"):
            import torch

            device = "cpu" if self.device.type == "cpu" else f"{self.device.type}:{self.device.index or 0}"
            try:
                path = (
                    Path(self.yolo_model) if self.yolo_model else models.checkpoint_file("yolo_face", self.models_dir)
                )
                return YoloFaceDetector(
                    path,
                    device=device,
                    confidence=self.conf,
                    iou=self.iou,
                    half=self.dtype == torch.float16,
                    min_face_size=self.min_face_size,
                )
            except (models.ModelUnavailable, ImportError) as exc:
                if choice == "yolo" or self.yolo_model:
                    raise
                self.detector_note = (
                    f"YOLO face model unavailable ({one_line(exc, limit=160)}); "
                    "fell back to the offline LBP cascade (less accurate on small, turned or dark faces)"
                )
                log.warning("%s", self.detector_note)
            return LbpFaceDetector(min_face_size=self.min_face_size)
        if choice == "haar" or (choice == "opencv" and haar_available()):
            return OpenCVFaceDetector(min_face_size=self.min_face_size)
        if choice == "opencv":
            import cv2

            self.detector_note = f"OpenCV {cv2.__version__} has no Haar cascade; ran the LBP cascade instead"
            log.info("%s", self.detector_note)
        return LbpFaceDetector(min_face_size=self.min_face_size)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        """Face boxes per image, largest first, at most ``max_faces`` each."""
        self.load()
        found: list[list[Box]] = []
        for chunk in batches(list(images), self.batch_size):
            found.extend(self.detector.detect(chunk))
        return [sorted(boxes, key=lambda b: (b.area, b.score), reverse=True)[: self.max_faces] for boxes in found]

    def classify(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Expression probabilities (m × labels) and CLS features before the final layer norm (m × 768)."""
        import torch

        self.load()
        hidden = self.model.config.hidden_size
        probabilities, features = [np.zeros((0, len(self.labels)), np.float32)], [np.zeros((0, hidden), np.float32)]
        with torch.inference_mode():
            for chunk in batches(list(crops), self.batch_size):
                # Channels-last said outright: a thin crop (3 px high) would otherwise pass for channels-first.
                pixels = self.processor(images=list(chunk), return_tensors="pt", input_data_format="channels_last")[
                    "pixel_values"
                ]
                output = self.model(pixel_values=pixels.to(self.device, self.dtype), output_hidden_states=True)
                probabilities.append(output.logits.float().softmax(dim=-1).cpu().numpy())
                features.append(output.hidden_states[-1][:, 0].float().cpu().numpy())
        return np.concatenate(probabilities), np.concatenate(features)

    def _analyze(self, images: Sequence[np.ndarray]) -> list[list[tuple[Face, np.ndarray]]]:
        """(face, feature) pairs per image, largest face first; all crops go through the ViT in batches."""
        boxes_per_image = self.detect(images)
        crops, owners = [], []
        for index, (image, boxes) in enumerate(zip(images, boxes_per_image)):
            height, width = image.shape[:2]
            for box in boxes:
                crop = box.expanded(self.margin, width, height)
                crops.append(image[crop.y0 : crop.y1, crop.x0 : crop.x1])
                owners.append((index, box))
        results: list[list[tuple[Face, np.ndarray]]] = [[] for _ in images]
        if not crops:
            return results
        probabilities, features = self.classify(crops)
        for (index, box), probs, feature in zip(owners, probabilities, features):
            top = int(np.argmax(probs))
            face = Face(
                box=box.as_tuple(),
                detection_score=float(box.score),
                expression=self.labels[top],
                confidence=float(probs[top]),
                probabilities={label: float(p) for label, p in zip(self.labels, probs)},
                feature=feature,
            )
            results[index].append((face, feature))
        return results

    def analyze_images(self, images: Sequence) -> list[list[Face]]:
        """Detect and classify the faces of several RGB images (one batched pass)."""
        arrays = [as_rgb(image) for image in images]
        return [[face for face, _ in faces] for faces in self._analyze(arrays)]

    def analyze_image(self, image) -> list[Face]:
        """Detect and classify the faces of one RGB image (webcam frames, annotated exports); each face
        carries its CLS ``feature``, which the tracker links people by."""
        return self.analyze_images([image])[0]

    def _run(self, clip: Clip) -> FacesOutput:
        frames = clip.frames
        images = [as_rgb(image) for image in frames.images]
        analyzed = self._analyze(images)
        rows, times, per_frame = [], [], []
        for index, (faces, timestamp) in enumerate(zip(analyzed, frames.timestamps)):
            per_frame.append(FrameFaces(frame_index=index, timestamp=float(timestamp), faces=[f for f, _ in faces]))
            if faces:  # faces are largest first: the feature averages the largest few
                rows.append(np.mean([feature for _, feature in faces[: self.faces_per_frame]], axis=0))
                times.append(float(timestamp))
        if not rows:
            raise Missing(f"no face found in {len(frames)} frames ({self.detector.name} detector)")
        from ..tracking import link_frames

        looks = link_frames(per_frame)  # faces → people, by appearance (the sampled frames are seconds apart)
        return FacesOutput(
            feature=np.stack(rows),
            times=np.asarray(times, dtype=np.float64),
            detector=self.detector.name,
            detector_note=self.detector_note,
            min_face_size=self.min_face_size,
            frames=per_frame,
            looks=looks,
        )
