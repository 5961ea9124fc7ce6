r"""Byte-pair encoding (BPE, 字节对编码) from scratch, merge-for-merge equal to Hugging Face ``tokenizers``.

Training (Sennrich et al., 2016) starts from single characters and repeatedly
*merges the most frequent adjacent pair* into a new symbol:

$$
(a^\star, b^\star) = \arg\max_{(a, b)} \; \sum_{w \in \text{words}} n(w)\, c_{ab}(w)
$$

where $n(w)$ is how often word $w$ occurs in the corpus and $c_{ab}(w)$ how often
the pair $(a, b)$ occurs in the current segmentation of $w$.  Every merge adds one
token to the vocabulary; training stops at ``vocab_size`` tokens, or when the best
pair occurs fewer than ``min_frequency`` times.

Encoding a new word replays the learned merges, lowest rank first; that part, and
the :class:`BPETokenizer` that holds a trained model, live in :mod:`.bpe_tokenizer`.

Exact rules of ``tokenizers.trainers.BpeTrainer`` (``trainer.rs``) reproduced here:

1. ids: special tokens first (in the given order), then the alphabet sorted by
   code point, then one id per new merged string, in creation order;
2. ``limit_alphabet`` keeps the most frequent characters (characters of
   ``initial_alphabet`` always count as most frequent); characters outside the
   alphabet are simply dropped from the training words;
3. a pair is counted once per occurrence, times the word frequency (``"aaa"``
   holds ``(a, a)`` twice);
4. **ties**: among pairs with the same count, the pair with the smallest
   ``(id_a, id_b)`` wins; since the alphabet is sorted by code point and merged
   tokens get increasing ids, this means "older and alphabetically smaller first";
5. inside a word a merge is applied left to right without overlap
   (``a a a -> aa a``), and only the neighbouring pair counts change
   (incremental update: no recount of the corpus after each merge);
6. stale counts in the priority queue are refreshed lazily on pop;
7. if a merge produces a string that already exists (``"ab"+"c"`` and
   ``"a"+"bc"``), the old id is reused and only the *last* rank of a repeated
   pair is kept in the merge table.
"""
from __future__ import annotations

import heapq
import itertools
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .checks import check_bool, check_int, check_texts, check_token, check_token_list, check_word_counts
from .pretokenizers import byte_level_alphabet, pre_tokenize

__all__ = ["BPEConfig", "count_words", "count_pairs", "train_bpe", "merge_word"]

Pair = tuple[int, int]


@dataclass
class BPEConfig:
    """Settings of a BPE tokeniser, named like ``tokenizers`` (trainer, model, pre-tokenizer).

    ``BpeTrainer(**cfg.trainer_kwargs())`` and ``BPE(unk_token=cfg.unk_token)`` build the
    Hugging Face equivalent (see :mod:`course_lib.tokenization.reference`).  Values are
    checked when the config is made and again when a tokeniser uses it.

    ``initial_alphabet=None`` (the default) means: all 256 byte symbols for ``byte_level``
    (what ``tokenizers.ByteLevelBPETokenizer`` passes to its trainer, and what makes
    ``decode(encode(text)) == text`` hold for every text), nothing for ``whitespace``.
    An explicit list, even ``[]``, is used as given.
    """
    vocab_size: int = 30000             # stop when the vocabulary has this many tokens
    min_frequency: int = 0              # stop when the best pair is rarer than this
    special_tokens: list[str] = field(default_factory=list)   # ids 0, 1, ... in this order
    limit_alphabet: int | None = None   # keep at most this many initial characters
    initial_alphabet: list[str] | None = None  # characters always kept (None: see above)
    max_token_length: int | None = None  # no merge may build a longer token (in characters)
    unk_token: str | None = None        # model: replaces characters outside the vocabulary
    pre_tokenizer: str = "whitespace"   # "whitespace" or "byte_level"
    add_prefix_space: bool = False      # byte_level only: prepend " " to each text

    def __post_init__(self):
        self.validate()

    def validate(self) -> "BPEConfig":
        """Raise ``TypeError`` / ``ValueError`` naming the first setting that is not allowed."""
        check_int(self.vocab_size, "BPEConfig.vocab_size", minimum=1)
        check_int(self.min_frequency, "BPEConfig.min_frequency", minimum=0)
        check_token_list(self.special_tokens, "BPEConfig.special_tokens")
        check_int(self.limit_alphabet, "BPEConfig.limit_alphabet", minimum=0, allow_none=True)
        if self.initial_alphabet is not None:
            check_token_list(self.initial_alphabet, "BPEConfig.initial_alphabet")
            long = [c for c in self.initial_alphabet if len(c) != 1]
            if long:
                raise ValueError(f"BPEConfig.initial_alphabet holds single characters, got {long[:3]}; "
                                 f"write list('abc') for the characters of a string")
        check_int(self.max_token_length, "BPEConfig.max_token_length", minimum=1, allow_none=True)
        check_token(self.unk_token, "BPEConfig.unk_token", allow_none=True)
        if self.pre_tokenizer not in ("whitespace", "byte_level"):
            raise ValueError(f"pre_tokenizer must be 'whitespace' or 'byte_level', got {self.pre_tokenizer!r}")
        check_bool(self.add_prefix_space, "BPEConfig.add_prefix_space")
        return self

    def alphabet(self) -> list[str]:
        """The characters always kept: ``initial_alphabet``, or its default (see the class docstring)."""
        if self.initial_alphabet is None:
            return byte_level_alphabet() if self.pre_tokenizer == "byte_level" else []
        return list(self.initial_alphabet)

    def trainer_kwargs(self) -> dict:
        """Keyword arguments for ``tokenizers.trainers.BpeTrainer``."""
        kw = {"vocab_size": self.vocab_size, "min_frequency": self.min_frequency,
              "special_tokens": list(self.special_tokens), "initial_alphabet": self.alphabet(),
              "show_progress": False}
        if self.limit_alphabet is not None:
            kw["limit_alphabet"] = self.limit_alphabet
        if self.max_token_length is not None:
            kw["max_token_length"] = self.max_token_length
        return kw


def _check_config(cfg, where: str) -> BPEConfig:
    if not isinstance(cfg, BPEConfig):
        raise TypeError(f"{where} takes a BPEConfig, got {type(cfg).__name__}; build one with BPEConfig(...)")
    return cfg.validate()


def count_words(texts: Iterable[str], cfg: BPEConfig) -> Counter:
    """Word-frequency dictionary ``{word: count}`` of pre-tokenised ``texts`` (one text = one sequence)."""
    texts = check_texts(texts, "count_words()")
    cfg = _check_config(cfg, "count_words()")
    counts: Counter = Counter()
    for text in texts:
        counts.update(pre_tokenize(text, cfg.pre_tokenizer, cfg.add_prefix_space))
    return counts


def count_pairs(word_counts: Mapping[str, int]) -> Counter:
    """Adjacent character pairs of every word, weighted by word frequency (step 0 of training)."""
    check_word_counts(word_counts, "count_pairs()")
    pairs: Counter = Counter()
    for word, n in word_counts.items():
        for pair in zip(word, word[1:]):
            pairs[pair] += n                        # count(a, b) = sum_w n(w) c_ab(w)
    return pairs


def merge_word(symbols: list[int], a: int, b: int, new: int, lengths: list[int],
               max_length: int = sys.maxsize) -> list[tuple[Pair, int]]:
    """Replace every non-overlapping ``(a, b)`` in ``symbols`` (in place) by ``new``, left to right.

    Returns the pair-count changes ``[((left, right), +1 or -1), ...]`` caused by the
    merge in this one word (the merged pair itself is not reported).  ``lengths[id]``
    is the token length in characters, used only for ``max_token_length``.
    """
    if not isinstance(symbols, list):
        raise TypeError(f"merge_word() edits symbols in place, so it takes a list, got {type(symbols).__name__}")
    changes = []
    i = 0
    while i < len(symbols):
        if symbols[i] == a and i + 1 < len(symbols) and symbols[i + 1] == b:
            if i > 0:                               # x a b -> x ab: (x, a) disappears
                left = symbols[i - 1]
                changes.append(((left, a), -1))
                if lengths[left] + lengths[new] < max_length:
                    changes.append(((left, new), +1))
            symbols[i:i + 2] = [new]
            if i < len(symbols) - 1:                # a b y -> ab y: (b, y) disappears
                right = symbols[i + 1]
                changes.append(((b, right), -1))
                if lengths[right] + lengths[new] < max_length:
                    changes.append(((new, right), +1))
        i += 1
    return changes


def _initial_alphabet(word_counts: Mapping[str, int], cfg: BPEConfig) -> list[str]:
    freq: Counter = Counter()
    for word, n in word_counts.items():
        for ch in word:
            freq[ch] += n
    for ch in cfg.alphabet():
        freq[ch] = sys.maxsize                      # "always keep" (usize::MAX in Rust)
    kept = list(freq)
    if cfg.limit_alphabet is not None and len(kept) > cfg.limit_alphabet:
        # drop the rarest characters; ties broken by code point (arbitrary in Rust)
        kept = sorted(kept, key=lambda ch: (freq[ch], ch))[len(kept) - cfg.limit_alphabet:]
    return sorted(kept)                             # ids follow code-point order


def train_bpe(word_counts: Mapping[str, int], cfg: BPEConfig,
              trace: list | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn a BPE vocabulary and merge list from a word-frequency dictionary.

    Parameters
    ----------
    word_counts : mapping word -> number of occurrences (see :func:`count_words`)
    cfg : BPEConfig (``vocab_size``, ``min_frequency``, ``special_tokens``, ...)
    trace : optional list; receives ``(left, right, count)`` for every merge, in order

    Returns
    -------
    vocab : dict token -> id (special tokens, alphabet, merged tokens)
    merges : list of (left, right) string pairs, in the order they were learned (rank)
    """
    check_word_counts(word_counts, "train_bpe()")
    cfg = _check_config(cfg, "train_bpe()")
    if trace is not None and not isinstance(trace, list):
        raise TypeError(f"trace must be a list (it receives the merges) or None, got {type(trace).__name__}")
    vocab: dict[str, int] = {}
    tokens: list[str] = []                          # id -> token string

    def add(token: str) -> int:
        if token not in vocab:
            vocab[token] = len(tokens)
            tokens.append(token)
        return vocab[token]

    for tok in cfg.special_tokens:                  # 1. special tokens
        add(tok)
    for ch in _initial_alphabet(word_counts, cfg):  # 2. alphabet, by code point
        add(ch)
    if len(vocab) > cfg.vocab_size:
        raise ValueError(f"vocab_size={cfg.vocab_size} is smaller than the special tokens plus the "
                         f"alphabet ({len(vocab)} symbols); raise vocab_size or set limit_alphabet")

    # 3. every distinct word as a list of symbol ids, with its frequency
    words = [[vocab[ch] for ch in w if ch in vocab] for w in word_counts]
    counts = list(word_counts.values())
    lengths = [len(t) for t in tokens]              # characters per token
    max_length = cfg.max_token_length or sys.maxsize

    # 4. count all adjacent pairs once, remembering which words hold each pair
    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for i, (symbols, n) in enumerate(zip(words, counts)):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += n                  # count(a, b) = sum_w n(w) c_ab(w)
            where[pair].add(i)
    # max-heap on count, then smallest (id_a, id_b); heapq is a min-heap, so negate the count
    tie = itertools.count()                         # never compare the word sets
    heap = [(-pair_counts[p], p, next(tie), pos) for p, pos in where.items() if pair_counts[p] > 0]
    heapq.heapify(heap)

    # 5. merge until the vocabulary is full
    learned: list[Pair] = []
    while len(vocab) < cfg.vocab_size and heap:
        neg_count, pair, _, pos = heapq.heappop(heap)
        count = pair_counts[pair]
        if -neg_count != count:                     # stale entry: re-queue with the true count
            heapq.heappush(heap, (-count, pair, next(tie), pos))
            continue
        if count < 1 or count < cfg.min_frequency:
            break
        new = add(tokens[pair[0]] + tokens[pair[1]])
        if new == len(lengths):
            lengths.append(len(tokens[new]))
        learned.append(pair)
        if trace is not None:
            trace.append((tokens[pair[0]], tokens[pair[1]], count))
        # update only the words that contain the pair, and only the neighbouring pairs
        fresh: dict[Pair, set[int]] = defaultdict(set)
        for i in pos:
            for changed, sign in merge_word(words[i], pair[0], pair[1], new, lengths, max_length):
                pair_counts[changed] += sign * counts[i]
                if sign > 0:
                    fresh[changed].add(i)
        for p, p_pos in fresh.items():
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p, next(tie), p_pos))

    # 6. a pair learned twice keeps its last rank (the Rust merge table is a hash map)
    last = {p: r for r, p in enumerate(learned)}
    merges = [(tokens[p[0]], tokens[p[1]]) for r, p in enumerate(learned) if last[p] == r]
    return vocab, merges


def __getattr__(name: str):
    """``from course_lib.tokenization.bpe import BPETokenizer`` keeps working (it lives in ``bpe_tokenizer``)."""
    if name in ("BPETokenizer", "apply_merges"):
        from . import bpe_tokenizer
        return getattr(bpe_tokenizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
