"""Pictures, timeline, video exports and live mode on the generated sample (a real face) with the
real OpenCV face detector, tiny ViT / CLIP / BLIP models and a tiny classifier."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys

import av
import numpy as np
import pandas as pd
import pytest

from vemoclap.draw.overlay import BANNER_COLOR
from vemoclap.generated_video import make_sample
from vemoclap.labels import EMOTIONS, FACE_EXPRESSIONS
from vemoclap.live import analyze_stream, file_frames, run_live
from vemoclap.models import mark_random
from vemoclap.pipeline import Analyzer
from vemoclap.synth import make_video
from vemoclap.testing import make_tiny_classifier
from vemoclap.testing.media import remux
from vemoclap.tiny import vision as tiny_vision
from vemoclap.video_export import export_annotated_video, export_segments


@pytest.fixture(scope="module")
def vision_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-vision")
    for path in tiny_vision.build(directory).values():
        mark_random(path)  # as make_tiny_models does for everything it writes
    make_tiny_classifier(directory / "classifier")
    return directory


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("sample") / "sample.mp4", seconds=6.0)


@pytest.fixture(scope="module")
def analyzer(vision_dir):
    return Analyzer(
        ["clip", "face_emotion", "caption"],
        models_dir=vision_dir,
        device="cpu",
        face_detector="opencv",
        classifier=vision_dir / "classifier",
        window_s=2.0,
    )


@pytest.fixture(scope="module")
def result(analyzer, sample):
    return analyzer.analyze(sample)


def _frame_count(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
def test_annotated_frame_has_face_boxes(analyzer, result):
    faces = result.outputs["face_emotion"]
    assert not faces.missing and faces.n_faces >= 8  # the astronaut is in every frame
    index = max(range(len(result.frames)), key=lambda i: len(faces.frames[i].faces))
    image = result.annotated_frame()
    original = result.frames.images[index]
    assert image.shape == original.shape and not np.array_equal(image, original)
    x0, y0, x1, y1 = faces.frames[index].faces[0].box
    edge_changed = np.any(image[y0:y1, x0] != original[y0:y1, x0])  # the box outline is drawn
    assert edge_changed


def test_timeline_windows_and_face_track(analyzer, result):
    timeline = result.timeline()  # the classifier's windows were scored during the analysis
    windows = timeline.windows
    assert len(windows) >= 4 and windows["start"].min() == 0.0
    assert windows["end"].max() == pytest.approx(result.info.duration, abs=0.05)
    assert np.allclose(windows[list(EMOTIONS)].sum(axis=1), 1.0, atol=1e-5)
    track = timeline.faces
    assert len(track) == len(result.frames) and track["n_faces"].sum() >= 8
    probs = track[list(FACE_EXPRESSIONS)].dropna()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_save_writes_every_picture_and_table(analyzer, result, tmp_path):
    out = result.save(tmp_path / "saved")
    for name in [
        "result.json",
        "probabilities.csv",
        "frames.csv",
        "windows.csv",
        "probabilities.png",
        "circumplex.png",
        "contributions.png",
        "annotated_frame.png",
        "timeline.png",
    ]:
        assert (out / name).stat().st_size > 0, name
    assert "caption" in (out / "result.json").read_text()


def _circumplex_cases() -> dict[str, np.ndarray | None]:
    cases: dict[str, np.ndarray | None] = {"uniform": np.full(len(EMOTIONS), 1 / len(EMOTIONS)), "none": None}
    for i, emotion in enumerate(EMOTIONS):
        cases[emotion] = np.eye(len(EMOTIONS))[i]
    cases["fear and anger"] = np.array([0.5, 0, 0.5, 0, 0, 0])
    rng = np.random.default_rng(7)
    cases.update({f"mixture {k}": rng.dirichlet(np.full(len(EMOTIONS), 0.3)) for k in range(12)})
    return cases


@pytest.mark.slow
def test_valence_arousal_plot_has_no_overlapping_text():
    """Every emotion's name, the video's star and its legend are drawn apart and inside the axes,
    wherever the video's weighted point falls (measured with matplotlib's own renderer)."""
    import itertools

    import matplotlib.pyplot as plt

    from vemoclap.results import Result

    for case, probabilities in _circumplex_cases().items():
        fig = Result("video.mp4", probabilities=probabilities).plot_circumplex()
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            ax = fig.axes[0]
            boxes = {text.get_text(): text.get_window_extent(renderer) for text in ax.texts}
            assert set(boxes) == set(EMOTIONS)
            if probabilities is not None:
                boxes["legend"] = ax.get_legend().get_window_extent(renderer)
                star = [line for line in ax.lines if line.get_marker() == "*"]
                assert len(star) == 1
                boxes["star"] = star[0].get_window_extent(renderer)
            frame = ax.get_window_extent(renderer)
            for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
                assert not box_a.overlaps(box_b), f"{case}: {a} overlaps {b}"
            for name, box in boxes.items():
                assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (
                    f"{case}: {name} leaves the axes"
                )
        finally:
            plt.close(fig)


@pytest.mark.slow
def test_annotated_video_keeps_every_frame_and_audio(analyzer, result, sample, tmp_path):
    video = analyzer.export_annotated_video(result, tmp_path / "annotated.mp4", every=5, progress=False)
    assert video.frames == _frame_count(sample) == _frame_count(video.path)
    with av.open(str(video.path)) as container:
        assert container.streams.audio, "the original audio is kept"
    with open(video.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= video.frames // 2
    assert {row["expression"] for row in rows} <= set(FACE_EXPRESSIONS)
    # one face, followed rather than re-found: one track holds most detections (the offline LBP
    # detector of OpenCV 5 installs misses a frame now and then, which may start a short new track)
    tracks = [row["face"] for row in rows]  # the faces table's columns; "face" is the track's id
    assert max(tracks.count(t) for t in set(tracks)) >= 0.7 * len(tracks)


def _first_frame(path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def _marked(index: int) -> np.ndarray:
    """96×160 grey with a red 24-px square in the top-left corner of the stored picture."""
    image = np.full((96, 160, 3), 40, np.uint8)
    image[:24, :24] = (255, 0, 0)
    return image


# Where the stored top-left corner is shown: FFmpeg's display rotation is counter-clockwise, and
# a phone held upright writes -90 (shown turned a quarter clockwise).
@pytest.mark.parametrize("degrees, corner", [(-90, "top-right"), (90, "bottom-left"), (180, "bottom-right")])
def test_exports_of_a_rotated_video_are_upright(tmp_path, degrees, corner):
    stored = make_video(tmp_path / "stored.mp4", duration=1.0, size=(160, 96), frame_fn=_marked, crf=18)
    phone = remux(stored, tmp_path / "phone.mp4", rotation=degrees)
    assert _first_frame(phone).rotation % 360 == degrees % 360  # the metadata is there for the reader
    annotated = export_annotated_video(
        phone, tmp_path / "annotated.mp4", lambda image: [], progress=False, keep_empty=True
    )
    clips = export_segments(phone, [(0.2, 0.8)], tmp_path / "clips.mp4", progress=False)
    for path in (annotated.path, clips):
        frame = _first_frame(path)
        assert frame.rotation == 0, "pixels are turned once, not left to a player to turn again"
        image = frame.to_ndarray(format="rgb24").astype(int)
        assert image.shape == ((160, 96, 3) if degrees % 180 else (96, 160, 3))
        height, width = image.shape[:2]
        rows = slice(0, 24) if corner.startswith("top") else slice(height - 24, height)
        cols = slice(0, 24) if corner.endswith("left") else slice(width - 24, width)
        red = np.zeros(image.shape[:2], bool)
        red[rows, cols] = True
        assert np.all(np.abs(image[red] - (255, 0, 0)).mean(axis=1) < 40), f"{path.name}: marker not {corner}"
        assert np.all(np.abs(image[~red] - 40).mean(axis=1) < 40), f"{path.name}: marker elsewhere too"


@pytest.mark.slow
def test_phone_video_is_analysed_and_exported_upright(analyzer, sample, tmp_path):
    """A portrait phone recording stores the picture sideways and says so in its metadata: the
    Analyzer's annotated export shows it upright, so the (upright-only) face detector finds the face."""
    with av.open(str(sample)) as container:
        upright = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:50]
    height, width = upright[0].shape[:2]
    stored = make_video(
        tmp_path / "stored.mp4",
        fps=25,
        frames=len(upright),
        size=(height, width),  # sideways
        frame_fn=lambda i: np.ascontiguousarray(np.rot90(upright[i], 1)),
        crf=18,
    )
    phone = remux(stored, tmp_path / "phone.mp4", rotation=-90)
    face_model = analyzer.face_model()
    assert not face_model.analyze_image(np.ascontiguousarray(np.rot90(upright[0], 1))), (
        "premise: the detector misses a sideways face"
    )
    result = analyzer.analyze(phone)
    video = analyzer.export_annotated_video(result, tmp_path / "annotated.mp4", every=5, progress=False)
    image = _first_frame(video.path).to_ndarray(format="rgb24")
    assert image.shape == upright[0].shape
    assert np.abs(image.astype(int) - upright[0]).mean() < 12  # the same picture (plus face boxes)
    with open(video.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["frame_index"] for row in rows}) >= 0.7 * video.frames
    assert all(0 <= int(r["x0"]) < int(r["x1"]) <= width and 0 <= int(r["y0"]) < int(r["y1"]) <= height for r in rows)


def test_emotion_clips_cut_the_dominant_segments(result, tmp_path):
    emotion = result.timeline().windows["top"].iloc[0]
    path, segments = result.export_emotion_clips(emotion, tmp_path / "clips.mp4", progress=False)
    assert segments and path is not None
    expected = sum(end - start for start, end in segments)
    with av.open(str(path)) as container:
        assert container.streams.audio
        duration = container.duration / 1e6
    assert duration == pytest.approx(expected, abs=0.3)
    other = next(e for e in EMOTIONS if e not in set(result.timeline().windows["top"]))
    assert result.export_emotion_clips(other, tmp_path / "none.mp4") == (None, [])
    assert not (tmp_path / "none.mp4").exists()


def test_annotation_cost_and_the_automatic_step(result):
    from vemoclap.video_export import ANNOTATE_BUDGET, annotation_cost

    frames = round(result.info.duration * result.info.fps)
    every_frame = annotation_cost(result, 1)
    assert every_frame.frames == frames and every_frame.every == 1
    assert every_frame.face_seconds == pytest.approx(result.timings["face_emotion"] / len(result.frames))
    assert "--every 1" in every_frame.line() and "about" in every_frame.line()
    auto = annotation_cost(result)
    assert 1 <= auto.every <= frames
    budget = ANNOTATE_BUDGET * sum(result.timings.values())
    assert auto.seconds <= budget or auto.every == frames
    if auto.every > 1:  # the smallest such step: one less goes over the budget
        assert annotation_cost(result, auto.every - 1).seconds > budget


def test_every_must_be_a_whole_number(analyzer, result, tmp_path):
    from vemoclap.errors import OptionError

    with pytest.raises(OptionError, match="every must be a whole number"):
        analyzer.export_annotated_video(result, tmp_path / "a.mp4", every=0, progress=False)


@pytest.mark.slow
def test_live_stream_tracks_the_face(analyzer, result, sample):
    face_model = analyzer.face_model().analyze_image
    frames = list(analyze_stream(file_frames(str(sample)), face_model, every=2))
    assert len(frames) == _frame_count(sample)
    with_faces = [f for f in frames if f.faces]
    assert len(with_faces) > len(frames) // 2
    ids = [face.person for f in with_faces for face in f.faces]
    assert max(ids.count(i) for i in set(ids)) >= 0.7 * len(ids)  # one face, followed
    assert frames[-1].fps > 0
    lines: list[str] = []
    stats = run_live(file_frames(str(sample)), face_model, show=False, max_frames=5, out=lines.append)
    assert stats["frames"] == 5 and len(lines) == 5 and "fps" in lines[0]


@pytest.mark.slow
def test_live_cli_on_a_file(vision_dir, sample):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vemoclap.cli",
            "live",
            str(sample),
            "--no-window",
            "--max-frames",
            "4",
            "--face-detector",
            "opencv",
            "--models-dir",
            str(vision_dir),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("frame ") == 4 and "FPS" in run.stdout
    assert run.stdout.startswith("RANDOM WEIGHTS: face_emotion")  # the tiny face model says so first


def test_result_round_trips_through_json_without_models(analyzer, result, tmp_path):
    """A Result is plain data: read back from JSON it gives the same numbers, outputs and timeline."""
    from vemoclap.results import Result

    path = tmp_path / "result.json"
    result.to_json(path)
    again = Result.from_json(path)
    assert again.summary() == result.summary()
    assert again.to_dict() == result.to_dict()
    faces = again.outputs["face_emotion"]
    assert type(faces) is type(result.outputs["face_emotion"]) and faces.frames[0].faces[0].box
    np.testing.assert_array_equal(again.outputs["clip"].feature, result.outputs["clip"].feature)
    assert len(result.windows) >= 4
    pd.testing.assert_frame_equal(again.timeline().windows, result.timeline().windows)
    pd.testing.assert_frame_equal(again.timeline().faces, result.timeline().faces)
    # everything but annotating every frame works from the Result read back, with no model
    saved = again.save(tmp_path / "saved")
    assert len(pd.read_csv(saved / "windows.csv")) == len(result.windows)
    assert len(pd.read_csv(saved / "frames.csv")) == len(result.frames)
    emotion = result.windows["top"].iloc[0]
    path, segments = again.export_emotion_clips(emotion, tmp_path / "clips.mp4", progress=False)
    assert path is not None and segments == result.emotion_segments(emotion)


@pytest.mark.slow
def test_without_a_classifier_the_timeline_has_no_windows(vision_dir, sample):
    result = Analyzer(["face_emotion"], models_dir=vision_dir, device="cpu", face_detector="opencv", classifier=None)(
        sample
    )
    assert result.windows is None and len(result.timeline().windows) == 0
    assert len(result.timeline().faces) == len(result.frames)
    # the clips follow the face track then
    from vemoclap.labels import EXPRESSION_TO_EMOTION

    shown = {EXPRESSION_TO_EMOTION.get(top) for top in result.timeline().faces["top"] if top} - {None}
    for emotion in shown:
        assert result.emotion_segments(emotion)


@pytest.mark.slow
def test_cli_clips_and_annotated_video(vision_dir, sample, tmp_path, capsys):
    """--clips says whether it wrote a clip, and why not; --every K with the estimate printed first."""
    import json

    from vemoclap.cli import main

    common = ["analyze", str(sample), "--models-dir", str(vision_dir), "--classifier", str(vision_dir / "classifier")]
    common += ["--extractors", "clip,face_emotion", "--face-detector", "opencv", "--device", "cpu", "-q"]
    for emotion in EMOTIONS[:2]:
        out = tmp_path / f"{emotion}.mp4"
        assert main([*common, "--json", str(tmp_path / "r.json"), "--clips", emotion, str(out)]) == 0
        printed = capsys.readouterr().out
        windows = json.loads((tmp_path / "r.json").read_text())["windows"]
        if any(window["top"] == emotion for window in windows):
            assert f"wrote {out}" in printed and out.is_file()
        else:
            assert f"{emotion}: no clip written to {out}" in printed and "nothing to cut" in printed
            assert not out.exists()
    assert main([*common, "--annotated-video", str(tmp_path / "a.mp4"), "--every", "3"]) == 0
    captured = capsys.readouterr()
    assert "(--every 3): about" in captured.err and "wrote" in captured.out and (tmp_path / "a.csv").is_file()
    with pytest.raises(SystemExit):
        main([*common, "--annotated-video", str(tmp_path / "b.mp4"), "--every", "0"])
    assert "not a whole number" in capsys.readouterr().err


# -- the random-weights mark and pictures a person can read -----------------------------------------
BANNER = np.array(BANNER_COLOR)


@pytest.fixture(scope="module")
def read_text():
    """The words rapidocr's bundled PP-OCR models read in an RGB image, upper-cased."""
    from vemoclap.extractors.ocr import _RapidOcr

    engine = _RapidOcr(use_cuda=False)
    return lambda image: " ".join(label for _, label, _ in engine(image, min_score=0.5)).upper()


def _trained(result):
    """The same result as if every model had trained weights (nothing random)."""
    weights = {name: [dict(use, origin="local") for use in uses] for name, uses in result.weights.items()}
    return dataclasses.replace(result, weights=weights)


def _banner_share(image: np.ndarray, top: float = 0.15) -> float:
    """The share of the top rows of ``image`` in the banner's colour."""
    strip = image[: max(1, int(image.shape[0] * top)), :, :3].astype(int)
    return float((np.abs(strip - BANNER).max(axis=2) < 25).mean())


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.slow
def test_saved_pictures_of_random_weights_carry_a_readable_banner(analyzer, result, tmp_path, read_text):
    assert set(result.random_weights) == {"clip", "face_emotion", "caption", "classifier"}
    marked = result.save(tmp_path / "marked")
    plain = _trained(result).save(tmp_path / "plain")
    pngs = sorted(p.name for p in marked.glob("*.png"))
    assert pngs == ["annotated_frame.png", "circumplex.png", "contributions.png", "probabilities.png", "timeline.png"]
    for name in pngs:
        with_mark, without = _png(marked / name), _png(plain / name)
        assert with_mark.shape == without.shape, name
        assert _banner_share(with_mark) > 0.03 and _banner_share(without) == 0, name
    for name in ("probabilities.png", "annotated_frame.png"):
        assert "RANDOM" in read_text(_png(marked / name)), name
        assert "RANDOM" not in read_text(_png(plain / name)), name


def test_figures_of_partly_random_results_name_the_random_models():
    from vemoclap.draw.figures import figure_png
    from vemoclap.results import Result

    weights = {
        "clip": [{"key": "clip", "origin": "random"}],
        "classifier": [{"key": "classifier", "origin": "download"}],
    }
    partly = Result("video.mp4", probabilities=np.full(6, 1 / 6), weights=weights)
    fig = partly.plot()
    assert fig._suptitle.get_text() == "RANDOM WEIGHTS (partly random: clip)"
    figure_png(fig)
    trained = Result("video.mp4", probabilities=np.full(6, 1 / 6), weights={"classifier": weights["classifier"]})
    assert trained.plot()._suptitle is None
    assert "partly random: clip ran on" in partly.summary()


@pytest.mark.slow
def test_videos_of_random_weights_have_the_mark_burned_in(analyzer, result, sample, tmp_path, read_text):
    video = analyzer.export_annotated_video(result, tmp_path / "annotated.mp4", every=10, progress=False)
    plain = analyzer.export_annotated_video(_trained(result), tmp_path / "plain.mp4", every=10, progress=False)
    marked_frame = _first_frame(video.path).to_ndarray(format="rgb24")
    plain_frame = _first_frame(plain.path).to_ndarray(format="rgb24")
    assert _banner_share(marked_frame, 0.06) > 0.5 and _banner_share(plain_frame, 0.06) < 0.01
    assert "RANDOM" in read_text(marked_frame) and "RANDOM" not in read_text(plain_frame)
    with open(video.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {row["random_weights"] for row in rows} == {"yes (clip, face_emotion, caption, classifier)"}
    with open(plain.csv_path) as handle:
        assert {row["random_weights"] for row in csv.DictReader(handle)} == {"no"}
    emotion = result.timeline().windows["top"].iloc[0]
    clips, _ = result.export_emotion_clips(emotion, tmp_path / "clips.mp4", progress=False)
    assert _banner_share(_first_frame(clips).to_ndarray(format="rgb24"), 0.06) > 0.5


def test_no_annotated_video_when_no_face_is_found(sample, tmp_path):
    out = tmp_path / "annotated.mp4"
    video = export_annotated_video(sample, out, lambda image: [], every=5, progress=False)
    assert video.path is None and video.faces == 0 and video.frames > 0
    assert not out.exists() and not out.with_suffix(".csv").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either
    assert video.line().startswith("no face was found in any of the") and "no annotated video" in video.line()


@pytest.mark.slow
def test_live_says_random_weights_in_every_line_and_frame(analyzer, sample):
    face_model = analyzer.face_model()
    assert any(use.random for use in face_model.weights)
    lines: list[str] = []
    run_live(
        file_frames(str(sample)),
        face_model.analyze_image,
        show=False,
        max_frames=3,
        out=lines.append,
        weights=face_model.weights,
    )
    assert lines[0].startswith("RANDOM WEIGHTS: face_emotion") and len(lines) == 4
    assert all(line.startswith("[RANDOM WEIGHTS") for line in lines[1:])
    shown = next(analyze_stream(file_frames(str(sample)), face_model.analyze_image, mark="RANDOM WEIGHTS"))
    assert _banner_share(shown.image, 0.06) > 0.5


def _face(box, score, expression="fear", confidence=0.22):
    from vemoclap.extractors.faces import Face

    return Face(box=box, detection_score=score, expression=expression, confidence=confidence)


def test_duplicate_face_boxes_get_one_label():
    from vemoclap.draw.overlay import distinct_faces, draw_faces

    best, duplicate, inside = (
        _face((40, 40, 140, 150), 0.9),
        _face((44, 38, 146, 152), 0.7),
        _face((60, 60, 120, 130), 0.5),
    )
    other = _face((200, 50, 280, 140), 0.6, "happy", 0.8)
    assert distinct_faces([duplicate, best, inside, other]) == [best, other]  # the caller's order
    canvas = np.zeros((240, 320, 3), np.uint8)
    once = draw_faces(canvas.copy(), [best, other])
    assert np.array_equal(draw_faces(canvas.copy(), [duplicate, best, inside, other]), once)
    assert not np.array_equal(once, canvas)


def test_captions_are_drawn_without_control_or_replacement_characters(result):
    from vemoclap.draw.figures import printable

    assert printable("a\x00b\ufffd c\u200b\n\t d\x1b[0m") == "ab c d[0m"
    assert printable(None) == "" and printable("\ufffd\x07") == ""
    raw = dataclasses.replace(result.outputs["caption"], text="a man\x00 in\ufffd a\x1f suit\n\u202e")
    shown = dataclasses.replace(result, outputs={**result.outputs, "caption": raw})
    fig = shown.plot_annotated_frame()
    try:
        title = fig.axes[0].get_title()
        assert title.startswith("“a man in a suit” — ") and all(ch.isprintable() for ch in title)
        legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
        assert legend == ["face: expression, confidence"]  # faces drawn, no on-screen text in the sample
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_feature_heatmaps_keep_rows_readable(result):
    import matplotlib.pyplot as plt

    from vemoclap.draw.figures import features_heatmap

    fig = features_heatmap(result)
    try:
        fig.set_dpi(100)
        fig.canvas.draw()
        names = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
        assert any(name.startswith("clip ") and int(name.split()[-1].split("×")[0]) > 1 for name in names)
        for ax in fig.axes:
            title = ax.get_title(loc="left")
            if not title:
                continue  # a colour bar
            rows = int(title.split()[-1].split("×")[0])
            box = ax.get_window_extent()
            if rows > 1:
                assert box.height / rows >= 10, f"{title}: {box.height / rows:.1f} px a row"
                assert box.width / box.height <= 5, title
    finally:
        plt.close(fig)


@pytest.mark.slow
def test_every_figure_and_frame_of_random_weights_is_marked(result):
    import matplotlib.pyplot as plt

    from vemoclap.draw.figures import faces_figure, features_heatmap, frames_grid

    figures = [frames_grid(result), faces_figure(result)[0], features_heatmap(result), *result.figures().values()]
    try:
        for fig in figures:
            assert fig._suptitle.get_text() == "RANDOM WEIGHTS: this means nothing"
    finally:
        for fig in figures:
            plt.close(fig)
    assert _banner_share(result.annotated_frame(), 0.06) > 0.5  # the frame as an array carries it too
    assert _banner_share(_trained(result).annotated_frame(), 0.06) < 0.01


@pytest.mark.slow
def test_cli_says_no_annotated_video_when_no_face_is_found(vision_dir, tmp_path):
    blank = make_video(
        tmp_path / "blank.mp4", duration=1.0, size=(160, 96), frame_fn=lambda i: np.full((96, 160, 3), 90, np.uint8)
    )
    out = tmp_path / "annotated.mp4"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vemoclap.cli",
            "analyze",
            str(blank),
            "--extractors",
            "face_emotion",
            "--no-classifier",
            "--face-detector",
            "opencv",
            "--models-dir",
            str(vision_dir),
            "--device",
            "cpu",
            "--frames",
            "4",
            "--annotated-video",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert f"no face was found in any of the 25 frames of {blank}, so no annotated video was written" in run.stdout
    assert not out.exists() and "wrote" not in run.stdout


def test_library_exports_never_write_over_the_analyzed_video(analyzer, result, tmp_path):
    import hashlib
    import os

    from vemoclap.errors import UserError

    # the analyzed video under another spelling (a hard link): the same file all the same
    alias = tmp_path / "alias.mp4"
    os.link(result.local_video(), alias)
    before = hashlib.sha256(alias.read_bytes()).hexdigest()
    emotion = result.timeline().windows["top"].iloc[0]
    with pytest.raises(UserError, match="is the input .* would destroy it"):
        result.export_emotion_clips(emotion, alias, progress=False)
    with pytest.raises(UserError, match="is the input .* would destroy it"):
        analyzer.export_annotated_video(result, alias, progress=False)
    assert hashlib.sha256(alias.read_bytes()).hexdigest() == before
