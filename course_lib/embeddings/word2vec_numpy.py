r"""Skip-gram with negative sampling (SGNS, 负采样跳字模型) in NumPy, gradients by hand.

Each word has an *input* vector $v_w$ (the embedding we keep) and an *output* vector
$u_w$. For a centre word $c$, a true context word $o$ and $K$ negatives $n_1..n_K$
drawn from the noise distribution $P_n(w) \propto \text{count}(w)^{0.75}$, the loss is

$$ \ell = -\log\sigma(u_o^\top v_c) - \sum_{k=1}^{K} \log\sigma(-u_{n_k}^\top v_c). $$

With $s = u^\top v_c$ and $\sigma'(s) = \sigma(s)(1-\sigma(s))$ the gradients are

$$ \frac{\partial \ell}{\partial v_c} = (\sigma(s_o) - 1)\,u_o + \sum_k \sigma(s_{n_k})\,u_{n_k},\qquad
   \frac{\partial \ell}{\partial u_o} = (\sigma(s_o) - 1)\,v_c,\qquad
   \frac{\partial \ell}{\partial u_{n_k}} = \sigma(s_{n_k})\,v_c . $$

Writing $g = \text{label} - \sigma(s)$ (label 1 for $o$, 0 for negatives), every
gradient is $-g$ times the other vector: that is the form word2vec's C code uses.
Initialisation as in word2vec's C code (and gensim 3): $v \sim U(-0.5, 0.5)/D$, $u = 0$.
"""
from __future__ import annotations

import time

import numpy as np

from .checks import check_corpus, check_finite, check_ids, check_int, check_number
from .config import Word2VecConfig
from .pairs import skipgram_pairs
from .vocab import Vocab, subsample
from .vectors import WordVectors


def sigmoid(x: np.ndarray) -> np.ndarray:
    """$\\sigma(x) = 1/(1+e^{-x})$, computed without overflow for large $|x|$."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def init_vectors(vocab_size: int, vector_size: int, rng: np.random.Generator,
                 dtype=np.float32, bound: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random input vectors ``U(-bound, bound)``, zero output vectors; both (V, D).

    The default ``bound = 0.5 / D`` is the word2vec C code's initialisation (and gensim 3's);
    gensim 4 and Facebook's fastText use ``1 / D`` (FastText passes it). The same uniform
    draws are used whatever the bound, so only the scale changes.
    """
    check_int("vocab_size", vocab_size, minimum=1)
    check_int("vector_size", vector_size, minimum=1)
    u = rng.random((vocab_size, vector_size)) - 0.5                      # U(-0.5, 0.5)
    if bound is None:
        w_in = (u / vector_size).astype(dtype)                           # U(-0.5, 0.5) / D
    else:
        w_in = (u * (2 * check_number("bound", bound, minimum=0.0, strict=True))).astype(dtype)
    return w_in, np.zeros((vocab_size, vector_size), dtype=dtype)


def full_softmax_batch(w_in: np.ndarray, w_out: np.ndarray, centers: np.ndarray, contexts: np.ndarray):
    """Summed loss of skip-gram with a **full softmax** over the vocabulary, and its dense gradients.

    $p(o \\mid c) = \\exp(u_o^\\top v_c) / \\sum_{w=1}^{V} \\exp(u_w^\\top v_c)$ and $\\ell = -\\log p(o \\mid c)$.
    With $p$ the softmax row and $y$ the one-hot of $o$:
    $\\partial \\ell / \\partial v_c = U^\\top (p - y)$ and $\\partial \\ell / \\partial U = (p - y)\\, v_c^\\top$,
    which touches **every** output vector: $O(VD)$ work per pair, against $O((K+1)D)$ for
    negative sampling (:func:`sgns_batch`).

    Parameters
    ----------
    w_in, w_out : ndarray, shape (V, D)
    centers, contexts : ndarray of int, shape (B,)

    Returns
    -------
    loss : float
        $\\sum_b \\ell_b$.
    grad_in, grad_out : ndarray, shape (V, D)
        $\\partial L/\\partial W_{in}$ (non-zero on the centre rows) and $\\partial L/\\partial W_{out}$ (dense).
    """
    centers, contexts = np.asarray(centers), np.asarray(contexts)
    if centers.ndim != 1 or centers.shape != contexts.shape:
        raise ValueError(f"centers and contexts must both be (B,), got {centers.shape} and {contexts.shape}")
    if np.shape(w_in) != np.shape(w_out) or np.ndim(w_in) != 2:
        raise ValueError(f"w_in and w_out must both be (V, D), got {np.shape(w_in)} and {np.shape(w_out)}")
    for name, x in (("centers", centers), ("contexts", contexts)):
        check_ids(name, x, size=w_in.shape[0])
    v = w_in[centers]                                                     # (B, D)
    s = v @ w_out.T                                                       # (B, V): u_w^T v_c for every word
    s = s - s.max(axis=1, keepdims=True)                                  # stable softmax
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))              # log p(w | c)
    rows = np.arange(len(centers))
    loss = float(-log_p[rows, contexts].sum())                            # -sum_b log p(o_b | c_b)
    err = np.exp(log_p)                                                   # (B, V): p - y
    err[rows, contexts] -= 1.0
    grad_in = np.zeros_like(w_in)
    np.add.at(grad_in, centers, err @ w_out)                              # dl/dv_c = U^T (p - y)
    grad_out = err.T @ v                                                  # dl/dU = (p - y) v_c^T, (V, D)
    return loss, grad_in, grad_out


def sgns_batch(w_in: np.ndarray, w_out: np.ndarray, centers: np.ndarray,
               contexts: np.ndarray, negatives: np.ndarray):
    """Summed SGNS loss of a batch and the gradients of the rows it touches.

    Parameters
    ----------
    w_in, w_out : ndarray, shape (V, D)
        Input and output vectors.
    centers, contexts : ndarray of int, shape (B,)
    negatives : ndarray of int, shape (B, K)

    Returns
    -------
    loss : float
        $\\sum_b \\ell_b$.
    grad_v : ndarray, shape (B, D)
        $\\partial \\ell_b / \\partial v_{c_b}$.
    targets : ndarray of int, shape (B, 1+K)
        Context then negatives.
    grad_u : ndarray, shape (B, 1+K, D)
        $\\partial \\ell_b / \\partial u_{t}$ for every target.
    """
    centers, contexts, negatives = (np.asarray(x) for x in (centers, contexts, negatives))
    if centers.ndim != 1 or centers.shape != contexts.shape or negatives.ndim != 2 \
            or negatives.shape[0] != centers.shape[0]:
        raise ValueError("centers, contexts must be (B,) and negatives (B, K); got "
                         f"{centers.shape}, {contexts.shape}, {negatives.shape}")
    if np.shape(w_in) != np.shape(w_out) or np.ndim(w_in) != 2:
        raise ValueError(f"w_in and w_out must both be (V, D), got {np.shape(w_in)} and {np.shape(w_out)}")
    for name, x in (("centers", centers), ("contexts", contexts), ("negatives", negatives.ravel())):
        check_ids(name, x, size=w_in.shape[0])
    targets = np.concatenate([contexts[:, None], negatives], axis=1)      # (B, 1+K)
    labels = np.zeros(targets.shape, dtype=w_in.dtype)
    labels[:, 0] = 1.0
    v = w_in[centers]                                                     # (B, D)
    u = w_out[targets]                                                    # (B, 1+K, D)
    s = np.einsum("bkd,bd->bk", u, v)                                     # s = u^T v_c
    # loss = -log sig(s_o) - sum_k log sig(-s_k);  -log sig(x) = log(1 + e^{-x})
    sign = 2.0 * labels - 1.0
    loss = float(np.logaddexp(0.0, -sign * s).sum())
    g = labels - sigmoid(s)                                               # (B, 1+K): label - sigma(s)
    grad_v = -np.einsum("bk,bkd->bd", g, u)                               # dl/dv_c = -sum_t g_t u_t
    grad_u = -g[:, :, None] * v[:, None, :]                               # dl/du_t = -g_t v_c
    return loss, grad_v, targets, grad_u


def sgns_loss_and_grads(w_in: np.ndarray, w_out: np.ndarray, centers: np.ndarray,
                        contexts: np.ndarray, negatives: np.ndarray):
    """Summed SGNS loss of a batch and its dense gradients (for gradient checking).

    Returns
    -------
    loss : float
    grad_in, grad_out : ndarray, shape (V, D)
        $\\partial L/\\partial W_{in}$ and $\\partial L/\\partial W_{out}$ (rows of unused words are 0).
    """
    loss, grad_v, targets, grad_u = sgns_batch(w_in, w_out, centers, contexts, negatives)
    grad_in, grad_out = np.zeros_like(w_in), np.zeros_like(w_out)
    np.add.at(grad_in, centers, grad_v)                                   # repeated words add up
    np.add.at(grad_out, targets.ravel(), grad_u.reshape(-1, w_in.shape[1]))  # (B,1+K,D) -> (B*(1+K), D)
    return loss, grad_in, grad_out


def draw_negatives(cum_table: np.ndarray, shape, rng: np.random.Generator) -> np.ndarray:
    """Negatives from the cumulative unigram^0.75 table (gensim's ``bisect_left``)."""
    cum_table = np.asarray(cum_table)
    if cum_table.ndim != 1 or cum_table.size == 0 or cum_table[-1] < 1:
        raise ValueError(f"cum_table must be a non-empty 1-D cumulative table (Vocab.cum_table()), "
                         f"got shape {cum_table.shape}")
    return np.searchsorted(cum_table, rng.integers(0, cum_table[-1], size=shape), side="left")


def linear_lr(cfg: Word2VecConfig, progress: float) -> float:
    """gensim's schedule: $\\alpha_t = \\alpha - (\\alpha - \\alpha_{min})\\,\\text{progress}$."""
    check_number("progress", progress)
    return cfg.alpha - (cfg.alpha - cfg.min_alpha) * min(max(progress, 0.0), 1.0)


def check_config(cfg, cls) -> None:
    """``cfg`` must be a ``cls`` whose fields are (still) valid: fields can change after construction."""
    if not isinstance(cfg, cls):
        raise TypeError(f"cfg must be a {cls.__name__}, got {type(cfg).__name__}")
    cfg.validate()


def check_vocab(vocab, sentences, min_count: int) -> Vocab:
    """The given ``Vocab``, or one built from ``sentences`` (which are checked either way)."""
    if vocab is None:
        return Vocab.build(sentences, min_count)
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a course_lib.embeddings.Vocab (Vocab.build(sentences)), "
                        f"got {type(vocab).__name__}")
    return vocab


def train_skipgram(sentences: list[list[str]], cfg: Word2VecConfig, batch_size: int = 256,
                   vocab: Vocab | None = None, log_every: int = 0) -> WordVectors:
    """Train SGNS with plain mini-batch SGD in NumPy (small corpora: it is slow).

    Parameters
    ----------
    sentences : list of list of str
    cfg : Word2VecConfig
        ``sg`` must be 1.
    batch_size : int
        Pairs per SGD step; the step adds ``-lr * gradient`` of the *summed* loss, so a
        pair moves its vectors as in word2vec's one-pair-at-a-time updates.
    vocab : Vocab, optional
        Reuse a vocabulary (else built with ``cfg.min_count``).
    log_every : int
        Print the mean loss every ``log_every`` steps (0 = silent).

    Returns
    -------
    WordVectors
        Input vectors, with ``losses`` (mean loss per pair of every step) and timing.
    """
    check_config(cfg, Word2VecConfig)
    if cfg.sg != 1:
        raise ValueError("the NumPy trainer implements skip-gram only (sg=1); use word2vec_torch for CBOW")
    check_int("batch_size", batch_size, minimum=1)
    check_int("log_every", log_every, minimum=0)
    vocab = check_vocab(vocab, sentences, cfg.min_count)
    rng = np.random.default_rng(cfg.seed)
    w_in, w_out = init_vectors(len(vocab), cfg.vector_size, rng)
    ids, sent = vocab.encode(sentences)
    check_corpus(ids, sent)
    keep, cum = vocab.keep_probs(cfg.sample), vocab.cum_table(cfg.ns_exponent)
    losses, step, n_words, start = [], 0, 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        e_ids, e_sent = subsample(ids, sent, keep, rng)
        c, o = skipgram_pairs(e_ids, e_sent, cfg.window, rng)
        perm = rng.permutation(len(c))
        c, o = c[perm], o[perm]
        if len(c) == 0:                                   # sub-sampling left no pair: next epoch
            check_finite((w_in, w_out), epoch, "alpha", cfg.alpha, batch_size)
            n_words += len(ids)
            continue
        n_batches = max(1, -(-len(c) // batch_size))
        for b in range(n_batches):
            cb, ob = c[b * batch_size:(b + 1) * batch_size], o[b * batch_size:(b + 1) * batch_size]
            neg = draw_negatives(cum, (len(cb), cfg.negative), rng)
            loss, g_v, targets, g_u = sgns_batch(w_in, w_out, cb, ob, neg)
            lr = linear_lr(cfg, (epoch + b / n_batches) / cfg.epochs)
            # SGD on the touched rows only: w <- w - lr dL/dw (np.add.at sums repeated rows)
            np.add.at(w_in, cb, -lr * g_v)
            np.add.at(w_out, targets.ravel(), -lr * g_u.reshape(-1, cfg.vector_size))
            losses.append(loss / len(cb))
            step += 1
            if log_every and step % log_every == 0:
                print(f"step {step:5d}  loss {np.mean(losses[-log_every:]):.2f}")
        check_finite((w_in, w_out), epoch, "alpha", cfg.alpha, batch_size)
        n_words += len(ids)
    return WordVectors(vocab.index_to_key, w_in, counts=vocab.counts, losses=losses,
                       seconds=time.perf_counter() - start, words=n_words)
