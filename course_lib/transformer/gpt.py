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

from .blocks import KVCache, attend
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

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                             "pick a head count that divides the width")
        _check_activation(self.activation_function)

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
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, cache: KVCache | None = None):
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=-1)                                 # (B, T, 3D) -> 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)                             # (B, H, T_past + T, Dh)
        out, weights = attend(q, k, v, causal=True, implementation=self.implementation,
                              dropout_p=self.attn_pdrop if self.training else 0.0)
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

    def forward(self, x, cache: KVCache | None = None):
        a, weights = self.attn(self.ln_1(x), cache)
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
        return KVCache(c.n_layer, batch_size, c.n_head, max_length or c.n_positions, c.n_embd // c.n_head,
                       device=p.device, dtype=p.dtype)

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None,
                output_attentions: bool = False):
        """input_ids (B, T) -> logits (B, T, V); with ``output_attentions`` also the per-layer weights."""
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.n_positions:
            raise ValueError(f"sequence of {past + T} tokens ({past} cached + {T} new) is longer than the "
                             f"context n_positions={self.config.n_positions}; keep only the last "
                             f"{self.config.n_positions} tokens")
        pos = torch.arange(past, past + T, device=input_ids.device)               # positions of the new tokens
        x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(pos))  # (B, T, D)
        attentions = []
        for block in self.transformer.h:
            x, weights = block(x, cache)
            attentions.append(weights)
        if cache is not None:
            cache.advance(T)
        logits = self.lm_head(self.transformer.ln_f(x))                           # (B, T, D) -> (B, T, V)
        return (logits, attentions) if output_attentions else logits

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count N; ``non_embedding`` leaves out the position table (Kaplan et al. convention)."""
        n = sum(p.numel() for p in self.parameters())      # tied lm_head counted once
        return n - self.transformer.wpe.weight.numel() if non_embedding else n
