"""The tiny openai-whisper checkpoints, converted for faster-whisper, so both backends run the SAME weights.

openai-whisper checkpoint (``<dir>/whisper/<size>.pt``, written by :mod:`vemoclap.tiny.text`)
→ a transformers ``WhisperForConditionalGeneration`` with a Whisper tokenizer built from
openai-whisper's own ``multilingual.tiktoken`` (same ids, same special tokens)
→ a CTranslate2 model (``ctranslate2.converters.TransformersConverter``) in
``<dir>/whisper-ct2/<size>/`` (``model.bin``, ``config.json``, ``vocabulary.json``,
``tokenizer.json``, ``preprocessor_config.json``; ``generation_config.json`` tells the decoder's
length, which released faster-whisper folders leave at Whisper's 448), the layout faster-whisper loads.

:func:`convert_checkpoint` works on any openai-whisper checkpoint (the benchmarks convert their
full-size random Whisper with it); weights are kept in float32 so that the agreement between the
backends is not blurred by a cast.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CT2_DIR = "whisper-ct2"  # <models dir>/whisper-ct2/<size>/, as vemoclap.models' "whisper_ct2" entry
_CT2_FILES = ("model.bin", "config.json", "vocabulary.json")


def _hf_state(state: dict, n_audio_layer: int, n_text_layer: int) -> dict:
    """openai-whisper parameter names → transformers' Whisper names (tensors unchanged)."""
    attn = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
    block = {
        "attn_ln": "self_attn_layer_norm",
        "cross_attn_ln": "encoder_attn_layer_norm",
        "mlp_ln": "final_layer_norm",
        "mlp.0": "fc1",
        "mlp.2": "fc2",
    }
    out = {}
    for name, tensor in state.items():
        side, rest = name.split(".", 1)
        if rest.startswith("blocks."):
            _, index, rest = rest.split(".", 2)
            head, _, param = rest.rpartition(".")
            if head.startswith(("attn.", "cross_attn.")):
                kind, proj = head.split(".")
                head = ("self_attn" if kind == "attn" else "encoder_attn") + "." + attn[proj]
            else:
                head = block[head]
            target = f"model.{side}.layers.{index}.{head}.{param}"
        elif rest == "positional_embedding":
            target = f"model.{side}.embed_positions.weight"
        elif rest == "token_embedding.weight":
            target = "model.decoder.embed_tokens.weight"
        elif rest.startswith(("ln_post.", "ln.")):
            target = f"model.{side}.layer_norm.{rest.split('.', 1)[1]}"
        else:  # conv1, conv2
            target = f"model.{side}.{rest}"
        out[target] = tensor
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]
    return out


def _tokenizer(n_vocab: int):
    """A transformers Whisper tokenizer with openai-whisper's vocabulary and special tokens."""
    import whisper
    from transformers import WhisperTokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from whisper.tokenizer import get_encoding

    multilingual = n_vocab >= 51865
    name = "multilingual" if multilingual else "gpt2"
    num_languages = n_vocab - 51765 - int(multilingual)
    encoding = get_encoding(name, num_languages=num_languages)
    path = str(Path(whisper.__file__).parent / "assets" / f"{name}.tiktoken")
    vocab, merges = TikTokenConverter(vocab_file=path).extract_vocab_merges_from_model(path)
    specials = sorted(encoding._special_tokens.items(), key=lambda item: item[1])
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges)
    tokenizer.add_tokens(
        [token for token, _ in specials[1:]], special_tokens=True
    )  # <|endoftext|> is already the unk/eos
    for token, index in specials:
        if tokenizer.convert_tokens_to_ids(token) != index:
            raise RuntimeError(
                f"tokenizer conversion: {token} is {tokenizer.convert_tokens_to_ids(token)}, "
                f"openai-whisper says {index}"
            )
    return tokenizer, encoding, num_languages if multilingual else 0


def _generation_config(config, encoding, num_languages: int):
    """Whisper generation settings from the openai tokenizer (suppressed tokens, language ids)."""
    from transformers import GenerationConfig
    from whisper.tokenizer import LANGUAGES, Tokenizer

    special = encoding._special_tokens
    languages = [f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]]
    tokenizer = Tokenizer(encoding, num_languages=num_languages)
    suppress = sorted(set(tokenizer.non_speech_tokens))
    return GenerationConfig(
        decoder_start_token_id=special["<|startoftranscript|>"],
        eos_token_id=special["<|endoftext|>"],
        pad_token_id=special["<|endoftext|>"],
        bos_token_id=special["<|endoftext|>"],
        no_timestamps_token_id=special["<|notimestamps|>"],
        is_multilingual=bool(languages),
        suppress_tokens=suppress,
        begin_suppress_tokens=[tokenizer.encode(" ")[0], special["<|endoftext|>"]],
        lang_to_id={token: special[token] for token in languages},
        task_to_id={"transcribe": special["<|transcribe|>"], "translate": special["<|translate|>"]},
        max_length=config.max_target_positions,
    )


def to_transformers(checkpoint: str | Path, target: str | Path) -> Path:
    """Write an openai-whisper ``checkpoint`` as a transformers Whisper model folder ``target``."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    saved = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    dims = saved["dims"]
    if dims["n_audio_state"] != dims["n_text_state"]:
        raise ValueError(f"{checkpoint}: encoder and decoder widths differ; transformers' Whisper needs one d_model")
    d = dims["n_audio_state"]
    tokenizer, encoding, num_languages = _tokenizer(dims["n_vocab"])
    special = encoding._special_tokens
    config = WhisperConfig(
        vocab_size=dims["n_vocab"],
        num_mel_bins=dims["n_mels"],
        d_model=d,
        encoder_layers=dims["n_audio_layer"],
        encoder_attention_heads=dims["n_audio_head"],
        decoder_layers=dims["n_text_layer"],
        decoder_attention_heads=dims["n_text_head"],
        encoder_ffn_dim=4 * d,
        decoder_ffn_dim=4 * d,
        max_source_positions=dims["n_audio_ctx"],
        max_target_positions=dims["n_text_ctx"],
        decoder_start_token_id=special["<|startoftranscript|>"],
        pad_token_id=special["<|endoftext|>"],
        bos_token_id=special["<|endoftext|>"],
        eos_token_id=special["<|endoftext|>"],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    state = {
        k: v.float()
        for k, v in _hf_state(saved["model_state_dict"], dims["n_audio_layer"], dims["n_text_layer"]).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise RuntimeError(f"whisper conversion of {checkpoint}: missing {missing}, unexpected {unexpected}")
    model.generation_config = _generation_config(config, encoding, num_languages)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    WhisperFeatureExtractor(feature_size=dims["n_mels"]).save_pretrained(target)
    return target


def to_ctranslate2(transformers_dir: str | Path, target: str | Path, quantization: str | None = None) -> Path:
    """Convert a transformers Whisper folder into a CTranslate2 model folder (what faster-whisper loads)."""
    from ctranslate2.converters import TransformersConverter

    target = Path(target)
    converter = TransformersConverter(
        str(transformers_dir), copy_files=["tokenizer.json", "preprocessor_config.json", "generation_config.json"]
    )
    converter.convert(str(target), quantization=quantization, force=True)
    return target


def convert_checkpoint(checkpoint: str | Path, target: str | Path) -> Path:
    """openai-whisper checkpoint → CTranslate2 folder ``target`` (via a temporary transformers folder)."""
    from ..quiet import quiet_transformers as _quiet_transformers

    with tempfile.TemporaryDirectory(prefix="vemoclap-whisper-hf-") as tmp, _quiet_transformers():
        hf = to_transformers(checkpoint, Path(tmp) / "hf")
        staging = Path(str(target) + ".part")
        if staging.exists():
            shutil.rmtree(staging)
        to_ctranslate2(hf, staging)
        if Path(target).exists():
            shutil.rmtree(target)
        staging.rename(target)
    return Path(target)


def build(directory: str | Path) -> dict[str, Path]:
    """Convert every ``<directory>/whisper/<size>.pt`` into ``<directory>/whisper-ct2/<size>/``.

    Run after the tiny openai-whisper checkpoints are written. Returns ``"whisper_ct2:<size>"`` → folder.
    """
    import importlib.util

    directory = Path(directory)
    written: dict[str, Path] = {}
    if importlib.util.find_spec("ctranslate2") is None:  # the fast-asr extra is optional: openai-whisper runs
        log.info("ctranslate2 is not installed: no tiny faster-whisper models (the ASR uses openai-whisper)")
        return written
    for checkpoint in sorted((directory / "whisper").glob("*.pt")):
        target = directory / CT2_DIR / checkpoint.stem
        written[f"whisper_ct2:{checkpoint.stem}"] = convert_checkpoint(checkpoint, target)
        log.info("converted %s → %s", checkpoint, target)
    return written
