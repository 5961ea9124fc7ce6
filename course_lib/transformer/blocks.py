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
from ..attention.checks import check_int, check_number
from .layers import ACTIVATIONS, LayerNorm, _check_activation


def attend(q, k, v, mask=None, causal: bool = False, implementation: str = "sdpa",
           dropout_p: float = 0.0, scale: float | None = None):
    r"""Scaled dot-product attention :math:`\mathrm{softmax}(s\,QK^\top + M)V` for the models.

    Parameters
    ----------
    q : Tensor (B, H, T_q, Dh);  k, v : Tensor (B, H, T_k, Dh)
    mask : bool Tensor broadcastable to (B, H, T_q, T_k), True = may attend, or None.
        A query row with no key to attend to (a left-padding position) gets a zero output.
    causal : bool
        Also hide future keys. With ``T_k > T_q`` (a KV cache of past keys) query i sits at
        position ``T_k - T_q + i``.
    implementation : {"sdpa", "eager"}
        ``"eager"``: chapter 3's :func:`course_lib.attention.torch_attention.scaled_dot_product_attention`
        (written-out matmul + softmax, returns the weights). ``"sdpa"``: PyTorch's fused
        ``F.scaled_dot_product_attention`` (same numbers, faster, no weights).
    dropout_p : float
        Dropout on the attention weights (pass 0.0 in eval mode).
    scale : float, optional
        The factor s of the scores; default :math:`1/\sqrt{D_h}`.

    Returns
    -------
    out : Tensor (B, H, T_q, Dh);  weights : Tensor (B, H, T_q, T_k) or None for "sdpa".
    """
    T_q, T_k = q.shape[-2], k.shape[-2]
    if implementation == "sdpa" and causal and mask is None and T_q == T_k:
        # the fused kernel builds the causal mask itself (and skips the hidden half of the scores)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale), None
    if causal and T_q > 1:
        cm = causal_mask(T_q, T_k, device=q.device)                  # (T_q, T_k), True = may attend
        mask = cm if mask is None else mask & cm
    if implementation == "sdpa":
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale), None
        has_key = mask.any(dim=-1, keepdim=True)                     # (.., T_q, 1) False: nothing to see
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, dropout_p=dropout_p,
                                             scale=scale)
        return out * has_key, None                                   # fully masked rows -> zeros, never NaN
    if implementation == "eager":
        out, weights = tta.scaled_dot_product_attention(q, k, v, mask, scale=scale)
        if dropout_p > 0:
            weights = F.dropout(weights, dropout_p)
            out = weights @ v
        return out, weights
    raise ValueError(f"implementation must be 'sdpa' or 'eager', got {implementation!r}")


# --------------------------------------------------------------------------- argument checks
# Shared by every model of this chapter: bad input fails at our API, in words, before it reaches
# an embedding lookup (whose own error is "index out of range in self"). Structure (type, dtype,
# shape) is checked without touching the data; the value checks of one call (id ranges, 0/1 masks)
# are gathered into one small tensor and read back with a single device synchronisation.

_INDEX_DTYPES = (torch.long, torch.int32)


def check_config(cfg, positive: tuple = (), optional_positive: tuple = (), probabilities: tuple = (),
                 positive_floats: tuple = (), non_negative_floats: tuple = ()) -> None:
    """Validate fields of a config dataclass: sizes >= 1, probabilities in [0, 1), finite floats.

    Raises ``TypeError`` (wrong kind, e.g. ``n_head=2.5``) or ``ValueError`` (wrong value) naming
    the class, the field and the accepted range.
    """
    cls = type(cfg).__name__
    for name in positive + tuple(n for n in optional_positive if getattr(cfg, n) is not None):
        check_int(f"{cls}.{name}", getattr(cfg, name), minimum=1)
    for name in probabilities:
        p = check_number(f"{cls}.{name}", getattr(cfg, name))
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{cls}.{name} is a dropout probability and must be in [0, 1), got {p}")
    for name in positive_floats:
        check_number(f"{cls}.{name}", getattr(cfg, name), positive=True)
    for name in non_negative_floats:
        if check_number(f"{cls}.{name}", getattr(cfg, name)) < 0:
            raise ValueError(f"{cls}.{name} must be >= 0, got {getattr(cfg, name)}")


def check_ids(name: str, ids, batch_size: int | None = None, length: int | None = None) -> tuple[int, int]:
    """Check the structure of a (B, T) tensor of indices (no device sync); returns (B, T).

    With ``batch_size`` / ``length`` the tensor must be (B, T) or (1, T) like ``input_ids``.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, T), got {type(ids).__name__}; "
                        f"convert it with torch.tensor(...) and add a batch axis for one sequence ([None])")
    if ids.dtype not in _INDEX_DTYPES:
        raise TypeError(f"{name} must hold integer indices (dtype torch.long or torch.int32, the index dtypes "
                        f"an embedding lookup accepts), got {ids.dtype}; convert it with {name}.long()")
    if ids.dim() != 2:
        hint = f"; pass a batch of shape (B, T), e.g. {name}[None] for one sequence" if ids.dim() == 1 else \
            "; pass a batch of shape (B, T)"
        raise ValueError(f"{name} must have 2 dimensions (B, T), got shape {tuple(ids.shape)}" + hint)
    B, T = ids.shape
    if length is not None and (T != length or B not in (1, batch_size)):
        raise ValueError(f"{name} has shape {(B, T)}, expected ({batch_size}, {length}) (or (1, {length})) "
                         "like input_ids")
    if length is None and T == 0:
        raise ValueError(f"{name} has no tokens (shape {(B, T)}); pass at least one token per sequence")
    return B, T


def check_mask(name: str, mask, shape: tuple[int, int], what: str = "(B, T)") -> None:
    """Check the structure of a 0/1 padding mask (no device sync): a tensor of exactly ``shape``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of 1 (real token) and 0 (padding), "
                        f"got {type(mask).__name__}")
    if mask.dtype.is_complex:
        raise TypeError(f"{name} must be bool, integer or float 0/1, got {mask.dtype}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(mask.shape)} but must be {what} = {tuple(shape)}: "
                         "one 1 (real token) or 0 (padding) per position")


def check_values(ids: list[tuple[str, torch.Tensor, int, str]], mask: torch.Tensor | None = None,
                 mask_name: str = "attention_mask") -> bool:
    """Range checks of index tensors and the 0/1 check of ``mask`` with one device sync.

    ``ids``: (name, tensor, upper bound, name of the bound); each tensor must lie in
    [0, bound). Returns whether ``mask`` hides at least one position (False without a mask),
    so that a model can drop an all-ones mask and keep the fast causal kernel.
    """
    stats = []                                      # min and max of every tensor, read back at once
    for _, t, _, _ in ids:
        stats.extend(torch.aminmax(t) if t.numel() else (t.new_zeros(()), t.new_zeros(())))
    if mask is not None:
        m = mask.to(torch.uint8) if mask.dtype == torch.bool else mask
        if m.dtype.is_floating_point:                # NaN, 0.5, ...: neither 0 nor 1 -> 2, an error below
            m = torch.where((m == 0) | (m == 1), m, torch.full_like(m, 2.0))
        stats.extend(torch.aminmax(m) if m.numel() else (m.new_ones(()), m.new_ones(())))
    if not stats:
        return False
    values = torch.stack([v.to(stats[0].device, torch.long) for v in stats]).tolist()      # the one sync
    for k, (name, t, high, bound) in enumerate(ids):
        lo, hi = values[2 * k], values[2 * k + 1]
        if lo < 0 or hi >= high:
            where = ((t < 0) | (t >= high)).nonzero()[0].tolist()
            raise ValueError(f"{name} holds {int(t[tuple(where)])} at position {tuple(where)}, outside [0, {bound}="
                             f"{high}) (an embedding lookup would fail with 'index out of range in self'); "
                             "check that the tokenizer and the model's config agree, and pad with a real id "
                             "(pad_token_id), not -1 or -100")
    if mask is None:
        return False
    lo, hi = values[-2], values[-1]
    if lo < 0 or hi > 1:
        raise ValueError(f"{mask_name} must hold only 0 (padding) and 1 (real token), or be boolean; "
                         f"build it from the padding, e.g. (input_ids != pad_token_id).long()")
    return lo == 0                                   # some position is padding


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
        for name, value in (("num_layers", num_layers), ("batch_size", batch_size), ("num_heads", num_heads),
                            ("max_length", max_length), ("head_dim", head_dim)):
            check_int(f"KVCache {name}", value, minimum=1)
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

    def check_batch(self, batch_size: int) -> None:
        """Raise ``ValueError`` unless the cache was made for ``batch_size`` rows (checked at the model entry)."""
        if self.keys[0].shape[0] != batch_size:
            raise ValueError(f"the KV cache holds {self.keys[0].shape[0]} sequences but the input has {batch_size}; "
                             "create it with model.new_cache(batch_size=input_ids.shape[0], ...)")

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
        check_int("d_model", d_model, minimum=1)
        check_int("dim_feedforward", dim_feedforward, minimum=1)
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
        for name, value in (("d_model", d_model), ("nhead", nhead), ("num_encoder_layers", num_encoder_layers),
                            ("num_decoder_layers", num_decoder_layers), ("dim_feedforward", dim_feedforward)):
            check_int(name, value, minimum=1)
        if not 0.0 <= check_number("dropout", dropout) < 1.0:
            raise ValueError(f"dropout is a probability and must be in [0, 1), got {dropout}")
        check_number("layer_norm_eps", layer_norm_eps, positive=True)
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
