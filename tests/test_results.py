"""Result: numbers, text, JSON/CSV and plots from one object."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from vemoclap.extractors.base import ExtractorOutput
from vemoclap.labels import EMOTIONS, VALENCE_AROUSAL
from vemoclap.results import NO_CLASSIFIER, Result


def _result(probabilities=None) -> Result:
    outputs = {
        "clip": ExtractorOutput(name="clip", feature=np.ones((16, 512), np.float32), seconds=0.5),
        "beats": ExtractorOutput(name="beats", missing="no audio track"),
    }
    return Result(source="video.mp4", probabilities=probabilities, outputs=outputs, missing={"beats": "no audio track"})


def test_prediction_numbers_and_summary():
    probs = np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.1])
    result = _result(probs)
    assert result.top_label == "joy" and abs(result.top_probability - 0.6) < 1e-9
    assert list(result.scores) == list(EMOTIONS)
    valence, arousal = result.valence_arousal
    expected_v = sum(p * VALENCE_AROUSAL[e][0][0] for p, e in zip(probs, EMOTIONS))
    assert abs(valence - expected_v) < 1e-9 and -1 <= arousal <= 1
    text = result.summary()
    assert "joy (60%)" in text and "beats: no audio track" in text and "clip: 16×512" in text


def test_without_classifier_says_so():
    result = _result()
    assert result.top_label is None and result.valence_arousal is None
    assert NO_CLASSIFIER in result.summary()
    assert result.to_frame()["probability"].isna().all()


def test_json_csv_and_plots(tmp_path):
    result = _result(np.full(6, 1 / 6))
    data = json.loads(result.to_json())
    assert data["top_label"] in EMOTIONS and data["missing"] == {"beats": "no audio track"}
    assert data["outputs"]["clip"]["seconds"] == 0.5 and "feature" not in data["outputs"]["clip"]
    out = result.save(tmp_path / "out")
    assert json.loads((out / "result.json").read_text()) == data
    table = pd.read_csv(out / "probabilities.csv")
    assert list(table["label"]) == list(EMOTIONS) and np.isclose(table["probability"].sum(), 1)
    assert (out / "probabilities.png").stat().st_size > 1000


def _weights(**origins: str) -> dict:
    return {name: [{"key": name, "path": None, "origin": origin}] for name, origin in origins.items()}


def test_every_csv_says_which_models_were_random(tmp_path):
    result = _result(np.full(6, 1 / 6))
    result.weights = _weights(clip="random", classifier="random", beats="download")
    out = result.save(tmp_path / "out")
    for name in ("probabilities.csv", "frames.csv", "windows.csv"):
        table = pd.read_csv(out / name, keep_default_na=False)
        assert "random_weights" in table.columns, name
        assert set(table["random_weights"]) <= {"yes (clip, classifier)"}, name
    assert set(pd.read_csv(out / "probabilities.csv")["random_weights"]) == {"yes (clip, classifier)"}
    result.weights = _weights(clip="download", classifier="local")
    text = result.export_texts()["probabilities.csv"]
    assert set(pd.read_csv(io.StringIO(text))["random_weights"]) == {"no"}


def test_partly_random_results_name_the_random_models():
    from vemoclap.notice import random_weights_mark, random_weights_notice, result_mark

    result = _result(np.full(6, 1 / 6))
    assert result_mark(result) is None  # nothing said of trained (or unknown) weights
    result.weights = _weights(clip="random", classifier="random", beats="download")
    assert result_mark(result) == "RANDOM WEIGHTS (partly random: clip, classifier)"
    assert "!! RANDOM WEIGHTS: partly random: clip, classifier ran on" in result.summary()
    result.weights = _weights(clip="random", classifier="random")
    assert result_mark(result) == "RANDOM WEIGHTS: this means nothing"
    assert "partly" not in result.summary()
    assert random_weights_mark([]) is None
    assert random_weights_notice(["clip"], loaded=True).startswith("RANDOM WEIGHTS: clip run on tiny")


def test_the_timeline_plot_carries_the_mark_wherever_it_is_drawn():
    import matplotlib.pyplot as plt

    result = _result(np.full(6, 1 / 6))
    result.weights = _weights(clip="random", classifier="download")
    fig = result.timeline().plot()  # as the app draws it, without going through the Result
    try:
        assert fig._suptitle.get_text() == "RANDOM WEIGHTS (partly random: clip)"
    finally:
        plt.close(fig)
    result.weights = _weights(clip="download")
    fig = result.timeline().plot()
    try:
        assert fig._suptitle is None
    finally:
        plt.close(fig)


def test_rank_is_a_whole_number(tmp_path):
    table = _result(np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.1])).to_frame()
    assert list(table["rank"]) == [5, 6, 2, 1, 3, 4]  # ties: first come, first ranked
    result = _result(np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.1]))
    result.save(tmp_path / "out")
    assert (tmp_path / "out" / "probabilities.csv").read_text().splitlines()[4].endswith(",joy,0.6,1,no")
    assert _result().to_frame()["rank"].isna().all()  # without a classifier: no rank


def test_windows_travel_with_the_result(tmp_path):
    """The classifier's windows, scored at analysis time, are part of the Result: its timeline, saved
    files and emotion segments need no model, also once read back from JSON."""
    from vemoclap.media import MediaInfo
    from vemoclap.timeline import window_table

    result = _result(np.full(6, 1 / 6))
    result.info = MediaInfo("video.mp4", 6.0, 25.0, 64, 48, False, "h264", None)
    rows = []
    for start, top in ((0.0, "joy"), (2.0, "fear"), (4.0, "joy")):
        probs = dict.fromkeys(EMOTIONS, 0.1)
        probs[top] = 0.5
        rows.append({"start": start, "end": start + 2.0, "centre": start + 1.0, **probs, "top": top})
    result.windows = window_table(rows, EMOTIONS)
    again = Result.from_json(result.to_json())
    pd.testing.assert_frame_equal(again.timeline().windows, result.timeline().windows)
    assert again.emotion_segments("joy") == [(0.0, 2.0), (4.0, 6.0)] and again.emotion_segments("anger") == []
    again.save(tmp_path / "out")
    assert list(pd.read_csv(tmp_path / "out" / "windows.csv")["top"]) == ["joy", "fear", "joy"]
    assert Result.from_json(_result().to_json()).windows is None


def test_analyzer_takes_a_comma_separated_string():
    from vemoclap.pipeline import Analyzer

    assert list(Analyzer("clip", classifier=None).extractors) == ["clip"]
    assert list(Analyzer("clip, face_emotion", classifier=None).extractors) == ["clip", "face_emotion"]


def _faces_output():
    from vemoclap.extractors.faces import Face, FacesOutput, FrameFaces

    def face(box, expression, p):
        probabilities = {"happy": p, "sad": 1 - p} if expression == "happy" else {"sad": p, "happy": 1 - p}
        return Face(box, 0.9, expression, p, probabilities)

    frames = [
        FrameFaces(0, 0.0, [face((1, 2, 11, 12), "happy", 0.8), face((20, 2, 30, 12), "sad", 0.7)]),
        FrameFaces(1, 0.5, []),
        FrameFaces(2, 1.0, [face((2, 2, 12, 12), "happy", 0.6)]),
    ]
    return FacesOutput(name="face_emotion", feature=np.ones((3, 768), np.float32), detector="lbp", frames=frames)


def test_faces_table_has_one_row_per_face_per_frame(tmp_path):
    from vemoclap.facetable import FACE_COLUMNS, boxes

    result = _result(np.full(6, 1 / 6))
    result.outputs["face_emotion"] = _faces_output()
    faces = result.faces
    assert type(faces) is pd.DataFrame and list(faces.columns) == list(FACE_COLUMNS)
    assert list(faces["frame_index"]) == [0, 0, 2] and list(faces["face"]) == [0, 1, 0]
    assert list(faces["expression"]) == ["happy", "sad", "happy"] and faces.loc[1, "sad"] == 0.7
    assert [b.box for b in boxes(faces, 0)] == [(1, 2, 11, 12), (20, 2, 30, 12)]
    # the face track (frames.csv) is the table's mean per frame, with the face-less frame kept
    track = result.timeline(smooth_frames=1).faces
    assert list(track["n_faces"]) == [2, 0, 1] and np.isclose(track.loc[0, "happy"], (0.8 + 0.3) / 2)
    assert np.isnan(track.loc[1, "happy"]) and track.loc[2, "top"] == "happy"
    # the typed accessors find outputs by type; a Result read back from JSON has the same table
    assert result.face_output is result.outputs["face_emotion"] and result.ocr is None and result.transcript is None
    pd.testing.assert_frame_equal(Result.from_json(result.to_json()).faces, faces)
    saved = pd.read_csv(result.save(tmp_path / "out") / "faces.csv")
    assert len(saved) == 3 and set(saved["random_weights"]) == {"no"}
    # no face extractor, or a missing one: an empty table with the same columns
    result.outputs["face_emotion"] = ExtractorOutput(name="face_emotion", missing="no frames")
    assert result.faces.empty and list(result.faces.columns) == list(FACE_COLUMNS)


def test_text_html_and_csv_come_from_one_summary():
    from vemoclap.app.views import details_html, missing_html, summary_html

    result = _result(np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.1]))
    result.outputs["face_emotion"] = _faces_output()
    result.warnings.append("a note")
    result.timings = {"clip": 1.5, "beats": 0.5}
    summary = result.summarize()
    emotion = summary.section("emotion")
    assert emotion.text == "joy (60%)" and emotion.rows[0].label == "joy" and emotion.rows[0].number == 0.6
    assert summary.section("missing").rows[0].label == "beats" and summary.section("time").text == "2.0 s"
    assert [s.key for s in summary.of_kind("output")] == ["clip", "face_emotion"]
    # the text report is the summary as text
    text = result.summary()
    assert text == summary.text() and text.splitlines()[0] == "vemoclap result for video.mp4"
    assert "  emotion: joy (60%)" in text and "    beats: no audio track" in text and "    a note" in text
    assert "  faces (lbp): 3 in 2 of 3 frames: happy ×2, sad ×1" in text and "  time: 2.0 s" in text
    # the HTML shows the same rows
    assert ">joy</span> (60%)" in summary_html(result) and "joy 60% · " in summary_html(result)
    assert "faces (lbp): 3 in 2 of 3 frames" in details_html(result)
    assert "<b>beats</b>: no audio track" in missing_html(result) and "<li>a note</li>" in missing_html(result)
    # the CSVs are the summary's tables, in the export files' order
    texts = result.export_texts()
    tables = summary.tables()
    assert list(texts) == ["result.json", "probabilities.csv", "faces.csv", "people.csv", "frames.csv", "windows.csv"]
    for name, table in tables.items():
        assert pd.read_csv(io.StringIO(texts[name])).drop(columns="random_weights").shape == table.shape, name
    # random weights: the notice leads the text and the HTML
    result.weights = _weights(clip="random")
    assert result.summary().splitlines()[1].startswith("  !! RANDOM WEIGHTS")
    assert "vemoclap-random" in summary_html(result)


def test_live_frames_and_the_annotated_videos_csv_share_the_faces_table():
    from vemoclap.facetable import FACE_COLUMNS
    from vemoclap.labels import FACE_EXPRESSIONS
    from vemoclap.live import LiveFrame
    from vemoclap.video_export import TrackedFace

    probabilities = np.eye(len(FACE_EXPRESSIONS))[FACE_EXPRESSIONS.index("happy")] * 0.9 + 0.1 / len(FACE_EXPRESSIONS)
    frame = LiveFrame(7, np.zeros((4, 4, 3), np.uint8), [TrackedFace(3, (1, 2, 3, 4), probabilities, 0.8)], 30.0)
    table = frame.table(time=0.25)
    assert list(table.columns) == list(FACE_COLUMNS) and len(table) == 1
    row = table.iloc[0]
    assert (row["frame_index"], row["time"], row["face"], row["expression"]) == (7, 0.25, 3, "happy")
    assert (row["x0"], row["y1"]) == (1, 4) and np.isclose(row["confidence"], probabilities.max())
