r"""The data pipeline of Source A §3.1: tokens, vocabulary, sub-sampling, negatives.

1. **Tokenisation** (分词): lower-case, keep runs of letters (``"don't" -> don, t``).
2. **Vocabulary** (词汇表): words seen at least ``min_count`` times, sorted by
   descending count (ties: last seen first), exactly as gensim does.
3. **Sub-sampling** (高频词下采样) of frequent words, gensim's formula exactly: with
   $c_w$ the count of word $w$, $N$ the number of retained tokens and $t$ = ``sample``,
   the probability of *keeping* an occurrence is

   $$ p_{keep}(w) = \min\Big(1, \big(\sqrt{c_w / (tN)} + 1\big)\, \frac{tN}{c_w}\Big). $$

   (Mikolov et al. wrote $1-\sqrt{t/f}$ for the *discard* probability; the word2vec C
   code, and gensim, use the formula above.)
4. **Negative-sampling table** (负采样): negatives are drawn from the unigram
   distribution raised to ``ns_exponent`` ($P(w) \propto c_w^{0.75}$), stored as a
   cumulative table so that sampling is ``searchsorted`` on uniform integers.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .checks import check_ids, check_int, check_number, check_sentences

_WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and return its runs of ASCII letters (``""`` gives ``[]``)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize takes one string, got {type(text).__name__}; "
                        "for several texts use [tokenize(t) for t in texts]")
    return _WORD.findall(text.lower())


def wikitext_sentences(text: str, max_lines: int | None = None) -> list[list[str]]:
    """Split raw WikiText into token lists, one per paragraph line.

    Empty lines and section headings (`` = Title = ``) are skipped; ``max_lines``
    keeps only the first paragraphs (for quick notebook demos).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be the raw WikiText as one string, got {type(text).__name__}")
    if max_lines is not None:
        check_int("max_lines", max_lines, minimum=1)
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s or s.startswith("="):
            continue
        toks = tokenize(s)
        if toks:
            out.append(toks)
            if max_lines is not None and len(out) >= max_lines:
                break
    return out


@dataclass
class Vocab:
    """A frequency-sorted vocabulary.

    Attributes
    ----------
    index_to_key : list of str
        Words, most frequent first (gensim's name).
    counts : ndarray of int64, shape (V,)
        Corpus count of each word.
    key_to_index : dict
        Word -> row.
    """

    index_to_key: list[str]
    counts: np.ndarray
    key_to_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.counts = np.asarray(self.counts)
        if self.counts.shape != (len(self.index_to_key),):
            raise ValueError(f"counts must have one entry per word: {len(self.index_to_key)} words but counts "
                             f"of shape {self.counts.shape}")
        if self.counts.size and self.counts.min() < 1:
            raise ValueError(f"counts must be >= 1 (a word in the vocabulary was seen), got min {self.counts.min()}")
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError("index_to_key holds a word twice; every word must appear once")

    def __len__(self) -> int:
        return len(self.index_to_key)

    @classmethod
    def build(cls, sentences: list[list[str]], min_count: int = 5) -> "Vocab":
        """Count words and keep those with count >= ``min_count`` (gensim's order)."""
        check_sentences(sentences)
        check_int("min_count", min_count, minimum=1)
        if not any(sentences):
            raise ValueError("sentences holds no tokens; pass a non-empty list of token lists")
        counter = Counter(w for s in sentences for w in s)   # insertion order = first seen
        kept = [(w, c) for w, c in counter.items() if c >= min_count]
        if not kept:
            raise ValueError(f"no word occurs min_count={min_count} times; lower min_count")
        # descending count; ties: the word seen *last* comes first (gensim's lexsort on -index)
        order = sorted(range(len(kept)), key=lambda i: (-kept[i][1], -i))
        return cls([kept[i][0] for i in order], np.array([kept[i][1] for i in order], dtype=np.int64))

    def encode(self, sentences: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate the in-vocabulary tokens of all sentences.

        Returns
        -------
        ids : ndarray of int64, shape (N,)
            Word indices.
        sent : ndarray of int64, shape (N,)
            Sentence number of every token (windows never cross sentences).
        """
        check_sentences(sentences)
        k2i = self.key_to_index
        ids, sent = [], []
        for n, s in enumerate(sentences):
            row = [k2i[w] for w in s if w in k2i]
            ids.extend(row)
            sent.extend([n] * len(row))
        return np.asarray(ids, dtype=np.int64), np.asarray(sent, dtype=np.int64)

    def keep_probs(self, sample: float) -> np.ndarray:
        """Probability of keeping each word under sub-sampling (gensim ``prepare_vocab``)."""
        sample = check_number("sample", sample, minimum=0.0)
        c = self.counts.astype(np.float64)
        total = c.sum()
        if sample == 0:
            return np.ones_like(c)
        # threshold_count = t * N  (gensim: sample < 1 is a proportion of the corpus)
        thr = sample * total if sample < 1.0 else float(int(sample * (3 + np.sqrt(5)) / 2))
        p = (np.sqrt(c / thr) + 1) * (thr / c)                 # (sqrt(c/tN) + 1) * tN / c
        return np.minimum(p, 1.0)

    def sample_int(self, sample: float) -> np.ndarray:
        """gensim's integer form of :meth:`keep_probs`: ``uint32(p * (2**32 - 1))``."""
        return (self.keep_probs(sample) * (2**32 - 1)).astype(np.uint32)

    def cum_table(self, ns_exponent: float = 0.75, domain: int = 2**31 - 1) -> np.ndarray:
        """Cumulative unigram^``ns_exponent`` table (gensim ``make_cum_table``).

        ``cum_table[i] = round(domain * sum_{j<=i} c_j^a / sum_j c_j^a)``; a negative is
        ``searchsorted(cum_table, u)`` (= gensim's ``bisect_left``) for ``u`` uniform in ``[0, cum_table[-1])``.
        """
        check_number("ns_exponent", ns_exponent)
        check_int("domain", domain, minimum=1)
        cum = np.cumsum(self.counts.astype(np.float64) ** ns_exponent)   # running sum of c_w^0.75
        return np.round(cum / cum[-1] * domain).astype(np.int64)           # cum[-1]: sequential sum, as gensim

    def noise_probs(self, ns_exponent: float = 0.75) -> np.ndarray:
        """Negative-sampling distribution $P(w) = c_w^a / \\sum_v c_v^a$, shape (V,)."""
        check_number("ns_exponent", ns_exponent)
        w = self.counts.astype(np.float64) ** ns_exponent
        return w / w.sum()


def subsample(ids: np.ndarray, sent: np.ndarray, keep: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Drop each token with probability ``1 - keep[id]`` (one draw per token, vectorised)."""
    keep = np.asarray(keep)
    ids = check_ids("ids", ids, size=len(keep))
    if np.shape(sent) != ids.shape:
        raise ValueError(f"ids and sent must have the same shape, got {ids.shape} and {np.shape(sent)}")
    mask = rng.random(ids.shape[0]) < keep[ids]
    return ids[mask], sent[mask]
