"""Tiny randomly initialized text and speech models, of the real classes and file formats.

:func:`build` writes them into a models directory laid out as :mod:`vemoclap.models` expects, so the
ASR and OCR extractors load them through exactly the code a user runs. Their outputs are random
but the shapes, labels, tokenizers and loading paths are the real ones (the sentiment model keeps
hidden size 768 because that is the feature's width). Deterministic; about 20 MB on disk, built in a few seconds.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .marks import marked

# A small multilingual corpus, so the offline-trained tokenizers cover the scripts tests use.
_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "happy birthday to you, have a wonderful day!",
    "I love this movie so much, it is great and fun",
    "this is terrible, sad and awful news",
    "Sale 50% off today only - call 555 0100",
    "THE END. Thank you for watching",
    "Bonjour le monde, joyeux anniversaire",
    "Hola amigo, ¿cómo estás? Feliz cumpleaños",
    "Guten Tag, alles Gute zum Geburtstag",
    "Привет мир, с днём рождения",
    "你好世界 生日快乐",
    "こんにちは世界 お誕生日おめでとう",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Γεια σου κόσμε",
    "Merhaba dünya",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,:;!?'\"-%&()/",
]

SENTIMENT_LABELS = ("negative", "neutral", "positive")
# papluca/xlm-roberta-base-language-detection's label order (its config's id2label).
LANGUAGE_LABELS = (
    "ja",
    "nl",
    "ar",
    "pl",
    "de",
    "it",
    "pt",
    "tr",
    "es",
    "hi",
    "el",
    "ur",
    "bg",
    "en",
    "fr",
    "zh",
    "ru",
    "th",
    "sw",
    "vi",
)
# The whisper sizes that the ASR extractor's "auto" picks (CPU: small, CUDA: medium).
WHISPER_NAMES = ("small", "medium")


def _corpus(repeat: int = 20) -> list[str]:
    return _CORPUS * repeat


def _unigram_vocab(specials: list[str]) -> list[tuple[str, float]]:
    """A fixed SentencePiece-style vocabulary: the corpus's characters and whole words.

    (Training a Unigram model orders equal-score pieces differently from run to run; BPE training,
    used for the RoBERTa and NLLB tokenizers, is deterministic.)"""
    from collections import Counter

    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for line in _CORPUS:
        for word in line.split():
            words["\u2581" + word] += 1
            chars.update(word)
    ranked = lambda counts: sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # noqa: E731
    vocab = [(token, 0.0) for token in specials] + [("\u2581", -2.0)]
    vocab += [(char, -3.0 - i * 1e-3) for i, (char, _) in enumerate(ranked(chars))]
    vocab += [(word, -5.0 - i * 1e-3) for i, (word, _) in enumerate(ranked(words))]  # a word beats its letters
    return vocab


def _sentiment(target: Path) -> None:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    tokenizer = RobertaTokenizerFast().train_new_from_iterator(_corpus(), vocab_size=400, show_progress=False)
    tokenizer.model_max_length = 126
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={v: i for i, v in enumerate(SENTIMENT_LABELS)},
    )
    RobertaForSequenceClassification(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def _language_id(target: Path) -> None:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaTokenizerFast

    tokenizer = XLMRobertaTokenizerFast(vocab=_unigram_vocab(["<s>", "<pad>", "</s>", "<unk>"]) + [("<mask>", 0.0)])
    tokenizer.model_max_length = 126
    torch.manual_seed(1)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        id2label=dict(enumerate(LANGUAGE_LABELS)),
        label2id={v: i for i, v in enumerate(LANGUAGE_LABELS)},
    )
    XLMRobertaForSequenceClassification(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def _translation(target: Path) -> None:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizerFast

    # NLLB's tokenizer keeps its 200 language codes as special tokens when retrained.
    tokenizer = NllbTokenizerFast().train_new_from_iterator(_corpus(), vocab_size=600, show_progress=False)
    tokenizer.model_max_length = 128
    torch.manual_seed(2)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def _spell(target: Path) -> None:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5TokenizerFast

    tokenizer = T5TokenizerFast(vocab=_unigram_vocab(["<pad>", "</s>", "<unk>"]))  # + 100 <extra_id_*>
    tokenizer.model_max_length = 128
    torch.manual_seed(3)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def _whisper(target: Path, seed: int) -> None:
    import torch
    from whisper.model import ModelDimensions, Whisper

    # n_audio_ctx is fixed by the 30-s mel window; n_vocab 51865 is the multilingual tokenizer's,
    # so language detection and translation run as in the real models.
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=64,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(seed)
    model = Whisper(dims)
    # whisper leaves the decoder's learned positions uninitialized (torch.empty): give them values.
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
        # N(0, 1) token embeddings tied to the output make a random decoder repeat its last prompt
        # token forever; smaller ones let it say something in the reference's chunked mode too.
        model.decoder.token_embedding.weight.mul_(0.05)
    # Real checkpoints store float16 weights; whisper.load_model casts them back.
    state = {k: v.half() for k, v in model.state_dict().items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": asdict(dims), "model_state_dict": state}, target)


def _build_hub(directory: Path, writers) -> dict[str, Path]:
    from .. import models

    paths: dict[str, Path] = {}
    for key, writer in writers:
        target = Path(directory) / models.MODELS[key].hub_id
        target.mkdir(parents=True, exist_ok=True)
        writer(target)
        paths[key] = target
    return paths


def build_sentiment_models(directory: Path) -> dict[str, Path]:
    """The sentiment model (read by both the ASR and the OCR extractor)."""
    return _build_hub(directory, [("sentiment", _sentiment)])


def build_ocr_text_models(directory: Path) -> dict[str, Path]:
    """Language id, translation and spelling: the OCR extractor's text models."""
    return _build_hub(directory, [("language_id", _language_id), ("translation", _translation), ("spell", _spell)])


def build_whisper_checkpoints(directory: Path) -> dict[str, Path]:
    """Tiny openai-whisper checkpoints, one per size name."""
    from .. import models

    paths: dict[str, Path] = {}
    for seed, name in enumerate(WHISPER_NAMES):
        target = Path(directory) / models.MODELS["whisper"].filename.format(name=name)
        _whisper(target, seed=10 + seed)
        paths[f"whisper:{name}"] = target
    return paths


def build_whisper_models(directory: Path) -> dict[str, Path]:
    """The Whisper checkpoints and the same weights converted for faster-whisper."""
    from . import whisper_ct2

    return {**build_whisper_checkpoints(directory), **whisper_ct2.build(directory)}


def build(directory: Path) -> dict[str, Path]:
    """Write the tiny text models and Whisper checkpoints into ``directory``; returns model key → path
    (whisper: one per size)."""
    return marked(
        {
            **build_sentiment_models(directory),
            **build_ocr_text_models(directory),
            **build_whisper_checkpoints(directory),
        }
    )
