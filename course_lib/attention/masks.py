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

from .checks import as_numpy, check_int, check_same_dtype_device, check_tensor


def _check_xp(xp: str) -> None:
    if xp not in ("numpy", "torch"):
        raise ValueError(f"xp must be 'numpy' or 'torch', got {xp!r}")


def causal_mask(T: int, T_k: int | None = None, device=None, xp: str = "torch"):
    """Lower-triangular (T, T_k) mask: query i may attend to keys j <= i (+ offset).

    When ``T_k > T`` (a cache of past keys), query i sits at position
    ``T_k - T + i`` and may see every key up to there. ``T = 0`` or ``T_k = 0`` gives an
    empty mask.
    """
    _check_xp(xp)
    T = check_int("T", T, minimum=0)
    T_k = T if T_k is None else check_int("T_k", T_k, minimum=0)
    offset = T_k - T
    if xp == "numpy":
        return np.tril(np.ones((T, T_k), dtype=bool), k=offset)
    return torch.ones(T, T_k, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(lengths, T: int, device=None, xp: str = "torch"):
    """(B, 1, 1, T) mask that hides key positions >= length of each sequence.

    Broadcasts against scores of shape (B, H, T_q, T) for any number of heads H
    and queries T_q. ``lengths`` holds B integers in ``0..T`` (a length of 0 hides every key,
    and such a row's attention output is zero).
    """
    _check_xp(xp)
    T = check_int("T", T, minimum=0)
    arr = as_numpy("lengths", lengths.cpu().numpy() if isinstance(lengths, torch.Tensor) else lengths)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a 1-D sequence of B integers, got shape {arr.shape} "
                         f"and dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > T):
        raise ValueError(f"every length must lie in 0..T={T}, got {arr.tolist()}")
    if xp == "numpy":
        return (np.arange(T)[None, :] < arr[:, None])[:, None, None, :]
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

    Expected: q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v) with d_k >= 1 and
    batch dimensions that broadcast, mask boolean and broadcastable to (..., T_q, T_k).
    ``T_q = 0`` and ``T_k = 0`` are allowed (see the attention functions for the result).
    """
    for name, x in (("q", q), ("k", k), ("v", v), ("mask", mask)):
        if x is not None and not hasattr(x, "shape"):
            raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}")
    qs, ks, vs = tuple(q.shape), tuple(k.shape), tuple(v.shape)
    if min(len(qs), len(ks), len(vs)) < 2:
        raise ValueError(
            f"q, k, v need at least 2 dimensions (..., T, d); got q {qs}, k {ks}, v {vs}")
    if qs[-1] == 0:
        raise ValueError(f"the head dimension d_k of q {qs} and k {ks} is 0; it must be >= 1")
    for (na, a), (nb, b) in ((("q", qs), ("k", ks)), (("q", qs), ("v", vs)), (("k", ks), ("v", vs))):
        try:
            np.broadcast_shapes(a[:-2], b[:-2])
        except ValueError:
            raise ValueError(
                f"the batch dimensions of {na} {a} and {nb} {b} do not broadcast: {a[:-2]} vs {b[:-2]}; "
                "they must be equal or 1 (e.g. k, v shared by all heads have a head axis of size 1)") from None
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


def numpy_inputs(q, k, v, mask=None):
    """Check the inputs of a NumPy attention function; lists become arrays.

    Returns ``q, k, v, mask`` as NumPy arrays (``mask`` may stay None).
    """
    q, k, v = (as_numpy(name, x) for name, x in (("q", q), ("k", k), ("v", v)))
    mask = None if mask is None else as_numpy("mask", mask)
    check_attention_inputs(q, k, v, mask)
    return q, k, v, mask


def torch_inputs(q, k, v, mask=None) -> None:
    """Check the inputs of a torch attention function: floating tensors of one dtype and
    device, a boolean tensor mask on the same device."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x, floating=True)
    check_same_dtype_device(q=q, k=k, v=v)
    if mask is not None:
        check_tensor("mask", mask, floating=False)
        if mask.device != q.device:
            raise ValueError(f"mask is on {mask.device} but q is on {q.device}; move it with mask.to(q.device)")
    check_attention_inputs(q, k, v, mask)
