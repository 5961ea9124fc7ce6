r"""Softmax, log-sum-exp and the softmax Jacobian, in NumPy and PyTorch.

.. math::
    \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}
                          = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

Subtracting the maximum changes nothing mathematically but keeps every
exponent <= 0, so nothing overflows.  The Jacobian is
:math:`\partial y_i / \partial x_j = y_i(\delta_{ij} - y_j)`, i.e.
``diag(y) - y y^T``; its vector product is ``y * (g - <g, y>)``.

Conventions for degenerate input (the same in NumPy and PyTorch):

* a ``-inf`` entry gets probability 0 (a masked position); a row that is **all** ``-inf``
  has nothing to distribute and returns **all zeros** (not NaN), as the masked attention
  does; its ``log_softmax`` is all ``-inf`` and its ``logsumexp`` is ``-inf``;
* an empty axis gives an empty result (``logsumexp`` of nothing is ``-inf``);
* NaN and ``+inf`` have no meaningful softmax: they raise ``ValueError``.
"""
from __future__ import annotations

import numpy as np
import torch

from .checks import as_numpy, check_int, check_number, check_tensor

# ----------------------------------------------------------------------------- NumPy


def softmax_naive(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The textbook formula without the max shift: overflows for large inputs."""
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _check_values(x, name: str = "x") -> None:
    """Refuse NaN and +inf (NumPy array or tensor); -inf is allowed (probability 0)."""
    if isinstance(x, np.ndarray):
        bad = bool((np.isnan(x) | np.isposinf(x)).any())
    else:
        bad = bool((torch.isnan(x) | torch.isposinf(x)).any())
    if bad:
        raise ValueError(f"{name} contains NaN or +inf, which have no softmax; use -inf (or a large "
                         "negative number) for positions that must get probability 0")


def _as_input(x, axis: int) -> np.ndarray:
    """``x`` as a float array with a valid ``axis`` and no NaN / +inf."""
    x = as_numpy("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension (the axis the probabilities run along)")
    check_int("axis", axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)                                  # ints and bools -> float64
    _check_values(x)
    return x


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    r"""Stable :math:`\log\sum_j e^{x_j} = m + \log\sum_j e^{x_j - m}`.

    An all ``-inf`` row, and an empty axis, give ``-inf`` (the log of an empty sum).
    """
    x = _as_input(x, axis)
    if x.shape[axis] == 0:                                        # log of an empty sum
        out = np.full(np.sum(x, axis=axis, keepdims=True).shape, -np.inf, dtype=x.dtype)
        return out if keepdims else np.squeeze(out, axis=axis)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)        # an all -inf row stays -inf, not NaN
    with np.errstate(divide="ignore"):                 # log(0) = -inf is the right answer
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    r"""Stable softmax of ``x / temperature`` along ``axis``.

    Temperature :math:`\tau`: :math:`\tau \to 0` approaches a one-hot argmax,
    :math:`\tau \to \infty` approaches the uniform distribution. A row that is all ``-inf``
    gives all zeros; NaN or ``+inf`` in ``x`` raise ``ValueError``.
    """
    temperature = check_number("temperature", temperature, positive=True)
    z = _as_input(x, axis) / temperature
    if z.size == 0:
        return z
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)                  # all -inf row: exp(-inf) = 0, no NaN
    e = np.exp(z - m)                                     # every exponent <= 0
    total = e.sum(axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)            # 0 / 1 = 0 for an all -inf row


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x - logsumexp(x): exact even where softmax underflows to 0.

    An all ``-inf`` row gives all ``-inf`` (the log of the zeros :func:`softmax` returns).
    """
    x = _as_input(x, axis)
    lse = logsumexp(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):                   # -inf - (-inf) on all -inf rows
        out = x - lse
    return np.where(np.isneginf(lse), -np.inf, out)


def softmax_jacobian(x: np.ndarray) -> np.ndarray:
    r"""Jacobian of softmax for one vector x of shape (n,): diag(y) - y y^T, shape (n, n)."""
    if np.ndim(x) != 1:
        raise ValueError(f"softmax_jacobian takes one vector of shape (n,), got shape {np.shape(x)}")
    y = softmax(x)
    return np.diag(y) - np.outer(y, y)


def softmax_backward(grad_y: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    r"""Vector-Jacobian product: :math:`\bar x = y \odot (\bar y - \langle \bar y, y \rangle)`."""
    grad_y, y = as_numpy("grad_y", grad_y), as_numpy("y", y)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y {grad_y.shape} and y {y.shape} must have the same shape; y is "
                         "softmax's output and grad_y the gradient of the loss with respect to it")
    return y * (grad_y - np.sum(grad_y * y, axis=axis, keepdims=True))


# ----------------------------------------------------------------------------- PyTorch


def softmax_torch(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Same as :func:`softmax` (and the same conventions), for floating tensors on any device."""
    temperature = check_number("temperature", temperature, positive=True)
    check_tensor("x", x, min_ndim=1)
    check_int("dim", dim)
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} is out of range for x of shape {tuple(x.shape)}")
    _check_values(x)
    z = x / temperature
    if z.numel() == 0:
        return z
    m = z.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))    # all -inf row: zeros, no NaN
    e = torch.exp(z - m)                                          # every exponent <= 0
    total = e.sum(dim=dim, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def softmax_backward_torch(grad_y: torch.Tensor, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Same as :func:`softmax_backward`, for tensors."""
    check_tensor("grad_y", grad_y)
    check_tensor("y", y)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y {tuple(grad_y.shape)} and y {tuple(y.shape)} must have the same shape")
    return y * (grad_y - (grad_y * y).sum(dim=dim, keepdim=True))
