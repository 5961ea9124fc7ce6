r"""GloVe (Pennington et al., 2014): global co-occurrence counts fitted by weighted least squares.

**Counts.** Word $j$ at distance $d \le$ ``window`` from word $i$ (either side, inside
one sentence) adds $1/d$ to $X_{ij}$ — near words count more. $X$ is sparse and symmetric.

**Loss.** With word vectors $w_i$, context vectors $\tilde w_j$ and biases $b_i, \tilde b_j$,

$$ J = \sum_{X_{ij} > 0} f(X_{ij})\,\big(w_i^\top \tilde w_j + b_i + \tilde b_j - \log X_{ij}\big)^2,
   \qquad f(x) = \min\big(1, (x/x_{max})^{\alpha}\big),\ x_{max}=100,\ \alpha = 3/4 . $$

**AdaGrad.** Each parameter $\theta$ keeps the sum of its squared gradients $G$ and
moves by $\eta\, g / \sqrt{G}$; the reference code starts $G$ at 1. With
$e = f(X_{ij})(w_i^\top\tilde w_j + b_i + \tilde b_j - \log X_{ij})$ the gradients of
$\tfrac12 J$ are $e\,\tilde w_j$ for $w_i$, $e\,w_i$ for $\tilde w_j$ and $e$ for each bias.
The final embedding is $w + \tilde w$, as in the paper.

NumPy and PyTorch trainers below share one signature.
"""
from __future__ import annotations

import time

import numpy as np

from .config import GloVeConfig
from .vectors import WordVectors
from .vocab import Vocab


def cooccurrence(ids: np.ndarray, sent: np.ndarray, vocab_size: int, window: int = 10):
    """Sparse symmetric co-occurrence counts with $1/d$ weighting.

    Parameters
    ----------
    ids, sent : ndarray of int64, shape (N,)
        Token ids and sentence numbers (:meth:`Vocab.encode`).
    vocab_size : int
    window : int

    Returns
    -------
    rows, cols : ndarray of int64, shape (nnz,)
    values : ndarray of float64, shape (nnz,)
        $X_{ij}$ for every non-zero entry, sorted by (row, col).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    keys, vals = [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]                      # both tokens in one sentence
        a, b = ids[:-d][same], ids[d:][same]
        keys += [a * vocab_size + b, b * vocab_size + a]  # symmetric: (i, j) and (j, i)
        vals += [np.full(2 * len(a), 1.0 / d)]            # weight 1/d
    keys = np.concatenate(keys)
    uniq, inv = np.unique(keys, return_inverse=True)
    values = np.bincount(inv, weights=np.concatenate(vals))
    return uniq // vocab_size, uniq % vocab_size, values


def weighting(x: np.ndarray, x_max: float = 100.0, alpha: float = 0.75) -> np.ndarray:
    """$f(x) = \\min(1, (x/x_{max})^\\alpha)$."""
    return np.minimum(1.0, (x / x_max) ** alpha)


def glove_loss(w, w_ctx, b, b_ctx, rows, cols, values, x_max=100.0, alpha=0.75) -> float:
    """The GloVe objective $J$ (no 1/2) on the given entries, NumPy."""
    err = (w[rows] * w_ctx[cols]).sum(1) + b[rows] + b_ctx[cols] - np.log(values)
    return float((weighting(values, x_max, alpha) * err**2).sum())


def _init(vocab_size, vector_size, rng):
    # reference code: uniform(-0.5, 0.5) / vector_size for vectors and biases
    def u(*shape):
        return ((rng.random(shape) - 0.5) / vector_size).astype(np.float32)
    return u(vocab_size, vector_size), u(vocab_size, vector_size), u(vocab_size), u(vocab_size)


def _prepare(sentences, cfg, vocab):
    vocab = vocab or Vocab.build(sentences, cfg.min_count)
    ids, sent = vocab.encode(sentences)
    rows, cols, values = cooccurrence(ids, sent, len(vocab), cfg.window)
    return vocab, rows, cols, values


def train_glove_numpy(sentences: list[list[str]], cfg: GloVeConfig, batch_size: int = 4096,
                      vocab: Vocab | None = None, device=None) -> WordVectors:
    """Train GloVe with mini-batch AdaGrad in NumPy.

    Parameters
    ----------
    sentences : list of list of str
    cfg : GloVeConfig
    batch_size : int
        Non-zero entries per AdaGrad step.
    vocab : Vocab, optional
    device : ignored (same signature as :func:`train_glove_torch`).

    Returns
    -------
    WordVectors
        $w + \\tilde w$, with ``losses`` = mean weighted squared error per epoch.
    """
    vocab, rows, cols, values = _prepare(sentences, cfg, vocab)
    rng = np.random.default_rng(cfg.seed)
    w, wc, b, bc = _init(len(vocab), cfg.vector_size, rng)
    params = [w, wc, b, bc]
    hist = [np.ones_like(p) for p in params]            # AdaGrad G starts at 1
    logx, fx = np.log(values).astype(np.float32), weighting(values, cfg.x_max, cfg.alpha).astype(np.float32)
    losses, start = [], time.perf_counter()
    for _ in range(cfg.epochs):
        perm, total = rng.permutation(len(values)), 0.0
        for s in range(0, len(perm), batch_size):
            idx = perm[s:s + batch_size]
            i, j = rows[idx], cols[idx]
            diff = (w[i] * wc[j]).sum(1) + b[i] + bc[j] - logx[idx]    # w_i.w~_j + b_i + b~_j - log X
            e = fx[idx] * diff                                           # f(X) * diff
            total += float((e * diff).sum())
            grads = [e[:, None] * wc[j], e[:, None] * w[i], e, e]        # d(J/2)/d(w_i, w~_j, b_i, b~_j)
            for p, h, g, r in zip(params, hist, grads, (i, j, i, j)):
                np.add.at(h, r, g**2)                                    # G += g^2
                np.add.at(p, r, -cfg.learning_rate * g / np.sqrt(h[r]))  # theta -= eta g / sqrt(G)
        losses.append(total / len(values))
    return WordVectors(vocab.index_to_key, w + wc, counts=vocab.counts, losses=losses,
                       seconds=time.perf_counter() - start, words=len(values) * cfg.epochs)


def train_glove_torch(sentences: list[list[str]], cfg: GloVeConfig, batch_size: int = 4096,
                      vocab: Vocab | None = None, device=None) -> WordVectors:
    """Train GloVe with mini-batch AdaGrad in PyTorch (same signature as the NumPy one)."""
    import torch
    device = torch.device(device or "cpu")
    vocab, rows, cols, values = _prepare(sentences, cfg, vocab)
    rng = np.random.default_rng(cfg.seed)
    params = [torch.from_numpy(p).to(device) for p in _init(len(vocab), cfg.vector_size, rng)]
    w, wc, b, bc = params
    hist = [torch.ones_like(p) for p in params]
    rows_t, cols_t = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
    logx = torch.from_numpy(np.log(values).astype(np.float32)).to(device)
    fx = torch.from_numpy(weighting(values, cfg.x_max, cfg.alpha).astype(np.float32)).to(device)
    losses, start = [], time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(len(values))).to(device)
        total = torch.zeros((), device=device)
        for s in range(0, len(perm), batch_size):
            idx = perm[s:s + batch_size]
            i, j = rows_t[idx], cols_t[idx]
            diff = (w[i] * wc[j]).sum(1) + b[i] + bc[j] - logx[idx]    # w_i.w~_j + b_i + b~_j - log X
            e = fx[idx] * diff
            total += (e * diff).sum()
            grads = [e[:, None] * wc[j], e[:, None] * w[i], e, e]
            for p, h, g, r in zip(params, hist, grads, (i, j, i, j)):
                h.index_add_(0, r.int(), g**2)                                 # G += g^2
                p.index_add_(0, r.int(), -cfg.learning_rate * g / h[r].sqrt())  # theta -= eta g / sqrt(G)
        losses.append(float(total) / len(values))
    return WordVectors(vocab.index_to_key, (w + wc).cpu().numpy(), counts=vocab.counts, losses=losses,
                       seconds=time.perf_counter() - start, words=len(values) * cfg.epochs)
