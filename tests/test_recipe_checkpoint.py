"""The feature recipe travels from extraction through the feature files into a trained checkpoint,
and a checkpoint without one is read by its layout (reference layout → ``reference``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vemoclap import recipes
from vemoclap.fusion import AttentionClassifier, default_config, load_classifier, reference_features, save_checkpoint
from vemoclap.testing.features import make_synthetic_feature_set
from vemoclap.training.features import FeatureSetError, load_feature_set
from vemoclap.training.train import train

FAST = dict(d_model=16, lr=1e-3, batch_size=16, dropout=0.1, device="cpu", progress=False, epochs=2, patience=0)
FIVE = reference_features()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _settings(recipe: dict) -> dict:
    return {key: recipe[key] for key in ("name", "version", "frames", "extractors", "precision")}


def _small_set(directory, recipe=None, seed=0):
    return make_synthetic_feature_set(
        directory, n_per_class=4, test_per_class=1, features=FIVE, rows=(16, 18), seed=seed, recipe=recipe
    )


def test_recipe_round_trips_through_a_checkpoint(tmp_path):
    # The reference recipe as a CPU run resolves it: Whisper large-v3 becomes small, fp16 becomes fp32.
    ran = recipes.get_recipe("reference").resolve("cpu")
    assert ran.extractors["asr_sentiment"]["whisper_model"] == recipes.CPU_WHISPER and ran.deviations
    cache = _small_set(tmp_path / "cache", ran.to_dict())
    feature_set = load_feature_set(cache)
    recorded, how = feature_set.recipe()
    assert how == "recorded" and recorded["name"] == "reference"

    report = train(feature_set, tmp_path / "model", **FAST)
    stored = json.loads((tmp_path / "model" / "classifier.json").read_text())["recipe"]
    assert stored["name"] == "reference" and stored["deviations"] == []  # the settings as they ran ...
    assert stored["extractors"]["asr_sentiment"]["whisper_model"] == recipes.CPU_WHISPER
    assert stored["precision"]["asr_sentiment"] == "fp32"
    assert any("large-v3" in note for note in stored["notes"])  # ... and the deviations kept as notes
    assert report.config.training["recipe_source"] == "recorded"

    classifier = load_classifier(tmp_path / "model")
    chosen = recipes.choose(None, classifier)
    assert _settings(chosen.to_dict()) == _settings(stored)
    # An Analyzer built on this checkpoint runs that recipe (no model is loaded to build it).
    from vemoclap.pipeline import Analyzer

    analyzer = Analyzer(["clip", "beats"], classifier=tmp_path / "model", device="cpu")
    assert analyzer.recipe.name == "reference"
    assert analyzer.recipe.extractors["beats"] == stored["extractors"]["beats"]


def test_train_recipe_option_names_the_recipe(tmp_path):
    cache = _small_set(tmp_path / "cache")  # synthetic: no recipe recorded
    named = train(cache, tmp_path / "named", recipe="reference", **FAST)
    assert named.config.recipe["name"] == "reference"
    default = train(cache, tmp_path / "default", **FAST)
    assert default.config.recipe["name"] == recipes.DEFAULT_RECIPE  # said in a warning, recorded all the same
    assert load_classifier(tmp_path / "default").config.recipe["name"] == "vemoclap"


def test_mixed_recipes_are_refused(tmp_path):
    cache = _small_set(tmp_path / "cache", recipes.get_recipe("reference").to_dict())
    feature_set = load_feature_set(cache)
    other = recipes.get_recipe("vemoclap").to_dict()
    feature_set.info[0]["recipe"] = other
    with pytest.raises(FeatureSetError, match="different recipes") as exc:
        feature_set.recipe()
    assert "\n" not in str(exc.value)


def test_old_checkpoint_without_a_recipe_loads_by_its_layout(tmp_path):
    torch.manual_seed(0)
    reference_layout = default_config(FIVE)
    assert reference_layout.recipe is None
    save_checkpoint(tmp_path / "old", AttentionClassifier.from_config(reference_layout), reference_layout)
    assert "recipe" in json.loads((tmp_path / "old" / "classifier.json").read_text())
    config = json.loads((tmp_path / "old" / "classifier.json").read_text())
    config.pop("recipe")  # written before recipes existed
    (tmp_path / "old" / "classifier.json").write_text(json.dumps(config))
    assert recipes.choose(None, load_classifier(tmp_path / "old")).name == "reference"

    other = default_config(("clip", "beats"))
    save_checkpoint(tmp_path / "ours", AttentionClassifier.from_config(other), other)
    assert recipes.choose(None, load_classifier(tmp_path / "ours")).name == "vemoclap"


def test_reference_pair_without_recipe_is_reference(tmp_path):
    config = default_config(FIVE)
    model = AttentionClassifier.from_config(config)
    raw = {
        "features": list(FIVE),
        "feature_dims": dict(config.feature_dims),
        "d_model": 512,
        "n_labels": 6,
        "dropout": 0.5,
        "n_frames": 16,
        "n_heads": 8,
    }
    torch.save(raw, tmp_path / "model_config.pt")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    classifier = load_classifier(tmp_path)
    assert classifier.config.num_heads == 4  # the reference app's, not the config's 8
    assert classifier.config.training["config_heads"] == 8
    note = classifier.heads_note()
    assert note and "unverified" in note and "says 8" in note
    assert recipes.choose(None, classifier).name == "reference"
    chosen = load_classifier(tmp_path, heads=8)
    assert chosen.config.num_heads == 8 and chosen.heads_note() is None  # the user's settled choice
    assert load_classifier(tmp_path, heads=4).heads_note() is None
    ours = tmp_path / "ours"
    save_checkpoint(ours, model, config)
    assert load_classifier(ours).heads_note() is None  # our own checkpoints state their heads


def test_feature_files_without_a_recipe_say_where_theirs_came_from(tmp_path):
    from vemoclap.training.store import recipe_of_metadata

    assert recipe_of_metadata({"source": "imported from x.pkl"})[0]["name"] == "reference"
    assert recipe_of_metadata({"extractors": {"clip": {}}})[0]["name"] == "vemoclap"
    assert recipe_of_metadata({"extractors": {}})[0] is None


def test_a_recipe_from_a_newer_version_loads_without_its_unknown_keys(caplog):
    value = recipes.get_recipe("reference").to_dict()
    value["future_setting"] = 1
    value["frames"]["future_frame_setting"] = 2
    recipe = recipes.Recipe.from_dict(value)
    assert recipe.name == "reference" and recipe.frames.short_side == 360
    assert "future_setting" in caplog.text


def test_settled_applies_each_deviation():
    recipe = recipes.get_recipe("reference")
    recipe.deviations = [
        recipes.Deviation("ocr_sentiment.text_unit", "frame", "default", "this version does not take"),
        recipes.Deviation("clip.precision", "fp32", "fp16", "set by the user"),
    ]
    settled = recipe.settled()
    assert "text_unit" not in settled.extractors["ocr_sentiment"] and settled.precision["clip"] == "fp16"
    assert settled.deviations == [] and len(settled.notes) == len(recipe.notes) + 2
    assert np.all([recipe.extractors["ocr_sentiment"]["text_unit"] == "frame"])  # the original is untouched


def test_extraction_records_the_recipe_as_run(tiny_models, tmp_path):
    from vemoclap.testing import make_video
    from vemoclap.training.dataset import load_dataset
    from vemoclap.training.extraction import CONFIG_FILE, extract_dataset
    from vemoclap.training.store import feature_path, read_metadata

    for label in ("anger", "joy"):
        make_video(tmp_path / "videos" / label / f"{label}_0.mp4", duration=2.0, fps=8, size=(96, 64))
    videos = load_dataset(tmp_path / "videos")
    out = tmp_path / "features"
    extract_dataset(
        videos,
        out,
        extractors=["clip"],
        device="cpu",
        models_dir=tiny_models,
        recipe="reference",
        positions=4,
        progress=False,
    )
    meta = read_metadata(feature_path(out, videos[0].id))
    assert meta["recipe"]["name"] == "reference" and meta["recipe"]["frames"]["upscale"] is True
    assert json.loads((out / CONFIG_FILE).read_text())["config"]["recipe"] == "reference"
    assert load_feature_set(out).recipe()[0]["name"] == "reference"
    # Without a recipe, the Analyzer's default (vemoclap) is recorded.
    extract_dataset(
        videos,
        tmp_path / "plain",
        extractors=["clip"],
        device="cpu",
        models_dir=tiny_models,
        positions=4,
        progress=False,
    )
    assert read_metadata(feature_path(tmp_path / "plain", videos[0].id))["recipe"]["name"] == "vemoclap"


def test_each_reference_version_is_its_own_set_of_values():
    """A checkpoint that names an older version of the reference recipe gets that version's values
    from the one table of changes; the newest is the default."""
    v1, v2 = recipes.get_recipe("reference", version=1), recipes.get_recipe("reference", version=2)
    assert "detection" not in v1.extractors["ocr_sentiment"]
    assert v2.extractors["ocr_sentiment"]["detection"] == "paddleocr"
    newest = max(recipes.REFERENCE_CHANGES)
    assert recipes.get_recipe("reference").version == newest
    for version, (changes, _note) in recipes.REFERENCE_CHANGES.items():
        recipe = recipes.get_recipe("reference", version=version)
        for setting, value in changes.items():
            where, key = setting.split(".", 1)
            got = getattr(recipe.frames, key) if where == "frames" else recipe.extractors[where][key]
            assert got == value, (version, setting)
    with pytest.raises(recipes.OptionError, match="no version 99"):
        recipes.get_recipe("reference", version=99)
