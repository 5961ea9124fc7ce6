r"""GloVe (Pennington et al., 2014): global co-occurrence counts fitted by weighted least squares.

**Counts.** Word $j$ at distance $d \le$ ``window`` from word $i$ (either side, inside
one sentence) adds $1/d$ to $X_{ij}$ — near words count more. $X$ is sparse and symmetric.

**Loss.** With word vectors $w_i$, context vectors $\tilde w_j$ and biases $b_i, \tilde b_j$,

$$ J = \sum_{X_{ij} > 0} f(X_{ij})\,\big(w_i^\top \tilde w_j + b_i + \tilde b_j - \log X_{ij}\big)^2,
   \qquad f(x) = \min\big(1, (x/x_{max})^{\alpha}\big),\ \alpha = 3/4 . $$

$f$ gives rare, noisy pairs little weight and caps frequent ones. The paper's $x_{max} = 100$
was set for billions of tokens; :class:`GloVeConfig` uses 10, as the reference code's demo
does for a 17M-token corpus (on WikiText-2, 84% of the $X_{ij}$ are below 1).

**Gradients.** With $e_{ij} = f(X_{ij})(w_i^\top\tilde w_j + b_i + \tilde b_j - \log X_{ij})$,
one entry contributes $e_{ij}\tilde w_j$ to $\partial(\tfrac12 J)/\partial w_i$, $e_{ij} w_i$ to
$\partial(\tfrac12 J)/\partial \tilde w_j$ and $e_{ij}$ to each bias. A mini-batch $\mathcal B$ of
entries has the loss $\tfrac12 J_{\mathcal B}$; the gradient $g$ of a row is the **sum** of the
contributions of all the batch's entries that touch it (a frequent word touches many).

**AdaGrad** (Duchi et al., 2011). Every coordinate $\theta$ keeps the sum $G$ of its squared
gradients, starting at 0, and moves against its gradient by a step that shrinks as $G$ grows:

$$ G \leftarrow G + g^2, \qquad \theta \leftarrow \theta - \eta\, \frac{g}{\sqrt{G} + \epsilon} . $$

Since $G \ge g^2$, no coordinate moves by more than $\eta$ in one step, however many entries
of the batch touch it; rare words, whose gradients are tiny, still move by about $\eta$ on
their first steps. This is ``torch.optim.Adagrad`` (``initial_accumulator_value=0``,
``eps=1e-10``) on the batch loss. (Adding each entry's $g^2$ to $G$ and each entry's step
separately instead would let a row met $k$ times in one batch move by up to $\sqrt k\,\eta$.)

The reference C code updates after every single entry (in lock-free threads), starts $G$
at 1, clips each component of $g$ to $\pm 100$, steps with the $G$ from *before* this $g$ and
adds $(\eta g)^2$ to it. With sums over the earlier gradients, that is

$$ \theta \leftarrow \theta - \frac{\eta\, g}{\sqrt{1 + \eta^2 \sum g^2}} = \theta - \frac{g}{\sqrt{1/\eta^2 + \sum g^2}} , $$

AdaGrad with step size 1 and $G$ starting at $1/\eta^2$. Its $G$ lacks the current $g$, so one
large $g$ could jump far: hence the clipping, which the form above does not need.

The final embedding is $w + \tilde w$, as in the paper. NumPy and PyTorch versions below
share one signature and compute the same numbers.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse

from .checks import check_finite, check_ids, check_int, check_number
from .config import GloVeConfig
from .vectors import WordVectors
from .vocab import Vocab

EPS = 1e-10  # AdaGrad's epsilon, torch.optim.Adagrad's default


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
    check_int("window", window, minimum=1)
    check_int("vocab_size", vocab_size, minimum=1)
    ids = check_ids("ids", ids, size=vocab_size)
    sent = np.asarray(sent)
    if sent.shape != ids.shape:
        raise ValueError(f"ids and sent must have the same shape, got {ids.shape} and {sent.shape}")
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]                      # both tokens in one sentence
        a, b = ids[:-d][same], ids[d:][same]
        rows += [a, b]                                    # symmetric: (i, j) and (j, i)
        cols += [b, a]
        vals += [np.full(2 * len(a), 1.0 / d)]            # weight 1/d
    # a (V, V) sparse matrix built from (row, col, value) triplets sums repeated (i, j)
    x = scipy.sparse.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(vocab_size, vocab_size))
    x.sum_duplicates()                                    # one entry per (i, j), columns sorted
    rows = np.repeat(np.arange(vocab_size, dtype=np.int64), np.diff(x.indptr))
    return rows, x.indices.astype(np.int64), x.data


def weighting(x: np.ndarray, x_max: float = 100.0, alpha: float = 0.75) -> np.ndarray:
    """$f(x) = \\min(1, (x/x_{max})^\\alpha)$ (defaults: the paper's values)."""
    check_number("x_max", x_max, minimum=0.0, strict=True)
    check_number("alpha", alpha, minimum=0.0)
    return np.minimum(1.0, (x / x_max) ** alpha)


def glove_loss(w, w_ctx, b, b_ctx, rows, cols, values, x_max=100.0, alpha=0.75) -> float:
    """The GloVe objective $J$ (no 1/2) on the given entries, NumPy."""
    err = (w[rows] * w_ctx[cols]).sum(1) + b[rows] + b_ctx[cols] - np.log(values)
    return float((weighting(values, x_max, alpha) * err**2).sum())


def glove_step_numpy(params, hist, i, j, logx, fx, lr: float) -> float:
    """One mini-batch AdaGrad step on the entries $(i_k, j_k)$, in place, NumPy.

    Parameters
    ----------
    params : list of 4 ndarray
        ``[w, w_ctx, b, b_ctx]`` of shapes (V, D), (V, D), (V,), (V,); updated in place.
    hist : list of 4 ndarray
        AdaGrad's $G$, same shapes; updated in place.
    i, j : ndarray of int64, shape (B,)
        Row (word) and column (context) of each entry.
    logx, fx : ndarray of float32, shape (B,)
        $\\log X_{ij}$ and $f(X_{ij})$ of each entry.
    lr : float
        $\\eta$.

    Returns
    -------
    float
        The batch's weighted squared error $J_{\\mathcal B}$ before the step.
    """
    check_number("lr", lr, minimum=0.0, strict=True)
    w, wc, b, bc = params
    wi, wj = w[i], wc[j]                                          # (B, D) each
    diff = (wi * wj).sum(1) + b[i] + bc[j] - logx                 # w_i.w~_j + b_i + b~_j - log X
    e = fx * diff                                                 # e = f(X) * diff
    grads = [e[:, None] * wj, e[:, None] * wi, e, e]              # per entry: d(J/2)/d(w_i, w~_j, b_i, b~_j)
    ui, inv_i = np.unique(i, return_inverse=True)                 # distinct rows of w and b in the batch
    uj, inv_j = np.unique(j, return_inverse=True)
    for p, h, g, (u, inv) in zip(params, hist, grads, [(ui, inv_i), (uj, inv_j)] * 2):
        g_row = np.zeros((len(u),) + g.shape[1:], dtype=g.dtype)
        np.add.at(g_row, inv, g)                                  # g = sum over the row's entries
        h[u] += g_row**2                                          # G += g^2
        p[u] -= lr * (g_row / (np.sqrt(h[u]) + EPS))              # theta -= eta g / (sqrt(G) + eps)
    return float((e * diff).sum())


def glove_step_torch(params, hist, i, j, logx, fx, lr: float):
    """One mini-batch AdaGrad step, PyTorch (same signature and numbers as :func:`glove_step_numpy`).

    Returns $J_{\\mathcal B}$ as a 0-dim tensor on the parameters' device (no device sync per step).
    """
    import torch
    check_number("lr", lr, minimum=0.0, strict=True)
    w, wc, b, bc = params
    wi, wj = w.index_select(0, i), wc.index_select(0, j)          # (B, D) each
    diff = torch.einsum("bd,bd->b", wi, wj) + b[i] + bc[j] - logx  # w_i.w~_j + b_i + b~_j - log X
    e = fx * diff                                                 # e = f(X) * diff
    loss = (e * diff).sum()
    grads = [wj.mul_(e[:, None]), wi.mul_(e[:, None]), e, e]      # per entry (in place: wi, wj are copies)
    ui, inv_i = torch.unique(i, return_inverse=True)              # distinct rows of w and b in the batch
    uj, inv_j = torch.unique(j, return_inverse=True)
    for p, h, g, (u, inv) in zip(params, hist, grads, [(ui, inv_i), (uj, inv_j)] * 2):
        g_row = g.new_zeros((len(u),) + g.shape[1:]).index_add_(0, inv, g)  # g = sum over the row's entries
        h_row = h.index_select(0, u).addcmul_(g_row, g_row)                 # G += g^2
        h.index_copy_(0, u, h_row)
        p.index_add_(0, u, g_row / (h_row.sqrt_() + EPS), alpha=-lr)       # theta -= eta g / (sqrt(G) + eps)
    return loss


def _init(vocab_size, vector_size, rng):
    # reference code: uniform(-0.5, 0.5) / vector_size for vectors and biases
    def u(*shape):
        return ((rng.random(shape) - 0.5) / vector_size).astype(np.float32)
    return u(vocab_size, vector_size), u(vocab_size, vector_size), u(vocab_size), u(vocab_size)


def _prepare(sentences, cfg, vocab, batch_size):
    if not isinstance(cfg, GloVeConfig):
        raise TypeError(f"cfg must be a GloVeConfig, got {type(cfg).__name__}")
    cfg.validate()                                   # fields may have changed since construction
    check_int("batch_size", batch_size, minimum=1)
    if vocab is not None and not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a course_lib.embeddings.Vocab, got {type(vocab).__name__}")
    vocab = vocab or Vocab.build(sentences, cfg.min_count)
    ids, sent = vocab.encode(sentences)
    rows, cols, values = cooccurrence(ids, sent, len(vocab), cfg.window)
    if len(values) == 0:
        raise ValueError(f"no two in-vocabulary words occur within window={cfg.window} of each other in one "
                         "sentence, so there is nothing to fit; use more (or longer) sentences or a lower min_count")
    logx = np.log(values).astype(np.float32)
    fx = weighting(values, cfg.x_max, cfg.alpha).astype(np.float32)
    return vocab, rows, cols, logx, fx


def train_glove_numpy(sentences: list[list[str]], cfg: GloVeConfig, batch_size: int = 8192,
                      vocab: Vocab | None = None, device=None) -> WordVectors:
    """Train GloVe with mini-batch AdaGrad in NumPy.

    Parameters
    ----------
    sentences : list of list of str
    cfg : GloVeConfig
    batch_size : int
        Non-zero entries $X_{ij}$ per AdaGrad step (entries are shuffled every epoch).
    vocab : Vocab, optional
        Built from ``sentences`` with ``cfg.min_count`` when not given.
    device : ignored (same signature as :func:`train_glove_torch`).

    Returns
    -------
    WordVectors
        $w + \\tilde w$, with ``losses`` = mean weighted squared error per entry, one per epoch
        (accumulated over the epoch's batches, each before its step), and $\\tilde w$ as
        ``context_vectors`` (so $w$ = ``vectors - context_vectors``).
    """
    vocab, rows, cols, logx, fx = _prepare(sentences, cfg, vocab, batch_size)
    rng = np.random.default_rng(cfg.seed)
    params = list(_init(len(vocab), cfg.vector_size, rng))
    hist = [np.zeros_like(p) for p in params]                    # AdaGrad G starts at 0
    losses, start = [], time.perf_counter()
    for _ in range(cfg.epochs):
        perm, total = rng.permutation(len(logx)), 0.0
        for s in range(0, len(perm), batch_size):
            idx = perm[s:s + batch_size]
            total += glove_step_numpy(params, hist, rows[idx], cols[idx], logx[idx], fx[idx],
                                      cfg.learning_rate)
        losses.append(total / len(logx))
        check_finite(params, len(losses) - 1, "learning_rate", cfg.learning_rate)
    w, wc = params[0], params[1]
    return WordVectors(vocab.index_to_key, w + wc, counts=vocab.counts, losses=losses,
                       seconds=time.perf_counter() - start, words=len(logx) * cfg.epochs, context_vectors=wc)


def train_glove_torch(sentences: list[list[str]], cfg: GloVeConfig, batch_size: int = 8192,
                      vocab: Vocab | None = None, device=None) -> WordVectors:
    """Train GloVe with mini-batch AdaGrad in PyTorch (same signature and numbers as the NumPy one).

    ``device`` (e.g. ``"cuda"``) holds the parameters and the co-occurrence entries; default CPU.
    """
    import torch
    device = torch.device(device or "cpu")
    vocab, rows, cols, logx, fx = _prepare(sentences, cfg, vocab, batch_size)
    rng = np.random.default_rng(cfg.seed)
    params = [torch.from_numpy(p).to(device) for p in _init(len(vocab), cfg.vector_size, rng)]
    hist = [torch.zeros_like(p) for p in params]                 # AdaGrad G starts at 0
    rows_t, cols_t = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
    logx_t, fx_t = torch.from_numpy(logx).to(device), torch.from_numpy(fx).to(device)
    losses, start = [], time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(len(logx))).to(device)
        total = torch.zeros((), device=device)
        for s in range(0, len(perm), batch_size):
            idx = perm[s:s + batch_size]
            total += glove_step_torch(params, hist, rows_t[idx], cols_t[idx], logx_t[idx], fx_t[idx],
                                      cfg.learning_rate)
        losses.append(float(total) / len(logx))
        check_finite(params, len(losses) - 1, "learning_rate", cfg.learning_rate)
    w, wc = params[0], params[1]
    return WordVectors(vocab.index_to_key, (w + wc).cpu().numpy(), counts=vocab.counts, losses=losses,
                       seconds=time.perf_counter() - start, words=len(logx) * cfg.epochs,
                       context_vectors=wc.cpu().numpy())
