"""The models and data every chapter-6 training measurement runs on.

* :func:`tiny_gpt` -- chapter 4's GPT: the trained ``checkpoints/tiny_gpt`` (4 layers, D = 128,
  V = 4096), or a fresh model of that shape with another depth or width (random weights).
* :func:`wikitext_blocks` -- WikiText-2 text encoded with the tiny GPT's own BPE, cut in blocks.
* :func:`lm_batches` -- a fixed list of ``(input_ids, labels)`` batches from those blocks.
* :func:`minilm_bert` -- our BERT with the MiniLM weights (chapter 4), and Hugging Face's.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..utils import check_int
from ..transformer.checkpoint import checkpoint_path, load_model
from ..transformer.gpt import GPT2Config, GPT2LMHeadModel

__all__ = ["tiny_gpt", "tiny_gpt_config", "wikitext_blocks", "lm_batches", "random_lm_batches", "minilm_bert"]


def tiny_gpt_config(**overrides) -> GPT2Config:
    """The ``checkpoints/tiny_gpt`` config (no dropout) with ``overrides``, e.g. ``n_layer=8``."""
    import json
    d = json.loads((checkpoint_path("tiny_gpt") / "config.json").read_text())
    d.pop("model_type", None)
    return replace(GPT2Config(**d), **overrides)


def tiny_gpt(pretrained: bool = True, seed: int = 0, **overrides) -> GPT2LMHeadModel:
    """Chapter 4's tiny GPT: the trained checkpoint, or (``pretrained=False`` or any override) a
    random model of the same family built with ``torch.manual_seed(seed)``. Returned in train mode."""
    if pretrained and not overrides:
        return load_model(checkpoint_path("tiny_gpt"), GPT2LMHeadModel, GPT2Config).train()
    torch.manual_seed(seed)
    return GPT2LMHeadModel(tiny_gpt_config(**overrides)).train()


def wikitext_blocks(block_size: int = 64, n_chars: int = 40_000) -> torch.Tensor:
    """The first ``n_chars`` characters of WikiText-2 (train) in tiny-GPT BPE ids, as (M, block_size + 1)."""
    from ..data import load_wikitext2
    from ..transformer.lm_data import encode_corpus, load_tokenizer, make_blocks
    block_size, n_chars = check_int("block_size", block_size, minimum=2), check_int("n_chars", n_chars, minimum=100)
    tok = load_tokenizer(checkpoint_path("tiny_gpt"))
    return make_blocks(encode_corpus(tok, load_wikitext2("train")[:n_chars]), block_size)


def lm_batches(blocks: torch.Tensor, n_batches: int, batch_size: int, seed: int = 0) -> list[tuple]:
    """``n_batches`` batches of ``batch_size`` random blocks: ``[(input_ids (B, T), labels (B, T)), ...]``."""
    n_batches, batch_size = check_int("n_batches", n_batches, minimum=1), check_int("batch_size", batch_size, minimum=1)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        b = blocks[torch.randint(len(blocks), (batch_size,), generator=g)]       # (B, T + 1)
        out.append((b[:, :-1].contiguous(), b[:, 1:].contiguous()))              # inputs, next tokens
    return out


def random_lm_batches(n_batches: int, batch_size: int, block_size: int, vocab_size: int,
                      seed: int = 0) -> list[tuple]:
    """Random-token batches (for tests that need no real text)."""
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randint(vocab_size, (2, batch_size, block_size), generator=g)) for _ in range(n_batches)]


def minilm_bert(attn_implementation: str = "sdpa"):
    """``(ours, hf)``: our :class:`~course_lib.transformer.bert.BertModel` and ``transformers.BertModel``,
    both with the all-MiniLM-L6-v2 weights, in eval mode (Hugging Face with its default attention path)."""
    from transformers import AutoModel

    from ..data import minilm_path
    from ..transformer.bert import BertModel
    path = minilm_path()
    return BertModel.from_pretrained(path, attn_implementation=attn_implementation).eval(), \
        AutoModel.from_pretrained(path).eval()
