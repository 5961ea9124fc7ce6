r"""The small layers a Transformer is made of, in NumPy and in PyTorch.

* **Layer normalisation** (层归一化; the seed's typo "层ORMALIZATION"), Ba et al. (2016):
  each vector is normalised over its own features, then scaled and shifted,

  .. math:: \mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
            \quad \mu = \tfrac1D \sum_i x_i,\ \sigma^2 = \tfrac1D \sum_i (x_i - \mu)^2 .

  Two details decide whether we match ``torch.nn.LayerNorm`` to the last digit: the variance is
  the *biased* one (divide by :math:`D`, not :math:`D-1`) and :math:`\epsilon` sits *inside*
  the square root.
* **RMSNorm** (Zhang & Sennrich, 2019; Llama): no mean, no shift,
  :math:`\gamma \odot x / \sqrt{\tfrac1D \sum_i x_i^2 + \epsilon}`.
* **GELU** (Hendrycks & Gimpel, 2016): :math:`x \Phi(x)` with the normal CDF
  :math:`\Phi(x) = \tfrac12 (1 + \mathrm{erf}(x / \sqrt2))` (BERT, ``hidden_act="gelu"``), or
  its tanh approximation :math:`\tfrac12 x (1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`
  (GPT-2, ``activation_function="gelu_new"``).
* **Position-wise feed-forward network** (FFN): the same two-layer MLP applied to every
  position, :math:`\mathrm{FFN}(x) = W_2\, f(W_1 x + b_1) + b_2`, usually 4x wider inside.

The NumPy and PyTorch functions share names and signatures (``layer_norm``, ``rms_norm``,
``gelu``, ``feed_forward``); the modules :class:`LayerNorm` and :class:`RMSNorm` hold the
parameters with the names Hugging Face uses (``weight``, ``bias``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erf
from torch import nn

from ..attention.checks import check_int, check_number

# --------------------------------------------------------------------------- NumPy


def layer_norm_numpy(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Layer normalisation over the last axis (NumPy).

    Parameters
    ----------
    x : ndarray, shape (..., D)
    weight, bias : ndarray, shape (D,)
        Gain :math:`\\gamma` and shift :math:`\\beta`.
    eps : float
        Added to the variance *inside* the square root.

    Returns
    -------
    ndarray, shape (..., D), same dtype as ``x``.
    """
    _check_norm_shapes(x.shape, weight.shape, "layer_norm_numpy", eps)
    mu = x.mean(axis=-1, keepdims=True)                       # mu = (1/D) sum_i x_i
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)        # sigma^2, biased: divide by D
    x_hat = (x - mu) / np.sqrt(var + eps)                     # (x - mu) / sqrt(sigma^2 + eps)
    return (x_hat * weight + bias).astype(x.dtype)           # gamma * x_hat + beta


def rms_norm_numpy(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """RMSNorm over the last axis (NumPy): ``weight * x / sqrt(mean(x^2) + eps)``."""
    _check_norm_shapes(x.shape, weight.shape, "rms_norm_numpy", eps)
    ms = (x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True)   # (1/D) sum_i x_i^2
    return (weight * (x / np.sqrt(ms + eps))).astype(x.dtype)


def gelu_numpy(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU (NumPy): exact ``x Phi(x)`` (``approximate="none"``) or the tanh form (``"tanh"``)."""
    if approximate == "none":
        return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype)        # x Phi(x)
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(x.dtype)
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def feed_forward_numpy(x: np.ndarray, params: dict, activation: str = "gelu") -> np.ndarray:
    """Position-wise FFN (NumPy): ``fc2(act(fc1(x)))``, weights stored (out, in) like nn.Linear.

    ``params`` holds ``fc1.weight`` (F, D), ``fc1.bias`` (F,), ``fc2.weight`` (D, F), ``fc2.bias`` (D,).
    """
    act = ACTIVATIONS_NUMPY[_check_activation(activation)]
    _check_ffn_params(params, x.shape)
    h = x @ params["fc1.weight"].T + params["fc1.bias"]       # (B, T, D) -> (B, T, F)
    h = act(h)
    return h @ params["fc2.weight"].T + params["fc2.bias"]    # (B, T, F) -> (B, T, D)


# --------------------------------------------------------------------------- PyTorch


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Layer normalisation over the last axis, written out (same signature as the NumPy version)."""
    _check_norm_shapes(tuple(x.shape), tuple(weight.shape), "layer_norm", eps)
    mu = x.mean(dim=-1, keepdim=True)                          # mu
    var = (x - mu).pow(2).mean(dim=-1, keepdim=True)           # biased variance
    return (x - mu) * torch.rsqrt(var + eps) * weight + bias   # gamma (x - mu) / sqrt(var + eps) + beta


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm, computed in float32 like Hugging Face Llama, returned in the input dtype."""
    _check_norm_shapes(tuple(x.shape), tuple(weight.shape), "rms_norm", eps)
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)   # x / sqrt(mean(x^2) + eps)
    return weight * x32.to(x.dtype)


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU written out; equal to ``F.gelu(x, approximate=...)``."""
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))                # x Phi(x)
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))
        return 0.5 * x * (1.0 + torch.tanh(inner))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def feed_forward(x: torch.Tensor, params: dict, activation: str = "gelu") -> torch.Tensor:
    """Position-wise FFN (PyTorch), same signature as :func:`feed_forward_numpy`."""
    act = ACTIVATIONS[_check_activation(activation)]
    _check_ffn_params(params, x.shape)
    h = F.linear(x, params["fc1.weight"], params["fc1.bias"])  # (B, T, D) -> (B, T, F)
    return F.linear(act(h), params["fc2.weight"], params["fc2.bias"])   # (B, T, F) -> (B, T, D)


# Activation names as Hugging Face configs spell them (``hidden_act`` / ``activation_function``).
# The fused library kernels are used in the models; ``gelu`` above is the readable version.
ACTIVATIONS = {
    "gelu": F.gelu,                                                   # exact (BERT)
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),              # tanh form (GPT-2)
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,                                                   # x sigmoid(x) (Llama's SwiGLU gate)
}
ACTIVATIONS_NUMPY = {
    "gelu": gelu_numpy,
    "gelu_new": lambda x: gelu_numpy(x, "tanh"),
    "gelu_pytorch_tanh": lambda x: gelu_numpy(x, "tanh"),
    "relu": lambda x: np.maximum(x, 0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


_FFN_SHAPES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h`` (B, T, D) over the positions where ``mask`` (B, T) is non-zero: (B, D).

    mean_b = sum_t m_bt h_bt / sum_t m_bt; a row with no real position gives zeros (0 / 1).
    The sentence embedding of mean pooling, and the input of a bag-of-tokens classifier.
    """
    m = mask.unsqueeze(-1).to(h.dtype)                                       # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1)                             # (B, D)


def _check_ffn_params(params, x_shape) -> None:
    missing = [k for k in _FFN_SHAPES if k not in params] if isinstance(params, dict) else list(_FFN_SHAPES)
    if missing:
        raise ValueError(f"params must be a dict with {list(_FFN_SHAPES)}; missing {missing}")
    (F_, D), (D2, F2) = params["fc1.weight"].shape, params["fc2.weight"].shape
    if x_shape[-1] != D or (D2, F2) != (D, F_) or params["fc1.bias"].shape != (F_,) or params["fc2.bias"].shape != (D,):
        raise ValueError(f"feed-forward shapes do not fit: x {tuple(x_shape)}, fc1.weight {(F_, D)} (F, D), "
                         f"fc2.weight {(D2, F2)} (D, F), fc1.bias {tuple(params['fc1.bias'].shape)} (F,), "
                         f"fc2.bias {tuple(params['fc2.bias'].shape)} (D,); weights are stored (out, in) "
                         "like nn.Linear")


def _check_activation(name: str) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return name


def _check_norm_shapes(x_shape, w_shape, fn: str, eps: float | None = None) -> None:
    if eps is not None:
        check_number(f"{fn}: eps", eps, positive=True)
    if len(x_shape) == 0:
        raise ValueError(f"{fn}: input must have a feature axis (..., D), got a scalar")
    if len(w_shape) != 1 or x_shape[-1] != w_shape[0]:
        raise ValueError(f"{fn}: input of shape {tuple(x_shape)} has {x_shape[-1]} features but "
                         f"weight has shape {tuple(w_shape)}; they must agree on the last axis")


class LayerNorm(nn.Module):
    """Layer normalisation with a learned gain ``weight`` and shift ``bias`` (init 1 and 0).

    Parameters
    ----------
    normalized_shape : int
        Feature width D.
    eps : float
        Added inside the square root (BERT: 1e-12, GPT-2: 1e-5).
    fused : bool
        True: one fused kernel, ``F.layer_norm`` (fast); False: the written-out :func:`layer_norm`.
        Both give the same numbers up to float rounding (tested).
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5, fused: bool = True):
        super().__init__()
        check_int("normalized_shape", normalized_shape, minimum=1)
        self.eps, self.fused = check_number("eps", eps, positive=True), fused
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """RMSNorm with a learned gain ``weight`` (init 1), as in Llama."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        check_int("hidden_size", hidden_size, minimum=1)
        self.eps = check_number("eps", eps, positive=True)
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)
