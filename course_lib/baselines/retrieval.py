r"""Question answering by retrieval: BM25 over BBC News paragraphs, and a small hand-built QA set.

**BM25** (Okapi; Robertson and Zaragoza, 2009) scores a passage :math:`d` for a query :math:`q` as

.. math::
    \mathrm{score}(q, d) = \sum_{t \in q} \mathrm{idf}(t)\,
        \frac{f(t, d)\,(k_1 + 1)}{f(t, d) + k_1\,(1 - b + b\,|d| / \mathrm{avgdl})},
    \qquad \mathrm{idf}(t) = \ln\frac{N - n(t) + 0.5}{n(t) + 0.5}

with :math:`f(t, d)` the count of term :math:`t` in :math:`d`, :math:`n(t)` the number of passages
holding it, :math:`N` the number of passages. The fraction saturates: the tenth "Blair" adds far less
than the first (:math:`k_1`), and long passages are penalised (:math:`b`). As in ``rank_bm25``'s
``BM25Okapi``, a term in more than half the passages (negative idf) gets the floor
:math:`\epsilon \cdot \overline{\mathrm{idf}}`. Our version stores the counts in a sparse matrix, so
scoring every passage is a few vector operations, and equals ``rank_bm25`` to rounding.

**The QA set** (``QA_SET``): 30 questions written for this course about 30 BBC News articles, each
with the article and a short answer string that occurs in it. A passage (a paragraph) is *relevant*
when it comes from the question's article and contains the answer, so a hit means the passage a
reader would open really answers the question. Retrieval is scored by accuracy@k (a relevant
passage among the top k) and mean reciprocal rank (MRR, :math:`\frac{1}{|Q|}\sum_q 1/\mathrm{rank}_q`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["BM25", "tokenize", "QA_SET", "QAItem", "bbc_passages", "rank_of_first_relevant",
           "retrieval_metrics", "evaluate_qa"]

_WORD = re.compile(r"[a-z0-9£$%]+(?:['.-][a-z0-9]+)*")


def tokenize(text: str, stop_words: bool = True) -> list[str]:
    """Lower-cased word tokens (numbers, ``£600``, ``76%`` and ``full-back`` stay whole), English
    stop words removed unless ``stop_words=False``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = _WORD.findall(text.lower())
    if stop_words:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
        words = [w for w in words if w not in ENGLISH_STOP_WORDS]
    return words


class BM25:
    """Okapi BM25 over tokenised passages; parameter names and the idf floor as ``rank_bm25.BM25Okapi``.

    Parameters
    ----------
    corpus : list of token lists, one per passage (at least one non-empty passage)
    k1 : float >= 0, term-frequency saturation
    b : float in [0, 1], length normalisation
    epsilon : float >= 0, idf floor for terms in more than half the passages, as a fraction of the mean idf
    """

    def __init__(self, corpus, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        from scipy import sparse
        if isinstance(corpus, str) or not len(corpus):
            raise ValueError("corpus must be a non-empty list of token lists (one per passage)")
        if any(isinstance(doc, str) for doc in corpus):
            raise TypeError("each passage must be a list of tokens, not a str; tokenize it first (tokenize(text))")
        if not k1 >= 0 or not 0 <= b <= 1 or not epsilon >= 0:
            raise ValueError(f"need k1 >= 0, 0 <= b <= 1, epsilon >= 0; got k1={k1}, b={b}, epsilon={epsilon}")
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, doc in enumerate(corpus):
            for t in doc:
                rows.append(i)
                cols.append(self.vocab.setdefault(t, len(self.vocab)))
        self.corpus_size = len(corpus)
        self.doc_len = np.array([len(doc) for doc in corpus], dtype=float)          # |d|
        if self.doc_len.sum() == 0:
            raise ValueError("every passage is empty: there is nothing to index")
        self.avgdl = self.doc_len.mean()
        tf = sparse.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.corpus_size, len(self.vocab)))
        tf.sum_duplicates()
        self.tf = tf                                                                  # (N, |V|) f(t, d)
        n_t = np.diff(tf.indptr)                                                      # n(t): passages with t
        idf = np.log(self.corpus_size - n_t + 0.5) - np.log(n_t + 0.5)               # ln((N - n + .5)/(n + .5))
        self.average_idf = idf.mean()
        self.idf = np.where(idf < 0, self.epsilon * self.average_idf, idf)          # the floor of BM25Okapi
        self.norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avgdl)      # k1 (1 - b + b |d|/avgdl)

    def get_scores(self, query: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens (N,); unknown tokens add nothing."""
        if isinstance(query, str):
            raise TypeError("query must be a list of tokens, not a str; use tokenize(question)")
        score = np.zeros(self.corpus_size)
        for t in query:                                   # a repeated query term counts again, as rank_bm25
            j = self.vocab.get(t)
            if j is None:
                continue
            lo, hi = self.tf.indptr[j], self.tf.indptr[j + 1]
            docs, f = self.tf.indices[lo:hi], self.tf.data[lo:hi]
            score[docs] += self.idf[j] * f * (self.k1 + 1) / (f + self.norm[docs])
        return score

    def top_n(self, query: list[str], n: int = 5) -> np.ndarray:
        """Indices of the ``n`` best passages, best first (ties: lower index first)."""
        scores = self.get_scores(query)
        return np.argsort(-scores, kind="stable")[:n]


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str      # a string that occurs in the article
    file: str        # the article, as in load_bbc_news()["file"]


# Questions written for this course; every answer occurs in its article (tests/test_baselines_retrieval.py).
QA_SET = [QAItem(*row) for row in [
    ("How many Independent Spirit Award nominations did the wine-tasting comedy Sideways get?", "six",
     "entertainment/040.txt"),
    ("Who was the favourite to be evicted from I'm A Celebrity?", "Sheila Ferguson", "entertainment/223.txt"),
    ("What drove the growth of the French economy at the end of 2004?", "consumer spending", "business/190.txt"),
    ("By how much did shares in India's NTPC rise on their stock market debut?", "13%", "business/276.txt"),
    ("Which company is building the new Wembley stadium?", "Multiplex", "business/062.txt"),
    ("Which tennis player did the Belgian sports minister accuse of doping?", "Svetlana Kuznetsova",
     "sports/502.txt"),
    ("Whose novels does the film His Dark Materials adapt?", "Philip Pullman", "entertainment/094.txt"),
    ("How long was the Iranian blogger sentenced to prison for?", "14 years", "tech/035.txt"),
    ("Which film opens this year's Berlin Film Festival?", "Man to Man", "entertainment/058.txt"),
    ("How much money was stolen from the MP who was mugged in Kenya?", "£600", "politics/144.txt"),
    ("How much did China lend Russia to buy Yuganskneftegas?", "$6bn", "business/077.txt"),
    ("Who is the director of rugby at Sale Sharks?", "Philippe Saint-Andre", "sports/358.txt"),
    ("What is Richard Branson's American TV show called?", "The Rebel Billionaire", "entertainment/178.txt"),
    ("Which controversial TV show did comedian Chris Morris create?", "Brass Eye", "entertainment/165.txt"),
    ("Who beat Roberta Vinci at the Qatar Open?", "Conchita Martinez", "sports/440.txt"),
    ("Which British tennis player retired from the Davis Cup team?", "Tim Henman", "sports/500.txt"),
    ("For which games console was the original Blinx made?", "Xbox", "tech/266.txt"),
    ("By what percentage did Time Warner's quarterly profits jump?", "76%", "business/001.txt"),
    ("Which party will support the government's identity card plans?", "Tories", "politics/299.txt"),
    ("Which former Downing Street media chief sent an e-mail with a four-letter outburst?", "Alastair Campbell",
     "politics/009.txt"),
    ("Which position should the England rugby captain not play, according to Brian Moore?", "full-back",
     "sports/347.txt"),
    ("Who said Tony Blair had failed to tackle Britain's problems?", "Michael Howard", "politics/110.txt"),
    ("Whose penalties won Scotland the match against Italy at Murrayfield?", "Chris Paterson", "sports/407.txt"),
    ("Which American charity song was re-issued for tsunami victims?", "We Are The World",
     "entertainment/157.txt"),
    ("What has made Eurotunnel's sales fall?", "low-cost airlines", "business/500.txt"),
    ("Who resigned as manager of Tottenham?", "Jacques Santini", "sports/202.txt"),
    ("By how much could Indonesia raise fuel prices?", "30%", "business/012.txt"),
    ("Which UK foreign secretary defended ending the arms embargo on China?", "Jack Straw", "politics/386.txt"),
    ("How old was the Byrds producer Terry Melcher when he died?", "62", "entertainment/124.txt"),
    ("Which championships is long jumper Chris Tomlinson preparing for?", "European Indoor Championships",
     "sports/071.txt"),
]]


def bbc_passages(df) -> tuple[list[str], list[str]]:
    """Every non-empty paragraph of every article (``load_bbc_news()``): ``(passages, files)``."""
    passages, files = [], []
    for text, file in zip(df["text"], df["file"]):
        for para in text.split("\n"):
            if para.strip():
                passages.append(para.strip())
                files.append(file)
    return passages, files


def rank_of_first_relevant(scores: np.ndarray, relevant: np.ndarray) -> int | None:
    """1-based rank of the best-scored relevant passage (ties broken by index), None if none is relevant."""
    scores, relevant = np.asarray(scores, dtype=float), np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must have the same shape")
    if not relevant.any():
        return None
    order = np.argsort(-scores, kind="stable")
    return int(np.flatnonzero(relevant[order])[0]) + 1


def retrieval_metrics(ranks, ks=(1, 5, 20)) -> dict:
    """accuracy@k for each k and MRR from the ranks of the first relevant passage (None = not found)."""
    ranks = list(ranks)
    if not ranks:
        raise ValueError("no ranks given: score at least one question")
    out = {f"acc@{k}": float(np.mean([r is not None and r <= k for r in ranks])) for k in ks}
    out["mrr"] = float(np.mean([1.0 / r if r else 0.0 for r in ranks]))
    return out


def evaluate_qa(index: BM25, passages: list[str], files: list[str], qa=QA_SET, ks=(1, 5, 20)) -> dict:
    """Rank the passages for every question; metrics plus ``"ranks"`` and ``"top"`` (best passage per question)."""
    files = np.asarray(files)
    ranks, top = [], []
    for item in qa:
        scores = index.get_scores(tokenize(item.question))
        relevant = (files == item.file) & np.array([item.answer in p for p in passages])
        if not relevant.any():
            raise ValueError(f"no passage of {item.file} contains the answer {item.answer!r}")
        ranks.append(rank_of_first_relevant(scores, relevant))
        top.append(passages[int(np.argmax(scores))])
    return {**retrieval_metrics(ranks, ks), "ranks": ranks, "top": top}
