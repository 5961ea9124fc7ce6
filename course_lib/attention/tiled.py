r"""Online softmax and tiled (FlashAttention-style) attention, NumPy and PyTorch.

Naive attention materialises the (T_q, T_k) score matrix: O(T^2) memory.
Tiled attention walks over blocks of keys and keeps, for every query, three
running quantities (Milakov & Gimelshein, 2018; Dao et al., 2022):

.. math::
    m \leftarrow \max(m, \max_j s_j), \quad
    \ell \leftarrow \ell\, e^{m_{old} - m} + \sum_j e^{s_j - m}, \quad
    a \leftarrow a\, e^{m_{old} - m} + \sum_j e^{s_j - m} v_j

and returns :math:`a / \ell` at the end, which equals softmax(S) V exactly.
Extra memory per query block is O(block_q * block_k) instead of O(T_q * T_k).

Degenerate input gives what the naive functions give: a query with no key it may attend
to (fully masked, or T_k = 0) gets a zero output, T_q = 0 an empty one; an all ``-inf``
vector's online softmax is all zeros. ``block_size`` must be an integer >= 1.
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import torch

from .checks import as_numpy, check_int, check_number
from .masks import numpy_inputs, torch_inputs
from .softmax import _check_values


def online_softmax(x: np.ndarray, block_size: int = 4) -> np.ndarray:
    """Softmax of a 1-D vector, computed in one streaming pass over blocks plus a rescale."""
    x = as_numpy("x", x)
    if x.ndim != 1:
        raise ValueError(f"online_softmax takes one vector of shape (n,), got shape {x.shape}")
    block_size = check_int("block_size", block_size, minimum=1)
    x = x.astype(np.float64) if x.dtype.kind != "f" else x
    _check_values(x)
    m, l = -np.inf, 0.0                                 # running max and running denominator
    for start in range(0, len(x), block_size):
        block = x[start:start + block_size]
        m_new = max(m, block.max())
        if m_new == -np.inf:
            continue                                    # only -inf so far: nothing to add
        l = l * np.exp(m - m_new) + np.exp(block - m_new).sum()   # rescale old sum to new max
        m = m_new
    if l == 0:
        return np.zeros_like(x)                         # empty or all -inf: zeros, as softmax
    return np.exp(x - m) / l


def tiled_attention(q, k, v, mask=None, causal: bool = False, block_size: int = 64,
                    scale: float | None = None):
    """softmax(Q K^T / sqrt(d)) V block by block, never storing a (T_q, T_k) matrix (NumPy).

    Same inputs as :func:`course_lib.attention.numpy_attention.scaled_dot_product_attention`
    plus ``causal`` (a causal mask without materialising it) and ``block_size``.
    Returns out (..., T_q, d_v).
    """
    q, k, v, mask = numpy_inputs(q, k, v, mask)
    block_size = check_int("block_size", block_size, minimum=1)
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, positive=True)
    T_q, T_k = q.shape[-2], k.shape[-2]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    out = np.zeros(batch + (T_q, v.shape[-1]), dtype=np.result_type(q, v, np.float32))
    for qs in range(0, T_q, block_size):
        qb = q[..., qs:qs + block_size, :]                         # (..., bq, d)
        bq = qb.shape[-2]
        m = np.full(batch + (bq, 1), -np.inf)                      # running max
        l = np.zeros(batch + (bq, 1))                              # running denominator
        acc = np.zeros(batch + (bq, v.shape[-1]))                  # running numerator
        for ks in range(0, T_k, block_size):
            if causal and ks > qs + bq - 1 + (T_k - T_q):
                break                                              # every later key is in the future
            kb, vb = k[..., ks:ks + block_size, :], v[..., ks:ks + block_size, :]
            s = (qb @ np.swapaxes(kb, -1, -2)) * scale             # (..., bq, bk)
            allowed = _block_mask(mask, causal, qs, ks, bq, kb.shape[-2], T_q, T_k, xp=np)
            if allowed is not None:
                s = np.where(allowed, s, -np.inf)
            m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
            m_safe = np.where(np.isfinite(m_new), m_new, 0.0)      # rows with nothing allowed yet
            p = np.exp(s - m_safe)                                 # masked -> exp(-inf) = 0
            correction = np.exp(np.where(np.isfinite(m), m, m_safe) - m_safe)
            l = l * correction + p.sum(axis=-1, keepdims=True)
            acc = acc * correction + p @ vb
            m = m_new
        out[..., qs:qs + bq, :] = acc / np.where(l > 0, l, 1.0)   # fully masked rows -> 0
    return out


def _block_mask(mask, causal, qs, ks, bq, bk, T_q, T_k, xp):
    """The (…, bq, bk) slice of the boolean mask and/or causal structure, or None."""
    allowed = None
    if mask is not None:
        full = mask[None, :] if mask.ndim == 1 else mask          # (T_k,) -> (1, T_k)
        # expand singleton query/key axes before slicing
        rows = full if full.shape[-2] == 1 else full[..., qs:qs + bq, :]
        allowed = rows if rows.shape[-1] == 1 else rows[..., ks:ks + bk]
    if causal:
        if xp is np:
            i = np.arange(qs, qs + bq)[:, None] + (T_k - T_q)
            j = np.arange(ks, ks + bk)[None, :]
        else:
            dev = mask.device if mask is not None else xp
            i = torch.arange(qs, qs + bq, device=dev)[:, None] + (T_k - T_q)
            j = torch.arange(ks, ks + bk, device=dev)[None, :]
        c = j <= i
        allowed = c if allowed is None else (allowed & c)
    return allowed


def tiled_attention_torch(q, k, v, mask=None, causal: bool = False, block_size: int = 64,
                          scale: float | None = None):
    """PyTorch version of :func:`tiled_attention` (differentiable through autograd)."""
    torch_inputs(q, k, v, mask)
    block_size = check_int("block_size", block_size, minimum=1)
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, positive=True)
    T_q, T_k = q.shape[-2], k.shape[-2]
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    outs = []
    for qs in range(0, T_q, block_size):
        qb = q[..., qs:qs + block_size, :]                          # (..., bq, d)
        bq = qb.shape[-2]
        m = l = acc = None
        for ks in range(0, T_k, block_size):
            if causal and ks > qs + bq - 1 + (T_k - T_q):
                break
            kb, vb = k[..., ks:ks + block_size, :], v[..., ks:ks + block_size, :]
            s = (qb @ kb.transpose(-2, -1)) * scale                 # (..., bq, bk)
            allowed = _block_mask(mask, causal, qs, ks, bq, kb.shape[-2], T_q, T_k, xp=q.device)
            if allowed is not None:
                s = s.masked_fill(~allowed, float("-inf"))
            block_max = s.amax(dim=-1, keepdim=True)
            m_new = block_max if m is None else torch.maximum(m, block_max)
            m_safe = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
            p = torch.exp(s - m_safe)                               # (..., bq, bk)
            if m is None:
                l, acc = p.sum(-1, keepdim=True), p @ vb
            else:
                correction = torch.exp(torch.where(torch.isfinite(m), m, m_safe) - m_safe)
                l = l * correction + p.sum(-1, keepdim=True)
                acc = acc * correction + p @ vb
            m = m_new
        if acc is None:                                             # no key to attend to (T_k = 0)
            outs.append(q.new_zeros(batch + (bq, v.shape[-1])))
        else:
            outs.append(acc / torch.where(l > 0, l, torch.ones_like(l)))
    if not outs:                                                    # T_q = 0: an empty output
        return q.new_zeros(batch + (0, v.shape[-1]))
    return torch.cat(outs, dim=-2)                                  # (..., T_q, d_v)


def peak_memory_numpy(fn, *args, **kwargs) -> tuple[int, object]:
    """Peak bytes newly allocated while running a NumPy function (via tracemalloc).

    NumPy reports its array buffers to tracemalloc, so this counts every
    temporary, e.g. the (T, T) score matrix of naive attention.  Inside a Jupyter
    kernel, background threads can add a few KiB and the first call allocates
    extra caches: warm up once and compare medians when exact bytes matter.
    Returns (peak_bytes, result).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function to call with *args, got {type(fn).__name__}")
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        base, _ = tracemalloc.get_traced_memory()
        result = fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, result
