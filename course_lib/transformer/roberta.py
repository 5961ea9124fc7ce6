r"""RoBERTa (Liu et al., 2019): BERT's encoder, trained differently, with Hugging Face's parameter names.

The network is BERT's (:mod:`course_lib.transformer.bert`): the same post-LN layers, the same
attention, the same names (``encoder.layer.{i}.attention.self.query`` ...), so this module only
subclasses it. What changed is the **training recipe** — more data, larger batches, longer
training, **dynamic masking** (a new random mask each time a sentence is seen, instead of one
mask fixed during preprocessing) and **no next-sentence prediction** — and two details of the
embeddings that a port must get right:

* a byte-level BPE vocabulary (50,265 tokens) with ``<s>`` = 0, ``<pad>`` = 1, ``</s>`` = 2;
* **position ids start after the padding index**: for tokens :math:`x_1..x_T` with padding id
  :math:`p`, :math:`\mathrm{pos}_t = p + \sum_{s \le t} [x_s \ne p]` for real tokens and
  :math:`\mathrm{pos}_t = p` for padding. Rows 0..p of the position table are therefore never used
  by real tokens, which is why RoBERTa checkpoints have ``max_position_embeddings = 514`` for
  512 tokens.

:class:`RobertaForMaskedLM` adds the MLM head ``lm_head``: dense, GELU, LayerNorm, then the
decoder tied to the word embeddings plus a bias,
:math:`\mathrm{logits} = \mathrm{LN}(\mathrm{GELU}(W h + b)) E^\top + c`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .bert import BertConfig, BertEmbeddings, BertModel, EncoderOutput
from .layers import LayerNorm

__all__ = ["RobertaConfig", "RobertaEmbeddings", "RobertaModel", "RobertaForMaskedLM", "MaskedLMOutput",
           "create_position_ids_from_input_ids"]


@dataclass
class RobertaConfig(BertConfig):
    """Hyper-parameters, named as in ``transformers.RobertaConfig`` (defaults: roberta-base)."""
    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2

    def __post_init__(self):
        super().__post_init__()
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise ValueError(f"max_position_embeddings={self.max_position_embeddings} leaves no position for a real "
                             f"token after padding_idx={self.pad_token_id}; use at least pad_token_id + 2")

    @property
    def max_tokens(self) -> int:
        """Longest input: positions pad+1 .. max_position_embeddings-1 are usable."""
        return self.max_position_embeddings - self.pad_token_id - 1


def create_position_ids_from_input_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """RoBERTa's position ids (B, T): ``padding_idx + cumsum(not pad)`` for real tokens, ``padding_idx`` for pads."""
    mask = input_ids.ne(padding_idx).long()                                     # 1 = real token
    return torch.cumsum(mask, dim=1) * mask + padding_idx                       # p + sum_{s<=t}[x_s != p], pads -> p


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings; positions counted from ``padding_idx + 1`` and skipping pads."""

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=config.pad_token_id)

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        if position_ids is None:
            position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx)   # (B, T)
        return super().forward(input_ids, token_type_ids, position_ids)


class RobertaModel(BertModel):
    """RoBERTa encoder: :class:`~course_lib.transformer.bert.BertModel` with :class:`RobertaEmbeddings`.

    Parameters
    ----------
    config : RobertaConfig
    add_pooling_layer : bool
        Include ``pooler`` (``RobertaForMaskedLM`` has none).
    """
    hf_ignored: tuple = ("embeddings.position_ids", "embeddings.token_type_ids")

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True):
        if not isinstance(config, RobertaConfig):
            raise TypeError(f"RobertaModel needs a RobertaConfig, got {type(config).__name__}; "
                            "build one with RobertaConfig.from_dict(...)")
        super().__init__(config, add_pooling_layer)
        self.embeddings = RobertaEmbeddings(config)
        self.embeddings.apply(self._init_weights)
        for emb in (self.embeddings.word_embeddings, self.embeddings.position_embeddings):
            with torch.no_grad():
                emb.weight[emb.padding_idx].zero_()                             # the padding row stays 0, as in HF

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> EncoderOutput:
        """Same as :meth:`BertModel.forward`; ``position_ids`` default to RoBERTa's (see the module docstring).

        As with Hugging Face, padding is not inferred from the ids for attention: pass ``attention_mask``
        when the batch is padded (the position ids, however, do skip pads).
        """
        T = input_ids.shape[1]
        if position_ids is None and T > self.config.max_tokens:
            raise ValueError(f"input has {T} tokens but RoBERTa with max_position_embeddings="
                             f"{self.config.max_position_embeddings} and pad_token_id={self.config.pad_token_id} "
                             f"takes at most {self.config.max_tokens}; truncate the input (max_length=...)")
        return super().forward(input_ids, attention_mask, token_type_ids, position_ids,
                               output_attentions, output_hidden_states)


class RobertaLMHead(nn.Module):
    """MLM head: ``decoder(layer_norm(gelu(dense(h)))) + bias``; ``decoder.weight`` is the word embedding."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias                                           # one bias, two names (as HF)

    def forward(self, h):
        x = F.gelu(self.dense(h))                                               # exact GELU, whatever hidden_act is
        return self.decoder(self.layer_norm(x))                                 # (B, T, D) -> (B, T, V)


@dataclass
class MaskedLMOutput:
    """What :meth:`RobertaForMaskedLM.forward` returns (names as in Hugging Face)."""
    logits: torch.Tensor                        # (B, T, V)
    loss: torch.Tensor | None = None            # mean cross-entropy over labels != -100


class RobertaForMaskedLM(nn.Module):
    """RoBERTa with the masked-language-model head (no pooler, no NSP head: RoBERTa dropped NSP)."""
    hf_transposed: tuple = ()
    hf_ignored: tuple = RobertaModel.hf_ignored
    hf_tied: tuple = ("lm_head.decoder.weight", "lm_head.decoder.bias")

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.config = config
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.lm_head.dense.apply(self.roberta._init_weights)
        self.lm_head.decoder.weight = self.roberta.embeddings.word_embeddings.weight   # weight tying

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None) -> MaskedLMOutput:
        """input_ids (B, T) -> logits (B, T, V); with ``labels`` (B, T), -100 = not scored, also the MLM loss."""
        if labels is not None and tuple(labels.shape) != tuple(input_ids.shape):
            raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(input_ids.shape)} like "
                             "input_ids (use -100 for positions that are not predicted)")
        h = self.roberta(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.lm_head(h)
        loss = None
        if labels is not None:
            # mean over masked positions of -log p(x_t | x_masked)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return MaskedLMOutput(logits, loss)
