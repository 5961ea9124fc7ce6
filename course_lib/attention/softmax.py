r"""Softmax, log-sum-exp and the softmax Jacobian, in NumPy and PyTorch.

.. math::
    \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}
                          = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

Subtracting the maximum changes nothing mathematically but keeps every
exponent <= 0, so nothing overflows.  The Jacobian is
:math:`\partial y_i / \partial x_j = y_i(\delta_{ij} - y_j)`, i.e.
``diag(y) - y y^T``; its vector product is ``y * (g - <g, y>)``.
"""
from __future__ import annotations

import numpy as np
import torch

# ----------------------------------------------------------------------------- NumPy


def softmax_naive(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The textbook formula without the max shift: overflows for large inputs."""
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    r"""Stable :math:`\log\sum_j e^{x_j} = m + \log\sum_j e^{x_j - m}`."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)        # an all -inf row stays -inf, not NaN
    with np.errstate(divide="ignore"):                 # log(0) = -inf is the right answer
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    r"""Stable softmax of ``x / temperature`` along ``axis``.

    Temperature :math:`\tau`: :math:`\tau \to 0` approaches a one-hot argmax,
    :math:`\tau \to \infty` approaches the uniform distribution.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(x) / temperature
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))   # every exponent <= 0
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x - logsumexp(x): exact even where softmax underflows to 0."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax_jacobian(x: np.ndarray) -> np.ndarray:
    r"""Jacobian of softmax for one vector x of shape (n,): diag(y) - y y^T, shape (n, n)."""
    if np.ndim(x) != 1:
        raise ValueError(f"softmax_jacobian takes one vector of shape (n,), got shape {np.shape(x)}")
    y = softmax(x)
    return np.diag(y) - np.outer(y, y)


def softmax_backward(grad_y: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    r"""Vector-Jacobian product: :math:`\bar x = y \odot (\bar y - \langle \bar y, y \rangle)`."""
    return y * (grad_y - np.sum(grad_y * y, axis=axis, keepdims=True))


# ----------------------------------------------------------------------------- PyTorch


def softmax_torch(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Same as :func:`softmax`, for tensors on any device."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = x / temperature
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def softmax_backward_torch(grad_y: torch.Tensor, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Same as :func:`softmax_backward`, for tensors."""
    return y * (grad_y - (grad_y * y).sum(dim=dim, keepdim=True))
