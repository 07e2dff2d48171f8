"""`vemoclap parity` and `evaluate --heads` on features imported from a generated reference-layout
file, with generated videos and tiny models of the real classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vemoclap.parity import DEFAULT_SETTINGS, Setting, extract_settings, run_parity, similarity
from vemoclap.training.reference_features import import_reference_features

EXTRACTORS = ["clip", "beats"]
SETTINGS = [DEFAULT_SETTINGS[0], DEFAULT_SETTINGS[1], Setting("vemoclap", "vemoclap")]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from vemoclap.testing import make_video

    root = tmp_path_factory.mktemp("parity-videos")
    # 30 s: more than 16 BEATs chunk starts, so the app's index defect changes the chunks.
    return {
        "anger": make_video(root / "anger.mp4", duration=30.0, fps=4, size=(64, 48), audio="speech"),
        "joy": make_video(root / "joy.mp4", duration=4.0, fps=8, size=(96, 64), audio="tone"),
    }


@pytest.fixture(scope="module")
def published(videos, tiny_models, tmp_path_factory):
    """A reference-layout features file: our reference-setting rows of the two videos, filed under
    Ekman-like names among random distractors of the same labels, imported with import-features."""
    rows, _ = extract_settings(videos, [SETTINGS[0]], extractors=EXTRACTORS, device="cpu", models_dir=tiny_models)
    rng = np.random.default_rng(0)

    def rand(*shape):
        return torch.from_numpy(rng.normal(size=shape)).float()

    data = {"train": {}, "test": {}}
    for name, features in rows["reference"].items():
        entry = {f: torch.from_numpy(np.asarray(a, np.float32)) for f, a in features.items()}
        entry.update(face_emotion=rand(3, 768), asr_sentiment=rand(768), ocr_sentiment=torch.zeros(0, 768), label=name)
        data["test"][f"{name} keyword_0007.mp4"] = entry
        for k in range(3):
            data["train"][f"{name} other_{k}.mp4"] = {
                "clip": rand(16, 512),
                "beats": rand(16, 768),
                "face_emotion": rand(2, 768),
                "asr_sentiment": rand(768),
                "ocr_sentiment": rand(768),
                "label": name,
            }
    source = tmp_path_factory.mktemp("published") / "ekman6_features.pt"
    torch.save(data, source)
    out = source.parent / "imported"
    import_reference_features(source, out, progress=False)
    return out


@pytest.fixture(scope="module")
def report(published, videos, tiny_models):
    return run_parity(
        published,
        videos,
        checkpoint=tiny_models / "classifier",
        settings=SETTINGS,
        heads=(4, 8),
        extractors=EXTRACTORS,
        device="cpu",
        models_dir=tiny_models,
    )


@pytest.mark.slow
def test_parity_finds_each_videos_published_rows_and_scores_every_setting(report):
    assert {v: m.published_id for v, m in report.matches.items()} == {
        "anger": "anger/anger_keyword_0007",
        "joy": "joy/joy_keyword_0007",
    }
    assert all(m.score > 0.999 > m.runner_up_score for m in report.matches.values())
    for video in ("anger", "joy"):
        same = report.similarities[video]["reference"]
        assert same["clip"].rows == pytest.approx(1.0) and same["beats"].rows == pytest.approx(1.0)
    # The app's chunk-index defect moves every chunk of the 30-s track into its first seconds ...
    defect = report.similarities["anger"]["reference, beats reference-indices"]["beats"]
    assert defect.n_ours == defect.n_published == 16 and defect.rows < 0.999
    # ... and leaves a short track alone.
    assert report.similarities["joy"]["reference, beats reference-indices"]["beats"].rows == pytest.approx(1.0)
    # vemoclap's frames are never upscaled to 360 (the reference's are): its CLIP rows differ a little.
    assert report.similarities["joy"]["vemoclap"]["clip"].rows < 1.0 - 1e-6
    assert report.similarities["joy"]["reference"]["clip"].rows == pytest.approx(1.0, abs=1e-9)
    assert "missing" in similarity("face_emotion", None, np.ones((2, 4))).note


def test_parity_predictions_with_each_head_count(report):
    assert {p.heads for p in report.predictions} == {4, 8}
    for heads in (4, 8):
        for video in ("anger", "joy"):
            by_source = {p.source: p for p in report.predictions if p.video == video and p.heads == heads}
            assert set(by_source) == {"published", *(s.label for s in SETTINGS)}
            # The published rows of face/sentiment are the file's; ours are missing here (not extracted),
            # so only sources with the same inputs must agree: published vs itself through the classifier.
            assert by_source["published"].correct == (by_source["published"].label == video)
    four = {(p.video, p.source): p.probability for p in report.predictions if p.heads == 4}
    eight = {(p.video, p.source): p.probability for p in report.predictions if p.heads == 8}
    assert four != eight  # the same weights split into other heads predict otherwise
    table = report.table()
    assert "## anger" in table and "4 heads" in table and "reference, beats reference-indices" in table


@pytest.mark.slow
def test_parity_cli(published, videos, tiny_models, tmp_path, capsys):
    from vemoclap.cli import main

    out = tmp_path / "parity.json"
    code = main(
        [
            "parity",
            str(published),
            "--video",
            f"anger={videos['anger']}",
            "--video",
            f"joy:joy/joy_keyword_0007={videos['joy']}",
            "--extractors",
            ",".join(EXTRACTORS),
            "--setting",
            "reference",
            "--setting",
            "reference,beats.chunk_selection=reference-indices",
            "--checkpoint",
            str(tiny_models / "classifier"),
            "--heads",
            "both",
            "--device",
            "cpu",
            "--models-dir",
            str(tiny_models),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "joy/joy_keyword_0007 (given)" in printed and "nearest CLIP rows" in printed
    numbers = json.loads(out.read_text())
    assert numbers["matches"]["anger"]["published_id"] == "anger/anger_keyword_0007"
    assert numbers["mean_similarity"]["reference"]["clip"] == pytest.approx(1.0)


def test_setting_parse_and_bad_settings():
    from vemoclap.errors import OptionError

    setting = Setting.parse("reference, beats.chunk_selection=reference-indices, ocr_sentiment.min_confidence=0.5")
    assert setting.recipe == "reference"
    assert setting.options == {
        "beats": {"chunk_selection": "reference-indices"},
        "ocr_sentiment": {"min_confidence": 0.5},
    }
    for text in ("nosuchrecipe", "reference,beats", "reference,=3"):
        with pytest.raises(OptionError) as exc:
            Setting.parse(text)
        assert "\n" not in str(exc.value)


def test_evaluate_with_each_head_count(published, tiny_models, tmp_path, capsys):
    from vemoclap.cli import main
    from vemoclap.fusion import load_classifier
    from vemoclap.training.evaluate import compare_heads, evaluate
    from vemoclap.training.features import load_feature_set

    features = load_feature_set(published)
    four = evaluate(tiny_models / "classifier", features, split="train", heads=4)
    direct = load_classifier(tiny_models / "classifier", heads=4).predict_batch(features.split("train").features)
    np.testing.assert_allclose(four.probabilities, direct, rtol=1e-6)
    comparison = compare_heads(tiny_models / "classifier", features, (4, 8), split="train", out_dir=tmp_path / "cmp")
    assert not np.allclose(comparison.reports[4].probabilities, comparison.reports[8].probabilities)
    np.testing.assert_allclose(comparison.reports[4].probabilities, four.probabilities, rtol=1e-6)
    same = float(np.mean(comparison.reports[4].y_pred == comparison.reports[8].y_pred))
    assert comparison.agreement[(4, 8)] == pytest.approx(same)
    assert (tmp_path / "cmp" / "heads_4" / "metrics.json").is_file()
    assert "What settles it" in (tmp_path / "cmp" / "heads.md").read_text()

    code = main(
        [
            "evaluate",
            str(tiny_models / "classifier"),
            str(published),
            "--split",
            "train",
            "--heads",
            "4,8",
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| 4 (default) |" in printed and "| 8 |" in printed and "best:" in printed
    assert (tmp_path / "cli" / "heads_8" / "report.md").is_file()


@pytest.mark.slow
def test_published_beats_rows_tell_whether_they_carry_the_chunk_index_defect(videos, tiny_models, report):
    from vemoclap.parity import chunk_defect_signal
    from vemoclap.training.features import FeatureSet

    rows, _ = extract_settings(
        {"anger": videos["anger"]}, SETTINGS[:2], extractors=["beats"], device="cpu", models_dir=tiny_models
    )

    def published_with(setting):
        return FeatureSet(
            ids=["anger/a", "joy/b"],
            labels=["anger", "joy"],
            splits=["test", "test"],
            features=[{"beats": rows[setting]["anger"]["beats"]}, {"beats": np.ones((5, 768))}],
        )

    equidistant = chunk_defect_signal(published_with("reference"))
    assert (equidistant.videos_with_full_rows, equidistant.near_identical) == (1, 0)
    assert "'equidistant'" in equidistant.line()
    defect = chunk_defect_signal(published_with("reference, beats reference-indices"))
    assert defect.near_identical == 1 and "'reference-indices'" in defect.line()
    assert report.chunk_signal.line() in report.table()


# ---- which frame sampler made the published rows ----------------------------------------------


def test_aligned_similarity_compares_rows_by_content_not_count():
    rows = np.random.default_rng(0).normal(size=(40, 512))
    seen = rows[np.round(np.linspace(0, 39, 16)).astype(int)]
    same = similarity("clip", rows, seen)  # 40 scene rows here, the 16 the classifier kept there
    assert same.rows is None and same.aligned == pytest.approx(1.0) and "seen 1.000" in same.cell()
    fewer = similarity("clip", rows[:4], rows[:4])
    assert fewer.aligned == pytest.approx(1.0)  # zero rows on both sides agree
    other = similarity("clip", rows[::-1], seen)
    assert other.aligned < 0.5


def test_setting_with_frame_settings():
    from vemoclap.errors import OptionError

    setting = Setting.parse("reference, frames.positions=scenes, frames.short_side=null, beats.chunk_end=exclusive")
    recipe = setting.build_recipe()
    assert (recipe.frames.positions, recipe.frames.short_side) == ("scenes", None)
    assert setting.extractor_options == {"beats": {"chunk_end": "exclusive"}} and setting.sampler == "scenes"
    training_era = next(s for s in DEFAULT_SETTINGS if "training-era" in s.label)
    assert training_era.sampler == "scenes" and training_era.build_recipe().frames.short_side is None
    with pytest.raises(OptionError, match="frames.fps is not a frame setting"):
        Setting.parse("reference, frames.fps=3").build_recipe()


@pytest.mark.slow
def test_parity_names_the_sampler_that_reproduces_the_published_rows(tiny_models, tmp_path):
    """Published rows made by the training-era scene sampler (one CLIP row per scene, every BEATs
    chunk): the parity report ranks that setting first by the content of its CLIP and BEATs rows,
    and says so; the app's 16 frames come second."""
    from vemoclap.parity import ParityReport
    from vemoclap.synth import default_frame, make_video

    colours = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (10, 10, 10))
    bounds = np.cumsum((0, 12, 20, 8, 24, 16))

    def frame(index):
        image = default_frame(index, 96, 64, 8)
        image[32:] = colours[int(np.searchsorted(bounds, index, side="right")) - 1]
        return image

    video = make_video(tmp_path / "fear.mp4", duration=10.0, fps=8, size=(96, 64), audio="speech", frame_fn=frame)
    training_era = next(s for s in DEFAULT_SETTINGS if "training-era" in s.label)
    settings = [DEFAULT_SETTINGS[0], training_era]
    rows, ran = extract_settings({"fear": video}, settings, extractors=EXTRACTORS, device="cpu", models_dir=tiny_models)
    published = rows[training_era.label]["fear"]
    assert len(published["clip"]) == 5  # one row per scene
    similarities = {
        "fear": {
            s.label: {f: similarity(f, rows[s.label]["fear"][f], published[f]) for f in EXTRACTORS} for s in settings
        }
    }
    report = ParityReport(settings, {}, similarities, [], ran, {"fear": "fear"}, EXTRACTORS)
    ranked = report.samplers()
    assert ranked[0].setting == training_era.label and ranked[0].sampler == "scenes"
    assert ranked[0].score == pytest.approx(1.0)
    assert ranked[1].sampler == "fps-filter" and ranked[1].features["clip"] < 0.99
    assert f"best, by content: {training_era.label} (frames scenes)" in report.sampler_verdict()
