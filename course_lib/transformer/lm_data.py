r"""Language-model data: a byte-level BPE over WikiText-2, fixed-length blocks, a unigram baseline.

Source A §3.2 step 1, "将文本数据转换为输入序列和标签序列" (turn text into input and label
sequences), for a causal language model: the whole corpus becomes one stream of token ids
:math:`u_1 u_2 \dots u_N`, cut into blocks of ``block_size + 1`` ids; in every block the input is
the first ``block_size`` ids and the label sequence is the same block shifted by one,

.. math::
    x = (u_{k+1}, \dots, u_{k+T}), \qquad y = (u_{k+2}, \dots, u_{k+T+1}),

so one block gives T training examples at once (predict :math:`u_{k+t+1}` from :math:`u_{k+1..k+t}`).

The reference point for any language model is the **unigram** model, which ignores the context
and predicts every token with its training frequency (add-alpha smoothed):
:math:`\hat p(v) = (n_v + \alpha) / (N + \alpha V)`. Its cross-entropy on held-out text is the loss
a Transformer must beat to show it uses context at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..attention.checks import check_int, check_number
from ..tokenization import BPEConfig, BPETokenizer, byte_level_alphabet
from .checkpoint import verify_files

__all__ = ["END_OF_TEXT", "lm_tokenizer_config", "train_lm_tokenizer", "save_tokenizer", "load_tokenizer",
           "encode_corpus", "make_blocks", "BlockBatches", "eval_batches", "unigram_cross_entropy"]

END_OF_TEXT = "<|endoftext|>"     # GPT-2's only special token, id 0 here


def lm_tokenizer_config(vocab_size: int = 4096) -> BPEConfig:
    """GPT-2-style byte-level BPE settings: 256 byte symbols, ``<|endoftext|>``, ``min_frequency=2``."""
    vocab_size = check_int("vocab_size", vocab_size, minimum=257)    # 256 bytes + <|endoftext|> at least
    return BPEConfig(vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT],
                     pre_tokenizer="byte_level", initial_alphabet=byte_level_alphabet())


def train_lm_tokenizer(lines: list[str], vocab_size: int = 4096) -> BPETokenizer:
    """Train our byte-level BPE (chapter 4, equal to Hugging Face ``tokenizers``) on ``lines``."""
    if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
        raise TypeError("lines must be a list of strings (one text per item), e.g. text.splitlines(); "
                        f"got {type(lines).__name__}")
    return BPETokenizer(lm_tokenizer_config(vocab_size)).train(lines)


def save_tokenizer(tok: BPETokenizer, folder: str | Path) -> list[Path]:
    """Write ``vocab.json`` and ``merges.txt`` in GPT-2's format (``transformers.GPT2TokenizerFast``
    reads them too) and ``bpe_config.json`` (our :class:`BPEConfig`). Returns the paths written."""
    if not isinstance(tok, BPETokenizer):
        raise TypeError(f"tok must be our BPETokenizer (e.g. from train_lm_tokenizer), got {type(tok).__name__}")
    if not isinstance(folder, (str, Path)):
        raise TypeError(f"folder must be a str or pathlib.Path, got {type(folder).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "vocab.json", folder / "merges.txt", folder / "bpe_config.json"]
    paths[0].write_text(json.dumps(tok.vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    paths[1].write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tok.merges), encoding="utf-8")
    paths[2].write_text(json.dumps(tok.config.__dict__, indent=1), encoding="utf-8")
    return paths


def load_tokenizer(folder: str | Path, verify: bool = True) -> BPETokenizer:
    """Read a tokenizer written by :func:`save_tokenizer`.

    With ``verify`` (default) its three files are checked against the folder's ``checksums.json``
    (written by :func:`~.checkpoint.write_checksums`), as :func:`~.checkpoint.load_model` does;
    pass ``verify=False`` for a folder without one.

    Raises
    ------
    FileNotFoundError
        The folder or one of the files is missing, or (``verify``) ``checksums.json`` is.
    ChecksumError
        A file differs from its recorded SHA-256, or is not listed.
    """
    if not isinstance(folder, (str, Path)):
        raise TypeError(f"folder must be a str or pathlib.Path, got {type(folder).__name__}")
    folder = Path(folder)
    names = ["vocab.json", "merges.txt", "bpe_config.json"]
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(f"tokenizer folder {str(folder)!r} lacks {missing}; write it with save_tokenizer()")
    if verify:
        verify_files(folder, names)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    cfg = BPEConfig(**json.loads((folder / "bpe_config.json").read_text(encoding="utf-8")))
    return BPETokenizer(cfg, vocab=vocab, merges=merges)


def _check_stream(name: str, ids) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.long, torch.int32):
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer tensor of token ids (torch.long), got {got}; "
                        "build it with encode_corpus(tok, text)")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be a 1-D stream of token ids, got shape {tuple(ids.shape)}")


def _check_blocks(blocks) -> None:
    if not isinstance(blocks, torch.Tensor) or blocks.dtype not in (torch.long, torch.int32):
        got = blocks.dtype if isinstance(blocks, torch.Tensor) else type(blocks).__name__
        raise TypeError(f"blocks must be an integer tensor (M, block_size + 1) from make_blocks(), got {got}")
    if blocks.dim() != 2 or blocks.shape[1] < 2:
        raise ValueError(f"blocks must have shape (M, block_size + 1) with block_size >= 1, as make_blocks() "
                         f"returns, got {tuple(blocks.shape)}")


def encode_corpus(tok: BPETokenizer, text: str) -> torch.Tensor:
    """A whole text -> one LongTensor stream of token ids (N,); an empty text gives an empty stream."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (join a list of lines with '\\n'.join(...)), got {type(text).__name__}")
    return torch.tensor(tok.encode(text), dtype=torch.long)


def make_blocks(ids: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cut a stream (N,) into non-overlapping blocks (M, block_size + 1), M = (N - 1) // block_size.

    Consecutive blocks share one boundary token, so every token but the first is a label exactly
    once. Input ``x = blocks[:, :-1]``, labels ``y = blocks[:, 1:]``. The incomplete tail is dropped.
    """
    _check_stream("ids", ids)
    block_size = check_int("block_size", block_size, minimum=1)
    n = (len(ids) - 1) // block_size
    if n < 1:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for one block of {block_size} + 1")
    starts = torch.arange(n) * block_size                                        # (M,)
    return ids[starts[:, None] + torch.arange(block_size + 1)]                   # (M, T + 1)


class BlockBatches:
    """Training batches drawn from the blocks in shuffled epochs: ``batches(step) -> (x, y)``.

    Epoch e visits the blocks in the order of ``torch.randperm`` seeded with ``seed + e``, so the
    batch of any step is reproducible and independent of what happened before.
    ``x, y`` are (batch_size, block_size) on ``device``.
    """

    def __init__(self, blocks: torch.Tensor, batch_size: int, seed: int = 0, device=None):
        _check_blocks(blocks)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        seed = check_int("seed", seed)
        if batch_size > len(blocks):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(blocks)} available blocks")
        self.blocks, self.batch_size, self.seed, self.device = blocks, batch_size, seed, device
        self.per_epoch = len(blocks) // batch_size                               # incomplete batch dropped
        self._epoch, self._order = -1, None

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        step = check_int("step", step, minimum=0)
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.blocks), generator=g)
        b = self.blocks[self._order[k * self.batch_size:(k + 1) * self.batch_size]].to(self.device)  # (B, T+1)
        return b[:, :-1], b[:, 1:]                                               # (B, T) inputs, (B, T) labels


def eval_batches(blocks: torch.Tensor, batch_size: int, device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """All blocks in order, as (x, y) batches of up to ``batch_size`` blocks (for :func:`training.evaluate`)."""
    _check_blocks(blocks)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    out = []
    for i in range(0, len(blocks), batch_size):
        b = blocks[i:i + batch_size].to(device)
        out.append((b[:, :-1], b[:, 1:]))
    return out


def unigram_cross_entropy(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int,
                          alpha: float = 1.0) -> float:
    """Cross-entropy (nats per token) of the add-alpha unigram model of ``train_ids`` on ``eval_ids``.

    :math:`-\\frac{1}{N'} \\sum_i \\log \\hat p(u_i)`, :math:`\\hat p(v) = (n_v + \\alpha) / (N + \\alpha V)`.
    """
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    alpha = check_number("alpha", alpha, positive=True)
    for name, ids in (("train_ids", train_ids), ("eval_ids", eval_ids)):
        _check_stream(name, ids)
        if not len(ids):
            raise ValueError(f"{name} is empty; the unigram model needs at least one token to count and to score")
        if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
            raise ValueError(f"{name} holds ids outside [0, vocab_size={vocab_size}); pass the tokenizer's "
                             "vocabulary size")
    counts = torch.bincount(train_ids, minlength=vocab_size).double()
    logp = torch.log((counts + alpha) / (counts.sum() + alpha * vocab_size))     # log p_hat(v)
    return float(-logp[eval_ids].mean())
