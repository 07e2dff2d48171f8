"""A registration is the only description of an extractor: one registered at run time, from this
test module, shows up in the CLI, the app's views, the fusion specs, the tiny models and
`vemoclap models`, and not among the reference classifier's inputs. Also: an unknown extractor
option is a user error, and the tiny-model cache is rebuilt when its builders change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from vemoclap import cli, extractors, fusion, recipes, registry, tiny
from vemoclap.errors import OptionError, UserError
from vemoclap.extractors.base import Clip, Extractor, ExtractorOutput, Missing
from vemoclap.media import Frames
from vemoclap.registry import FeatureSpec, Registration

TOY = "toy_emotion"
TOY_MODEL = "toy_audio_emotion"
TOY_FILE = "toy-audio-emotion.npy"


# ---- a throwaway audio-emotion extractor ---------------------------------------------------------


@dataclass(frozen=True)
class Options:
    gain: float = 1.0  # scales the embedding


@dataclass
class ToyOutput(ExtractorOutput):
    loudness: float = 0.0
    tags: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [f"{self.name}: loudness {self.loudness:.3f}, sounds {', '.join(self.tags) or 'quiet'}"]


class ToyAudioEmotionExtractor(Extractor):
    name = TOY
    inputs = ("audio",)
    output_type = ToyOutput
    options_type = Options

    def _load(self) -> None:
        from vemoclap import models

        path = models.local_path(TOY_MODEL, self.models_dir)
        self.projection = np.load(path) if path is not None else np.ones((1, 8), np.float32)

    def _run(self, clip: Clip) -> ToyOutput:
        audio = clip.audio_16k()
        if not audio.size:
            raise Missing("no audio")
        loudness = float(np.abs(audio).mean())
        feature = self.options.gain * loudness * self.projection
        return ToyOutput(feature=feature.astype(np.float32), loudness=loudness, tags=["hum"])


def build_toy_models(directory: Path) -> dict[str, Path]:
    path = Path(directory) / TOY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(0).normal(size=(1, 8)).astype(np.float32))
    return {TOY_MODEL: path}


def add_model_row() -> None:
    """The toy model's row in the model table (the one place that knows the table's shape)."""
    from vemoclap import models

    models.MODELS[TOY_MODEL] = models.ModelRef(
        TOY_MODEL, "file", filename=TOY_FILE, purpose="toy audio emotion (tests)", size_mb=1, license="mit"
    )


def remove_model_row() -> None:
    from vemoclap import models

    models.MODELS.pop(TOY_MODEL, None)


@pytest.fixture
def toy():
    add_model_row()
    registry.register(
        Registration(
            TOY,
            f"{__name__}:ToyAudioEmotionExtractor",
            (TOY_MODEL,),
            FeatureSpec(TOY, 8, 1, False, "toy loudness embedding"),
            run_by_default=True,
            reference_input=False,
            tiny=(f"{__name__}:build_toy_models",),
        )
    )
    yield registry.EXTRACTORS[TOY]
    registry.unregister(TOY)
    remove_model_row()


def test_a_registered_extractor_runs_and_is_listed_everywhere(toy, tmp_path, capsys):
    # it builds, loads its tiny model through the model table, and runs
    written = tiny.load_builder(toy.tiny[0])(tmp_path)
    assert written == {TOY_MODEL: tmp_path / TOY_FILE} and written[TOY_MODEL].is_file()
    extractor = extractors.get(TOY, device="cpu", models_dir=tmp_path, gain=2.0)
    frames = Frames(np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0))
    output = extractor(Clip(frames=frames, audio=np.full(16000, 0.5, np.float32)))
    assert output.ok and output.feature.shape == (1, 8) and type(extractor).feature_name == TOY

    # run by default, but not an input of the reference classifier
    assert TOY in registry.default_extractors()
    assert TOY not in registry.reference_features() and TOY not in fusion.default_config().features
    assert fusion.reference_features() == ("clip", "beats", "face_emotion", "asr_sentiment", "ocr_sentiment")

    # fusion: its feature spec is known, so a classifier can be configured on it
    assert fusion.FEATURES[TOY].dim == 8 and not fusion.is_sequence(TOY)
    config = fusion.default_config(["clip", TOY])
    assert config.feature_dims[TOY] == 8 and config.feature_lengths[TOY] == 1

    # tiny models: its builder is one of them and part of the cache's manifest
    assert toy.tiny[0] in registry.tiny_builders() and toy.tiny[0] in tiny.manifest()["builders"]

    # the app's views render its output by its own describe()
    from vemoclap.app.views import details_html
    from vemoclap.results import Result

    html = details_html(Result(source="toy.mp4", outputs={TOY: output}))
    assert f"data-extractor='{TOY}'" in html and "loudness 0.500" in html

    # the CLI offers it, and `vemoclap models` lists its model and who uses it
    with pytest.raises(SystemExit):
        cli.main(["analyze", "--help"])
    assert TOY in capsys.readouterr().out
    assert cli.main(["models", "--models-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(TOY_MODEL))
    assert TOY in row


def test_unregistering_removes_it(toy):
    registry.unregister(TOY)
    assert TOY not in registry.default_extractors() and TOY not in fusion.FEATURES
    with pytest.raises(OptionError, match="unknown extractor"):
        extractors.get(TOY)


# ---- options ---------------------------------------------------------------------------------


def test_an_unknown_extractor_option_is_a_user_error_naming_the_valid_ones():
    with pytest.raises(OptionError) as caught:
        extractors.get("beats", device="cpu", n_chunk=4)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert "'beats'" in message and "'n_chunk'" in message and "n_chunks" in message and "chunk_selection" in message


def test_an_unknown_option_in_a_recipe_is_a_user_error_not_a_deviation():
    recipe = recipes.get_recipe("vemoclap")
    recipe.extractors["beats"]["chunk_size"] = 3
    with pytest.raises(OptionError, match=r"recipe vemoclap v1: extractor 'beats' has no option 'chunk_size'"):
        recipes.plan(recipe, ["beats"], device="cpu")
    with pytest.raises(OptionError, match="'whisper_size'"):  # the user's own options too
        recipes.plan(
            recipes.get_recipe("vemoclap"), ["asr_sentiment"], overrides={"asr_sentiment": {"whisper_size": 1}}
        )


def test_every_recipe_option_is_a_field_of_the_extractors_options():
    for recipe in recipes.RECIPES.values():
        for name, options in recipe.extractors.items():
            extractors.check(name, options)  # raises on an option the extractor does not have
            assert set(options) <= set(extractors.option_names(extractors.options_type(name)))


def test_each_extractor_takes_the_options_its_registration_names():
    for name in registry.EXTRACTORS:
        cls = extractors.extractor_class(name)
        assert cls.options_type is extractors.options_type(name), name
        assert cls.model_keys == registry.EXTRACTORS[name].models


def test_shortcuts_fill_the_extractors_options():
    assert registry.with_shortcuts(None, whisper_model="tiny", face_detector="lbp") == {
        "asr_sentiment": {"whisper_model": "tiny"},
        "face_emotion": {"detector": "lbp"},
    }
    only_faces = registry.with_shortcuts({"clip": {}}, ["face_emotion"], whisper_model="tiny", face_detector=None)
    assert only_faces == {"clip": {}}


def test_the_face_detector_choices_come_from_one_table():
    from vemoclap.extractors.faces import DETECTORS, FALLBACKS, detector_choices

    parser = cli.build_parser()
    analyze = parser._subparsers._group_actions[0].choices["analyze"]
    option = next(a for a in analyze._actions if "--face-detector" in a.option_strings)
    assert tuple(option.choices) == detector_choices() and set(detector_choices()) == {*DETECTORS, *FALLBACKS}
    with pytest.raises(OptionError, match="unknown face detector"):
        extractors.get("face_emotion", device="cpu", detector="mtcnn")


# ---- the tiny-model cache ------------------------------------------------------------------------

BUILDS: list[str] = []


def build_one(directory: Path) -> dict[str, Path]:
    BUILDS.append("one")
    (Path(directory) / "one.txt").write_text("1")
    return {}


def build_two(directory: Path) -> dict[str, Path]:
    BUILDS.append("two")
    (Path(directory) / "two.txt").write_text("2")
    return {}


def test_the_tiny_model_cache_is_rebuilt_when_a_builder_is_added(tmp_path, monkeypatch):
    builders = [f"{__name__}:build_one"]
    monkeypatch.setattr(tiny, "tiny_builders", lambda: tuple(builders))
    monkeypatch.setattr(tiny, "make_tiny_classifier", lambda directory: Path(directory))
    monkeypatch.setattr(tiny, "make_tiny_reference_classifier", lambda directory: Path(directory))
    BUILDS.clear()
    folder = tiny.tiny_models_dir(tmp_path / "tiny")
    assert (folder / "one.txt").is_file() and BUILDS == ["one"]
    assert tiny.tiny_models_dir(folder) == folder and BUILDS == ["one"]  # unchanged: reused
    builders.append(f"{__name__}:build_two")
    tiny.tiny_models_dir(folder)
    assert (folder / "two.txt").is_file() and BUILDS == ["one", "one", "two"]
    assert json.loads((folder / tiny.MANIFEST).read_text())["builders"] == tiny.manifest()["builders"]


def test_a_cache_from_before_the_manifest_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny, "tiny_builders", lambda: (f"{__name__}:build_one",))
    monkeypatch.setattr(tiny, "make_tiny_classifier", lambda directory: Path(directory))
    monkeypatch.setattr(tiny, "make_tiny_reference_classifier", lambda directory: Path(directory))
    old = tmp_path / "tiny"
    old.mkdir()
    (old / tiny.MANIFEST).write_text("vemoclap tiny random models\n")  # the old bare marker
    BUILDS.clear()
    tiny.tiny_models_dir(old)
    assert BUILDS == ["one"] and (old / "one.txt").is_file()


def test_every_tiny_builder_marks_what_it_writes(tmp_path):
    """Tiny models are random weights whoever builds them (not only make_tiny_models), so nothing
    made from them can come out unmarked."""
    from vemoclap.models import origin
    from vemoclap.tiny import audio, vision

    written = {**vision.build(tmp_path / "v"), **audio.build(tmp_path / "a")}
    assert written and {key: origin(path) for key, path in written.items()} == dict.fromkeys(written, "random")
