"""Attention masks and input checks shared by the NumPy and PyTorch attention.

One convention everywhere: a mask is **boolean, True = may attend**, and
broadcasts to the score shape ``(..., T_q, T_k)``.  This is the convention of
``torch.nn.functional.scaled_dot_product_attention``; note that
``torch.nn.MultiheadAttention`` uses the opposite one (True = blocked), so we
pass it ``~mask``.
"""
from __future__ import annotations

import numpy as np
import torch


def causal_mask(T: int, T_k: int | None = None, device=None, xp: str = "torch"):
    """Lower-triangular (T, T_k) mask: query i may attend to keys j <= i (+ offset).

    When ``T_k > T`` (a cache of past keys), query i sits at position
    ``T_k - T + i`` and may see every key up to there.
    """
    T_k = T if T_k is None else T_k
    offset = T_k - T
    if xp == "numpy":
        return np.tril(np.ones((T, T_k), dtype=bool), k=offset)
    return torch.ones(T, T_k, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(lengths, T: int, device=None, xp: str = "torch"):
    """(B, 1, 1, T) mask that hides key positions >= length of each sequence.

    Broadcasts against scores of shape (B, H, T_q, T) for any number of heads H
    and queries T_q.
    """
    if xp == "numpy":
        lengths = np.asarray(lengths)
        return (np.arange(T)[None, :] < lengths[:, None])[:, None, None, :]
    lengths = torch.as_tensor(lengths, device=device)
    return (torch.arange(T, device=lengths.device)[None, :] < lengths[:, None])[:, None, None, :]


def _broadcastable(mask_shape: tuple, target: tuple) -> bool:
    if len(mask_shape) > len(target):
        return False
    for m, t in zip(reversed(mask_shape), reversed(target)):
        if m != 1 and m != t:
            return False
    return True


def check_attention_inputs(q, k, v, mask=None) -> None:
    """Raise ``ValueError`` naming the shapes when q, k, v and mask do not fit together.

    Expected: q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v),
    mask boolean and broadcastable to (..., T_q, T_k).
    """
    qs, ks, vs = tuple(q.shape), tuple(k.shape), tuple(v.shape)
    if min(len(qs), len(ks), len(vs)) < 2:
        raise ValueError(
            f"q, k, v need at least 2 dimensions (..., T, d); got q {qs}, k {ks}, v {vs}")
    if qs[-1] != ks[-1]:
        raise ValueError(
            f"query and key head dimensions differ: q {qs} has d_k={qs[-1]} but k {ks} has "
            f"d_k={ks[-1]}; the scores q @ k^T need the same last dimension")
    if ks[-2] != vs[-2]:
        raise ValueError(
            f"key and value lengths differ: k {ks} has T_k={ks[-2]} but v {vs} has {vs[-2]}; "
            "every key needs exactly one value")
    if mask is None:
        return
    is_bool = mask.dtype == torch.bool if isinstance(mask, torch.Tensor) else \
        np.asarray(mask).dtype == np.bool_
    if not is_bool:
        raise ValueError(
            f"mask must be boolean (True = may attend), got dtype {mask.dtype} with shape "
            f"{tuple(mask.shape)}; convert an additive 0/-inf mask with `mask == 0`, "
            "or a 0/1 mask with `mask.bool()` / `mask.astype(bool)`")
    batch = np.broadcast_shapes(qs[:-2], ks[:-2]) if len(qs) > 2 or len(ks) > 2 else ()
    target = tuple(batch) + (qs[-2], ks[-2])
    if not _broadcastable(tuple(mask.shape), target):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{target} (..., T_q={qs[-2]}, T_k={ks[-2]}) for q {qs} and k {ks}")
