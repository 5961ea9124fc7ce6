r"""A GPT-2 decoder (Radford et al., 2019) whose parameter names are Hugging Face's ``GPT2LMHeadModel``'s.

Tokens and positions are embedded, :math:`h^{(0)} = W_{te}[x] + W_{pe}[t]`, then ``n_layer``
**pre-LN** blocks with *causal* self-attention (token t sees tokens 1..t only),

.. math::
    h \leftarrow h + \mathrm{Attn}(\mathrm{LN}_1(h)), \qquad
    h \leftarrow h + W_2\,\mathrm{GELU}_{\tanh}(W_1\,\mathrm{LN}_2(h)),

a final ``ln_f`` and the language-model head ``lm_head``, which shares its weight with the
token embedding (weight tying): :math:`\mathrm{logits} = \mathrm{LN}_f(h) W_{te}^\top`.

Hugging Face stores GPT-2's projections as ``Conv1D`` with (in, out) weights; we use the
ordinary ``nn.Linear`` (out, in) and list those four names in ``hf_transposed``, so
``load_hf_state_dict(ours, hf.state_dict())`` is the whole port. ``attn.c_attn`` packs the
query, key and value projections into one (D -> 3D) matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import KVCache, attend, check_config, check_ids, check_mask, check_values
from .layers import ACTIVATIONS, LayerNorm, _check_activation


@dataclass
class GPT2Config:
    """Hyper-parameters, named as in ``transformers.GPT2Config`` (defaults: GPT-2 small)."""
    vocab_size: int = 50257
    n_positions: int = 1024          # context length
    n_embd: int = 768                # model width D
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None       # FFN width, default 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    attn_implementation: str = "sdpa"  # "sdpa" (fused) or "eager" (chapter 3's attention)
    scale_attn_weights: bool = True    # scores / sqrt(Dh); False: raw q.k
    scale_attn_by_inverse_layer_idx: bool = False   # also divide the scores of layer i by i + 1
    reorder_and_upcast_attn: bool = False           # not implemented (a mixed-precision detail): raises
    add_cross_attention: bool = False               # not implemented (GPT-2 as a decoder of an encoder): raises

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"),
                     optional_positive=("n_inner",), probabilities=("resid_pdrop", "embd_pdrop", "attn_pdrop"),
                     positive_floats=("layer_norm_epsilon",), non_negative_floats=("initializer_range",))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                             "pick a head count that divides the width")
        _check_activation(self.activation_function)
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        for option in ("reorder_and_upcast_attn", "add_cross_attention"):
            if getattr(self, option):
                raise NotImplementedError(f"GPT2Config({option}=True) is not implemented here; "
                                          f"use {option}=False (the GPT-2 default)")

    @classmethod
    def from_dict(cls, d: dict) -> "GPT2Config":
        """Keep the keys we know from a Hugging Face config dict (``hf_config.to_dict()``)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class GPT2Attention(nn.Module):
    """Causal multi-head self-attention with packed q, k, v (``c_attn``) and output ``c_proj``."""

    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.layer_idx, self.implementation = layer_idx, config.attn_implementation
        self.attn_pdrop = config.attn_pdrop
        scale = self.head_dim ** -0.5 if config.scale_attn_weights else 1.0       # s = 1 / sqrt(Dh)
        if config.scale_attn_by_inverse_layer_idx:
            scale /= float(layer_idx + 1)                                         # s = 1 / (sqrt(Dh) (i + 1))
        # None: the kernels' own 1 / sqrt(Dh), bit for bit as before
        self.scale = None if config.scale_attn_weights and not config.scale_attn_by_inverse_layer_idx else scale
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, cache: KVCache | None = None, mask: torch.Tensor | None = None):
        """x (B, T, D); mask bool (B, 1, 1, T_past + T), True = a real key, or None (no padding)."""
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=-1)                                 # (B, T, 3D) -> 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)                             # (B, H, T_past + T, Dh)
        out, weights = attend(q, k, v, mask, causal=True, implementation=self.implementation,
                              dropout_p=self.attn_pdrop if self.training else 0.0, scale=self.scale)
        out = out.transpose(1, 2).reshape(B, T, D)                                # (B, H, T, Dh) -> (B, T, D)
        return self.resid_dropout(self.c_proj(out)), weights


class GPT2MLP(nn.Module):
    """Position-wise FFN: ``c_proj(act(c_fc(x)))``, width n_inner (4D)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))                 # (B, T, D) -> (B, T, 4D) -> (B, T, D)


class GPT2Block(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x, cache: KVCache | None = None, mask: torch.Tensor | None = None):
        a, weights = self.attn(self.ln_1(x), cache, mask)
        x = x + a                                                                # residual around attention
        return x + self.mlp(self.ln_2(x)), weights                               # residual around the FFN


class GPT2Model(nn.Module):
    """Embeddings, blocks and final LayerNorm (``transformer.*`` in the LM)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, i) for i in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)


class GPT2LMHeadModel(nn.Module):
    """GPT-2 language model: ``forward(input_ids, cache)`` returns next-token logits (B, T, V).

    With a :class:`~course_lib.transformer.blocks.KVCache` (from :meth:`new_cache`), ``input_ids``
    are the *new* tokens only; their positions start at ``cache.length`` and the cache is extended.
    Padded batches take ``attention_mask`` (and ``position_ids``) with Hugging Face's meaning.
    """
    hf_transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    hf_ignored = ("attn.bias", "attn.masked_bias")        # causal-mask buffers of old checkpoints
    hf_tied = ("lm_head.weight",)

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():            # GPT-2: residual projections scaled by 1/sqrt(2L)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=config.initializer_range / math.sqrt(2 * config.n_layer))
        self.lm_head.weight = self.transformer.wte.weight  # weight tying

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    @property
    def context_length(self) -> int:
        return self.config.n_positions

    def new_cache(self, batch_size: int, max_length: int | None = None) -> KVCache:
        """An empty KV cache for ``batch_size`` sequences of up to ``max_length`` (default n_positions)."""
        p = self.lm_head.weight
        c = self.config
        max_length = c.n_positions if max_length is None else max_length
        return KVCache(c.n_layer, batch_size, c.n_head, max_length, c.n_embd // c.n_head,
                       device=p.device, dtype=p.dtype)

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                output_attentions: bool = False):
        """input_ids (B, T) -> logits (B, T, V); with ``output_attentions`` also the per-layer weights.

        Parameters
        ----------
        input_ids : LongTensor (B, T)
            Token ids in [0, vocab_size); with a cache, the new tokens only.
        cache : KVCache, optional
        attention_mask : Tensor (B, T_past + T), optional
            1 for real tokens, 0 for padding, over the cached *and* the new positions (Hugging Face's
            convention); padded keys are hidden from every query. A query with no real key before it
            (a left-padding position) gets a zero attention output.
        position_ids : LongTensor (B, T) or (1, T), optional
            Rows of the position table. Default ``T_past, ..., T_past + T - 1`` for every row, whatever
            the mask says (as in Hugging Face's ``GPT2Model.forward``); for left-padded prompts pass
            ``attention_mask.cumsum(-1) - 1`` (pads 0), which :func:`~.decoding.generate` does.
        output_attentions : bool
            Also return each layer's weights (B, H, T, T_past + T) (needs ``attn_implementation="eager"``).
        """
        B, T = check_ids("input_ids", input_ids)
        c = self.config
        if output_attentions and c.attn_implementation != "eager":
            raise ValueError("output_attentions=True needs GPT2Config(attn_implementation='eager'); "
                             "the fused 'sdpa' kernel does not form the weights")
        past = cache.length if cache is not None else 0
        if past + T > c.n_positions:
            raise ValueError(f"sequence of {past + T} tokens ({past} cached + {T} new) is longer than the "
                             f"context n_positions={c.n_positions}; keep only the last "
                             f"{c.n_positions} tokens")
        if cache is not None:
            cache.check_batch(B)
        ids = [("input_ids", input_ids, c.vocab_size, "vocab_size")]
        if position_ids is not None:
            check_ids("position_ids", position_ids, B, T)
            ids.append(("position_ids", position_ids, c.n_positions, "n_positions"))
        if attention_mask is not None:
            check_mask("attention_mask", attention_mask, (B, past + T), "(B, T_past + T)")
        padded = check_values(ids, attention_mask)                                # one device sync
        mask = attention_mask.bool()[:, None, None, :] if padded else None        # (B, 1, 1, T_past + T)
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=input_ids.device)[None]   # (1, T)
        x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(position_ids))  # (B, T, D)
        attentions = []
        for block in self.transformer.h:
            x, weights = block(x, cache, mask)
            attentions.append(weights)
        if cache is not None:
            cache.advance(T)
        logits = self.lm_head(self.transformer.ln_f(x))                           # (B, T, D) -> (B, T, V)
        return (logits, attentions) if output_attentions else logits

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count N; ``non_embedding`` leaves out the position table (Kaplan et al. convention)."""
        n = sum(p.numel() for p in self.parameters())      # tied lm_head counted once
        return n - self.transformer.wpe.weight.numel() if non_embedding else n
