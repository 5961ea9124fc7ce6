r"""Transformer blocks: attention + feed-forward, residuals, pre-LN or post-LN, and a KV cache.

A block adds two sub-layers to a residual stream (残差连接), each wrapped in layer normalisation:

* **post-LN** (Vaswani et al., 2017; BERT):
  :math:`x \leftarrow \mathrm{LN}(x + \mathrm{Drop}(\mathrm{Sublayer}(x)))`
* **pre-LN** (GPT-2, Llama; Xiong et al., 2020):
  :math:`x \leftarrow x + \mathrm{Drop}(\mathrm{Sublayer}(\mathrm{LN}(x)))`

Pre-LN keeps an un-normalised path from input to output, which makes deep stacks trainable
without a long learning-rate warm-up; post-LN normalises after every addition.

:class:`EncoderLayer`, :class:`DecoderLayer` and :class:`Transformer` mirror the parameter
names of ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` / ``Transformer``
(``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1..3``) and copy their weights
with :meth:`Transformer.from_torch`, so the encoder-decoder of Vaswani et al. is checked against
PyTorch's own. Attention itself comes from chapter 3 (:mod:`course_lib.attention`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import MultiHeadAttention, causal_mask
from ..attention import torch_attention as tta
from .layers import ACTIVATIONS, LayerNorm, _check_activation


def attend(q, k, v, mask=None, causal: bool = False, implementation: str = "sdpa",
           dropout_p: float = 0.0):
    r"""Scaled dot-product attention :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)V` for the models.

    Parameters
    ----------
    q : Tensor (B, H, T_q, Dh);  k, v : Tensor (B, H, T_k, Dh)
    mask : bool Tensor broadcastable to (B, H, T_q, T_k), True = may attend, or None.
    causal : bool
        Also hide future keys. With ``T_k > T_q`` (a KV cache of past keys) query i sits at
        position ``T_k - T_q + i``.
    implementation : {"sdpa", "eager"}
        ``"eager"``: chapter 3's :func:`course_lib.attention.torch_attention.scaled_dot_product_attention`
        (written-out matmul + softmax, returns the weights). ``"sdpa"``: PyTorch's fused
        ``F.scaled_dot_product_attention`` (same numbers, faster, no weights).
    dropout_p : float
        Dropout on the attention weights (pass 0.0 in eval mode).

    Returns
    -------
    out : Tensor (B, H, T_q, Dh);  weights : Tensor (B, H, T_q, T_k) or None for "sdpa".
    """
    T_q, T_k = q.shape[-2], k.shape[-2]
    if implementation == "sdpa" and causal and mask is None and T_q == T_k:
        # the fused kernel builds the causal mask itself (and skips the hidden half of the scores)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True), None
    if causal and T_q > 1:
        cm = causal_mask(T_q, T_k, device=q.device)                  # (T_q, T_k), True = may attend
        mask = cm if mask is None else mask & cm
    if implementation == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None
    if implementation == "eager":
        out, weights = tta.scaled_dot_product_attention(q, k, v, mask)
        if dropout_p > 0:
            weights = F.dropout(weights, dropout_p)
            out = weights @ v
        return out, weights
    raise ValueError(f"implementation must be 'sdpa' or 'eager', got {implementation!r}")


class KVCache:
    """Keys and values of past positions, one pre-allocated buffer per layer.

    Generating token t+1 needs the keys and values of tokens 1..t. Without a cache every step
    recomputes them for the whole prefix (O(T^2) work for T tokens); with it each step computes
    them for the one new token and reads the rest back (O(T)).

    Parameters
    ----------
    num_layers, batch_size, num_heads, max_length, head_dim : int
        Buffers are (batch_size, num_heads, max_length, head_dim) per layer, keys and values.
    device, dtype :
        Where the buffers live (the model's device and dtype).

    The model writes the new keys/values of layer ``i`` with :meth:`update` and, after its last
    layer, calls :meth:`advance`; ``length`` is the number of positions stored.
    """

    def __init__(self, num_layers: int, batch_size: int, num_heads: int, max_length: int,
                 head_dim: int, device=None, dtype=torch.float32):
        shape = (batch_size, num_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.max_length, self.length = max_length, 0

    def update(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor):
        """Store k, v (B, H, T_new, Dh) after the past ones; return all keys/values (B, H, length+T_new, Dh)."""
        start, end = self.length, self.length + k.shape[-2]
        if end > self.max_length:
            raise ValueError(f"KV cache is full: it holds {self.max_length} positions, {start} are used "
                             f"and {k.shape[-2]} more were written; create it with a larger max_length")
        self.keys[layer_idx][:, :, start:end] = k
        self.values[layer_idx][:, :, start:end] = v
        return self.keys[layer_idx][:, :, :end], self.values[layer_idx][:, :, :end]

    def advance(self, num_new: int) -> None:
        """Mark ``num_new`` more positions as stored (called once per forward, after the last layer)."""
        self.length += num_new

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (B_new,) in that order (beam search re-ranks its beams)."""
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]


class FeedForward(nn.Module):
    """Position-wise FFN ``linear2(dropout(act(linear1(x))))`` (names as in nn.TransformerEncoderLayer)."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.1, activation: str = "relu"):
        super().__init__()
        self.activation = ACTIVATIONS[_check_activation(activation)]
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))   # (B, T, D) -> (B, T, D)


class EncoderLayer(nn.Module):
    """Self-attention + FFN with residuals; ``norm_first`` picks pre-LN (True) or post-LN (False).

    Parameters mirror ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
    activation, layer_norm_eps, batch_first=True, norm_first)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.ff = FeedForward(d_model, dim_feedforward, dropout, activation)
        self.norm1, self.norm2 = LayerNorm(d_model, layer_norm_eps), LayerNorm(d_model, layer_norm_eps)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _sa(self, x, mask):
        return self.dropout1(self.self_attn(x, x, x, mask)[0])

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        """x (B, T, D); mask bool, broadcastable to (B, H, T, T), True = may attend."""
        if self.norm_first:                                   # pre-LN: x + f(LN(x))
            x = x + self._sa(self.norm1(x), mask)
            return x + self.dropout2(self.ff(self.norm2(x)))
        x = self.norm1(x + self._sa(x, mask))                 # post-LN: LN(x + f(x))
        return self.norm2(x + self.dropout2(self.ff(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder output ("memory"), FFN.

    Mirrors ``torch.nn.TransformerDecoderLayer`` (``self_attn``, ``multihead_attn``, ``norm1..3``).
    Cross-attention (交叉注意力): queries from the decoder, keys and values from the encoder.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.multihead_attn = MultiHeadAttention(d_model, nhead)
        self.ff = FeedForward(d_model, dim_feedforward, dropout, activation)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(d_model, layer_norm_eps) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        """x (B, T_tgt, D), memory (B, T_src, D); tgt_mask e.g. causal (T_tgt, T_tgt), memory_mask (B, 1, 1, T_src)."""
        sa = lambda h: self.dropout1(self.self_attn(h, h, h, tgt_mask)[0])             # noqa: E731
        ca = lambda h: self.dropout2(self.multihead_attn(h, memory, memory, memory_mask)[0])  # noqa: E731
        ff = lambda h: self.dropout3(self.ff(h))                                        # noqa: E731
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + ca(self.norm2(x))
            return x + ff(self.norm3(x))
        x = self.norm1(x + sa(x))
        x = self.norm2(x + ca(x))
        return self.norm3(x + ff(x))


class Transformer(nn.Module):
    """The encoder-decoder of Vaswani et al. (2017) without embeddings, like ``torch.nn.Transformer``.

    ``encoder.layers``, ``encoder.norm``, ``decoder.layers``, ``decoder.norm`` as in PyTorch
    (which applies a final LayerNorm to both stacks, also in post-LN mode).
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} is not divisible by nhead={nhead}; "
                             "choose a number of heads that divides the width")
        kw = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                  activation=activation, layer_norm_eps=layer_norm_eps, norm_first=norm_first)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([EncoderLayer(**kw) for _ in range(num_encoder_layers)])
        self.encoder.norm = LayerNorm(d_model, layer_norm_eps)
        self.decoder = nn.Module()
        self.decoder.layers = nn.ModuleList([DecoderLayer(**kw) for _ in range(num_decoder_layers)])
        self.decoder.norm = LayerNorm(d_model, layer_norm_eps)

    def encode(self, src, src_mask=None):
        """src (B, T_src, D) -> memory (B, T_src, D)."""
        for layer in self.encoder.layers:
            src = layer(src, src_mask)
        return self.encoder.norm(src)

    def decode(self, tgt, memory, tgt_mask=None, memory_mask=None):
        """tgt (B, T_tgt, D) -> (B, T_tgt, D)."""
        for layer in self.decoder.layers:
            tgt = layer(tgt, memory, tgt_mask, memory_mask)
        return self.decoder.norm(tgt)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None):
        """Masks are boolean, True = may attend (PyTorch's nn.Transformer uses True = blocked)."""
        return self.decode(tgt, self.encode(src, src_mask), tgt_mask, memory_mask)

    @classmethod
    def from_torch(cls, ref: nn.Transformer) -> "Transformer":
        """Copy the weights of a ``torch.nn.Transformer`` built with ``batch_first=True``."""
        enc0, dec0 = ref.encoder.layers[0], ref.decoder.layers[0]
        act = {F.relu: "relu", F.gelu: "gelu"}.get(enc0.activation, "relu")
        ours = cls(enc0.self_attn.embed_dim, enc0.self_attn.num_heads, len(ref.encoder.layers),
                   len(ref.decoder.layers), enc0.linear1.out_features, enc0.dropout.p, act,
                   enc0.norm1.eps, enc0.norm_first)
        sd = {}
        for prefix, layers, attns in (("encoder", ref.encoder.layers, ("self_attn",)),
                                      ("decoder", ref.decoder.layers, ("self_attn", "multihead_attn"))):
            for i, layer in enumerate(layers):
                for name in attns:      # packed in_proj (3D, D) -> q_proj, k_proj, v_proj
                    mha = MultiHeadAttention.from_torch(getattr(layer, name))
                    sd.update({f"{prefix}.layers.{i}.{name}.{k}": v for k, v in mha.state_dict().items()})
                for k, v in layer.state_dict().items():
                    if k.startswith(("linear1", "linear2")):
                        sd[f"{prefix}.layers.{i}.ff.{k}"] = v
                    elif k.startswith("norm"):
                        sd[f"{prefix}.layers.{i}.{k}"] = v
            sd.update({f"{prefix}.norm.{k}": v for k, v in getattr(ref, prefix).norm.state_dict().items()})
        ours.load_state_dict(sd)
        return ours.to(enc0.linear1.weight.device)
