"""Tokenizers: train a small byte-level BPE on descriptions, or extend a real checkpoint's tokenizer."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from talking_points.pipeline.models import special_tokens as st

__all__ = ["train_bpe", "add_special_tokens", "special_token_ids"]


def train_bpe(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts` (covers any string: unseen words fall back to bytes)."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[st.PAD, st.BOS, st.EOS, st.UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=st.BOS, eos_token=st.EOS, pad_token=st.PAD, unk_token=st.UNK
    )
    return add_special_tokens(fast)


def add_special_tokens(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Add the point/segmentation tokens (and a pad token if missing). Resize the LM's embeddings after."""
    tokenizer.add_special_tokens({"additional_special_tokens": list(st.ADDED)}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": st.PAD})
    return tokenizer


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Ids of the added tokens, keyed by their text; raises if one is missing."""
    ids = {}
    for t in st.ADDED:
        i = tokenizer.convert_tokens_to_ids(t)
        if i is None or i == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer lacks special token {t!r}; call add_special_tokens first")
        ids[t] = int(i)
    return ids
