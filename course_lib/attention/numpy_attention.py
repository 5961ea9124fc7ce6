r"""Scaled dot-product and multi-head attention in NumPy, forward and backward.

.. math::
    S = \frac{Q K^\top}{\sqrt{d_k}}, \qquad P = \mathrm{softmax}(S), \qquad O = P V

Shapes: q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v) -> out (..., T_q, d_v).
``mask`` is boolean, True = may attend, broadcastable to (..., T_q, T_k).
A query with no key it may attend to (all its keys masked, or no keys at all, T_k = 0)
gets all-zero weights and a zero output; T_q = 0 gives empty outputs.

The PyTorch twin (:mod:`course_lib.attention.torch_attention`) has the same
signatures, so tests swap one for the other.
"""
from __future__ import annotations

import numpy as np

from .checks import as_numpy, check_int, check_number
from .masks import numpy_inputs


def _masked_softmax(scores: np.ndarray, mask) -> np.ndarray:
    """Softmax over the last axis that gives 0 to masked keys and to fully masked rows."""
    if scores.shape[-1] == 0 or scores.size == 0:
        return np.zeros(scores.shape, dtype=np.result_type(scores, np.float32))  # no keys: empty rows
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
    weights : (..., T_q, T_k), rows sum to 1; a query with nothing to attend to (fully
        masked row, or T_k = 0) gets zero weights and a zero output

    Raises
    ------
    TypeError
        q, k, v or mask is not array-like, holds non-numbers, or is a torch tensor.
    ValueError
        Shapes that do not fit (see :func:`~course_lib.attention.masks.check_attention_inputs`),
        a non-boolean mask, or a scale that is not a finite number > 0.
    """
    q, k, v, mask = numpy_inputs(q, k, v, mask)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, positive=True)
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
    q, k, v, _ = numpy_inputs(q, k, v)
    grad_out, weights = as_numpy("grad_out", grad_out, 2), as_numpy("weights", weights, 2)
    batch_w = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])                  # the scores' batch
    batch = np.broadcast_shapes(batch_w, v.shape[:-2])                         # the output's batch
    expected = {"weights": batch_w + (q.shape[-2], k.shape[-2]), "grad_out": batch + (q.shape[-2], v.shape[-1])}
    for name, x in (("weights", weights), ("grad_out", grad_out)):
        if x.shape != expected[name]:
            raise ValueError(f"{name} has shape {x.shape}, expected {expected[name]} for q {q.shape}, "
                             f"k {k.shape}, v {v.shape}; pass the weights returned by the forward pass")
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, positive=True)
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
    x = as_numpy("x", x)
    num_heads = check_int("num_heads", num_heads, minimum=1)
    if x.ndim != 3:
        raise ValueError(f"split_heads expects x of shape (B, T, D), got shape {x.shape}")
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width D={D} of input {x.shape} is not divisible by num_heads={num_heads}")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, T, Dh) -> (B, T, H * Dh)."""
    x = as_numpy("x", x)
    if x.ndim != 4:
        raise ValueError(f"merge_heads expects x of shape (B, H, T, Dh), got shape {x.shape}")
    B, H, T, Dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)


def check_mha_params(params, query, key, value, num_heads: int) -> None:
    """Names, shapes and widths of multi-head attention parameters and inputs (NumPy or torch)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays named like a state dict, got {type(params).__name__}")
    missing = [f"{n}.weight" for n in ("q_proj", "k_proj", "v_proj", "out_proj") if f"{n}.weight" not in params]
    if missing:
        raise KeyError(f"params lacks {missing}; it needs q_proj.weight, k_proj.weight, v_proj.weight, "
                       f"out_proj.weight (and optional .bias), got keys {sorted(params)}")
    D = tuple(params["q_proj.weight"].shape)[0]
    if D % num_heads:
        raise ValueError(f"the projections' width D={D} is not divisible by num_heads={num_heads}")
    for name, x in (("query", query), ("key", key), ("value", value)):
        if x.ndim != 3:
            raise ValueError(f"{name} must have shape (B, T, D), got shape {tuple(x.shape)}")
    for name, x, proj in (("query", query, "q_proj"), ("key", key, "k_proj"), ("value", value, "v_proj")):
        w = params[f"{proj}.weight"]
        if tuple(w.shape)[1] != x.shape[-1]:
            raise ValueError(f"{name} has width {x.shape[-1]} (shape {tuple(x.shape)}) but {proj}.weight "
                             f"{tuple(w.shape)} expects width {tuple(w.shape)[1]}")
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f"key {tuple(key.shape)} and value {tuple(value.shape)} must share (B, T_k)")
    if query.shape[0] != key.shape[0]:
        raise ValueError(f"query {tuple(query.shape)} and key {tuple(key.shape)} have different batch sizes")


def _linear(x, params, name):
    w = params[f"{name}.weight"]                  # (out, in), like torch.nn.Linear
    b = params.get(f"{name}.bias")
    return x @ w.T + (0.0 if b is None else b)


def head_mask(mask):
    """Give a (B, T_q, T_k) mask a head axis -> (B, 1, T_q, T_k); other shapes pass through."""
    mask = None if mask is None else as_numpy("mask", mask)
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
    query, key, value = (as_numpy(n, x) for n, x in (("query", query), ("key", key), ("value", value)))
    num_heads = check_int("num_heads", num_heads, minimum=1)
    check_mha_params(params, query, key, value, num_heads)
    q = split_heads(_linear(query, params, "q_proj"), num_heads)   # (B, H, T_q, Dh)
    k = split_heads(_linear(key, params, "k_proj"), num_heads)     # (B, H, T_k, Dh)
    v = split_heads(_linear(value, params, "v_proj"), num_heads)   # (B, H, T_k, Dh)
    out, weights = scaled_dot_product_attention(q, k, v, head_mask(mask))
    return _linear(merge_heads(out), params, "out_proj"), weights  # (B, T_q, D)
