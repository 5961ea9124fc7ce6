r"""Scaled dot-product and multi-head attention in PyTorch (CPU or GPU).

Same signatures and return values as :mod:`course_lib.attention.numpy_attention`.
The module :class:`MultiHeadAttention` names its projections like Hugging Face
models (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``) and can copy the
weights of a ``torch.nn.MultiheadAttention`` (:meth:`MultiHeadAttention.from_torch`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .masks import check_attention_inputs


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None):
    """softmax(Q K^T / sqrt(d_k)) V with a boolean mask (True = may attend).

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v); returns
    out (..., T_q, d_v) and weights (..., T_q, T_k).  Fully masked rows give zeros.
    """
    check_attention_inputs(q, k, v, mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale                   # (..., T_q, T_k)
    if mask is not None:
        # finfo.min, not -inf: a fully masked row then stays finite (no NaN, also in backward)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)                      # (..., T_q, T_k)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)       # empty rows -> all zeros
    return weights @ v, weights                                  # (..., T_q, d_v)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width D={D} of input {tuple(x.shape)} is not divisible by num_heads={num_heads}")
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, H * Dh)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)


def head_mask(mask):
    """Give a (B, T_q, T_k) mask a head axis -> (B, 1, T_q, T_k); other shapes pass through."""
    if mask is not None and mask.dim() == 3:
        return mask[:, None]
    return mask


def multi_head_attention(query, key, value, params: dict, num_heads: int, mask=None):
    """Functional multi-head attention; same signature as the NumPy version."""
    def linear(x, name):
        return F.linear(x, params[f"{name}.weight"], params.get(f"{name}.bias"))
    q = split_heads(linear(query, "q_proj"), num_heads)    # (B, H, T_q, Dh)
    k = split_heads(linear(key, "k_proj"), num_heads)      # (B, H, T_k, Dh)
    v = split_heads(linear(value, "v_proj"), num_heads)    # (B, H, T_k, Dh)
    out, weights = scaled_dot_product_attention(q, k, v, head_mask(mask))
    return linear(merge_heads(out), "out_proj"), weights   # (B, T_q, D)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with Hugging Face-style parameter names.

    Parameters
    ----------
    embed_dim : int
        Model width D.
    num_heads : int
        Number of heads H; D must be divisible by H (head width Dh = D / H).
    bias : bool
        Whether the four projections have biases.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads} "
                             f"(head width would be {embed_dim / num_heads:.2f})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, query, key=None, value=None, mask=None):
        """query (B, T_q, D); key, value (B, T_k, D), default: self-attention on query.

        Returns out (B, T_q, D) and per-head weights (B, H, T_q, T_k).
        """
        key = query if key is None else key
        value = key if value is None else value
        if query.shape[-1] != self.embed_dim:
            raise ValueError(f"query has width {query.shape[-1]} (shape {tuple(query.shape)}), "
                             f"but this layer expects embed_dim={self.embed_dim}")
        return multi_head_attention(query, key, value, dict(self.named_parameters()),
                                    self.num_heads, mask)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (packed in_proj_weight)."""
        if not mha._qkv_same_embed_dim:
            raise ValueError("only nn.MultiheadAttention with kdim == vdim == embed_dim is supported")
        bias = mha.in_proj_bias is not None
        ours = cls(mha.embed_dim, mha.num_heads, bias=bias).to(mha.in_proj_weight.device)
        with torch.no_grad():
            w_q, w_k, w_v = mha.in_proj_weight.chunk(3, dim=0)    # (3D, D) -> 3 x (D, D)
            for proj, w in zip((ours.q_proj, ours.k_proj, ours.v_proj), (w_q, w_k, w_v)):
                proj.weight.copy_(w)
            ours.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                for proj, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), mha.in_proj_bias.chunk(3)):
                    proj.bias.copy_(b)
                ours.out_proj.bias.copy_(mha.out_proj.bias)
        return ours
