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
    assert (tmp_path / "out" / "probabilities.csv").read_text().splitlines()[4].endswith(",joy,0.6,1")
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
