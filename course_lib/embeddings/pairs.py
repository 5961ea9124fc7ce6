r"""Training examples for Word2Vec, built for a whole epoch at once in NumPy.

Skip-gram (跳字模型) turns every centre word $w_t$ into pairs $(w_t, w_{t+j})$ for
$1 \le |j| \le b_t$, where $b_t$ is the *reduced window*: drawn uniformly from
$1..\text{window}$ for each centre word, so near words are used more often than far
ones (word2vec and gensim do the same). Windows never cross a sentence boundary.

Instead of a Python loop over words, we loop over the ``window`` offsets $j$ and
compare shifted copies of the token array: ``2 * window`` vectorised passes.
"""
from __future__ import annotations

import numpy as np


def reduced_windows(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Effective window $b_t \\sim U\\{1..window\\}$ for each of ``n`` centre words."""
    return rng.integers(1, window + 1, size=n)


def skipgram_pairs(ids: np.ndarray, sent: np.ndarray, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) pairs of one epoch.

    Parameters
    ----------
    ids, sent : ndarray of int64, shape (N,)
        Token ids (after sub-sampling) and their sentence numbers.
    window : int
        Maximum window; each centre gets a reduced window in ``1..window``.
    rng : numpy Generator

    Returns
    -------
    centers, contexts : ndarray of int64, shape (P,)
        Word ids; pairs are grouped by offset, not by position.
    """
    if ids.shape != sent.shape:
        raise ValueError(f"ids and sent must have the same shape, got {ids.shape} and {sent.shape}")
    b = reduced_windows(len(ids), window, rng)
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]                 # positions t and t+d in one sentence
        right = same & (b[:-d] >= d)                 # centre t sees t+d
        left = same & (b[d:] >= d)                   # centre t+d sees t
        centers += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return np.concatenate(centers), np.concatenate(contexts)


def cbow_windows(ids: np.ndarray, sent: np.ndarray, window: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CBOW examples: each centre word with its (padded) context words.

    Returns
    -------
    centers : ndarray of int64, shape (N,)
    contexts : ndarray of int64, shape (N, 2*window)
        Context ids, ``-1`` where the reduced window or a sentence boundary leaves a slot empty.
        Centres with no context at all are dropped.
    """
    n = len(ids)
    b = reduced_windows(n, window, rng)
    ctx = np.full((n, 2 * window), -1, dtype=np.int64)
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]
        right = same & (b[:-d] >= d)                 # centre t, context t+d
        left = same & (b[d:] >= d)                   # centre t+d, context t
        ctx[:-d, window + d - 1] = np.where(right, ids[d:], -1)
        ctx[d:, window - d] = np.where(left, ids[:-d], -1)
    has = (ctx >= 0).any(axis=1)
    return ids[has], ctx[has]
