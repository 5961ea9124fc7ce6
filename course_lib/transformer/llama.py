r"""Llama-style decoder (Touvron et al., 2023): RMSNorm, RoPE, SwiGLU, grouped-query attention.

Four changes to the GPT-2 block, each a line or two here:

* **RMSNorm** instead of LayerNorm (no mean, no bias): :math:`\gamma \odot x / \mathrm{RMS}(x)`.
* **Rotary position embedding** (RoPE) on queries and keys instead of a learned position table,
  from chapter 3 (:mod:`course_lib.attention.position`, "rotate half" pairing).
* **SwiGLU** feed-forward (Shazeer, 2020):
  :math:`W_{down}\,(\mathrm{SiLU}(W_{gate} x) \odot W_{up} x)`.
* **Grouped-query attention** (GQA, Ainslie et al., 2023): ``num_key_value_heads`` < ``num_attention_heads``;
  each key/value head serves a group of query heads, shrinking the KV cache by the group size.

Parameter names mirror ``transformers.LlamaForCausalLM`` (``model.layers.{i}.self_attn.q_proj``,
``mlp.gate_proj``, ``input_layernorm``, ...): ``load_hf_state_dict`` needs no exceptions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attention.checks import check_int
from ..attention.position import apply_rope, rope_cos_sin_torch
from .blocks import KVCache, attend, check_config, check_ids, check_mask, check_values
from .layers import ACTIVATIONS, RMSNorm, _check_activation
from .loading import load_hf_state_dict


@dataclass
class LlamaConfig:
    """Hyper-parameters, named as in ``transformers.LlamaConfig`` (defaults: SmolLM2-135M)."""
    vocab_size: int = 49152
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: int = 3
    head_dim: int | None = None          # default hidden_size // num_attention_heads
    max_position_embeddings: int = 8192
    rms_norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    tie_word_embeddings: bool = True
    attn_implementation: str = "sdpa"
    hidden_act: str = "silu"              # the SwiGLU gate's activation
    pad_token_id: int | None = None       # its embedding row gets no gradient (nn.Embedding padding_idx)
    attention_dropout: float = 0.0
    attention_bias: bool = False          # not implemented: raises
    mlp_bias: bool = False                # not implemented: raises

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                     "num_attention_heads", "num_key_value_heads", "max_position_embeddings"),
                     optional_positive=("head_dim",), probabilities=("attention_dropout",),
                     positive_floats=("rms_norm_eps", "rope_theta"))
        _check_activation(self.hidden_act)
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        for option in ("attention_bias", "mlp_bias"):
            if getattr(self, option):
                raise NotImplementedError(f"LlamaConfig({option}=True) is not implemented here (Llama's "
                                          f"projections have no biases); use {option}=False")
        if self.pad_token_id is not None and not 0 <= check_int("pad_token_id", self.pad_token_id) < self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id} must be in [0, vocab_size={self.vocab_size}) "
                             "or None")
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                                 f"{self.num_attention_heads}; pick a divisor or set head_dim")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even: RoPE rotates pairs of features")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads={self.num_key_value_heads}; each key/value head must "
                             "serve a whole group of query heads")

    @classmethod
    def from_dict(cls, d: dict) -> "LlamaConfig":
        """From a Hugging Face config dict; ``rope_parameters["rope_theta"]`` (transformers 5) is read too."""
        d = dict(d)
        rope = d.get("rope_parameters") or {}
        if "rope_theta" in rope:
            d["rope_theta"] = rope["rope_theta"]
        if rope.get("rope_type", "default") != "default":
            raise NotImplementedError(f"only the default RoPE is implemented, got rope_type={rope['rope_type']!r}; "
                                      "remove rope_parameters['rope_type'] (and the scaling) to use plain RoPE")
        if d.get("rope_scaling"):
            raise NotImplementedError(f"rope_scaling={d['rope_scaling']!r} is not implemented; only plain RoPE is")
        if d.get("pretraining_tp", 1) not in (1, None):
            raise NotImplementedError(f"pretraining_tp={d['pretraining_tp']} is not implemented; use 1")
        if d.get("num_key_value_heads") is None:          # Hugging Face: None means one per query head
            d["num_key_value_heads"] = d.get("num_attention_heads", cls.num_attention_heads)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, H_kv, T, Dh) -> (B, H_kv * n_rep, T, Dh): each key/value head copied for its query group."""
    B, H_kv, T, Dh = x.shape
    return x[:, :, None].expand(B, H_kv, n_rep, T, Dh).reshape(B, H_kv * n_rep, T, Dh)


def rope_cos_sin_at(position_ids: torch.Tensor, dim: int, base: float, dtype=torch.float32):
    """RoPE tables at given positions: (B, T) -> cos, sin (B, 1, T, dim), angles in float32 as in HF."""
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2, device=position_ids.device, dtype=torch.float32) / dim)
    angles = position_ids[..., None].float() * inv_freq                          # (B, T, dim / 2): m theta_i
    angles = torch.cat([angles, angles], dim=-1)[:, None]                        # (B, 1, T, dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


class LlamaAttention(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int = 0):
        super().__init__()
        self.config, self.layer_idx = config, layer_idx
        H, H_kv, Dh = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, H * Dh, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, H_kv * Dh, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, H_kv * Dh, bias=False)
        self.o_proj = nn.Linear(H * Dh, config.hidden_size, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None, mask: torch.Tensor | None = None):
        B, T, _ = x.shape
        c = self.config
        q = self.q_proj(x).view(B, T, c.num_attention_heads, c.head_dim).transpose(1, 2)   # (B, H, T, Dh)
        k = self.k_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)  # (B, H_kv, T, Dh)
        v = self.v_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)     # x cos(m theta) + rot(x) sin(m theta)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)               # the cache holds only H_kv heads
        n_rep = c.num_attention_heads // c.num_key_value_heads
        out, _ = attend(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask, causal=True,
                        implementation=c.attn_implementation,
                        dropout_p=c.attention_dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(B, T, c.num_attention_heads * c.head_dim)   # (B, H, T, Dh) -> (B, T, H * Dh)
        return self.o_proj(out)                                                         # (B, T, D)


class LlamaMLP(nn.Module):
    """SwiGLU: ``down_proj(silu(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACTIVATIONS[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))  # (B, T, D) -> (B, T, F) -> (B, T, D)


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block: ``x + attn(rms(x))`` then ``x + mlp(rms(x))``."""

    def __init__(self, config: LlamaConfig, layer_idx: int = 0):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = LlamaAttention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(self, x, cos, sin, cache=None, mask=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        # padding_idx as in Hugging Face: the pad token's row gets zero gradient from the lookup
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    """Llama language model with our causal-LM interface: ``forward(input_ids, cache)`` -> logits (B, T, V)."""
    hf_transposed: tuple = ()
    hf_ignored: tuple = ("rotary_emb.inv_freq",)

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                nn.init.zeros_(m.weight[m.padding_idx])                            # as Hugging Face initialises it
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.hf_tied = ("lm_head.weight",) if config.tie_word_embeddings else ()

    @property
    def context_length(self) -> int:
        return self.config.max_position_embeddings

    def new_cache(self, batch_size: int, max_length: int | None = None) -> KVCache:
        c, p = self.config, self.lm_head.weight
        max_length = c.max_position_embeddings if max_length is None else max_length
        return KVCache(c.num_hidden_layers, batch_size, c.num_key_value_heads, max_length, c.head_dim,
                       device=p.device, dtype=p.dtype)

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None,
                attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, V).

        ``attention_mask`` (B, T_past + T): 1 real token, 0 padding (cached and new positions).
        ``position_ids`` (B, T) or (1, T): the RoPE positions, default ``T_past .. T_past + T - 1``
        for every row whatever the mask (Hugging Face's convention); :func:`~.decoding.generate`
        passes ``attention_mask.cumsum(-1) - 1`` for left-padded prompts.
        """
        B, T = check_ids("input_ids", input_ids)
        c = self.config
        past = cache.length if cache is not None else 0
        if past + T > c.max_position_embeddings:
            raise ValueError(f"sequence of {past + T} tokens ({past} cached + {T} new) is longer than the "
                             f"context max_position_embeddings={c.max_position_embeddings}")
        if cache is not None:
            cache.check_batch(B)
        ids = [("input_ids", input_ids, c.vocab_size, "vocab_size")]
        if position_ids is not None:
            check_ids("position_ids", position_ids, B, T)
            ids.append(("position_ids", position_ids, c.max_position_embeddings, "max_position_embeddings"))
        if attention_mask is not None:
            check_mask("attention_mask", attention_mask, (B, past + T), "(B, T_past + T)")
        padded = check_values(ids, attention_mask)                                # one device sync
        mask = attention_mask.bool()[:, None, None, :] if padded else None        # (B, 1, 1, T_past + T)
        x = self.model.embed_tokens(input_ids)                                    # (B, T, D)
        if position_ids is None:
            cos, sin = rope_cos_sin_torch(T, c.head_dim, c.rope_theta, offset=past,
                                          device=x.device, dtype=x.dtype)         # (T, Dh) for positions past..
        else:
            cos, sin = rope_cos_sin_at(position_ids, c.head_dim, c.rope_theta, dtype=x.dtype)  # (B', 1, T, Dh)
        for layer in self.model.layers:
            x = layer(x, cos, sin, cache, mask)
        if cache is not None:
            cache.advance(T)
        return self.lm_head(self.model.norm(x))                                   # (B, T, V)

    @classmethod
    def from_hf(cls, hf_model) -> "LlamaForCausalLM":
        """Our model with the config and weights of a ``transformers.LlamaForCausalLM``."""
        config = LlamaConfig.from_dict(hf_model.config.to_dict())
        p = next(hf_model.parameters())
        ours = cls(config).to(device=p.device, dtype=p.dtype)
        return load_hf_state_dict(ours, hf_model.state_dict()).eval()


def load_smollm2(path=None):
    """The offline SmolLM2-135M-Instruct (GGUF, Q4_1 dequantised to float32) as our model + its tokenizer.

    Transformers reads GGUF files with the ``gguf`` package (``pip install gguf==0.19.0``);
    loading takes about 20 s. Returns ``(LlamaForCausalLM, tokenizer)``.
    """
    import importlib.util

    import transformers

    from .. import data
    if importlib.util.find_spec("gguf") is None:
        raise ImportError("loading SmolLM2 from its GGUF file needs the gguf package: pip install gguf==0.19.0")
    path = data.smollm2_gguf_path() if path is None else path
    hf = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return LlamaForCausalLM.from_hf(hf.eval()), tokenizer
