r"""A trained BPE tokeniser: encode any text fast, decode ids back, exactly like ``tokenizers``.

Encoding a word replays the learned merges: among the adjacent pairs of the word,
merge the one learned *earliest* (lowest rank), leftmost first, until no learned
pair is left.  Rescanning every pair after each merge costs O(n^2) for a word of n
characters, and a 100 kB URL, base64 blob or minified script is *one* word.  Like
``tokenizers`` (``models/bpe/word.rs``), :func:`apply_merges` therefore keeps the
symbols in a linked list and the candidate merges in a heap keyed by
``(rank, position)``: each merge pushes at most two new pairs (with its left and
right neighbours), and entries made stale by an earlier merge are skipped when
popped (lazy invalidation), so a word costs O(n log n).

The segmentation of each word is cached (bounded: the oldest words are dropped
first, very long words are not kept), as ``tokenizers`` does.

Text -> words follows ``tokenizers`` too: special tokens written in the text are
cut out first and kept whole; every other non-empty piece is pre-tokenised on its
own (with ``add_prefix_space`` each such piece gets its own leading space).
"""
from __future__ import annotations

import heapq
import re
from typing import Iterable, Mapping

from .bpe import BPEConfig, Pair, _check_config, count_words, train_bpe
from .checks import as_id_list, check_bool, check_int, check_text, check_texts
from .pretokenizers import byte_level_decode, pre_tokenize

__all__ = ["BPETokenizer", "apply_merges", "CACHE_SIZE", "CACHE_MAX_WORD"]

CACHE_SIZE = 65536          # words kept in the segmentation cache (oldest dropped first)
CACHE_MAX_WORD = 256        # longer words are not cached (tokenizers' limit as well)


def apply_merges(symbols: list[int], merges: Mapping[Pair, tuple[int, int]]) -> list[int]:
    """Encode one word: apply the learned merges, lowest rank first, then leftmost, in O(n log n).

    Parameters
    ----------
    symbols : the word as a list of token ids (one per character)
    merges : ``{(left_id, right_id): (rank, merged_id)}``

    Returns
    -------
    The token ids after every applicable merge.  Same result as rescanning all pairs
    after each merge (the textbook loop), but each merge only looks at its two new neighbours.
    """
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, (list, tuple)):
        raise TypeError(f"apply_merges() takes the word as a list of token ids, got {type(symbols).__name__}; "
                        f"map characters to ids first, e.g. [vocab[ch] for ch in word]")
    for pos, s in enumerate(symbols):
        check_int(s, f"apply_merges() symbol at position {pos}", minimum=0)
    if not isinstance(merges, Mapping):
        raise TypeError(f"apply_merges() takes merges as a dict {{(left_id, right_id): (rank, merged_id)}}, "
                        f"got {type(merges).__name__}")
    return _apply_merges(list(symbols), merges)


def _apply_merges(symbols: list[int], merges: Mapping[Pair, tuple[int, int]]) -> list[int]:
    """:func:`apply_merges` without the input checks (called once per word while encoding)."""
    n = len(symbols)
    if n < 2:
        return list(symbols)
    get, pop, push = merges.get, heapq.heappop, heapq.heappush
    symbols = list(symbols)                          # symbols[i] = -1 once merged into its left neighbour
    nxt = list(range(1, n + 1))                      # doubly linked list over the positions
    nxt[-1] = -1
    prv = list(range(-1, n - 1))
    # a heap entry is one int, rank * 2^32 + position of the left symbol: pops lowest rank, then leftmost
    heap = [(m[0] << 32) | i for i, pair in enumerate(zip(symbols, symbols[1:])) if (m := get(pair))]
    heapq.heapify(heap)
    while heap:
        entry = pop(heap)
        i = entry & 0xFFFFFFFF
        j = nxt[i]
        if j < 0 or symbols[i] < 0:                  # last symbol, or merged away
            continue
        m = get((symbols[i], symbols[j]))
        if m is None or m[0] != entry >> 32:         # stale: a neighbour changed since the push
            continue
        new = symbols[i] = m[1]                      # a b -> ab, kept at the left position
        symbols[j] = -1
        k = nxt[i] = nxt[j]
        if k >= 0:
            prv[k] = i
            if m := get((new, symbols[k])):          # new pair (ab, y)
                push(heap, (m[0] << 32) | i)
        p = prv[i]
        if p >= 0 and (m := get((symbols[p], new))):  # new pair (x, ab)
            push(heap, (m[0] << 32) | p)
    return [s for s in symbols if s >= 0]


class BPETokenizer:
    """A trained (or loaded) BPE tokeniser: ``train`` / ``tokenize`` / ``encode`` / ``decode``.

    Examples
    --------
    >>> tok = BPETokenizer(BPEConfig(vocab_size=40)).train(["low lower lowest newer wider"] * 5)
    >>> tok.tokenize("lowest")                  # doctest: +SKIP
    """

    def __init__(self, config: BPEConfig | None = None, vocab: dict[str, int] | None = None,
                 merges: list[tuple[str, str]] | None = None):
        self.config = _check_config(BPEConfig() if config is None else config, "BPETokenizer()")
        self.vocab: dict[str, int] = {}
        self.merges: list[tuple[str, str]] = []
        if vocab is not None:
            self._set_model(vocab, [] if merges is None else merges)
        elif merges is not None:
            raise ValueError("BPETokenizer got merges= without vocab=; pass both (or neither, then call train)")

    def _set_model(self, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
        if not isinstance(vocab, Mapping) or not vocab:
            raise (TypeError if not isinstance(vocab, Mapping) else ValueError)(
                f"vocab must be a non-empty dict {{token: id}}, got {type(vocab).__name__} of size "
                f"{len(vocab) if hasattr(vocab, '__len__') else '?'}")
        for tok, i in vocab.items():
            if not isinstance(tok, str) or not tok:
                raise (TypeError if not isinstance(tok, str) else ValueError)(
                    f"vocab keys must be non-empty str tokens, got {tok!r}")
            check_int(i, f"vocab[{tok!r}]", minimum=0)
        if len(set(vocab.values())) != len(vocab):
            raise ValueError("vocab maps two tokens to the same id; every token needs its own id")
        if isinstance(merges, (str, bytes)) or not isinstance(merges, (list, tuple)):
            raise TypeError(f"merges must be a list of (left, right) string pairs, got {type(merges).__name__}")
        cfg = self.config
        for name, tok in [("unk_token", cfg.unk_token)] + [("special token", t) for t in cfg.special_tokens]:
            if tok is not None and tok not in vocab:
                raise ValueError(f"{name} {tok!r} is not in the vocabulary; add it to special_tokens "
                                 f"(training) or to vocab (loading)")
        merge_map: dict[Pair, tuple[int, int]] = {}
        for r, m in enumerate(merges):
            if not (isinstance(m, (list, tuple)) and len(m) == 2 and all(isinstance(s, str) for s in m)):
                raise TypeError(f"merges[{r}] must be a (left, right) pair of str, got {m!r}")
            missing = [s for s in (m[0], m[1], m[0] + m[1]) if s not in vocab]
            if missing:
                raise ValueError(f"merges[{r}] = {tuple(m)} uses {missing[0]!r}, which is not in the vocabulary")
            merge_map[vocab[m[0]], vocab[m[1]]] = (r, vocab[m[0] + m[1]])    # a repeated pair keeps its last rank
        self.vocab, self.merges = dict(vocab), [tuple(m) for m in merges]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}   # earlier merge = lower rank
        self._merge_map = merge_map
        self._unk_id = self.vocab.get(cfg.unk_token) if cfg.unk_token is not None else None
        self._cache: dict[str, tuple[int, ...]] = {}
        specials = sorted(cfg.special_tokens, key=len, reverse=True)   # longest match first
        self._special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None

    # ------------------------------------------------------------------ training
    def train(self, texts: Iterable[str], trace: list | None = None) -> "BPETokenizer":
        """Learn vocabulary and merges from ``texts`` (like ``Tokenizer.train_from_iterator``).

        ``texts`` is an iterable of str (a list of lines, a generator); ``trace`` (optional
        list) receives ``(left, right, count)`` for every merge.  Texts without a single
        word (an empty list, only blank lines) raise ``ValueError``: nothing can be learned.
        """
        texts = check_texts(texts, "BPETokenizer.train()")
        _check_config(self.config, "BPETokenizer.train()")
        counts = count_words(texts, self.config)
        if not counts:
            raise ValueError("BPETokenizer.train() found no words in texts (empty, or only whitespace); "
                             "pass at least one non-empty text")
        vocab, merges = train_bpe(counts, self.config, trace)
        self._set_model(vocab, merges)
        return self

    # ------------------------------------------------------------------ encoding
    def _check_trained(self) -> None:
        if not self.vocab:
            raise ValueError("this BPETokenizer has no vocabulary yet: call train(texts) first "
                             "(or pass vocab= and merges=)")

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """Ids of one pre-tokenised word (cached)."""
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        vocab, unk = self.vocab, self._unk_id
        try:
            symbols = [vocab[ch] for ch in word]
        except KeyError:        # characters outside the vocabulary become unk_token (or vanish if there is none)
            symbols = [i for i in (vocab.get(ch, unk) for ch in word) if i is not None]
        ids = tuple(_apply_merges(symbols, self._merge_map))
        if len(word) <= CACHE_MAX_WORD:
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[next(iter(self._cache))]          # drop the oldest entry
            self._cache[word] = ids
        return ids

    def bpe(self, word: str) -> list[str]:
        """Segment one pre-tokenised word by replaying the merges, lowest rank (then leftmost) first."""
        self._check_trained()
        check_text(word, "bpe()")
        return [self.id_to_token[i] for i in self._word_ids(word)]

    def _encode(self, text: str) -> list[int]:
        out: list[int] = []
        pieces = self._special_re.split(text) if self._special_re else [text]
        for k, piece in enumerate(pieces):
            if k % 2 == 1:                          # odd pieces are the special-token matches
                out.append(self.vocab[piece])
            elif piece:                             # empty pieces (around specials) add nothing
                for word in pre_tokenize(piece, self.config.pre_tokenizer, self.config.add_prefix_space):
                    out.extend(self._word_ids(word))
        return out

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (special tokens written in the text are kept whole); ``""`` -> ``[]``."""
        self._check_trained()
        check_text(text, "tokenize()")
        return [self.id_to_token[i] for i in self._encode(text)]

    def encode(self, text: str) -> list[int]:
        """Text -> token ids; ``""`` -> ``[]``."""
        self._check_trained()
        return self._encode(check_text(text, "encode()"))

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Token ids -> text, like ``tokenizers`` ``decode``.

        ``ids`` may be a list, a 1-D NumPy array or torch tensor of integers; ``[]`` gives ``""``.
        ``whitespace`` models have no decoder: tokens are joined by single spaces (the
        word boundaries were thrown away by pre-tokenisation).  ``byte_level`` models
        map the characters back to bytes, so ``decode(encode(text)) == text`` as long as
        the alphabet holds all 256 byte symbols (the default, see :class:`BPEConfig`).
        """
        self._check_trained()
        ids = as_id_list(ids, len(self.vocab), self.id_to_token.__contains__, "decode()")
        check_bool(skip_special_tokens, "skip_special_tokens")
        special = set(self.config.special_tokens)
        toks = [self.id_to_token[i] for i in ids]
        if skip_special_tokens:
            toks = [t for t in toks if t not in special]
        if self.config.pre_tokenizer == "byte_level":
            return byte_level_decode(toks)
        return " ".join(toks)

    def truncated(self, n_merges: int) -> "BPETokenizer":
        """The tokeniser made of the first ``n_merges`` merges (= training with a smaller ``vocab_size``).

        Training is greedy, so stopping earlier gives exactly a prefix of the merge list.
        """
        self._check_trained()
        check_int(n_merges, "n_merges")
        if not 0 <= n_merges <= len(self.merges):
            raise ValueError(f"n_merges must be in [0, {len(self.merges)}], got {n_merges}")
        merges = self.merges[:n_merges]
        keep = set(self.vocab) - {a + b for a, b in self.merges[n_merges:]} | {a + b for a, b in merges}
        vocab = {t: i for t, i in self.vocab.items() if t in keep}
        cfg = BPEConfig(**{**self.config.__dict__, "vocab_size": len(vocab)})
        return BPETokenizer(cfg, vocab=vocab, merges=merges)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab={len(self.vocab)}, merges={len(self.merges)}, "
                f"pre_tokenizer={self.config.pre_tokenizer!r})")
