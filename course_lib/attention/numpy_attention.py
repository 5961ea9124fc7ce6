r"""Scaled dot-product and multi-head attention in NumPy, forward and backward.

.. math::
    S = \frac{Q K^\top}{\sqrt{d_k}}, \qquad P = \mathrm{softmax}(S), \qquad O = P V

Shapes: q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v) -> out (..., T_q, d_v).
``mask`` is boolean, True = may attend, broadcastable to (..., T_q, T_k).
A query whose keys are all masked gets all-zero weights and a zero output.

The PyTorch twin (:mod:`course_lib.attention.torch_attention`) has the same
signatures, so tests swap one for the other.
"""
from __future__ import annotations

import numpy as np

from .masks import check_attention_inputs


def _masked_softmax(scores: np.ndarray, mask) -> np.ndarray:
    """Softmax over the last axis that gives 0 to masked keys and to fully masked rows."""
    if mask is None:
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    mask = np.broadcast_to(mask, scores.shape)
    filled = np.where(mask, scores, -np.inf)
    row_max = filled.max(axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)   # fully masked row: no NaN
    e = np.where(mask, np.exp(filled - row_max), 0.0)
    denom = e.sum(axis=-1, keepdims=True)
    return e / np.where(denom > 0, denom, 1.0)                # 0 / 1 = 0 for empty rows


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V.

    Parameters
    ----------
    q, k, v : ndarray
        (..., T_q, d_k), (..., T_k, d_k), (..., T_k, d_v).
    mask : bool ndarray, optional
        True where a query may attend to a key; broadcastable to (..., T_q, T_k).
    scale : float, optional
        Defaults to 1 / sqrt(d_k).

    Returns
    -------
    out : (..., T_q, d_v)
    weights : (..., T_q, T_k), rows sum to 1 (0 for fully masked rows)
    """
    check_attention_inputs(q, k, v, mask)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ np.swapaxes(k, -1, -2)) * scale    # (..., T_q, T_k)
    weights = _masked_softmax(scores, mask)          # (..., T_q, T_k)
    return weights @ v, weights                      # (..., T_q, d_v)


def scaled_dot_product_attention_backward(grad_out, q, k, v, weights, scale: float | None = None):
    r"""Hand-derived gradients of :func:`scaled_dot_product_attention`.

    With :math:`\bar O` = ``grad_out`` and :math:`P` = ``weights``:

    .. math::
        \bar V = P^\top \bar O, \quad
        \bar P = \bar O V^\top, \quad
        \bar S = P \odot (\bar P - \mathrm{rowsum}(\bar P \odot P)), \quad
        \bar Q = s\, \bar S K, \quad \bar K = s\, \bar S^\top Q

    Masked entries have P = 0, so they receive no gradient.
    Returns (dq, dk, dv) with the shapes of q, k, v.
    """
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    dv = np.swapaxes(weights, -1, -2) @ grad_out                           # (..., T_k, d_v)
    d_weights = grad_out @ np.swapaxes(v, -1, -2)                          # (..., T_q, T_k)
    d_scores = weights * (d_weights - (d_weights * weights).sum(-1, keepdims=True))  # softmax VJP
    dq = (d_scores @ k) * scale                                            # (..., T_q, d_k)
    dk = (np.swapaxes(d_scores, -1, -2) @ q) * scale                       # (..., T_k, d_k)
    # Sum over broadcast batch dimensions (e.g. k, v shared by all heads).
    dq, dk, dv = (_unbroadcast(g, x.shape) for g, x in ((dq, q), (dk, k), (dv, v)))
    return dq, dk, dv


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(axis=i, keepdims=True)
    return grad


# ----------------------------------------------------------------------------- multi-head

def split_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """(B, T, D) -> (B, H, T, Dh) with Dh = D / H."""
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width D={D} of input {x.shape} is not divisible by num_heads={num_heads}")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, T, Dh) -> (B, T, H * Dh)."""
    B, H, T, Dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)


def _linear(x, params, name):
    w = params[f"{name}.weight"]                  # (out, in), like torch.nn.Linear
    b = params.get(f"{name}.bias")
    return x @ w.T + (0.0 if b is None else b)


def head_mask(mask):
    """Give a (B, T_q, T_k) mask a head axis -> (B, 1, T_q, T_k); other shapes pass through."""
    if mask is not None and mask.ndim == 3:
        return mask[:, None]
    return mask


def multi_head_attention(query, key, value, params: dict, num_heads: int, mask=None):
    r"""Multi-head attention: H scaled dot-product attentions on learned projections.

    .. math::
        \mathrm{MHA}(X_q, X_k, X_v) = \mathrm{Concat}(\mathrm{head}_1..\mathrm{head}_H) W_O^\top,
        \quad \mathrm{head}_h = \mathrm{Attention}(X_q W_{Q,h}^\top, X_k W_{K,h}^\top, X_v W_{V,h}^\top)

    ``params`` uses the state-dict names of
    :class:`course_lib.attention.torch_attention.MultiHeadAttention`
    (``q_proj.weight``, ``q_proj.bias``, ..., ``out_proj.bias``), so
    ``{k: t.numpy() for k, t in module.state_dict().items()}`` ports a module.
    query (B, T_q, D), key/value (B, T_k, D); mask (T_q, T_k), (B, T_q, T_k) or (B, 1|H, T_q, T_k).
    Returns out (B, T_q, D) and per-head weights (B, H, T_q, T_k).
    """
    q = split_heads(_linear(query, params, "q_proj"), num_heads)   # (B, H, T_q, Dh)
    k = split_heads(_linear(key, params, "k_proj"), num_heads)     # (B, H, T_k, Dh)
    v = split_heads(_linear(value, params, "v_proj"), num_heads)   # (B, H, T_k, Dh)
    out, weights = scaled_dot_product_attention(q, k, v, head_mask(mask))
    return _linear(merge_heads(out), params, "out_proj"), weights  # (B, T_q, D)
