r"""Sequence classification: a BERT encoder plus one linear layer on the pooled [CLS] vector.

Devlin et al. (2019) fine-tune the whole pre-trained network with a single new matrix:

.. math::
    h = \mathrm{BERT}(x)_{[CLS]} \in \mathbb{R}^{D},\quad
    p = \tanh(W_p h + b_p),\quad
    z = W_c\,\mathrm{Dropout}(p) + b_c \in \mathbb{R}^{K},\quad
    \mathcal{L} = -\log \mathrm{softmax}(z)_y ,

where :math:`W_p` is the pre-trained pooler and :math:`W_c \in \mathbb{R}^{K \times D}` the only
newly initialised weights (:math:`\mathcal{N}(0, 0.02^2)`, bias 0). Parameter names are Hugging
Face's ``BertForSequenceClassification`` names (``bert.*`` and ``classifier``), so its checkpoints
load with :func:`course_lib.transformer.loading.load_hf_state_dict` and ours load into it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.bert import BertConfig, BertModel
from ..transformer.loading import load_hf_state_dict

__all__ = ["SequenceClassifierOutput", "BertForSequenceClassification", "check_labels", "freeze_lower_layers",
           "count_parameters"]


@dataclass
class SequenceClassifierOutput:
    """Field names as in ``transformers.modeling_outputs.SequenceClassifierOutput``."""
    loss: torch.Tensor | None
    logits: torch.Tensor                      # (B, K)


def check_labels(labels: torch.Tensor, num_labels: int, ignore_index: int | None = None) -> None:
    """``ValueError`` if a label id is outside ``0..num_labels-1`` (``ignore_index`` allowed)."""
    bad = (labels < 0) | (labels >= num_labels)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bool(bad.any()):
        values = sorted(set(labels[bad].tolist()))[:5]
        raise ValueError(f"labels {values} are outside the label set 0..{num_labels - 1}; the model was built "
                         f"with num_labels={num_labels}: fix the labels or build the model with more labels")



def read_bert_folder(path, **config_overrides) -> tuple[BertConfig, dict, dict]:
    """Read a local BERT folder (``config.json`` + ``model.safetensors``): MiniLM, a course checkpoint
    or a Hugging Face model with task heads.

    Returns ``(config, state, encoder)``: the config (with overrides), the whole state dict, and the
    encoder's tensors with any ``bert.`` prefix removed (task heads excluded).
    """
    from safetensors.torch import load_file
    path = Path(path)
    for need in ("config.json", "model.safetensors"):
        if not (path / need).exists():
            raise ValueError(f"{path} has no {need}; expected a model folder "
                             "(for MiniLM use course_lib.data.minilm_path())")
    config = BertConfig.from_dict({**json.loads((path / "config.json").read_text()), **config_overrides})
    state = load_file(str(path / "model.safetensors"))
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    encoder = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return config, state, encoder

class BertForSequenceClassification(nn.Module):
    """BERT + dropout + a linear classifier on the pooled output (Hugging Face names and numerics).

    Parameters
    ----------
    config : BertConfig
    num_labels : int
        Number of classes K (>= 2).
    classifier_dropout : float or None
        Dropout before the classifier; None uses ``config.hidden_dropout_prob`` (as Hugging Face).
    """
    hf_transposed: tuple = ()
    hf_ignored: tuple = ("embeddings.position_ids",)
    hf_tied: tuple = ()

    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float | None = None):
        super().__init__()
        if not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2 (the number of classes), got {num_labels!r}")
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config, add_pooling_layer=True)
        p = config.hidden_dropout_prob if classifier_dropout is None else classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=config.initializer_range)    # N(0, 0.02), as HF
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                **unused) -> SequenceClassifierOutput:
        """Logits (B, K) and, when ``labels`` (B,) are given, the mean cross-entropy."""
        pooled = self.bert(input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).pooler_output              # (B, D)
        logits = self.classifier(self.dropout(pooled))                               # z = W_c Drop(p) + b_c, (B, K)
        loss = None
        if labels is not None:
            if labels.shape != (input_ids.shape[0],):
                raise ValueError(f"labels must have shape (B,) = ({input_ids.shape[0]},), "
                                 f"got {tuple(labels.shape)}: one class id per text")
            check_labels(labels, self.num_labels)
            loss = F.cross_entropy(logits, labels)                                  # -log softmax(z)_y, mean
        return SequenceClassifierOutput(loss, logits)

    @classmethod
    def from_pretrained(cls, path, num_labels: int, classifier_dropout: float | None = None,
                        **config_overrides) -> "BertForSequenceClassification":
        """Encoder weights from a local Hugging Face (or course) BERT folder; a new classifier.

        Works for a bare encoder checkpoint (MiniLM: ``embeddings.*``, ``encoder.*``, ``pooler.*``), a
        pre-training checkpoint (``bert.*`` + ``cls.*``: the heads are dropped) and a classification
        checkpoint (``bert.*`` + ``classifier.*``: the classifier is kept if its size is ``num_labels``).
        A checkpoint without a pooler gets a freshly initialised one. Returned in train mode.
        """
        path = Path(path)
        config, state, encoder = read_bert_folder(path, **config_overrides)
        model = cls(config, num_labels, classifier_dropout)
        if not any(k.startswith("pooler.") for k in encoder):          # e.g. a model pre-trained without NSP
            encoder.update({f"pooler.{k}": v for k, v in model.bert.pooler.state_dict().items()})
        load_hf_state_dict(model.bert, encoder)
        head = {k: v for k, v in state.items() if k.startswith("classifier.")}
        if head:
            if head["classifier.weight"].shape[0] != num_labels:
                raise ValueError(f"{path} holds a classifier for {head['classifier.weight'].shape[0]} labels, "
                                 f"not num_labels={num_labels}; pass the matching num_labels")
            model.classifier.load_state_dict({k.split(".", 1)[1]: v for k, v in head.items()})
        return model.train()

    @classmethod
    def from_random(cls, path, num_labels: int, seed: int = 0, **kwargs) -> "BertForSequenceClassification":
        """The *same architecture* as the checkpoint in ``path``, randomly initialised (seeded)."""
        config = BertConfig.from_dict(json.loads((Path(path) / "config.json").read_text()))
        torch.manual_seed(seed)
        return cls(config, num_labels, **kwargs).train()


def freeze_lower_layers(model: BertForSequenceClassification, num_frozen: int) -> int:
    """Freeze the embeddings and the lowest ``num_frozen`` encoder layers; returns the trainable count.

    ``num_frozen = 0`` trains everything; ``num_frozen = num_hidden_layers`` trains the pooler and
    the classifier only (feature extraction).
    """
    layers = model.bert.encoder.layer
    if not 0 <= num_frozen <= len(layers):
        raise ValueError(f"num_frozen must be in 0..{len(layers)} (the number of encoder layers), got {num_frozen}")
    for p in model.parameters():
        p.requires_grad_(True)
    if num_frozen > 0:
        for p in model.bert.embeddings.parameters():
            p.requires_grad_(False)
        for layer in layers[:num_frozen]:
            for p in layer.parameters():
                p.requires_grad_(False)
    return count_parameters(model, trainable_only=True)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters, shared tensors counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
