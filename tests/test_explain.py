"""Why this emotion (vemoclap.fusion.explain): leave-one-out contributions per input and attention
per row, on small classifiers of the real class, and how a Result keeps and shows them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vemoclap.fusion import FEATURES, AttentionClassifier, EmotionClassifier, Explanation, default_config, explain
from vemoclap.fusion.explain import Steps, spoken
from vemoclap.labels import EMOTIONS
from vemoclap.results import Result

SEQUENCES = ("clip", "beats", "face_emotion")


def classifier(seed: int = 0, decisive: str | None = None, features=None, scale: float = 40.0) -> EmotionClassifier:
    """A small classifier (d_model 32) of the real class; ``decisive``: that input's part of the
    output layer scaled up, so it decides the emotion."""
    torch.manual_seed(seed)
    config = default_config(features, d_model=32)
    model = AttentionClassifier.from_config(config)
    if decisive is not None:
        d = model.d_model
        with torch.no_grad():
            for index, part in enumerate(model.part_names):
                if part == decisive or part.endswith(f"_{decisive}"):  # a sequence's pairs where it is key/value
                    model.cls_mlp[0].weight[:, index * d : (index + 1) * d] *= scale
    return EmotionClassifier(model, config)


def video(seed: int = 1, **rows: int | None) -> dict[str, np.ndarray | None]:
    """Raw features with the extractors' shapes around the reference's value ranges; rows[name] = None leaves it out."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray | None] = {}
    for name in ("clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment"):
        n = rows.get(name, FEATURES[name].length)
        out[name] = None if n is None else rng.normal(scale=3.0, size=(n, FEATURES[name].dim)).astype(np.float32)
    return out


@pytest.mark.parametrize("decisive", ["asr_sentiment", "face_emotion"])
def test_the_decisive_input_comes_out_on_top(decisive):
    model = classifier(decisive=decisive)
    why = explain(model, video())
    ranked = why.toward()
    assert next(iter(ranked)) == decisive
    others = sum(abs(v) for f, v in ranked.items() if f != decisive)
    assert ranked[decisive] > others and ranked[decisive] > 5  # points of the top label's probability
    assert why.sentence().startswith(f"{why.top_label}, mostly from {spoken(decisive)} (+")
    # the same weights without the boost: the input is no longer the one deciding
    plain = explain(classifier(), video())
    assert plain.toward()[decisive] < ranked[decisive]


def test_an_input_already_missing_changes_nothing():
    model = classifier(seed=2)
    features = video(seed=3, ocr_sentiment=None, face_emotion=0)  # no text at all, a face track with no rows
    why = explain(model, features)
    assert set(why.missing) == {"ocr_sentiment", "face_emotion"}
    for name in why.missing:
        assert why.points[name] == (0.0,) * len(EMOTIONS)
        assert name not in why.steps or all(t is None for t in why.steps[name].times)
    # ... because zeroing it really changes nothing: the classifier's output is the same bit for bit
    full = model.config.prepare(features)
    blank = model.config.prepare({})
    for name in why.missing:
        np.testing.assert_array_equal(
            model.predict_prepared([{**full, name: blank[name]}]), model.predict_prepared([full])
        )
    # the inputs that are there do change it, and the numbers reported are predict()'s
    assert any(abs(v) > 0 for f in ("clip", "beats", "asr_sentiment") for v in why.points[f])
    np.testing.assert_array_equal(np.array(why.probabilities), model.predict(features).astype(np.float64))


def test_eval_mode_and_deterministic_even_when_the_model_was_left_training():
    model = classifier(seed=4)
    features = video(seed=5)
    expected = explain(model, features)
    model.model.train()  # dropout 0.5 would change every run
    assert explain(model, features) == expected == explain(model, features)
    assert model.model.training  # left as it was found


def test_attention_per_row_sums_to_one_and_places_rows_in_time():
    model = classifier(seed=6)
    features = video(seed=7, clip=40, beats=3)  # clip: 40 rows → 16 equidistant; beats: 3 rows + 13 padding
    times = {"clip": np.arange(40) * 0.25, "beats": np.array([1.5, 4.5, 7.5]), "face_emotion": np.arange(16) * 1.0}
    why = explain(model, features, times)
    assert set(why.steps) == set(SEQUENCES)
    for steps in why.steps.values():
        assert len(steps.weights) == 16 and sum(steps.weights) == pytest.approx(1.0, abs=1e-5)
    kept = np.round(np.linspace(0, 39, 16)).astype(int)
    assert why.steps["clip"].times == tuple(float(t) for t in times["clip"][kept])
    assert why.steps["beats"].times[:3] == (1.5, 4.5, 7.5) and set(why.steps["beats"].times[3:]) == {None}
    top = why.steps["beats"].top(5)
    assert [t for t, _ in top] == sorted((1.5, 4.5, 7.5), key=lambda t: -dict(top)[t])  # padding never listed

    # the weights are the network's own: each pair's, averaged over query rows, then over pairs
    attention: dict[str, torch.Tensor] = {}
    model.predict_prepared([model.config.prepare(features)], attention=attention)
    assert set(attention) == {f"{a}_{b}" for a in SEQUENCES for b in SEQUENCES if a != b}
    for weights in attention.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    faces = np.mean([attention[f"{a}_face_emotion"][0].mean(0).numpy() for a in ("clip", "beats")], axis=0)
    np.testing.assert_allclose(why.steps["face_emotion"].weights, faces, rtol=1e-6)
    # one sequence input: no pairs, so no attention and no per-row weights
    single = classifier(features=["clip", "asr_sentiment"])
    assert explain(single, video()).steps == {}


def test_the_sentence_names_helpers_and_what_pulled_away():
    labels = tuple(EMOTIONS)
    joy, fear = labels.index("joy"), labels.index("fear")

    def points(**at: float) -> tuple[float, ...]:
        values = [0.0] * len(labels)
        for label, value in at.items():
            values[labels.index(label)] = value
        return tuple(values)

    probabilities = tuple(0.5 if i == joy else 0.1 for i in range(len(labels)))
    why = Explanation(
        labels=labels,
        probabilities=probabilities,
        points={
            "face_emotion": points(joy=31.0, sadness=-31.0),
            "asr_sentiment": points(joy=12.0, anger=-12.0),
            "beats": points(joy=-6.0, fear=6.0),
            "clip": points(joy=-2.0, fear=2.0),
            "ocr_sentiment": points(),
        },
        missing=("ocr_sentiment",),
    )
    assert why.top_label == "joy" and labels[fear] == "fear"
    assert why.sentence() == (
        "joy, mostly from the faces (+31 pts) and the transcript (+12 pts); the audio and the picture pulled "
        "toward fear (the on-screen text missing)"
    )
    assert Explanation(labels, probabilities, {"beats": points(joy=-6.0, fear=6.0)}).sentence() == (
        "joy, with no input raising it by 0.5 pt or more; the audio pulled toward fear"
    )
    table = why.table()
    assert list(table["feature"]) == list(why.points) and table.loc[table.feature == "beats", "toward"].item() == "fear"
    small = Explanation(labels, probabilities, {"clip": points(joy=0.5, fear=-0.5), "beats": points(joy=0.7)})
    assert small.sentence() == "joy, mostly from the audio (+0.7 pts) and the picture (+0.5 pts)"
    undecided = Explanation(labels, probabilities, {"clip": points(joy=0.2)})
    assert undecided.sentence().startswith("joy, with no input raising it")


def test_a_result_keeps_it_through_json_and_shows_it_in_the_report(tmp_path):
    model = classifier(seed=8, decisive="asr_sentiment")
    features = video(seed=9, ocr_sentiment=None)
    why = explain(model, features, {"clip": np.arange(16) * 0.5})
    result = Result(source="v.mp4", probabilities=np.array(why.probabilities), labels=why.labels, explanation=why)
    again = Result.from_json(result.to_json(tmp_path / "result.json"))
    assert again.explanation == why and isinstance(again.explanation.steps["clip"], Steps)
    text = again.summary()
    assert f"  why: {why.sentence()}" in text.splitlines()
    assert "    the on-screen text: missing" in text.splitlines()
    assert Result.from_json(Result(source="v.mp4").to_json()).explanation is None


def test_top_frames_sum_the_per_frame_inputs_and_the_figure_shows_them():
    from vemoclap.media import Frames

    stamps = np.array([0.2, 1.0, 1.8, 2.6])
    clip = Steps((0.1, 0.2, 0.3, 0.4), tuple(stamps))
    faces = Steps((0.5, 0.3, 0.2, 0.0), (0.2, 1.0, 1.8, None))  # a frame without a face: padding
    audio = Steps((0.9, 0.1), (1.5, 4.5))  # audio chunks are not frames: left out
    labels = tuple(EMOTIONS)
    why = Explanation(
        labels,
        tuple(1 / len(labels) for _ in labels),
        {name: tuple(float(i) for i in range(len(labels))) for name in ("clip", "face_emotion", "beats")},
        steps={"clip": clip, "face_emotion": faces, "beats": audio},
    )
    ranked = why.top_frames(stamps, 4)
    assert [index for index, _ in ranked] == [0, 1, 2, 3]  # 0.6, 0.5, 0.5 (earlier first), 0.4
    assert [weight for _, weight in ranked] == pytest.approx([0.6, 0.5, 0.5, 0.4])
    images = np.zeros((4, 24, 32, 3), np.uint8)
    result = Result(
        "v.mp4",
        probabilities=np.array(why.probabilities),
        labels=labels,
        explanation=why,
        frames=Frames(images, stamps),
    )
    figure = result.plot_contributions()
    assert len(figure.axes) == 1 + 3 and figure.axes[1].get_title() == "attended to most: 0.2 s"
    assert "contributions" in result.figures()
    result.frames = Frames(np.zeros((4, 0, 0, 3), np.uint8), stamps)  # read back from JSON: no pixels
    assert len(result.plot_contributions().axes) == 1
    assert "contributions" not in Result("v.mp4").figures()
