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
    text = result.export_texts(result.timeline())["probabilities.csv"]
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
