r"""Position information for a permutation-equivariant attention layer.

* Sinusoidal encoding (Vaswani et al., 2017), the "sin/cos functions" of Source B §3.1:
  :math:`PE_{p, 2i} = \sin(p / 10000^{2i/d})`, :math:`PE_{p, 2i+1} = \cos(p / 10000^{2i/d})`.
* Learned absolute position embeddings (BERT, GPT-2): a trainable table, one row per position.
* Rotary position embedding, RoPE (Su et al., 2021): rotate each pair of query/key
  features by an angle proportional to the position, so that
  :math:`\langle R_m q, R_n k \rangle` depends on :math:`m - n` only.
  We use the "rotate half" pairing of Hugging Face Llama (feature i with i + d/2).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .checks import check_int, check_number, check_tensor


def _check_table(num_positions, dim, base) -> None:
    """num_positions >= 0 (0: an empty table), an even dim >= 2, a finite base > 0."""
    check_int("num_positions", num_positions, minimum=0)
    check_int("dim", dim, minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even for sin/cos pairs, got {dim}")
    check_number("base", base, positive=True)


def sinusoidal_encoding(num_positions: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """(num_positions, dim) table: even columns sin, odd columns cos (NumPy, float64)."""
    _check_table(num_positions, dim, base)
    pos = np.arange(num_positions)[:, None]                      # (T, 1)
    inv_freq = base ** (-np.arange(0, dim, 2) / dim)             # (dim/2,)  1 / 10000^(2i/d)
    angles = pos * inv_freq                                      # (T, dim/2)
    pe = np.empty((num_positions, dim))
    pe[:, 0::2] = np.sin(angles)                                 # PE[p, 2i]
    pe[:, 1::2] = np.cos(angles)                                 # PE[p, 2i+1]
    return pe


def sinusoidal_encoding_torch(num_positions: int, dim: int, base: float = 10000.0,
                              device=None, dtype=torch.float32) -> torch.Tensor:
    """Same table as :func:`sinusoidal_encoding`, as a tensor."""
    _check_table(num_positions, dim, base)
    pos = torch.arange(num_positions, device=device, dtype=torch.float64)[:, None]
    inv_freq = base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)
    angles = pos * inv_freq
    pe = torch.empty(num_positions, dim, device=device, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe.to(dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A trainable (max_positions, dim) table added to token embeddings (BERT, GPT-2 style)."""

    def __init__(self, max_positions: int, dim: int):
        super().__init__()
        check_int("max_positions", max_positions, minimum=1)
        check_int("dim", dim, minimum=1)
        self.max_positions = max_positions
        self.weight = nn.Parameter(torch.randn(max_positions, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> x + P[:T]."""
        check_tensor("x", x)
        if x.dim() != 3 or x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"x must be (B, T, D={self.weight.shape[1]}), got shape {tuple(x.shape)}")
        T = x.shape[1]
        if T > self.max_positions:
            raise ValueError(f"sequence length {T} exceeds the {self.max_positions} learned positions")
        return x + self.weight[:T]


# ----------------------------------------------------------------------------- RoPE

def rope_cos_sin(num_positions: int, dim: int, base: float = 10000.0, offset: int = 0):
    """cos and sin tables, each (num_positions, dim), for positions offset.. (NumPy)."""
    _check_table(num_positions, dim, base)
    check_int("offset", offset)
    inv_freq = base ** (-np.arange(0, dim, 2) / dim)              # (dim/2,) theta_i
    angles = np.arange(offset, offset + num_positions)[:, None] * inv_freq   # (T, dim/2) m * theta_i
    angles = np.concatenate([angles, angles], axis=-1)           # (T, dim): pair i <-> i + dim/2
    return np.cos(angles), np.sin(angles)


def rotate_half(x):
    """[x1, x2] -> [-x2, x1] on the last axis (NumPy or torch)."""
    if not hasattr(x, "shape") or len(x.shape) == 0 or x.shape[-1] % 2:
        raise ValueError(f"rotate_half needs an array whose last dimension is even, got shape "
                         f"{tuple(getattr(x, 'shape', ()))}")
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    if isinstance(x, torch.Tensor):
        return torch.cat([-x2, x1], dim=-1)
    return np.concatenate([-x2, x1], axis=-1)


def apply_rope(x, cos, sin):
    r"""Rotate x (..., T, d) by position: :math:`x \cos(m\theta) + \mathrm{rot}(x) \sin(m\theta)`."""
    if len(x.shape) < 2 or tuple(cos.shape) != tuple(sin.shape):
        raise ValueError(f"x must be (..., T, d) and cos, sin two tables of one shape; got x {tuple(x.shape)}, "
                         f"cos {tuple(cos.shape)}, sin {tuple(sin.shape)}")
    if x.shape[-2:] != tuple(cos.shape[-2:]):
        raise ValueError(f"x has (T, d) = {tuple(x.shape[-2:])} but the cos/sin tables are "
                         f"{tuple(cos.shape[-2:])}; build them with num_positions=T, dim=d")
    return x * cos + rotate_half(x) * sin


def rope_cos_sin_torch(num_positions: int, dim: int, base: float = 10000.0, offset: int = 0,
                       device=None, dtype=torch.float32):
    """Same tables as :func:`rope_cos_sin`, as tensors.

    The angles are computed in float32 whatever ``dtype`` is, exactly as Hugging Face
    Llama does, so that our Llama blocks match it bit for bit; the tables therefore
    agree with the float64 NumPy ones to about 1e-5 for a few hundred positions
    (1e-4 at 4096), and ``dtype`` only sets the returned type.
    """
    _check_table(num_positions, dim, base)
    check_int("offset", offset)
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    pos = torch.arange(offset, offset + num_positions, device=device, dtype=torch.float32)
    angles = torch.outer(pos, inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)
