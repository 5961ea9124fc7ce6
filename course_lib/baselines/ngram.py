r"""An n-gram language model with interpolated Kneser-Ney or add-k smoothing, in NumPy.

A language model gives every next word a probability :math:`P(w_t \mid w_{t-n+1} \ldots w_{t-1})`.
An n-gram model estimates it from counts of the last :math:`n` words in a training text.

**Add-k.** :math:`P(w \mid h) = \dfrac{c(h w) + k}{c(h) + k\,|V|}`: every count gets ``k`` pseudo-counts.

**Interpolated Kneser-Ney** (Kneser and Ney, 1995; Chen and Goodman, 1999). Subtract a discount
:math:`D` from every seen count and give the freed mass to a lower-order model:

.. math::
    P(w \mid h) = \frac{\max(c(h w) - D, 0)}{c(h \cdot)} + \frac{D\, N_{1+}(h \cdot)}{c(h \cdot)}\, P_{\text{lower}}(w \mid h')

where :math:`c(h\cdot) = \sum_w c(h w)`, :math:`N_{1+}(h \cdot)` is the number of different words seen
after :math:`h`, and :math:`h'` drops the oldest word of :math:`h`. The lower orders count
*continuations*: :math:`c_{\text{KN}}(h' w) = N_{1+}(\cdot\, h' w)`, the number of different words
seen before :math:`h' w` ("Francisco" is frequent but follows only "San", so it is a poor guess in
a new context). The unigram level interpolates with the uniform distribution :math:`1/|V|`, so every
word of the vocabulary has a non-zero probability. :math:`D = n_1 / (n_1 + 2 n_2)` per order, with
:math:`n_r` the number of n-grams counted exactly :math:`r` times (Ney et al., 1994).

**Open vocabulary.** Training words seen fewer than ``min_count`` times become ``<unk>``; at test
time an unknown word costs :math:`P(\texttt{<unk>} \mid h)\,P_{\text{spell}}(w)`, where
:math:`P_{\text{spell}}` is a character unigram model trained on the rare training words. The total
log-likelihood of a text is then comparable with that of any other open-vocabulary model (e.g. a BPE
GPT) on the same text.

Implementation: every n-gram is one ``int64`` key :math:`\sum_i \mathrm{id}_i V^{m-1-i}`; counts come
from ``np.unique`` and look-ups from ``np.searchsorted``, so a trigram model of WikiText-2's 2 M
words trains and scores in seconds.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..utils import check_int

__all__ = ["NGramConfig", "NGramLM", "SpellingModel", "lines_to_sentences", "BOS", "EOS", "UNK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def lines_to_sentences(text: str) -> list[list[str]]:
    """Split a text into lines and each line into whitespace words; blank lines become ``[]``.

    Every line is one "sentence": the model also predicts its end (``</s>``), so blank lines (the
    paragraph breaks of WikiText) cost probability too, as they do for a model reading raw text.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]                     # a final newline ends the last line, it opens no new one
    return [line.split() for line in lines]


@dataclass
class NGramConfig:
    """Settings of :class:`NGramLM`.

    order : n, the number of words in an n-gram (1 = unigram, 3 = trigram).
    smoothing : ``"kneser_ney"`` (interpolated, one discount per order) or ``"add_k"``.
    discount : Kneser-Ney discount D in (0, 1]; None estimates ``n1 / (n1 + 2 n2)`` for every order.
    k : pseudo-count of add-k smoothing (> 0).
    min_count : training words seen fewer times become ``<unk>``.
    """
    order: int = 3
    smoothing: str = "kneser_ney"
    discount: float | None = None
    k: float = 1.0
    min_count: int = 2


class SpellingModel:
    r"""Character unigram model of words: :math:`P(w) = \prod_i P(c_i)\,P(\text{end})`, add-one smoothed.

    One extra symbol stands for every character never seen in training, so any string gets a
    probability > 0; the probabilities of all strings sum to 1 (a geometric series over lengths).
    """

    UNICODE = 0x110000            # an unseen character shares the "unseen" mass uniformly with all code points

    def __init__(self, words):
        counts = Counter()
        for w in words:
            counts.update(w)
            counts["\0end"] += 1
        if not counts:
            raise ValueError("no words to train the spelling model on")
        self.total = sum(counts.values()) + len(counts) + 1          # add-one over seen symbols + "unseen"
        self.counts = counts

    def logprob(self, word: str) -> float:
        """Natural log of P(word)."""
        lp = 0.0
        for c in word:
            seen = self.counts.get(c, 0)
            # P(c) = (count + 1) / total; an unseen c: 1 / total / (number of code points)
            lp += math.log((seen + 1) / self.total) if seen else -math.log(self.total * self.UNICODE)
        return lp + math.log((self.counts["\0end"] + 1) / self.total)


class NGramLM:
    """A word n-gram language model; ``fit`` on sentences (lists of words), then score or predict.

    Examples
    --------
    >>> lm = NGramLM(NGramConfig(order=2, min_count=1)).fit([["a", "b"], ["a", "c"]])
    >>> round(float(lm.next_word_distribution(["a"]).sum()), 6)
    1.0
    """

    def __init__(self, config: NGramConfig | None = None):
        cfg = config or NGramConfig()
        check_int("order", cfg.order, minimum=1)
        check_int("min_count", cfg.min_count, minimum=1)
        if cfg.smoothing not in ("kneser_ney", "add_k"):
            raise ValueError(f"smoothing must be 'kneser_ney' or 'add_k', got {cfg.smoothing!r}")
        if cfg.discount is not None and not 0 < cfg.discount <= 1:
            raise ValueError(f"discount must be in (0, 1] (or None to estimate it), got {cfg.discount}")
        if cfg.smoothing == "add_k" and not cfg.k > 0:
            raise ValueError(f"k must be > 0 for add-k smoothing, got {cfg.k}")
        self.config = cfg
        self.vocab: list[str] = []

    # ------------------------------------------------------------------ training
    def fit(self, sentences) -> "NGramLM":
        """Count the n-grams of ``sentences`` (a list of word lists; ``[]`` is an empty line)."""
        sentences = _check_sentences(sentences)
        n, cfg = self.config.order, self.config
        freq = Counter(w for s in sentences for w in s)
        if not freq:
            raise ValueError("the training sentences hold no words; give at least one non-empty sentence")
        kept = sorted(w for w, c in freq.items() if c >= cfg.min_count and w not in (BOS, EOS, UNK))
        self.vocab = [BOS, EOS, UNK] + kept                     # id 0 = <s> is never predicted
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.V = len(self.vocab)
        if n * math.log2(self.V) >= 63:
            raise ValueError(f"order {n} with a vocabulary of {self.V} words overflows the int64 n-gram keys; "
                             "lower the order or raise min_count")
        rare = [w for w, c in freq.items() if c < cfg.min_count for _ in range(c)]
        self.spelling = SpellingModel(rare) if rare else None    # spells the words that became <unk>
        ids = self._encode(sentences)                            # padded id stream
        grams = np.lib.stride_tricks.sliding_window_view(ids, n)
        grams = grams[grams[:, -1] != 0]      # skip windows ending in padding (the only ones that cross lines)
        self.keys, self.counts, self.ctx_keys, self.ctx_total, self.ctx_types, self.D = {}, {}, {}, {}, {}, {}
        key, cnt = np.unique(self._key(grams), return_counts=True)          # raw counts c(h w) of order n
        for m in range(n, 0, -1):
            self.keys[m], self.counts[m] = key, cnt
            if m > 1:
                ctx = key // self.V                                          # the context h of each m-gram
                self.ctx_keys[m], start, self.ctx_types[m] = np.unique(ctx, return_index=True, return_counts=True)
                self.ctx_total[m] = np.add.reduceat(cnt, start)             # c(h .) = sum_w c(h w)
            self.D[m] = self._discount(cnt)
            # continuation counts of order m-1: N1+(. h' w) = how many distinct m-grams end in h' w
            key, cnt = np.unique(key % self.V ** (m - 1), return_counts=True) if m > 1 else (None, None)
        self.n_unigram_types = len(self.keys[1])
        self.unigram_total = int(self.counts[1].sum())
        return self

    def with_smoothing(self, smoothing: str, k: float = 1.0, discount: float | None = None) -> "NGramLM":
        """The same counts with another smoothing formula (no recounting): a shallow copy.

        Add-k needs only the order-n counts and context totals, which Kneser-Ney also keeps.
        """
        self._check_fitted()
        cfg = NGramConfig(order=self.config.order, smoothing=smoothing, discount=discount, k=k,
                          min_count=self.config.min_count)
        other = NGramLM(cfg)                                 # validates the new settings
        other.__dict__.update({key: v for key, v in self.__dict__.items() if key != "config"})
        other.D = dict(self.D)
        if discount is not None:
            other.D = {m: float(discount) for m in self.D}
        elif smoothing == "kneser_ney" and self.config.discount is not None:
            raise ValueError("this model was counted with a fixed discount; pass discount=... explicitly")
        return other

    def _discount(self, counts: np.ndarray) -> float:
        if self.config.discount is not None:
            return float(self.config.discount)
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        return n1 / (n1 + 2 * n2) if n1 > 0 else 0.5             # D = n1 / (n1 + 2 n2)

    def _encode(self, sentences) -> np.ndarray:
        """One id stream: (n-1) ``<s>`` before every sentence and ``</s>`` after it."""
        pad, unk, get = [0] * (self.config.order - 1), self.index[UNK], self.index.get
        out = []
        for s in sentences:
            out += pad
            out += [get(w, unk) for w in s]
            out.append(1)
        return np.asarray(out, dtype=np.int64)

    def _key(self, grams: np.ndarray) -> np.ndarray:
        """int64 key of each row of ``grams`` (N, m): sum_i id_i V^(m-1-i)."""
        key = np.zeros(len(grams), dtype=np.int64)
        for j in range(grams.shape[1]):
            key = key * self.V + grams[:, j]
        return key

    # ------------------------------------------------------------------ probabilities
    def _prob(self, grams: np.ndarray) -> np.ndarray:
        """P(last word | the others) for every row of ``grams`` (N, m), m <= order (vectorised)."""
        m = grams.shape[1]
        if self.config.smoothing == "add_k":
            return self._prob_add_k(grams)
        if m == 1:
            c = _lookup(self.keys[1], self.counts[1], grams[:, 0])
            D, T = self.D[1], self.unigram_total
            # P1(w) = max(c - D, 0)/T + D * N1+(.)/T * 1/|V|, with |V| = V - 1 (no <s>)
            return np.maximum(c - D, 0) / T + D * self.n_unigram_types / T / (self.V - 1)
        lower = self._prob(grams[:, 1:])
        ctx = self._key(grams[:, :-1])
        pos = np.searchsorted(self.ctx_keys[m], ctx)
        pos = np.minimum(pos, len(self.ctx_keys[m]) - 1)
        seen = self.ctx_keys[m][pos] == ctx
        total = np.where(seen, self.ctx_total[m][pos], 1)
        types = np.where(seen, self.ctx_types[m][pos], 0)
        c = _lookup(self.keys[m], self.counts[m], self._key(grams))
        D = self.D[m]
        p = np.maximum(c - D, 0) / total + D * types / total * lower   # interpolated Kneser-Ney
        return np.where(seen, p, lower)                                  # unseen context: back off entirely

    def _prob_add_k(self, grams: np.ndarray) -> np.ndarray:
        n, k = self.config.order, self.config.k
        c = _lookup(self.keys[n], self.counts[n], self._key(grams))
        if n == 1:
            total = self.unigram_total
        else:
            ctx = self._key(grams[:, :-1])
            pos = np.minimum(np.searchsorted(self.ctx_keys[n], ctx), len(self.ctx_keys[n]) - 1)
            total = np.where(self.ctx_keys[n][pos] == ctx, self.ctx_total[n][pos], 0)
        return (c + k) / (total + k * (self.V - 1))                      # (c(hw) + k) / (c(h) + k|V|)

    def _check_fitted(self):
        if not self.vocab:
            raise RuntimeError("the model is not trained yet: call fit(sentences) first")

    def next_word_distribution(self, context) -> np.ndarray:
        """P(w | context) for every word of ``self.vocab`` (entry 0, ``<s>``, is 0); sums to 1."""
        self._check_fitted()
        if isinstance(context, str):
            raise TypeError("context must be a list of words, not a str (use text.split())")
        n = self.config.order
        ctx = [self.index[BOS]] * (n - 1) + [self.index.get(w, self.index[UNK]) for w in context]
        ctx = ctx[len(ctx) - (n - 1):] if n > 1 else []
        grams = np.array([ctx + [w] for w in range(1, self.V)], dtype=np.int64).reshape(self.V - 1, n)
        return np.concatenate([[0.0], self._prob(grams)])

    def token_logprobs(self, sentences) -> np.ndarray:
        """Natural-log probability of every predicted token (each word and each ``</s>``), in order."""
        self._check_fitted()
        sentences = _check_sentences(sentences)
        ids = self._encode(sentences)
        n = self.config.order
        grams = np.lib.stride_tricks.sliding_window_view(ids, n) if n > 1 else ids[:, None]
        grams = grams[grams[:, -1] != 0]
        return np.log(self._prob(grams))

    def perplexity(self, sentences) -> float:
        """exp(mean negative log-probability per token), tokens = words + one ``</s>`` per sentence,
        every unknown word counted as ``<unk>`` (the usual closed-vocabulary perplexity)."""
        return float(np.exp(-self.token_logprobs(sentences).mean()))

    def total_logprob(self, sentences) -> float:
        """Open-vocabulary log-likelihood of the whole text: unknown words also pay their spelling."""
        lp = float(self.token_logprobs(sentences).sum())
        unknown = [w for s in sentences for w in s if w not in self.index]
        if unknown and self.spelling is None:
            raise ValueError(f"{len(unknown)} test words are not in the vocabulary (e.g. {unknown[0]!r}) and no "
                             "training word was rare enough to train the spelling model; use min_count >= 2")
        return lp + sum(self.spelling.logprob(w) for s in sentences for w in s if w not in self.index)

    def word_perplexity(self, sentences) -> float:
        """exp(-total_logprob / number of words): per word, comparable across tokenisations."""
        n_words = sum(len(s) for s in _check_sentences(sentences))
        if n_words == 0:
            raise ValueError("the sentences hold no words to score")
        return float(math.exp(-self.total_logprob(sentences) / n_words))


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == q] for every q (0 where q is absent); ``keys`` sorted."""
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0)


def _check_sentences(sentences) -> list[list[str]]:
    if isinstance(sentences, str):
        raise TypeError("pass a list of sentences (lists of words), not a str; "
                        "use lines_to_sentences(text) to split a text")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("no sentences given: pass at least one sentence (a list of words)")
    for i, s in enumerate(sentences):
        if not isinstance(s, (list, tuple)) or (s and not isinstance(s[0], str)):   # cheap: first word only
            raise TypeError(f"sentence {i} must be a list of str words, got {str(s)[:60]}")
    return sentences
