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

from .checks import check_ids, check_int


def reduced_windows(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Effective window $b_t \\sim U\\{1..window\\}$ for each of ``n`` centre words."""
    check_int("n", n, minimum=0)
    check_int("window", window, minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng.integers(1, window + 1, size=n)


def _check_corpus(ids, sent) -> tuple[np.ndarray, np.ndarray]:
    ids = check_ids("ids", ids)
    sent = np.asarray(sent)
    if ids.shape != sent.shape:
        raise ValueError(f"ids and sent must have the same shape, got {ids.shape} and {sent.shape}")
    return ids, sent


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
    ids, sent = _check_corpus(ids, sent)
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
    ids, sent = _check_corpus(ids, sent)
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


def window_chunks(ids: np.ndarray, sent: np.ndarray, window: int, chunk_len: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut one epoch into chunks of ``chunk_len`` consecutive centre words, each with its window rows.

    A chunk holds the ids of $L$ = ``chunk_len`` centre words and of the ``window`` words
    on either side, so every pair (centre, context) of :func:`skipgram_pairs` lies inside
    exactly one chunk row: the one holding its centre. Instead of 2 ids per pair
    (about 6 pairs per centre), a batch of chunks reads $(L + 2W)/L$ ids per centre.

    Parameters
    ----------
    ids, sent : ndarray of int64, shape (N,)
        Token ids (after sub-sampling) and their sentence numbers.
    window : int
        Maximum window $W$; reduced windows are drawn exactly as in :func:`skipgram_pairs`.
    chunk_len : int
        Centre words per chunk, $L$.
    rng : numpy Generator

    Returns
    -------
    tokens : ndarray of int32, shape (C, L + 2W)
        Chunk $k$ holds positions $kL - W \\ldots kL + L + W - 1$; its centres are columns
        ``W:W+L``. Positions outside the corpus hold id 0.
    sents : ndarray of int64, shape (C, L + 2W)
        Sentence number of each slot, -1 outside the corpus.
    windows : ndarray of int64, shape (C, L)
        Reduced window $b_t$ of each centre, 0 for padding (a centre with no pairs).
    """
    ids, sent = _check_corpus(ids, sent)
    if check_int("chunk_len", chunk_len) < 1 or check_int("window", window) < 1:
        raise ValueError(f"chunk_len and window must be >= 1, got {chunk_len} and {window}")
    n = len(ids)
    b = reduced_windows(n, window, rng)                           # same draws as skipgram_pairs
    n_chunks = max(1, -(-n // chunk_len))
    tail = n_chunks * chunk_len - n
    ids_p = np.concatenate([np.zeros(window, np.int32), ids.astype(np.int32), np.zeros(tail + window, np.int32)])
    sent_p = np.concatenate([np.full(window, -1), sent, np.full(tail + window, -1)])
    width = chunk_len + 2 * window
    view = np.lib.stride_tricks.sliding_window_view                # (n + 2W + tail - width + 1, width)
    tokens = view(ids_p, width)[::chunk_len].copy()                # (C, L + 2W)
    sents = view(sent_p, width)[::chunk_len].copy()
    windows = np.concatenate([b, np.zeros(tail, np.int64)]).reshape(n_chunks, chunk_len)
    return tokens, sents, windows
