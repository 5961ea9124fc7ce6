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

from .checks import check_int, check_number, check_same_dtype_device, check_tensor
from .masks import torch_inputs
from .numpy_attention import check_mha_params


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None):
    """softmax(Q K^T / sqrt(d_k)) V with a boolean mask (True = may attend).

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v): floating-point tensors of one
    dtype and device; returns out (..., T_q, d_v) and weights (..., T_q, T_k).  A query with
    nothing to attend to (fully masked row, or T_k = 0) gets zero weights and a zero output,
    as in the NumPy version. Bad input raises ``TypeError`` / ``ValueError`` saying what to change.
    """
    torch_inputs(q, k, v, mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, positive=True)
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
    check_tensor("x", x, floating=False)
    num_heads = check_int("num_heads", num_heads, minimum=1)
    if x.dim() != 3:
        raise ValueError(f"split_heads expects x of shape (B, T, D), got shape {tuple(x.shape)}")
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width D={D} of input {tuple(x.shape)} is not divisible by num_heads={num_heads}")
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, H * Dh)."""
    check_tensor("x", x, floating=False)
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects x of shape (B, H, T, Dh), got shape {tuple(x.shape)}")
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)


def head_mask(mask):
    """Give a (B, T_q, T_k) mask a head axis -> (B, 1, T_q, T_k); other shapes pass through."""
    if mask is not None:
        check_tensor("mask", mask, floating=False)
    if mask is not None and mask.dim() == 3:
        return mask[:, None]
    return mask


def multi_head_attention(query, key, value, params: dict, num_heads: int, mask=None):
    """Functional multi-head attention; same signature as the NumPy version."""
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, x)
    num_heads = check_int("num_heads", num_heads, minimum=1)
    check_mha_params(params, query, key, value, num_heads)
    weight = params["q_proj.weight"]
    if not torch.is_autocast_enabled(query.device.type):       # autocast casts inside F.linear itself
        if query.dtype != weight.dtype:
            raise TypeError(f"query has dtype {query.dtype} but the weights are {weight.dtype}; convert the "
                            f"input with .to({weight.dtype}) or the module with .to({query.dtype})")
        check_same_dtype_device(query=query, key=key, value=value, weight=weight)
    elif len({query.device, key.device, value.device, weight.device}) > 1:
        raise ValueError("query, key, value and the weights must be on one device; move them with .to(device)")

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
        embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
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
        for name, x in (("query", query), ("key", key), ("value", value)):
            check_tensor(name, x)
            if x.shape[-1] != self.embed_dim:
                raise ValueError(f"{name} has width {x.shape[-1]} (shape {tuple(x.shape)}), "
                                 f"but this layer expects embed_dim={self.embed_dim}")
        return multi_head_attention(query, key, value, dict(self.named_parameters()),
                                    self.num_heads, mask)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (packed in_proj_weight).

        Supported: ``kdim == vdim == embed_dim``, with or without ``bias``, no ``add_bias_kv``
        and no ``add_zero_attn`` (both add a key this module does not have; a clear
        ``ValueError`` says so). Note that ``nn.MultiheadAttention`` takes (T, B, D) inputs
        unless ``batch_first=True`` and that its ``key_padding_mask`` / ``attn_mask`` use
        True = blocked: pass ``~mask`` to it.
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"from_torch copies a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        if not mha._qkv_same_embed_dim:
            raise ValueError("only nn.MultiheadAttention with kdim == vdim == embed_dim is supported")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_bias_kv=True or add_zero_attn=True appends an extra "
                             "key/value to every sequence, which MultiHeadAttention does not implement; build the "
                             "torch module with add_bias_kv=False, add_zero_attn=False")
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
