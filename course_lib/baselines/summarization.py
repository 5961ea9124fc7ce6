r"""Extractive summarisation: lead-k and TextRank, scored with ROUGE.

An *extractive* summary copies whole sentences of the article. **Lead-k** takes the first k: news is
written as an inverted pyramid, so it is a strong baseline (See et al., 2017, report that neural
abstractive models long failed to beat lead-3 on CNN/Daily Mail).

**TextRank** (Mihalcea and Tarau, 2004) ranks sentences like PageRank ranks web pages: sentences
are nodes, the cosine similarity of their TF-IDF vectors weighs the edges, and the score solves

.. math::
    s = (1 - d)\,\tfrac{1}{n}\mathbf{1} + d\, W^{\top} s, \qquad W_{ij} = \frac{\mathrm{sim}(i, j)}{\sum_k \mathrm{sim}(i, k)}

(power iteration; :math:`d = 0.85`). A sentence scores high when it resembles many sentences that
themselves score high, i.e. when it states what the article keeps talking about. The top-k
sentences, in article order, are the summary.

**ROUGE** (Lin, 2004) counts overlaps with a reference: ROUGE-N is the F1 of the n-gram multisets,
ROUGE-L the F1 of the longest common subsequence. :func:`rouge_n` and :func:`rouge_l` implement them
on token lists; :func:`rouge_scores` calls the ``rouge-score`` package (the usual reference, with
Porter stemming) and averages over a corpus.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ..utils import check_int

__all__ = ["split_sentences", "lead", "pagerank", "textrank", "rouge_n", "rouge_l", "rouge_scores"]

_SENT_END = re.compile(r"(?<=[.!?])[\"']?\s+(?=[\"'A-Z0-9£$])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a text: every line (paragraph) is split after ``.``, ``!`` or ``?`` followed by a
    space and a capital letter, digit or quote. Empty lines are dropped."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    out = []
    for para in text.split("\n"):
        out += [s.strip() for s in _SENT_END.split(para) if s.strip()]
    return out


def lead(text: str, k: int = 3) -> list[str]:
    """The first ``k`` sentences (all of them if there are fewer)."""
    check_int("k", k, minimum=1)
    return split_sentences(text)[:k]


def pagerank(weights: np.ndarray, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """PageRank of a weighted graph (n, n) by power iteration; rows with no edge jump uniformly. Sums to 1."""
    W = np.asarray(weights, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"weights must be a non-empty square matrix, got shape {W.shape}")
    if (W < 0).any() or not np.isfinite(W).all():
        raise ValueError("weights must be finite and >= 0")
    if not 0 < damping < 1:
        raise ValueError(f"damping must be in (0, 1), got {damping}")
    n = len(W)
    out = W.sum(1, keepdims=True)
    P = np.where(out > 0, W / np.where(out > 0, out, 1), 1.0 / n)        # row-stochastic (n, n)
    s = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = (1 - damping) / n + damping * P.T @ s                       # s = (1-d)/n + d W^T s
        if np.abs(new - s).sum() < tol:
            return new
        s = new
    return s


def textrank(text: str, k: int = 3, damping: float = 0.85) -> list[str]:
    """The ``k`` sentences of highest TextRank (TF-IDF cosine similarity graph), in article order."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    check_int("k", k, minimum=1)
    sents = split_sentences(text)
    if len(sents) <= k:
        return sents
    X = TfidfVectorizer(stop_words="english").fit_transform(sents)        # (n, |V|), rows L2-normalised
    sim = (X @ X.T).toarray()                                              # cosine similarity (n, n)
    np.fill_diagonal(sim, 0.0)
    scores = pagerank(sim, damping)
    best = np.sort(np.argsort(-scores, kind="stable")[:k])
    return [sents[i] for i in best]


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: float, n_hyp: int, n_ref: int) -> dict:
    p = overlap / n_hyp if n_hyp else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return {"precision": p, "recall": r, "fmeasure": 2 * p * r / (p + r) if p + r else 0.0}


def rouge_n(hyp: list[str], ref: list[str], n: int = 1) -> dict:
    """ROUGE-N of token lists: clipped n-gram overlap / hypothesis n-grams (P), / reference n-grams (R), F1."""
    check_int("n", n, minimum=1)
    if isinstance(hyp, str) or isinstance(ref, str):
        raise TypeError("rouge_n takes token lists; split the strings first (or use rouge_scores for raw text)")
    h, r = _ngrams(list(hyp), n), _ngrams(list(ref), n)
    return _f1(sum((h & r).values()), sum(h.values()), sum(r.values()))


def rouge_l(hyp: list[str], ref: list[str]) -> dict:
    """ROUGE-L of token lists: LCS length / len(hyp) (P), / len(ref) (R), F1."""
    if isinstance(hyp, str) or isinstance(ref, str):
        raise TypeError("rouge_l takes token lists; split the strings first (or use rouge_scores for raw text)")
    hyp, ref = list(hyp), list(ref)
    L = np.zeros((len(hyp) + 1, len(ref) + 1), dtype=int)                 # L[i, j] = LCS of hyp[:i], ref[:j]
    for i in range(1, len(hyp) + 1):
        for j in range(1, len(ref) + 1):
            L[i, j] = L[i - 1, j - 1] + 1 if hyp[i - 1] == ref[j - 1] else max(L[i - 1, j], L[i, j - 1])
    return _f1(int(L[-1, -1]), len(hyp), len(ref))


def rouge_scores(summaries: list[str], references: list[str], use_stemmer: bool = True) -> dict:
    """Mean ROUGE-1/2/L precision, recall and F1 over a corpus, with the ``rouge-score`` package.

    Returns ``{"rouge1": {"precision", "recall", "fmeasure"}, "rouge2": ..., "rougeL": ...}``.
    """
    try:
        from rouge_score import rouge_scorer
    except ImportError as err:                                             # pragma: no cover
        raise ImportError("rouge_scores needs rouge-score: pip install rouge-score==0.1.2") from err
    if isinstance(summaries, str) or isinstance(references, str):
        raise TypeError("summaries and references must be lists of str (one per article)")
    if len(summaries) != len(references) or not summaries:
        raise ValueError(f"need one reference per summary and at least one pair, got {len(summaries)} summaries "
                         f"and {len(references)} references")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=use_stemmer)
    total = {m: np.zeros(3) for m in ("rouge1", "rouge2", "rougeL")}
    for s, r in zip(summaries, references):
        for m, sc in scorer.score(r, s).items():                           # score(target, prediction)
            total[m] += (sc.precision, sc.recall, sc.fmeasure)
    return {m: dict(zip(("precision", "recall", "fmeasure"), (v / len(summaries)).tolist()))
            for m, v in total.items()}
