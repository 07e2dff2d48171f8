"""BEATs and AST audio extractors on tiny models in the real file formats, loaded the real way."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch

from vemoclap import extractors
from vemoclap.extractors import Clip
from vemoclap.extractors.audio import AUDIOSET_LABELS_CSV, AudioOutput, AudioTag
from vemoclap.extractors.beats import BEATs, BeatsConfig, kaldi_fbank
from vemoclap.media import Frames
from vemoclap.models import ModelUnavailable
from vemoclap.synth import speech_like
from vemoclap.tiny.audio import AST_ID, BEATS_FILE, build

SR = 16000


def make_clip(audio, sample_rate: int = SR) -> Clip:
    return Clip(
        frames=Frames(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1)),
        audio=np.asarray(audio, np.float32),
        sample_rate=sample_rate,
    )


def expected_chunk_starts(seconds: float, n: int = 16) -> np.ndarray:
    """The reference rule, written out: 3-s chunks every 1.5 s; more than n → n equidistant ones."""
    if seconds < 3.0:
        return np.zeros(0)
    starts = 1.5 * np.arange(int(np.floor((seconds - 3.0) / 1.5 + 1e-9)) + 1)
    if len(starts) > n:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, n)).astype(int)]
    return starts


def csv_rows() -> list[dict[str, str]]:
    with open(AUDIOSET_LABELS_CSV, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


NAMES = {row["display_name"] for row in csv_rows()}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("audio-models")
    build(directory)
    return directory


@pytest.fixture(scope="module")
def checkpoint(models_dir):
    return torch.load(models_dir / BEATS_FILE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def beats(models_dir):
    return extractors.get("beats", models_dir=models_dir, device="cpu").load()


@pytest.fixture(scope="module")
def speech20() -> Clip:
    return make_clip(speech_like(20.0))


@pytest.fixture(scope="module")
def beats20(beats, speech20) -> AudioOutput:
    return beats(speech20)


def assert_tags(output: AudioOutput, k: int = 5) -> None:
    assert len(output.tags) == k and all(isinstance(tag, AudioTag) for tag in output.tags)
    assert all(tag.label in NAMES for tag in output.tags)
    scores = [tag.score for tag in output.tags]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert len({tag.label for tag in output.tags}) == k


def test_audioset_labels_file():
    rows = csv_rows()
    assert [int(row["index"]) for row in rows] == list(range(527))
    assert len({row["mid"] for row in rows}) == 527
    assert rows[0]["mid"] == "/m/09x0r" and rows[0]["display_name"] == "Speech"
    assert rows[137]["display_name"] == "Music"


@pytest.mark.parametrize("seconds", [3.0, 1.2345])
def test_fbank_matches_an_independent_kaldi_fbank(seconds):
    # transformers' numpy spectrogram with Kaldi's options is a separate implementation of the
    # same Kaldi fbank (povey window, pre-emphasis, DC removal, mel filters drawn in mel space).
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    wave = speech_like(seconds, seed=3).astype(np.float64) * 2**15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Kaldi's lowest 128-bin filters are empty at 512 FFT
        mel = mel_filter_bank(257, 128, 20.0, 8000.0, SR, mel_scale="kaldi", triangularize_in_mel_space=True)
    reference = spectrogram(
        wave,
        window_function(400, "povey", periodic=False),
        frame_length=400,
        hop_length=160,
        fft_length=512,
        power=2.0,
        center=False,
        preemphasis=0.97,
        mel_filters=mel,
        log_mel="log",
        mel_floor=float(np.finfo(np.float32).eps),
        remove_dc_offset=True,
    ).T
    assert reference.shape == (1 + (len(wave) - 400) // 160, 128)  # snip_edges: whole frames only

    exact = kaldi_fbank(torch.from_numpy(wave)[None], dtype=torch.float64)[0].numpy()
    assert exact.shape == reference.shape
    assert np.abs(exact - reference).max() < 1e-5

    single = kaldi_fbank(torch.from_numpy(wave.astype(np.float32))[None])[0].numpy()
    assert single.dtype == np.float32
    assert np.abs(single - reference).max() < 1e-2  # float32 rounding, as in Kaldi and torchaudio


def test_checkpoint_has_the_official_layout_and_loads_strictly(checkpoint):
    assert set(checkpoint) == {"cfg", "model", "label_dict"}
    cfg = BeatsConfig.from_dict(checkpoint["cfg"])
    model = BEATs(cfg)
    state = checkpoint["model"]
    assert set(model.state_dict()) == set(state)
    model.load_state_dict(state, strict=True)

    layers, dim, heads = cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_attention_heads
    shapes = {  # names and shapes as in microsoft/unilm beats/BEATs.py and beats/backbone.py
        "patch_embedding.weight": (cfg.embed_dim, 1, 16, 16),
        "layer_norm.weight": (cfg.embed_dim,),
        "post_extract_proj.weight": (dim, cfg.embed_dim),
        "encoder.pos_conv.0.weight_g": (1, 1, cfg.conv_pos),
        "encoder.pos_conv.0.weight_v": (dim, dim // cfg.conv_pos_groups, cfg.conv_pos),
        "encoder.pos_conv.0.bias": (dim,),
        "encoder.layer_norm.weight": (dim,),
        "encoder.layers.0.self_attn.k_proj.weight": (dim, dim),
        "encoder.layers.0.self_attn.q_proj.bias": (dim,),
        "encoder.layers.0.self_attn.v_proj.weight": (dim, dim),
        "encoder.layers.0.self_attn.out_proj.weight": (dim, dim),
        "encoder.layers.0.self_attn.grep_linear.weight": (8, dim // heads),
        "encoder.layers.0.self_attn.grep_a": (1, heads, 1, 1),
        "encoder.layers.0.self_attn.relative_attention_bias.weight": (cfg.num_buckets, heads),
        f"encoder.layers.{layers - 1}.self_attn.relative_attention_bias.weight": (cfg.num_buckets, heads),
        "encoder.layers.0.self_attn_layer_norm.weight": (dim,),
        "encoder.layers.0.fc1.weight": (cfg.encoder_ffn_embed_dim, dim),
        "encoder.layers.0.fc2.weight": (dim, cfg.encoder_ffn_embed_dim),
        "encoder.layers.0.final_layer_norm.bias": (dim,),
        "predictor.weight": (527, dim),
        "predictor.bias": (527,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "patch_embedding.bias" not in state  # conv_bias False
    # One relative-position table serves every layer, as in the official encoder.
    first = model.encoder.layers[0].self_attn.relative_attention_bias
    assert all(layer.self_attn.relative_attention_bias is first for layer in model.encoder.layers)
    # label_dict maps class index → AudioSet mid.
    assert checkpoint["label_dict"][0] == "/m/09x0r" and len(checkpoint["label_dict"]) == 527


def test_checkpoint_with_other_names_is_refused_with_a_reason(checkpoint, tmp_path):
    state = dict(checkpoint["model"])
    # The name the new torch parametrization API would give the weight-normed conv.
    state["encoder.pos_conv.0.parametrizations.weight.original0"] = state.pop("encoder.pos_conv.0.weight_g")
    torch.save({**checkpoint, "model": state}, tmp_path / BEATS_FILE)
    with pytest.raises(ModelUnavailable, match="beats") as error:
        extractors.get("beats", models_dir=tmp_path, device="cpu").load()
    assert "layout" in str(error.value)


def test_beats_features_and_tags_on_speech(beats20):
    starts = expected_chunk_starts(20.0)
    assert beats20.name == "beats" and beats20.missing is None
    assert beats20.feature.shape == (len(starts), 768) and beats20.feature.dtype == np.float32
    assert np.isfinite(beats20.feature).all()
    assert np.allclose(beats20.chunk_times, starts)
    assert np.allclose(beats20.times, starts + 1.5)  # chunk centres
    assert len(beats20.chunk_top) == len(starts) and set(beats20.chunk_top) <= NAMES
    assert_tags(beats20)
    json.dumps(beats20.readable())


def test_beats_tags_come_from_the_predictor_on_the_features(beats20, checkpoint):
    # The feature is the time-averaged encoder output; the official head averages per-token
    # logits, which for a linear head equals the head applied to that average.
    weight, bias = checkpoint["model"]["predictor.weight"], checkpoint["model"]["predictor.bias"]
    probs = torch.sigmoid(torch.from_numpy(beats20.feature) @ weight.T + bias).numpy()
    mean = probs.mean(axis=0)
    top = np.argsort(-mean)[:5]
    names = {row["mid"]: row["display_name"] for row in csv_rows()}
    assert [tag.label for tag in beats20.tags] == [names[checkpoint["label_dict"][i]] for i in top]
    assert np.allclose([tag.score for tag in beats20.tags], mean[top], atol=1e-5)
    assert beats20.chunk_top == [names[checkpoint["label_dict"][i]] for i in probs.argmax(axis=1)]


def test_beats_chunk_features_depend_only_on_the_chunk(models_dir, beats20):
    long_audio = speech_like(30.0)
    assert np.array_equal(long_audio[: 20 * SR], speech_like(20.0))  # same signal, longer
    small_batches = extractors.get("beats", models_dir=models_dir, device="cpu", batch_size=5)
    output = small_batches(make_clip(long_audio))
    starts = expected_chunk_starts(30.0)
    assert len(starts) == 16 and output.feature.shape == (16, 768)
    assert np.allclose(output.chunk_times, starts) and output.chunk_times[-1] == 27.0
    common = [t for t in starts if t + 3.0 <= 20.0]
    assert len(common) >= 8
    rows_long = [output.chunk_times.index(t) for t in common]
    rows_short = [beats20.chunk_times.index(t) for t in common]
    assert np.allclose(output.feature[rows_long], beats20.feature[rows_short], atol=1e-4)


def test_beats_resamples_other_rates(beats):
    rate = 44100
    output = beats(make_clip(speech_like(5.0, sr=rate), sample_rate=rate))
    assert output.missing is None
    assert output.feature.shape == (len(expected_chunk_starts(5.0)), 768)


@pytest.mark.parametrize(
    "audio, reason",
    [
        (np.zeros(0, np.float32), "no audio track"),
        (speech_like(2.0), "shorter than one 3-s chunk"),
        (np.zeros(5 * SR, np.float32), "silent"),
        (1e-6 * speech_like(5.0), "silent"),
    ],
)
def test_beats_missing_audio_gives_a_reason(beats, audio, reason):
    output = beats(make_clip(audio))
    assert output.feature is None and not output.ok
    assert reason in output.missing
    assert output.tags == [] and output.chunk_times == []
    json.dumps(output.readable())


@pytest.mark.parametrize("name", ["beats", "ast"])
def test_model_unavailable_names_the_model(name, tmp_path):
    with pytest.raises(ModelUnavailable, match=f"'{name}'"):
        extractors.get(name, models_dir=tmp_path, device="cpu").load()


def test_ast_features_are_pooled_cls_and_distillation_tokens(models_dir):
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    ast = extractors.get("ast", models_dir=models_dir, device="cpu")
    audio = speech_like(8.0, seed=1)
    output = ast(make_clip(audio))
    starts = expected_chunk_starts(8.0)
    assert output.name == "ast" and output.missing is None
    assert output.feature.shape == (len(starts), 768)
    assert np.allclose(output.chunk_times, starts)
    assert_tags(output)

    # Independently: the first chunk through the saved feature extractor and model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = ASTFeatureExtractor.from_pretrained(models_dir / AST_ID)
    model = ASTForAudioClassification.from_pretrained(models_dir / AST_ID).eval()
    values = processor(audio[: 3 * SR], sampling_rate=SR, return_tensors="pt")["input_values"]
    assert tuple(values.shape) == (1, processor.max_length, 128) == (1, 1024, 128)
    with torch.inference_mode():
        hidden = model.audio_spectrogram_transformer(values).last_hidden_state
        logits = model.classifier(torch.from_numpy(output.feature))
    assert np.allclose(output.feature[0], hidden[0, :2].mean(0).numpy(), atol=1e-4)
    mean = torch.sigmoid(logits).mean(0).numpy()
    top = np.argsort(-mean)[:5]
    assert [tag.label for tag in output.tags] == [model.config.id2label[int(i)] for i in top]

    assert "silent" in ast(make_clip(np.zeros(4 * SR, np.float32))).missing


@pytest.mark.slow
def test_training_era_beats_rows_are_16_equidistant_rows_of_every_chunk(models_dir):
    """The training-era sampler embedded every chunk (starts before N − 3 s) and kept 16 equidistant
    rows; embedding the 16 equidistant chunks alone gives exactly those rows (each chunk is embedded
    on its own), which is how the recipe setting reads them."""
    from vemoclap.fusion.prepare import row_indices
    from vemoclap.recipes import TRAINING_ERA_SAMPLER

    assert TRAINING_ERA_SAMPLER["beats.chunk_end"] == "exclusive"
    clip = make_clip(speech_like(33.0))  # 21 chunk starts: 0, 1.5, …, 28.5 (30.0 is not before 30.0)
    every = extractors.get("beats", models_dir=models_dir, device="cpu", n_chunks=1000, chunk_end="exclusive")(clip)
    sixteen = extractors.get("beats", models_dir=models_dir, device="cpu", chunk_end="exclusive")(clip)
    assert every.feature.shape == (20, 768) and every.chunk_times[-1] == 28.5
    keep = row_indices(len(every.feature), 16)
    np.testing.assert_allclose(sixteen.feature, every.feature[keep], atol=1e-5)
    assert sixteen.chunk_times == [every.chunk_times[i] for i in keep]
