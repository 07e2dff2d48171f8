"""Result: numbers, text, JSON/CSV and plots from one object."""

from __future__ import annotations

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
