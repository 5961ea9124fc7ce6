r"""T5 (Raffel et al., 2020): an encoder-decoder with the parameter names of HF ``T5ForConditionalGeneration``.

T5 casts every task as text-to-text. Its Transformer differs from Vaswani et al.'s in four places:

* **RMSNorm without bias or mean** (``T5LayerNorm``), pre-LN:
  :math:`\mathrm{RMS}(x) = g \odot x / \sqrt{\tfrac1D \sum_i x_i^2 + \epsilon}`, then
  :math:`h \leftarrow h + \mathrm{Sublayer}(\mathrm{RMS}(h))`.
* **No position embeddings; a learned relative position bias** added to the attention scores,
  :math:`s_{ij} = q_i \cdot k_j + b_h(\mathrm{bucket}(j - i))`. Offsets are bucketed: the first
  half of the buckets are exact small offsets, the rest grow logarithmically up to ``max_distance``.
  The encoder's buckets are bidirectional (separate buckets for left and right); the decoder's are
  causal (only :math:`j \le i`). Only the first layer of each stack owns the table
  ``relative_attention_bias``; the bias it computes is reused by every later layer.
* **No** :math:`1/\sqrt{d_k}` **scaling** of :math:`QK^\top` (T5's initialisation absorbs it), and no
  biases in any linear layer.
* **Tied embeddings** (``shared``) for encoder input, decoder input and, when
  ``tie_word_embeddings``, the output layer, whose input is then rescaled by :math:`d_{model}^{-1/2}`
  (the embedding rows have norm about :math:`\sqrt{d_{model}}`). T5 v1.0 uses a ReLU feed-forward;
  v1.1 (``feed_forward_proj="gated-gelu"``) a gated GELU :math:`W_o(\mathrm{GELU}(W_{i0} x) \odot W_{i1} x)`
  and no rescaling. (Since transformers 5, ``transformers.T5Config`` always ties the output layer and
  records the rescaling separately as ``scale_decoder_outputs``; our config has both switches.)

Training is teacher-forced: the decoder reads ``labels`` shifted right behind
``decoder_start_token_id`` and is scored with cross-entropy (``-100`` labels ignored).
:func:`greedy_generate` decodes one token at a time like ``generate(do_sample=False, num_beams=1)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ACTIVATIONS, RMSNorm, gelu

__all__ = ["T5Config", "T5ForConditionalGeneration", "Seq2SeqLMOutput", "relative_position_bucket",
           "shift_right", "greedy_generate"]


@dataclass
class T5Config:
    """Hyper-parameters, named as in ``transformers.T5Config`` (defaults: t5-small)."""
    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64                                # head width Dh (need not be d_model / num_heads)
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None         # default: num_layers
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"               # "relu" (T5 v1.0) or "gated-gelu" (v1.1)
    tie_word_embeddings: bool = True              # lm_head.weight is shared.weight
    scale_decoder_outputs: bool | None = None     # multiply by d_model**-0.5 before lm_head; default: tied
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0

    def __post_init__(self):
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings
        act = self.feed_forward_proj.split("-")[-1]
        gated = self.feed_forward_proj.startswith("gated-")
        if self.feed_forward_proj.count("-") > 1 or (self.feed_forward_proj.count("-") == 1 and not gated) \
                or _hf_act(act) not in ACTIVATIONS:
            raise ValueError(f"feed_forward_proj={self.feed_forward_proj!r} is not supported; use 'relu', "
                             "'gelu', 'gated-gelu' or 'gated-relu' (as in transformers.T5Config)")
        if self.relative_attention_num_buckets < 4 or self.relative_attention_max_distance < 2:
            raise ValueError("relative_attention_num_buckets must be >= 4 and relative_attention_max_distance >= 2; "
                             f"got {self.relative_attention_num_buckets} and {self.relative_attention_max_distance}")

    @property
    def is_gated_act(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")

    @property
    def dense_act_fn(self) -> str:
        return _hf_act(self.feed_forward_proj.split("-")[-1])

    @classmethod
    def from_dict(cls, d: dict) -> "T5Config":
        """Keep the keys we know from a Hugging Face config dict (``hf_config.to_dict()``)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _hf_act(name: str) -> str:
    return "gelu_new" if name == "gelu" else name      # HF maps "gated-gelu" to the tanh GELU


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool = True,
                             num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    r"""Map offsets :math:`j - i` (key minus query position) to bucket ids in ``[0, num_buckets)``.

    Bidirectional: half the buckets for keys on the right (:math:`j > i`), half for the rest.
    Causal: offsets :math:`j > i` are clipped to 0 (the decoder never looks right). Within a half of
    ``n`` buckets, offsets :math:`d < n/2` get their own bucket; larger ones share logarithmically
    wider buckets, :math:`n/2 + \lfloor \log(d / (n/2)) / \log(\mathrm{max\_distance} / (n/2)) \cdot n/2 \rfloor`,
    capped at ``n - 1`` (every offset beyond ``max_distance`` shares the last bucket).
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets   # right-hand keys: upper half
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)                     # causal: only j <= i counts
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    large = max_exact + (torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()                 # log-spaced buckets
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class T5Attention(nn.Module):
    """Multi-head attention without biases or 1/sqrt(d) scaling; layer 0 owns the relative bias table."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool = False, is_decoder: bool = False):
        super().__init__()
        self.is_decoder, self.has_relative_attention_bias = is_decoder, has_relative_attention_bias
        self.n_heads, self.d_kv = config.num_heads, config.d_kv
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.dropout = config.dropout_rate
        inner = config.num_heads * config.d_kv
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, config.num_heads)

    def compute_bias(self, query_length: int, key_length: int, device=None) -> torch.Tensor:
        """Relative position bias (1, H, T_q, T_k) from the learned table (one scalar per bucket and head)."""
        context = torch.arange(query_length, device=device)[:, None]              # query positions i
        memory = torch.arange(key_length, device=device)[None, :]                 # key positions j
        buckets = relative_position_bucket(memory - context, bidirectional=not self.is_decoder,
                                           num_buckets=self.num_buckets, max_distance=self.max_distance)
        values = self.relative_attention_bias(buckets)                            # (T_q, T_k, H)
        return values.permute(2, 0, 1)[None]                                      # (1, H, T_q, T_k)

    def forward(self, h, key_value_states=None, position_bias=None):
        """h (B, T_q, D); key_value_states (B, T_k, D) for cross-attention; position_bias (B|1, H, T_q, T_k)
        already holds the mask (most negative float where a key is hidden). Returns (B, T_q, D)."""
        B, T_q, _ = h.shape
        kv = h if key_value_states is None else key_value_states
        T_k = kv.shape[1]
        # (B, T, H*Dh) -> (B, H, T, Dh)
        split = lambda x, T: x.view(B, T, self.n_heads, self.d_kv).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(h), T_q), split(self.k(kv), T_k), split(self.v(kv), T_k)
        scores = q @ k.transpose(-1, -2)                        # Q K^T, no 1/sqrt(Dh): (B, H, T_q, T_k)
        scores = scores + position_bias                                           # + b(bucket(j - i)) + mask
        weights = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)           # softmax over keys
        out = (weights @ v).transpose(1, 2).reshape(B, T_q, -1)  # (B, H, T_q, Dh) -> (B, T_q, H*Dh)
        return self.o(out)


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config: T5Config, has_relative_attention_bias: bool = False, is_decoder: bool = False):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias, is_decoder)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, h, position_bias):
        return h + self.dropout(self.SelfAttention(self.layer_norm(h), position_bias=position_bias))  # h + Attn(RMS(h))


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.EncDecAttention = T5Attention(config, has_relative_attention_bias=False, is_decoder=True)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, h, encoder_hidden_states, position_bias):
        a = self.EncDecAttention(self.layer_norm(h), key_value_states=encoder_hidden_states,
                                 position_bias=position_bias)
        return h + self.dropout(a)                                                # h + CrossAttn(RMS(h), enc)


class T5DenseActDense(nn.Module):
    """``wo(act(wi(x)))`` (ReLU, T5 v1.0), or gated ``wo(act(wi_0(x)) * wi_1(x))`` (gated-GELU, v1.1)."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.gated = config.is_gated_act
        if self.gated:
            self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
            self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        else:
            self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        # HF's "gelu_new" is the tanh GELU written out; ours (layers.gelu) is the same expression, op for op
        act = config.dense_act_fn
        self.act = (lambda x: gelu(x, "tanh")) if act == "gelu_new" else ACTIVATIONS[act]

    def forward(self, x):
        if self.gated:
            h = self.act(self.wi_0(x)) * self.wi_1(x)                             # GELU(W_i0 x) * (W_i1 x): (B, T, F)
        else:
            h = self.act(self.wi(x))                                              # ReLU(W_i x): (B, T, F)
        return self.wo(self.dropout(h))                                           # (B, T, F) -> (B, T, D)


class T5LayerFF(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.DenseReluDense = T5DenseActDense(config)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, h):
        return h + self.dropout(self.DenseReluDense(self.layer_norm(h)))          # h + FFN(RMS(h))


class T5Block(nn.Module):
    """``layer[0]`` self-attention, (decoder) ``layer[1]`` cross-attention, ``layer[-1]`` feed-forward."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool = False, is_decoder: bool = False):
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(config, has_relative_attention_bias, is_decoder)])
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config))
        self.layer.append(T5LayerFF(config))

    def forward(self, h, position_bias, encoder_hidden_states=None, cross_bias=None):
        h = self.layer[0](h, position_bias)
        if encoder_hidden_states is not None:
            h = self.layer[1](h, encoder_hidden_states, cross_bias)
        return self.layer[-1](h)


def _additive(mask: torch.Tensor, dtype) -> torch.Tensor:
    """bool mask (True = may attend) -> 0 / most negative float, added to the scores."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


class T5Stack(nn.Module):
    """Encoder (bidirectional) or decoder (causal + cross-attention) stack sharing ``embed_tokens``."""

    def __init__(self, config: T5Config, embed_tokens: nn.Embedding, is_decoder: bool):
        super().__init__()
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList([T5Block(config, has_relative_attention_bias=(i == 0), is_decoder=is_decoder)
                                    for i in range(n)])
        self.final_layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, input_ids, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        B, T = input_ids.shape
        h = self.dropout(self.embed_tokens(input_ids))                            # (B, T, D), no position embedding
        keep = torch.ones(B, 1, T, T, dtype=torch.bool, device=h.device)          # (B, 1, T_q, T_k)
        if attention_mask is not None:
            keep = keep & attention_mask.bool()[:, None, None, :]                 # hide padding keys
        if self.is_decoder:
            keep = keep & torch.ones(T, T, dtype=torch.bool, device=h.device).tril()  # and future keys
        attention = self.block[0].layer[0].SelfAttention
        bias = attention.compute_bias(T, T, h.device) + _additive(keep, h.dtype)  # computed once, shared by all layers
        cross = None
        if encoder_hidden_states is not None:
            T_enc = encoder_hidden_states.shape[1]
            enc_keep = torch.ones(B, 1, 1, T_enc, dtype=torch.bool, device=h.device)
            if encoder_attention_mask is not None:
                enc_keep = encoder_attention_mask.bool()[:, None, None, :]
            cross = _additive(enc_keep, h.dtype)                                  # cross-attention: mask only, no bias
        for block in self.block:
            h = block(h, bias, encoder_hidden_states, cross)
        return self.dropout(self.final_layer_norm(h))                             # (B, T, D)


@dataclass
class Seq2SeqLMOutput:
    """What :meth:`T5ForConditionalGeneration.forward` returns (names as in Hugging Face)."""
    logits: torch.Tensor                              # (B, T_dec, V)
    loss: torch.Tensor | None = None                  # mean cross-entropy over labels != -100
    encoder_last_hidden_state: torch.Tensor | None = None   # (B, T_enc, D)


def shift_right(labels: torch.Tensor, decoder_start_token_id: int, pad_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: ``[start, y_1, ..., y_{T-1}]``, with -100 replaced by the pad id."""
    out = labels.new_full(labels.shape, decoder_start_token_id)
    out[:, 1:] = labels[:, :-1]                                                   # (B, T): y shifted one step right
    return out.masked_fill(out == -100, pad_token_id)


class T5ForConditionalGeneration(nn.Module):
    """T5 encoder-decoder with a language-model head; ``forward`` returns :class:`Seq2SeqLMOutput`.

    Parameters
    ----------
    config : T5Config
    """
    hf_transposed: tuple = ()
    hf_ignored: tuple = ()
    hf_tied: tuple = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.shared.weight                              # weight tying

    def _init_weights(self, module):
        """T5's initialisation (Mesh TensorFlow): normal with std 1/sqrt(fan-in), queries also / sqrt(Dh)."""
        f, c = self.config.initializer_factor, self.config
        if isinstance(module, RMSNorm):
            nn.init.constant_(module.weight, f)
        elif module is self.shared:
            nn.init.normal_(module.weight, std=f)
        elif isinstance(module, nn.Linear) and module is getattr(self, "lm_head", None):
            nn.init.normal_(module.weight, std=f)
        elif isinstance(module, T5Attention):
            inner = c.num_heads * c.d_kv
            nn.init.normal_(module.q.weight, std=f * (c.d_model * c.d_kv) ** -0.5)   # absorbs 1/sqrt(Dh)
            nn.init.normal_(module.k.weight, std=f * c.d_model ** -0.5)
            nn.init.normal_(module.v.weight, std=f * c.d_model ** -0.5)
            nn.init.normal_(module.o.weight, std=f * inner ** -0.5)
            if module.has_relative_attention_bias:
                nn.init.normal_(module.relative_attention_bias.weight, std=f * c.d_model ** -0.5)
        elif isinstance(module, T5DenseActDense):
            for name in ("wi", "wi_0", "wi_1"):
                if hasattr(module, name):
                    nn.init.normal_(getattr(module, name).weight, std=f * c.d_model ** -0.5)
            nn.init.normal_(module.wo.weight, std=f * c.d_ff ** -0.5)

    def _check_ids(self, name: str, ids: torch.Tensor) -> None:
        if ids.dim() != 2 or ids.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
            raise ValueError(f"{name} must be an integer tensor of shape (B, T), got dtype {ids.dtype} "
                             f"and shape {tuple(ids.shape)}")
        if ids.shape[1] == 0:
            raise ValueError(f"{name} is empty (T=0); give every sequence at least one token (e.g. the EOS id)")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"{name} holds ids outside [0, {self.config.vocab_size}); the tokenizer's vocabulary "
                             "does not match the model's vocab_size")

    def encode(self, input_ids, attention_mask=None) -> torch.Tensor:
        """Encoder states (B, T_enc, D)."""
        self._check_ids("input_ids", input_ids)
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                             f"{tuple(input_ids.shape)} like input_ids")
        return self.encoder(input_ids, attention_mask)

    def decode(self, decoder_input_ids, encoder_hidden_states, attention_mask=None,
               decoder_attention_mask=None) -> torch.Tensor:
        """Next-token logits (B, T_dec, V) from decoder inputs and encoder states."""
        self._check_ids("decoder_input_ids", decoder_input_ids)
        h = self.decoder(decoder_input_ids, decoder_attention_mask, encoder_hidden_states, attention_mask)
        if self.config.scale_decoder_outputs:
            h = h * self.config.d_model ** -0.5                  # h / sqrt(d_model) before the tied output layer
        return self.lm_head(h)                                                    # (B, T_dec, D) -> (B, T_dec, V)

    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                labels=None, encoder_outputs: torch.Tensor | None = None) -> Seq2SeqLMOutput:
        """Teacher-forced forward pass.

        Parameters
        ----------
        input_ids : LongTensor (B, T_enc)
        attention_mask : Tensor (B, T_enc), 1 for real tokens, 0 for padding.
        decoder_input_ids : LongTensor (B, T_dec), optional; default ``shift_right(labels)``.
        decoder_attention_mask : Tensor (B, T_dec), optional.
        labels : LongTensor (B, T_dec), optional; -100 marks positions left out of the loss.
        encoder_outputs : Tensor (B, T_enc, D), optional; reuse encoder states computed before.
        """
        c = self.config
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give labels (for the loss) or decoder_input_ids (for logits only)")
            decoder_input_ids = shift_right(labels, c.decoder_start_token_id, c.pad_token_id)
        if labels is not None and tuple(labels.shape) != tuple(decoder_input_ids.shape):
            raise ValueError(f"labels have shape {tuple(labels.shape)} but decoder_input_ids "
                             f"{tuple(decoder_input_ids.shape)}; they must match")
        enc = self.encode(input_ids, attention_mask) if encoder_outputs is None else encoder_outputs
        logits = self.decode(decoder_input_ids, enc, attention_mask, decoder_attention_mask)
        loss = None
        if labels is not None:
            # mean over positions with labels != -100 of -log p(y_t | y_<t, x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return Seq2SeqLMOutput(logits, loss, enc)

    def num_parameters(self) -> int:
        """Number of parameters (tied tensors counted once)."""
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def greedy_generate(model: T5ForConditionalGeneration, input_ids: torch.Tensor, attention_mask=None,
                    max_new_tokens: int = 20, eos_token_id: int | None = -1) -> torch.Tensor:
    """Greedy decoding, like Hugging Face ``generate(do_sample=False, num_beams=1)``.

    The encoder runs once; each step runs the decoder on the tokens so far and appends the argmax.
    A row that has produced ``eos_token_id`` is padded with ``pad_token_id``; decoding stops when
    every row has finished or after ``max_new_tokens`` steps.

    Parameters
    ----------
    model : T5ForConditionalGeneration
    input_ids : LongTensor (B, T_enc);  attention_mask : (B, T_enc), optional.
    max_new_tokens : int
    eos_token_id : int or None
        Default (-1): ``model.config.eos_token_id``; None: never stop early.

    Returns
    -------
    LongTensor (B, 1 + new): ``decoder_start_token_id`` followed by the generated tokens.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    c = model.config
    eos = c.eos_token_id if eos_token_id == -1 else eos_token_id
    enc = model.encode(input_ids, attention_mask)                                 # (B, T_enc, D), once
    B = input_ids.shape[0]
    seq = torch.full((B, 1), c.decoder_start_token_id, dtype=torch.long, device=input_ids.device)
    done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        nxt = model.decode(seq, enc, attention_mask)[:, -1].argmax(dim=-1)       # (B,) argmax_v p(v | y_<t, x)
        nxt = nxt.masked_fill(done, c.pad_token_id)                               # finished rows: padding
        seq = torch.cat([seq, nxt[:, None]], dim=1)                               # (B, t) -> (B, t + 1)
        if eos is not None:
            done |= nxt == eos
            if bool(done.all()):
                break
    return seq
