r"""Word2Vec (skip-gram and CBOW with negative sampling) in batched PyTorch, CPU or GPU.

The maths is that of :mod:`course_lib.embeddings.word2vec_numpy`; what changes is
speed. A fast trainer avoids three things:

* **Python loops over words**: one epoch's training pairs are built at once with
  vectorised NumPy (:mod:`~course_lib.embeddings.pairs`), then shuffled.
* **autograd + an optimiser**: a batch touches only $B(K+2)$ rows of two $V\times D$
  matrices, so we compute the closed-form gradients and apply SGD in place with
  ``index_add_``; no dense $V\times D$ gradient is ever formed. (Its indices are
  cast to int32: on CPU, torch's int32 path is several times faster than int64.)
* **small batches**: every batch costs a few kernel launches, so batches are large
  (thousands of pairs). Rows hit several times in one batch receive the sum of their
  updates, as they would (sequentially) in word2vec.

For a centre (or, in CBOW, the mean $h$ of the context vectors) and targets $t$
(the true word with label 1, then $K$ negatives with label 0), with learning rate
$\eta$ decayed linearly from ``alpha`` to ``min_alpha``:

$$ g_t = \eta\,(\text{label}_t - \sigma(u_t^\top h)),\qquad
   u_t \mathrel{+}= g_t\, h,\qquad h\text{'s rows} \mathrel{+}= \sum_t g_t\, u_t . $$

Three ways to feed skip-gram, from exact to fast (``train_word2vec`` picks one):

* **pairs** (:func:`sgns_step`): shuffled (centre, context) pairs, $K$ negatives each —
  word2vec's maths, batched.
* **shared pairs** (:func:`sgns_step_shared`): groups of pairs share $M$ negatives, so
  scoring them is a matrix product.
* **windows** (:func:`sgns_step_windows`): chunks of $L$ consecutive centre words, each
  scored against its whole window at once, $S = V_c U_w^\top$, with a band mask keeping
  the pairs inside each centre's reduced window; a centre with $n_c$ pairs shares $M$
  negatives weighted $n_c K / M$. Every centre vector and window row is read and
  written once per chunk instead of once per pair, which is what makes it fast on a CPU.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .checks import check_corpus, check_finite, check_loop_args, check_loss, check_number
from .config import Word2VecConfig
from .pairs import cbow_windows, skipgram_pairs, window_chunks
from .vectors import WordVectors
from .vocab import Vocab, subsample
from .word2vec_numpy import check_config, check_vocab, init_vectors, linear_lr


def draw_negatives(cum_table: torch.Tensor, shape, generator: torch.Generator) -> torch.Tensor:
    """Negatives from the cumulative unigram^0.75 table, on the table's device."""
    u = torch.randint(0, int(cum_table[-1]), shape, generator=generator, device=cum_table.device)
    return torch.searchsorted(cum_table, u)                      # gensim: bisect_left(cum_table, u)


@torch.no_grad()
def negative_sampling_update(w_out: torch.Tensor, h: torch.Tensor, positives: torch.Tensor,
                             negatives: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
    """The output layer shared by skip-gram, CBOW and FastText.

    Scores hidden vectors ``h`` (B, D) against their true word ``positives`` (B,)
    (label 1) and ``negatives`` (B, K) (label 0), applies ``u_t += g_t h`` to
    ``w_out`` in place, and returns the gradient for the hidden vectors,
    ``sum_t g_t u_t`` (B, D), together with the summed loss.
    """
    check_number("lr", lr, minimum=0.0)
    targets = torch.cat([positives[:, None], negatives], dim=1)  # (B, 1+K)
    u = w_out[targets]                                           # (B, 1+K, D)
    s = torch.bmm(u, h[:, :, None]).squeeze(-1)                  # (B, 1+K): s = u^T h
    labels = torch.zeros_like(s)
    labels[:, 0] = 1.0
    loss = torch.nn.functional.softplus(-(2 * labels - 1) * s).sum()  # -log sig(+-s)
    g = (labels - torch.sigmoid(s)) * lr                         # g = lr (label - sigma(s))
    g[:, 1:] *= negatives != positives[:, None]                  # gensim skips a negative equal to the target
    grad_h = torch.bmm(g[:, None, :], u).squeeze(1)              # (B, D): sum_t g_t u_t
    w_out.index_add_(0, targets.reshape(-1).int(),
                     (g[:, :, None] * h[:, None, :]).reshape(-1, h.shape[1]))  # u_t += g_t h
    return grad_h, float(loss)


@torch.no_grad()
def sgns_step(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
              negatives: torch.Tensor, lr: float) -> float:
    """One in-place SGD step of skip-gram with negative sampling; returns the summed loss.

    ``centers``, ``contexts``: (B,); ``negatives``: (B, K). Same maths as
    :func:`~course_lib.embeddings.word2vec_numpy.sgns_batch`.
    """
    grad_v, loss = negative_sampling_update(w_out, w_in[centers], contexts, negatives, lr)
    w_in.index_add_(0, centers.int(), grad_v)                    # v_c += sum_t g_t u_t
    return loss


@torch.no_grad()
def sgns_step_shared(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor,
                     contexts: torch.Tensor, negatives: torch.Tensor, lr: float, negative: int,
                     need_loss: bool = True) -> float:
    """Skip-gram step where groups of pairs share their negatives (fast on CPU).

    The B pairs are split into ``G = negatives.shape[0]`` groups of ``S = B / G``
    consecutive pairs; every pair of group $g$ is scored against the same ``M``
    negatives ``negatives[g]``. Each of those terms is weighted by ``negative / M``,
    so a pair still receives, in expectation, the gradient of ``negative`` negatives,
    but the scores become a batched matrix product, (S, D) @ (D, M), instead of
    B(K+1) gathered rows (the trick of Ji et al., 2016, and BlazingText).

    ``centers``, ``contexts``: (B,) with B divisible by G; ``negatives``: (G, M).
    The loss (returned) is only computed when ``need_loss``; otherwise 0.0 is returned.
    """
    check_number("lr", lr, minimum=0.0)
    B, D = centers.shape[0], w_in.shape[1]
    G, M = negatives.shape
    if B % G:
        raise ValueError(f"batch of {B} pairs cannot be split into {G} equal groups")
    v = w_in[centers]                                            # (B, D)
    u_pos = w_out[contexts]                                      # (B, D)
    u_neg = w_out[negatives]                                     # (G, M, D)
    s_pos = (v * u_pos).sum(1)                                   # (B,): u_o^T v_c
    vg = v.view(G, B // G, D)                                    # (B, D) -> (G, S, D)
    s_neg = torch.bmm(vg, u_neg.transpose(1, 2))                 # (G, S, M): u_n^T v_c
    w = negative / M                                             # weight of one shared negative
    loss = 0.0
    if need_loss:                                                # -log sig(s_o) - w sum log sig(-s_n)
        loss = float(torch.nn.functional.softplus(-s_pos).sum() + w * torch.nn.functional.softplus(s_neg).sum())
    g_pos = lr * (1 - torch.sigmoid(s_pos))                      # (B,): lr (1 - sigma(s))
    g_neg = -lr * w * torch.sigmoid(s_neg)                       # (G, S, M): lr w (0 - sigma(s))
    g_neg *= negatives[:, None, :] != contexts.view(G, B // G, 1)  # a negative equal to the target is skipped
    grad_v = g_pos[:, None] * u_pos + torch.bmm(g_neg, u_neg).view(B, D)  # sum_t g_t u_t
    grad_neg = torch.bmm(g_neg.transpose(1, 2), vg)              # (G, M, D): sum over the group of g v
    w_out.index_add_(0, contexts.int(), g_pos[:, None] * v)            # u_o += g v_c
    w_out.index_add_(0, negatives.reshape(-1).int(), grad_neg.view(G * M, D))
    w_in.index_add_(0, centers.int(), grad_v)                          # v_c += sum_t g_t u_t
    return loss


def window_mask(sents: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    r"""Which (centre, window slot) pairs are skip-gram pairs, for a batch of chunks.

    ``sents``: (G, L + 2W) sentence numbers of the slots; ``windows``: (G, L) reduced
    windows $b$ of the centres (slot ``W + i`` is centre ``i``). Slot $j$ is a context of
    centre $i$ when $d = j - W - i$ satisfies $1 \le |d| \le b_i$ and both words lie in
    one sentence. Returns a bool tensor (G, L, L + 2W).
    """
    G, L = windows.shape
    T = sents.shape[1]
    W = (T - L) // 2
    if sents.shape[0] != G or T != L + 2 * W:
        raise ValueError(f"sents must be (G, L + 2W) for windows (G, L) = {tuple(windows.shape)}, "
                         f"got {tuple(sents.shape)}")
    dev = windows.device
    d = (torch.arange(T, device=dev)[None, :] - W - torch.arange(L, device=dev)[:, None]).abs()  # (L, T): |j-W-i|
    centre_sent = sents[:, W:W + L]                                          # (G, L)
    return ((d > 0) & (d <= windows[:, :, None])                             # inside the reduced window
            & (sents[:, None, :] == centre_sent[:, :, None]))                # same sentence


@torch.no_grad()
def window_negative_sampling_update(w_out: torch.Tensor, h: torch.Tensor, tokens: torch.Tensor,
                                    mask: torch.Tensor, negatives: torch.Tensor, lr: float,
                                    negative: int, need_loss: bool = True) -> tuple[torch.Tensor, float]:
    """The output layer for chunks of centre words, shared by skip-gram and FastText.

    ``h`` (G, L, D): input vectors of the centres; ``tokens`` (G, T): ids of the window
    slots; ``mask`` (G, L, T): :func:`window_mask`; ``negatives`` (G, M): shared by the
    chunk. Applies the updates to ``w_out`` in place and returns the gradient for ``h``
    (G, L, D) and the summed loss (0.0 unless ``need_loss``).
    """
    check_number("lr", lr, minimum=0.0)
    G, L, D = h.shape
    M = negatives.shape[1]
    u = w_out.index_select(0, tokens.reshape(-1)).view(G, -1, D)             # (G, T, D) window rows
    u_neg = w_out.index_select(0, negatives.reshape(-1)).view(G, M, D)       # (G, M, D)
    maskf = mask.to(h.dtype)
    n_pairs = maskf.sum(-1, keepdim=True)                                    # (G, L, 1): n_c
    s_pos = torch.bmm(h, u.transpose(1, 2))                                  # (G, L, T): u_j^T v_i
    s_neg = torch.bmm(h, u_neg.transpose(1, 2))                              # (G, L, M): u_m^T v_i
    w_neg = n_pairs * (negative / M)                                         # each of M negatives stands for n_c K / M
    loss = 0.0
    if need_loss:                                                            # -log sig(s_pos) - w log sig(-s_neg)
        loss = float((torch.nn.functional.softplus(-s_pos) * maskf).sum()
                     + (torch.nn.functional.softplus(s_neg) * w_neg).sum())
    g_pos = lr * (1 - torch.sigmoid(s_pos)) * maskf                          # lr (1 - sigma(s)), pairs only
    g_neg = -lr * torch.sigmoid(s_neg) * w_neg                               # lr w (0 - sigma(s))
    grad_h = torch.bmm(g_pos, u) + torch.bmm(g_neg, u_neg)                   # (G, L, D): sum_t g_t u_t
    grad_u = torch.bmm(g_pos.transpose(1, 2), h)                             # (G, T, D): sum_i g_ij v_i
    grad_neg = torch.bmm(g_neg.transpose(1, 2), h)                           # (G, M, D)
    w_out.index_add_(0, tokens.reshape(-1), grad_u.reshape(-1, D))           # u_j += g v_i
    w_out.index_add_(0, negatives.reshape(-1), grad_neg.reshape(-1, D))
    return grad_h, loss


@torch.no_grad()
def sgns_step_windows(w_in: torch.Tensor, w_out: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                      negatives: torch.Tensor, lr: float, negative: int, need_loss: bool = True) -> float:
    """Skip-gram step on G chunks of L centre words (:func:`~course_lib.embeddings.pairs.window_chunks`).

    ``tokens``: (G, L + 2W) int ids, centres in columns ``W:W+L``; ``mask``: (G, L, L + 2W)
    from :func:`window_mask`; ``negatives``: (G, M), shared by the centres of a chunk.
    Unlike word2vec, a negative that happens to equal a context word is not skipped.
    Returns the summed loss (0.0 unless ``need_loss``).
    """
    G, L, T = mask.shape
    if tokens.shape != (G, T) or negatives.shape[0] != G:
        raise ValueError(f"tokens must be (G, T) = {(G, T)} and negatives (G, M); "
                         f"got {tuple(tokens.shape)} and {tuple(negatives.shape)}")
    W = (T - L) // 2
    centres = tokens[:, W:W + L].reshape(-1)                                 # (G L,)
    v = w_in.index_select(0, centres).view(G, L, -1)                         # (G, L, D)
    grad_v, loss = window_negative_sampling_update(w_out, v, tokens, mask, negatives, lr, negative, need_loss)
    w_in.index_add_(0, centres, grad_v.view(G * L, -1))                      # v_i += sum_t g_t u_t
    return loss


@torch.no_grad()
def cbow_step(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
              negatives: torch.Tensor, lr: float, cbow_mean: int = 1) -> float:
    """One in-place SGD step of CBOW; ``contexts`` is (B, 2W) with -1 for empty slots."""
    B, C = contexts.shape
    D = w_in.shape[1]
    mask = (contexts >= 0).to(w_in.dtype)                        # (B, 2W)
    ctx = contexts.clamp(min=0)
    h = (w_in[ctx] * mask[:, :, None]).sum(1)                    # (B, 2W, D) -> (B, D)
    if cbow_mean:
        h = h / mask.sum(1, keepdim=True)                        # h = mean of context vectors
    grad_h, loss = negative_sampling_update(w_out, h, centers, negatives, lr)
    if not cbow_mean:
        grad_h = grad_h / mask.sum(1, keepdim=True)              # gensim divides the error of a sum
    # every context word receives the whole error (word2vec / gensim convention)
    w_in.index_add_(0, ctx.reshape(-1).int(), (grad_h[:, None, :] * mask[:, :, None]).reshape(B * C, D))
    return loss


def train_word2vec(sentences: list[list[str]], cfg: Word2VecConfig, batch_size: int = 4096,
                   device: str | torch.device | None = None, vocab: Vocab | None = None,
                   log_every: int = 0, loss_every: int = 1, group_size: int = 0,
                   shared_negatives: int = 64, chunk_len: int = 0) -> WordVectors:
    """Train Word2Vec (``cfg.sg`` = 1 skip-gram, 0 CBOW) with negative sampling.

    Parameters
    ----------
    sentences : list of list of str
    cfg : Word2VecConfig
        gensim's hyper-parameters (``window, negative, sample, alpha, ...``).
    batch_size : int
        Training examples per step: pairs, CBOW windows, or (``chunk_len > 0``) centre words.
    device : torch device, optional
        Where the vectors live (default: cpu).
    vocab : Vocab, optional
        Reuse a vocabulary (else built with ``cfg.min_count``).
    log_every : int
        Print the mean loss every ``log_every`` steps (0 = silent).
    loss_every : int
        Record the loss every ``loss_every`` steps (it costs a sync on GPU).
    group_size : int
        Skip-gram only. 0 (default): every pair draws its own ``cfg.negative`` negatives,
        exactly as word2vec. ``S > 0``: groups of ``S`` pairs share ``shared_negatives``
        negatives (:func:`sgns_step_shared`), several times faster on a CPU.
    shared_negatives : int
        Negatives per group (``group_size > 0``) or per chunk (``chunk_len > 0``).
    chunk_len : int
        Skip-gram only. ``L > 0``: train on chunks of ``L`` consecutive centre words with
        their whole windows (:func:`sgns_step_windows`), the fastest way on a CPU;
        ``batch_size`` must then be a multiple of ``L``.

    Returns
    -------
    WordVectors
        The input vectors as NumPy float32, ``losses`` (mean loss per example), timing, and the
        output vectors $u_w$ as ``context_vectors``.
    """
    check_config(cfg, Word2VecConfig)
    check_loop_args(batch_size=batch_size, log_every=log_every, loss_every=loss_every, group_size=group_size,
                    shared_negatives=shared_negatives, chunk_len=chunk_len)
    device = torch.device(device or "cpu")
    vocab = check_vocab(vocab, sentences, cfg.min_count)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    w_in_np, _ = init_vectors(len(vocab), cfg.vector_size, rng)
    w_in = torch.from_numpy(w_in_np).to(device)
    w_out = torch.zeros_like(w_in)
    ids, sent = vocab.encode(sentences)
    check_corpus(ids, sent)
    keep = vocab.keep_probs(cfg.sample)
    cum = torch.from_numpy(vocab.cum_table(cfg.ns_exponent)).to(device)
    if cfg.sg and chunk_len:
        def window_step(tokens, mask, neg, lr, need_loss):
            return sgns_step_windows(w_in, w_out, tokens, mask, neg, lr, cfg.negative, need_loss)
        losses, seconds = run_window_epochs(window_step, ids, sent, keep, cum, cfg, rng, gen, batch_size,
                                            chunk_len, shared_negatives, log_every, loss_every, (w_in, w_out))
    else:
        if cfg.sg and group_size and batch_size % group_size:
            raise ValueError(f"batch_size {batch_size} must be a multiple of group_size {group_size}")

        def pair_step(cb, ob, lr, need_loss):
            if cfg.sg and group_size:
                neg = draw_negatives(cum, (len(cb) // group_size, shared_negatives), gen)
                return sgns_step_shared(w_in, w_out, cb, ob, neg, lr, cfg.negative, need_loss=need_loss)
            neg = draw_negatives(cum, (len(cb), cfg.negative), gen)
            if cfg.sg:
                return sgns_step(w_in, w_out, cb, ob, neg, lr)
            return cbow_step(w_in, w_out, cb, ob, neg, lr, cfg.cbow_mean)
        examples = skipgram_pairs if cfg.sg else cbow_windows
        losses, seconds = run_pair_epochs(pair_step, examples, ids, sent, keep, cfg, rng, device, batch_size,
                                          group_size if cfg.sg else 1, log_every, loss_every, (w_in, w_out))
    return WordVectors(vocab.index_to_key, w_in.cpu().numpy(), counts=vocab.counts, losses=losses,
                       seconds=seconds, words=len(ids) * cfg.epochs, context_vectors=w_out.cpu().numpy())


def _log(epoch: int, step: int, losses: list, log_every: int, loss_every: int) -> None:
    if log_every and step % log_every == 0:
        print(f"epoch {epoch}  step {step:6d}  loss {np.mean(losses[-max(1, log_every // loss_every):]):.2f}")


def run_pair_epochs(step_fn, examples, ids: np.ndarray, sent: np.ndarray, keep: np.ndarray, cfg,
                    rng: np.random.Generator, device, batch_size: int, multiple: int = 1,
                    log_every: int = 0, loss_every: int = 1, params=()) -> tuple[list, float]:
    """The training loop over shuffled examples, shared by skip-gram, CBOW and FastText.

    Each epoch sub-samples the corpus, builds its examples with
    ``examples(ids, sent, cfg.window, rng)`` (:func:`skipgram_pairs` or :func:`cbow_windows`),
    shuffles them, keeps a multiple of ``multiple`` and hands batches of ``batch_size`` to
    ``step_fn(centres, targets, lr, need_loss) -> summed loss``. The tensors in ``params``
    are checked at the end of every epoch: NaN or inf stops training with a
    ``FloatingPointError`` (:func:`~course_lib.embeddings.checks.check_finite`).
    Returns the recorded mean losses per example and the training time in seconds.
    """
    check_loop_args(batch_size=batch_size, log_every=log_every, loss_every=loss_every)
    losses, step, start = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        e_ids, e_sent = subsample(ids, sent, keep, rng)
        c, o = examples(e_ids, e_sent, cfg.window, rng)
        perm = rng.permutation(len(c))
        n_keep = len(c) // max(1, multiple) * max(1, multiple)   # whole groups only
        if n_keep == 0:                                          # sub-sampling left no example: next epoch
            continue
        c, o = torch.from_numpy(c[perm][:n_keep]).to(device), torch.from_numpy(o[perm][:n_keep]).to(device)
        n_batches = max(1, -(-len(c) // batch_size))
        for b in range(n_batches):
            cb, ob = c[b * batch_size:(b + 1) * batch_size], o[b * batch_size:(b + 1) * batch_size]
            lr = linear_lr(cfg, (epoch + b / n_batches) / cfg.epochs)
            loss = step_fn(cb, ob, lr, (step + 1) % loss_every == 0)
            step += 1
            if step % loss_every == 0:
                losses.append(loss / len(cb))
                check_loss(losses[-1], epoch, step, cfg, batch_size)
            _log(epoch, step, losses, log_every, loss_every)
        check_finite(params, epoch, "alpha", cfg.alpha, batch_size)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return losses, time.perf_counter() - start


def run_window_epochs(step_fn, ids: np.ndarray, sent: np.ndarray, keep: np.ndarray, cum: torch.Tensor,
                      cfg, rng: np.random.Generator, gen: torch.Generator, batch_size: int, chunk_len: int,
                      shared_negatives: int, log_every: int = 0, loss_every: int = 1,
                      params=()) -> tuple[list, float]:
    """The training loop over chunks, shared by skip-gram and FastText (``chunk_len > 0``).

    Each epoch sub-samples the corpus, cuts it into chunks (:func:`window_chunks`) and
    shuffles them; each step hands ``batch_size / chunk_len`` chunks to
    ``step_fn(tokens, mask, negatives, lr, need_loss) -> summed loss``. The tensors in
    ``params`` are checked at the end of every epoch, as in :func:`run_pair_epochs`.
    Returns the recorded mean losses per pair and the training time in seconds.
    """
    check_loop_args(batch_size=batch_size, chunk_len=chunk_len, shared_negatives=shared_negatives,
                    log_every=log_every, loss_every=loss_every)
    if chunk_len < 1:
        raise ValueError("chunk_len must be >= 1 for the chunk trainer")
    if batch_size % chunk_len:
        raise ValueError(f"batch_size {batch_size} must be a multiple of chunk_len {chunk_len}")
    n_chunks, device = batch_size // chunk_len, cum.device
    losses, step, start = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        e_ids, e_sent = subsample(ids, sent, keep, rng)
        tokens, sents, windows = (torch.from_numpy(a).to(device)
                                  for a in window_chunks(e_ids, e_sent, cfg.window, chunk_len, rng))
        order = torch.from_numpy(rng.permutation(len(tokens))).to(device)   # shuffle chunks, not words
        n_batches = -(-len(order) // n_chunks)
        for b in range(n_batches):
            ks = order[b * n_chunks:(b + 1) * n_chunks]
            mask = window_mask(sents[ks], windows[ks])                      # (G, L, L + 2W)
            neg = draw_negatives(cum, (len(ks), shared_negatives), gen).int()
            lr = linear_lr(cfg, (epoch + b / n_batches) / cfg.epochs)
            record = (step + 1) % loss_every == 0
            loss = step_fn(tokens[ks], mask, neg, lr, record)
            step += 1
            if record:
                losses.append(loss / max(1, int(mask.sum())))              # mean loss per pair
                check_loss(losses[-1], epoch, step, cfg, batch_size)
            _log(epoch, step, losses, log_every, loss_every)
        check_finite(params, epoch, "alpha", cfg.alpha, batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return losses, time.perf_counter() - start

