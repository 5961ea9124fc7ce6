r"""Gradient accumulation: k small batches, one optimizer step, the gradient of one large batch.

A batch too large for memory is cut into k micro-batches; each runs forward and backward, the
gradients add up in ``.grad``, and the optimizer steps once. Backward is linear, so the sum of
the micro-batch gradients is the gradient of the sum of their losses. The large batch's loss is
the mean over its :math:`N = \sum_i n_i` tokens (padding excluded),

.. math::
    \mathcal{L} = \frac{1}{N}\sum_{i=1}^{k} S_i, \qquad S_i = \sum_{t \in \text{micro-batch } i} \ell_t ,

so micro-batch i must contribute :math:`S_i / N`: its *sum* of token losses divided by the
token count of the **whole** batch (``normalisation="tokens"``). The classic bug averages the
micro-batch means, :math:`\frac{1}{k}\sum_i S_i / n_i` (``"mean_of_means"``): exact only when all
:math:`n_i` are equal, wrong with padding or unequal lengths, because a token of a short
micro-batch weighs more than a token of a long one. Forgetting the :math:`1/k` altogether
(``"sum_of_means"``) multiplies the gradient by about k, i.e. the learning rate.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_int

__all__ = ["IGNORE_INDEX", "NORMALISATIONS", "token_loss_sum", "pad_lm_batch", "split_batch", "accumulation_weights",
           "big_batch_gradients", "accumulated_gradients", "max_grad_difference", "train_step_accumulated"]

IGNORE_INDEX = -100                                  # label of a padding position (PyTorch and HF convention)
NORMALISATIONS = ("tokens", "mean_of_means", "sum_of_means")

LossSum = Callable[[nn.Module, tuple], tuple[torch.Tensor, int]]


def token_loss_sum(model: nn.Module, batch: tuple) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropies over the real tokens: ``(S, n)`` for batch = (input_ids, labels).

    Labels equal to :data:`IGNORE_INDEX` (-100) are padding and count neither in S nor in n.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("a batch must be a tuple (input_ids (B, T), labels (B, T)); labels -100 mark padding")
    x, y = batch
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(f"labels must be a tensor shaped like input_ids {tuple(x.shape)}")
    logits = model(x)                                                            # (B, T, V)
    s = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),    # S = sum_t -log p(y_t)
                        ignore_index=IGNORE_INDEX, reduction="sum")
    return s, int((y != IGNORE_INDEX).sum())


def pad_lm_batch(batch: tuple, lengths: Sequence[int]) -> tuple:
    """Make rows unequal: row b keeps its first ``lengths[b]`` labels, the rest become -100 (padding)."""
    x, y = batch
    if len(lengths) != len(y):
        raise ValueError(f"lengths has {len(lengths)} entries, the batch has {len(y)} rows: give one length per row")
    if any(not 1 <= n <= y.shape[1] for n in lengths):
        raise ValueError(f"every length must be in 1..{y.shape[1]} (the block length), got {list(lengths)}")
    y = y.clone()
    for b, n in enumerate(lengths):
        y[b, n:] = IGNORE_INDEX
    return x, y


def split_batch(batch: tuple, k: int) -> list[tuple]:
    """Cut every tensor of ``batch`` along the batch axis into ``k`` micro-batches (row order kept)."""
    k = check_int("k", k, minimum=1)
    n = len(batch[0])
    if k > n:
        raise ValueError(f"cannot cut a batch of {n} rows into k={k} micro-batches; use k <= {n}")
    return list(zip(*(torch.tensor_split(t, k) for t in batch)))


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def accumulation_weights(token_counts: Sequence[int]) -> list[float]:
    """Weight of each micro-batch's *mean* loss so that the weighted sum is the token mean: :math:`w_i = n_i / N`.

    ``sum_i w_i * (S_i / n_i) = sum_i S_i / N``. A micro-batch with no real token gets weight 0.
    """
    counts = [check_int("token count", n, minimum=0) for n in token_counts]
    total = sum(counts)
    if total == 0:
        raise ValueError("the token counts add up to 0: no micro-batch has a real token")
    return [n / total for n in counts]                                          # w_i = n_i / N


def big_batch_gradients(model: nn.Module, batch: tuple, loss_sum: LossSum = token_loss_sum) -> dict:
    """Gradients of the token-mean loss :math:`S / N` of the whole batch (``.grad`` is reset first)."""
    model.zero_grad(set_to_none=True)
    s, n = loss_sum(model, batch)
    if n == 0:
        raise ValueError("the batch has no real token (every label is -100): nothing to learn from")
    (s / n).backward()                                                          # L = S / N
    return _grads(model)


def accumulated_gradients(model: nn.Module, micro_batches: Sequence[tuple], normalisation: str = "tokens",
                          loss_sum: LossSum = token_loss_sum) -> dict:
    """Gradients accumulated in ``.grad`` over ``micro_batches`` (one backward each), then returned.

    Also sets ``model.accumulated_loss`` to the large batch's token-mean loss :math:`S / N`.

    Parameters
    ----------
    normalisation : {"tokens", "mean_of_means", "sum_of_means"}
        ``"tokens"`` (correct): each backward of :math:`S_i / N`, N = real tokens of all micro-batches.
        ``"mean_of_means"``: :math:`(S_i / n_i) / k` (wrong unless every :math:`n_i` is equal).
        ``"sum_of_means"``: :math:`S_i / n_i` (wrong by a factor of about k).
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if len(micro_batches) == 0:
        raise ValueError("micro_batches is empty; pass at least one (input_ids, labels) batch")
    k = len(micro_batches)
    total = sum(int((mb[1] != IGNORE_INDEX).sum()) for mb in micro_batches)     # N, counted before any backward
    if total == 0:
        raise ValueError("the micro-batches have no real token (every label is -100): nothing to learn from")
    model.zero_grad(set_to_none=True)
    loss_total = 0.0
    for mb in micro_batches:
        s, n = loss_sum(model, mb)
        loss_total += float(s.detach())
        if normalisation == "tokens":
            loss = s / total                                                    # S_i / N
        else:
            mean = s / max(n, 1)                                                # S_i / n_i (0 for an all-padding micro-batch)
            loss = mean / k if normalisation == "mean_of_means" else mean       # (1/k) S_i / n_i, or forgot 1/k
        loss.backward()                                                         # .grad += d loss / d theta
    model.accumulated_loss = loss_total / total                                 # S / N, the large batch's loss
    return _grads(model)


def max_grad_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two gradient dicts (same parameter names)."""
    if set(a) != set(b):
        raise ValueError(f"the gradient dicts name different parameters: {sorted(set(a) ^ set(b))[:5]}")
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def train_step_accumulated(model: nn.Module, optimizer: torch.optim.Optimizer, micro_batches: Sequence[tuple],
                           loss_sum: LossSum = token_loss_sum) -> float:
    """One optimizer step over ``micro_batches`` with token-weighted accumulation; returns the batch loss S/N."""
    accumulated_gradients(model, micro_batches, "tokens", loss_sum)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model.accumulated_loss
