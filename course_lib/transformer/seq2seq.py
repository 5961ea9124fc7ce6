r"""A complete encoder-decoder translation model (Vaswani et al., 2017) around :class:`~.blocks.Transformer`.

The source sentence is encoded once; the decoder predicts the target one token at a time,
attending causally to its own prefix and, through cross-attention (交叉注意力), to every source token:

.. math::
    p(y_t \mid y_{<t}, x) = \mathrm{softmax}\big(W_{emb}\, \mathrm{Dec}(y_{<t}, \mathrm{Enc}(x))_t\big).

Embeddings are multiplied by :math:`\sqrt{D}` (``scale_embedding``) and added to the sinusoidal
position table of chapter 3; input embedding, output embedding and output projection share one
matrix (``tie_word_embeddings``). Field names follow ``transformers.MarianConfig``, the Hugging
Face model closest to the original Transformer (sinusoidal positions, post-LN by default);
decoder heads and FFN width equal the encoder's here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..attention import causal_mask
from ..attention.checks import check_int
from ..attention.position import sinusoidal_encoding_torch
from .blocks import Transformer, check_config, check_ids, check_mask, check_values
from .layers import _check_activation


@dataclass
class Seq2SeqConfig:
    """Hyper-parameters, named as in ``transformers.MarianConfig`` (defaults: a small model)."""
    vocab_size: int = 1000
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    encoder_attention_heads: int = 4
    encoder_ffn_dim: int = 512
    activation_function: str = "relu"
    dropout: float = 0.1
    max_position_embeddings: int = 256
    pad_token_id: int = 0
    decoder_start_token_id: int = 1       # BOS fed to the decoder first
    eos_token_id: int = 2
    normalize_before: bool = False        # False: post-LN as in Vaswani et al.; True: pre-LN
    scale_embedding: bool = True

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "d_model", "encoder_layers", "decoder_layers",
                                     "encoder_attention_heads", "encoder_ffn_dim", "max_position_embeddings"),
                     probabilities=("dropout",))
        _check_activation(self.activation_function)
        for name in ("pad_token_id", "decoder_start_token_id", "eos_token_id"):
            value = check_int(f"Seq2SeqConfig.{name}", getattr(self, name), minimum=0)
            if value >= self.vocab_size:
                raise ValueError(f"Seq2SeqConfig.{name}={value} must be < vocab_size={self.vocab_size}")
        if self.d_model % self.encoder_attention_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by encoder_attention_heads="
                             f"{self.encoder_attention_heads}; pick a head count that divides the width")


class Seq2SeqTransformer(nn.Module):
    """Embeddings + :class:`~.blocks.Transformer` + tied output projection.

    ``forward(input_ids, decoder_input_ids, attention_mask)`` returns logits (B, T_tgt, V) for
    teacher forcing; :meth:`generate` decodes greedily.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config
        self.shared = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_token_id)
        nn.init.normal_(self.shared.weight, std=c.d_model ** -0.5)
        self.transformer = Transformer(c.d_model, c.encoder_attention_heads, c.encoder_layers, c.decoder_layers,
                                       c.encoder_ffn_dim, c.dropout, c.activation_function,
                                       norm_first=c.normalize_before)
        self.register_buffer("positions", sinusoidal_encoding_torch(c.max_position_embeddings, c.d_model),
                             persistent=False)
        self.dropout = nn.Dropout(c.dropout)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> sqrt(D) E[ids] + PE[:T], (B, T, D)."""
        T = ids.shape[1]
        if T > self.config.max_position_embeddings:
            raise ValueError(f"sequence of {T} tokens is longer than max_position_embeddings="
                             f"{self.config.max_position_embeddings}")
        scale = math.sqrt(self.config.d_model) if self.config.scale_embedding else 1.0
        return self.dropout(self.shared(ids) * scale + self.positions[:T])

    def encode(self, input_ids, attention_mask=None):
        """Source ids (B, T_src) -> memory (B, T_src, D) and the key mask (B, 1, 1, T_src) or None.

        ``attention_mask`` (B, T_src): 1 real token, 0 padding; a row of zeros gives zero attention outputs.
        """
        B, T = check_ids("input_ids", input_ids)
        if attention_mask is not None:
            check_mask("attention_mask", attention_mask, (B, T), "(B, T_src) like input_ids")
        check_values([("input_ids", input_ids, self.config.vocab_size, "vocab_size")], attention_mask)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        return self.transformer.encode(self.embed(input_ids), mask), mask

    def decode(self, decoder_input_ids, memory, memory_mask=None):
        """Target prefix (B, T_tgt) -> logits (B, T_tgt, V); causal self-attention, cross-attention to memory."""
        B, T = check_ids("decoder_input_ids", decoder_input_ids)
        if not isinstance(memory, torch.Tensor) or memory.dim() != 3 or memory.shape[0] != B:
            raise ValueError(f"memory must be the encoder output (B={B}, T_src, D) from encode(), got "
                             f"{tuple(memory.shape) if isinstance(memory, torch.Tensor) else type(memory).__name__}")
        check_values([("decoder_input_ids", decoder_input_ids, self.config.vocab_size, "vocab_size")])
        h = self.transformer.decode(self.embed(decoder_input_ids), memory,
                                    causal_mask(T, device=memory.device), memory_mask)
        return h @ self.shared.weight.T                                          # (B, T, D) -> (B, T, V), tied

    def forward(self, input_ids, decoder_input_ids, attention_mask=None):
        memory, mask = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, memory, mask)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = 32) -> torch.Tensor:
        """Greedy decoding: (B, T_src) -> (B, 1 + L) starting with ``decoder_start_token_id``.

        Rows that emitted ``eos_token_id`` continue with ``pad_token_id``; stops when all have.
        ``max_new_tokens=0`` returns the start tokens only, (B, 1).
        """
        max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
        c = self.config
        memory, mask = self.encode(input_ids, attention_mask)                    # encode once
        out = torch.full((input_ids.shape[0], 1), c.decoder_start_token_id, device=input_ids.device)
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            nxt = self.decode(out, memory, mask)[:, -1].argmax(-1)              # (B,)
            nxt = nxt.masked_fill(done, c.pad_token_id)
            done |= nxt == c.eos_token_id
            out = torch.cat([out, nxt[:, None]], dim=1)
            if done.all():
                break
        return out
