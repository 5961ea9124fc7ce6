r"""A BERT encoder (Devlin et al., 2019) whose parameter names are Hugging Face's ``BertModel``'s.

Input: token ids, segment ids (``token_type_ids``) and a padding mask. The embedding layer adds
three learned tables and normalises: :math:`h^{(0)} = \mathrm{LN}(E_{tok}[x] + E_{pos}[t] + E_{seg}[s])`.
Then ``num_hidden_layers`` **post-LN** encoder layers, each

.. math::
    a = \mathrm{LN}(h + \mathrm{MHA}(h)), \qquad h' = \mathrm{LN}(a + W_2\,\mathrm{GELU}(W_1 a)),

with bidirectional attention (every token sees every non-padding token) and the exact
(erf) GELU. The pooler maps the first token ([CLS]) through ``tanh(W h_0 + b)``.

Because names match, ``load_hf_state_dict(BertModel(cfg), hf_model.state_dict())`` ports a
checkpoint; :meth:`BertModel.from_pretrained` reads a local Hugging Face folder (e.g. the
offline MiniLM, ``course_lib.data.minilm_path()``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from ..attention.checks import check_int
from .blocks import attend, check_config, check_ids, check_mask, check_values
from .layers import ACTIVATIONS, LayerNorm, _check_activation
from .loading import load_hf_state_dict


@dataclass
class BertConfig:
    """Hyper-parameters, named as in ``transformers.BertConfig`` (defaults: BERT-base)."""
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    attn_implementation: str = "sdpa"      # "sdpa" (fused, fast) or "eager" (chapter 3, returns weights)

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                     "intermediate_size", "max_position_embeddings", "type_vocab_size"),
                     probabilities=("hidden_dropout_prob", "attention_probs_dropout_prob"),
                     positive_floats=("layer_norm_eps",), non_negative_floats=("initializer_range",))
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        if self.pad_token_id is not None and not 0 <= check_int("pad_token_id", self.pad_token_id) < self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id} must be in [0, vocab_size={self.vocab_size}) "
                             "or None")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                             f"{self.num_attention_heads}; pick a head count that divides the width")
        _check_activation(self.hidden_act)

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        """Keep the keys we know from a Hugging Face ``config.json`` dict (or ``hf_config.to_dict()``)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        B, T = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device)[None]        # (1, T)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        h = h + self.position_embeddings(position_ids)                         # E_tok + E_seg + E_pos
        return self.dropout(self.LayerNorm(h))                                  # (B, T, D)


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.implementation = config.attn_implementation
        self.dropout_p = config.attention_probs_dropout_prob
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h, mask=None):
        B, T, D = h.shape
        split = lambda x: x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))       # (B, T, D) -> (B, H, T, Dh)
        out, weights = attend(q, k, v, mask, implementation=self.implementation,
                              dropout_p=self.dropout_p if self.training else 0.0)
        return out.transpose(1, 2).reshape(B, T, D), weights                          # (B, H, T, Dh) -> (B, T, D)


class BertSelfOutput(nn.Module):
    """``dense`` projection, dropout, then the post-LN residual ``LayerNorm(x + sublayer)``."""

    def __init__(self, config: BertConfig, in_features: int | None = None):
        super().__init__()
        self.dense = nn.Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(residual + self.dropout(self.dense(h)))             # LN(x + Drop(W h + b))


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, h, mask=None):
        out, weights = self.self(h, mask)
        return self.output(out, h), weights


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, h):
        return self.act(self.dense(h))                                            # (B, T, D) -> (B, T, F)


class BertLayer(nn.Module):
    """One post-LN encoder layer: attention sub-layer, then the FFN sub-layer (intermediate + output)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, in_features=config.intermediate_size)  # HF's BertOutput

    def forward(self, h, mask=None):
        a, weights = self.attention(h, mask)
        return self.output(self.intermediate(a), a), weights


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))                                   # tanh(W h_[CLS] + b)


@dataclass
class EncoderOutput:
    """What :meth:`BertModel.forward` returns (field names as in Hugging Face's output)."""
    last_hidden_state: torch.Tensor                 # (B, T, D)
    pooler_output: torch.Tensor | None = None       # (B, D)
    attentions: list | None = None                  # per layer (B, H, T, T), "eager" only
    hidden_states: list | None = None               # embeddings + every layer, each (B, T, D)


class BertModel(nn.Module):
    """BERT encoder; ``BertModel(cfg)`` has the same parameter names and shapes as Hugging Face's.

    Parameters
    ----------
    config : BertConfig
    add_pooling_layer : bool
        Include ``pooler`` (MiniLM's checkpoint has one).
    """
    hf_transposed: tuple = ()
    hf_ignored: tuple = ("embeddings.position_ids",)
    hf_tied: tuple = ()

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)   # N(0, 0.02) as BERT
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> EncoderOutput:
        """Encode a batch.

        Parameters
        ----------
        input_ids : LongTensor (B, T)
        attention_mask : Tensor (B, T), 1 (or True) for real tokens and 0 for padding; None = no padding.
        token_type_ids, position_ids : LongTensor (B, T), optional (default: zeros, 0..T-1).
        output_attentions : bool
            Return every layer's attention weights (needs ``attn_implementation="eager"``).
        """
        B, T = check_ids("input_ids", input_ids)
        if T > self.config.max_position_embeddings:
            raise ValueError(f"input has {T} tokens but the model has max_position_embeddings="
                             f"{self.config.max_position_embeddings}; truncate the input (tokenizer "
                             "truncation=True, max_length=...)")
        if output_attentions and self.config.attn_implementation != "eager":
            raise ValueError("output_attentions=True needs BertConfig(attn_implementation='eager'); "
                             "the fused 'sdpa' kernel does not form the weights")
        c, ids = self.config, [("input_ids", input_ids, self.config.vocab_size, "vocab_size")]
        for name, t, high, bound in (("token_type_ids", token_type_ids, c.type_vocab_size, "type_vocab_size"),
                                     ("position_ids", position_ids, c.max_position_embeddings,
                                      "max_position_embeddings")):
            if t is not None:
                check_ids(name, t, B, T)
                ids.append((name, t, high, bound))
        mask = None
        if attention_mask is not None:
            check_mask("attention_mask", attention_mask, (B, T), "(B, T) like input_ids")
            mask = attention_mask.bool()[:, None, None, :]        # (B, T) -> (B, 1, 1, T): keys to attend
        check_values(ids, attention_mask)                         # id ranges and 0/1 mask, one device sync
        h = self.embeddings(input_ids, token_type_ids, position_ids)
        attentions, hidden = [], [h]
        for layer in self.encoder.layer:
            h, weights = layer(h, mask)
            attentions.append(weights)
            hidden.append(h)
        pooled = self.pooler(h) if self.pooler is not None else None
        return EncoderOutput(h, pooled, attentions if output_attentions else None,
                             hidden if output_hidden_states else None)

    @classmethod
    def from_pretrained(cls, path, **config_overrides) -> "BertModel":
        """Load a local Hugging Face BERT folder (``config.json`` + ``model.safetensors``), e.g. MiniLM."""
        from safetensors.torch import load_file
        path = Path(path)
        for need in ("config.json", "model.safetensors"):
            if not (path / need).exists():
                raise ValueError(f"{path} has no {need}; expected a Hugging Face model folder "
                                 "(for MiniLM use course_lib.data.minilm_path())")
        config = BertConfig.from_dict({**json.loads((path / "config.json").read_text()), **config_overrides})
        state = load_file(str(path / "model.safetensors"))
        model = cls(config, add_pooling_layer=any(k.endswith("pooler.dense.weight") for k in state))
        prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
        if prefix:   # a checkpoint with task heads: keep the encoder's tensors only
            state = {k: v for k, v in state.items() if k.startswith(prefix)}
        return load_hf_state_dict(model, state, strip_prefix=prefix).eval()
