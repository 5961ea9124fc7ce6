r"""BERT's pre-training heads on top of our encoder, with Hugging Face's parameter names.

``BertForPreTraining`` = encoder (``bert.*``) + two heads (``cls.*``):

**MLM head** (``cls.predictions``), applied to every position's final hidden state :math:`h_t`:

.. math::
    z_t = W_{E}\,\mathrm{LN}\big(\mathrm{GELU}(W_T h_t + b_T)\big) + b_V \in \mathbb{R}^{V},

a "transform" (dense + activation + LayerNorm, ``cls.predictions.transform``), then the **decoder**
whose weight :math:`W_E` *is* the word-embedding table (weight tying, ``cls.predictions.decoder``; it
has no parameters of its own) plus one output bias per vocabulary entry (``cls.predictions.bias``).
Tying saves :math:`V \times D` parameters -- for MiniLM's 30,522-token vocabulary that is most
of a tiny model -- and makes "embedding of a word" and "score of a word" the same vector.

**NSP head** (``cls.seq_relationship``): a linear map :math:`\mathbb{R}^D \to \mathbb{R}^2` of the
pooled [CLS] vector (``tanh(W h_[CLS] + b)``, chapter 4's pooler).

Losses, as in Hugging Face: :math:`\mathcal{L} = \mathcal{L}_{MLM} + \mathcal{L}_{NSP}`, each a mean
cross-entropy; MLM labels are ``-100`` except at the positions chosen by
:func:`course_lib.pretraining.masking.mask_tokens`. ``BertForMaskedLM`` is the encoder without the
pooler plus the MLM head only (RoBERTa's recipe drops NSP).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.bert import BertConfig, BertModel
from ..transformer.layers import ACTIVATIONS, LayerNorm
from ..transformer.loading import load_hf_state_dict

__all__ = ["BertPredictionHeadTransform", "BertLMPredictionHead", "BertPreTrainingHeads", "BertOnlyMLMHead",
           "PreTrainingOutput", "MaskedLMOutput", "BertForPreTraining", "BertForMaskedLM", "check_token_ids"]

IGNORE_INDEX = -100


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h):
        return self.LayerNorm(self.transform_act_fn(self.dense(h)))              # LN(GELU(W_T h + b_T))


class BertLMPredictionHead(nn.Module):
    """Transform, then the decoder: ``decoder.weight`` is tied to the word embeddings by the model."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h):
        return self.decoder(self.transform(h)) + self.bias                        # (..., D) -> (..., V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output, pooled_output):
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)   # (B,T,V), (B,2)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)


@dataclass
class PreTrainingOutput:
    """Field names as in Hugging Face's ``BertForPreTrainingOutput``, plus the two partial losses."""
    loss: torch.Tensor | None               # mlm_loss + nsp_loss (when both label sets are given)
    prediction_logits: torch.Tensor         # (B, T, V)
    seq_relationship_logits: torch.Tensor   # (B, 2): 0 = IsNext, 1 = NotNext
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None


@dataclass
class MaskedLMOutput:
    loss: torch.Tensor | None               # mean cross-entropy over the labelled positions
    logits: torch.Tensor                    # (B, T, V)


def check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raise a clear ``ValueError`` when ids fall outside the embedding table (a tokenizer mismatch)."""
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise ValueError(f"input_ids hold ids in {int(input_ids.min())}..{int(input_ids.max())} but the model's "
                         f"vocab_size is {vocab_size}: the tokenizer's vocabulary does not match the model's "
                         "embedding table; use the tokenizer the model was trained with")


def _mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(logits.shape[:-1])} "
                         "like input_ids (use -100 where there is nothing to predict)")
    # L_MLM = -1/|M| sum_{t in M} log softmax(z_t)[x_t], M = positions whose label is not -100
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


class _PreTrainedBert(nn.Module):
    """Shared by both models: weight tying, initialisation, loading a Hugging Face folder."""
    hf_transposed: tuple = ()
    hf_ignored: tuple = ("embeddings.position_ids", "cls.predictions.decoder.bias")
    hf_tied: tuple = ("cls.predictions.decoder.weight",)

    def _finish_init(self):
        for module in self.cls.modules():                                    # the encoder initialised itself
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=self.config.initializer_range)   # N(0, 0.02) as BERT
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight   # weight tying

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())                     # tied decoder counted once

    @classmethod
    def from_pretrained(cls, path, **config_overrides):
        """Load a local Hugging Face folder saved from ``BertForPreTraining`` / ``BertForMaskedLM``."""
        from safetensors.torch import load_file
        path = Path(path)
        for need in ("config.json", "model.safetensors"):
            if not (path / need).exists():
                raise ValueError(f"{path} has no {need}; expected a Hugging Face model folder")
        config = BertConfig.from_dict({**json.loads((path / "config.json").read_text()), **config_overrides})
        return load_hf_state_dict(cls(config), load_file(str(path / "model.safetensors"))).eval()


class BertForPreTraining(_PreTrainedBert):
    """BERT encoder + MLM head + NSP head; ``BertForPreTraining(cfg)`` has Hugging Face's names and shapes."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertPreTrainingHeads(config)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None) -> PreTrainingOutput:
        """MLM logits for every position and NSP logits for the pair; losses when labels are given.

        Parameters
        ----------
        input_ids, attention_mask, token_type_ids : (B, T), as for :class:`~course_lib.transformer.BertModel`.
        labels : LongTensor (B, T), optional
            Original ids at masked positions, -100 elsewhere (from ``mask_tokens``).
        next_sentence_label : LongTensor (B,), optional
            0 = B follows A, 1 = B is random.
        """
        check_token_ids(input_ids, self.config.vocab_size)
        out = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        logits, nsp_logits = self.cls(out.last_hidden_state, out.pooler_output)   # (B, T, V), (B, 2)
        mlm = _mlm_loss(logits, labels) if labels is not None else None
        nsp = None
        if next_sentence_label is not None:
            if next_sentence_label.shape != nsp_logits.shape[:1] or \
                    not bool(((next_sentence_label == 0) | (next_sentence_label == 1)).all()):
                raise ValueError("next_sentence_label must have shape (B,) and hold 0 (IsNext) or 1 (NotNext)")
            nsp = F.cross_entropy(nsp_logits, next_sentence_label)              # L_NSP
        loss = mlm + nsp if mlm is not None and nsp is not None else None       # L = L_MLM + L_NSP
        return PreTrainingOutput(loss, logits, nsp_logits, mlm, nsp)


class BertForMaskedLM(_PreTrainedBert):
    """BERT encoder (no pooler) + MLM head, as Hugging Face's ``BertForMaskedLM``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> MaskedLMOutput:
        check_token_ids(input_ids, self.config.vocab_size)
        out = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        logits = self.cls(out.last_hidden_state)                                 # (B, T, V)
        return MaskedLMOutput(_mlm_loss(logits, labels) if labels is not None else None, logits)
