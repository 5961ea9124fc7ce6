r"""Keyword extraction with TF-IDF, and a check against headlines.

A keyword of a document is a word that is frequent *in it* and rare *elsewhere*:

.. math::
    \mathrm{tfidf}(w, d) = \mathrm{tf}(w, d)\cdot\Big(1 + \ln\frac{1 + N}{1 + \mathrm{df}(w)}\Big)

(scikit-learn's smoothed idf; :math:`N` documents, :math:`\mathrm{df}(w)` of them contain :math:`w`).
The top-k words of a document's row are its keywords; the top-k of the mean row of a topic's
documents are the topic's keywords. With ``use_idf=False`` the score is plain frequency, which
promotes "said" and "year".

**A score without annotated keywords.** BBC News ships no keyword lists, but every article has a
headline written by an editor to say what it is about. :func:`headline_overlap` measures how many
of an article's top-k keywords occur in its headline (precision@k) and in how many articles at
least one does (hit@k). It is a proxy: a headline is short and may use words absent from the text.
"""
from __future__ import annotations

import numpy as np

from ..utils import check_int

__all__ = ["tfidf_keywords", "topic_keywords", "headline_overlap"]


def _vectorizer(use_idf: bool, min_df: int, max_df: float):
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(stop_words="english", use_idf=use_idf, min_df=min_df, max_df=max_df,
                           token_pattern=r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b")       # words of >= 2 chars, no numbers


def _check(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of documents, not one str")
    texts = list(texts)
    if not texts:
        raise ValueError("no documents given")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("every document must be a str")
    return texts


def tfidf_keywords(texts, top_k: int = 5, use_idf: bool = True, min_df: int = 1, max_df: float = 1.0):
    """Top-``top_k`` TF-IDF words of every document (best first); also returns the fitted vectorizer.

    Returns
    -------
    keywords : list of lists of str, one per document
    vectorizer : the fitted ``TfidfVectorizer`` (its ``build_analyzer()`` tokenises like the keywords)
    """
    check_int("top_k", top_k, minimum=1)
    texts = _check(texts)
    vec = _vectorizer(use_idf, min_df, max_df)
    X = vec.fit_transform(texts).tocsr()                                     # (N, |V|) sparse
    vocab = vec.get_feature_names_out()
    out = []
    for i in range(X.shape[0]):
        row = X.getrow(i)
        order = np.lexsort((row.indices, -row.data))[:top_k]                 # score desc, then word order
        out.append([str(vocab[row.indices[j]]) for j in order])
    return out, vec


def topic_keywords(texts, topics, top_k: int = 10, use_idf: bool = True) -> dict[str, list[str]]:
    """Top-``top_k`` words of the mean TF-IDF vector of each topic's documents."""
    check_int("top_k", top_k, minimum=1)
    texts, topics = _check(texts), np.asarray(list(topics))
    if len(topics) != len(texts):
        raise ValueError(f"{len(texts)} documents but {len(topics)} topics: give one topic per document")
    vec = _vectorizer(use_idf, 1, 1.0)
    X = vec.fit_transform(texts)
    vocab = vec.get_feature_names_out()
    out = {}
    for t in sorted(set(topics.tolist())):
        mean = np.asarray(X[topics == t].mean(0)).ravel()
        out[t] = [str(vocab[j]) for j in np.argsort(-mean, kind="stable")[:top_k]]
    return out


def headline_overlap(keywords, headlines, analyzer) -> dict:
    """``precision@k`` (share of keywords found in the headline) and ``hit@k`` (share of documents with
    at least one), the headline tokenised by ``analyzer`` (the keywords' vectorizer's ``build_analyzer()``)."""
    if len(keywords) != len(headlines) or not len(keywords):
        raise ValueError(f"need one headline per keyword list, got {len(keywords)} and {len(headlines)}")
    prec, hit = [], []
    for kws, head in zip(keywords, headlines):
        words = set(analyzer(head))
        found = [k in words for k in kws]
        prec.append(np.mean(found) if kws else 0.0)
        hit.append(any(found))
    return {"precision": float(np.mean(prec)), "hit": float(np.mean(hit))}
