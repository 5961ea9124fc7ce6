"""The reference side: the same tokenisers built with Hugging Face ``tokenizers`` / ``transformers``.

Kept apart from the from-scratch code so that a reader sees exactly which library
objects we compare against, with which settings.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

from .bpe import BPEConfig, BPETokenizer

__all__ = ["hf_bpe", "train_hf_bpe", "hf_merges", "to_hf_tokenizer", "merge_agreement",
           "sequence_agreement", "load_minilm_tokenizer"]


def hf_bpe(cfg: BPEConfig):
    """An untrained ``tokenizers.Tokenizer`` with a BPE model and the matching ``BpeTrainer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token=cfg.unk_token))
    if cfg.pre_tokenizer == "whitespace":
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    elif cfg.pre_tokenizer == "byte_level":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=cfg.add_prefix_space, use_regex=True)
        tok.decoder = decoders.ByteLevel()
    else:
        raise ValueError(f"pre_tokenizer must be 'whitespace' or 'byte_level', got {cfg.pre_tokenizer!r}")
    return tok, trainers.BpeTrainer(**cfg.trainer_kwargs())


def train_hf_bpe(texts: Iterable[str], cfg: BPEConfig):
    """Train the Hugging Face BPE on ``texts`` with the settings of ``cfg``."""
    tok, trainer = hf_bpe(cfg)
    tok.train_from_iterator(texts, trainer)
    return tok


def hf_merges(tok) -> list[tuple[str, str]]:
    """The merge list of a trained ``tokenizers`` BPE, in rank order."""
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def to_hf_tokenizer(ours: BPETokenizer):
    """Load *our* vocabulary and merges into a ``tokenizers`` BPE (proof that they are usable)."""
    from tokenizers import models
    tok, _ = hf_bpe(ours.config)
    tok.model = models.BPE(vocab=dict(ours.vocab), merges=list(ours.merges), unk_token=ours.config.unk_token)
    tok.add_special_tokens(list(ours.config.special_tokens))
    return tok


def merge_agreement(ours: Sequence, theirs: Sequence, n: int | None = None) -> float:
    """Fraction of the first ``n`` ranks where both merge lists hold the same pair."""
    n = min(len(ours), len(theirs)) if n is None else n
    if n == 0:
        raise ValueError("merge_agreement needs n > 0 and non-empty merge lists")
    ours, theirs = list(ours[:n]), list(theirs[:n])
    return sum(a == b for a, b in zip(ours, theirs)) / n


def sequence_agreement(ours: Sequence[Sequence], theirs: Sequence[Sequence]) -> float:
    """Fraction of texts whose token sequences are identical."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"need two equally long, non-empty lists, got {len(ours)} and {len(theirs)}")
    return sum(list(a) == list(b) for a, b in zip(ours, theirs)) / len(ours)


def load_minilm_tokenizer():
    """The real all-MiniLM-L6-v2 tokenizer (``transformers.AutoTokenizer``), offline."""
    from transformers import AutoTokenizer
    from ..data import minilm_path
    return AutoTokenizer.from_pretrained(str(minilm_path()))
