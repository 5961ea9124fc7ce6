"""Chapter 5 (pre-training): objectives as data transformations, BERT's pre-training heads, a tiny BERT.

Modules
-------
masking
    ``mask_tokens``: BERT's masked-LM corruption (15 %, then 80/10/10), equal to
    ``transformers.DataCollatorForLanguageModeling`` for the same generator state; re-exports NSP and spans.
nsp
    next-sentence prediction data: WikiText-2 documents -> sentences -> 50/50 pairs with token types.
spans
    T5's span corruption with sentinels (noise density 15 %, mean span length 3).
heads
    ``BertForPreTraining`` (MLM + NSP heads) and ``BertForMaskedLM``, Hugging Face's parameter names.
pretrain
    the pre-training pipeline: packed NSP pairs, dynamic masking, ``pretraining_loss``,
    ``evaluate_pretraining`` (masked-token and NSP accuracy), ``fill_mask``.
minilm_head
    MiniLM's encoder with an MLM head (random, or the one trained by ``tools/train_minilm_mlm_head.py``);
    ``load_tiny_bert`` reads ``checkpoints/tiny_bert``.

The causal LM objective is chapter 4's ``course_lib.transformer.training.causal_lm_loss``.
"""
from . import heads, masking, minilm_head, nsp, pretrain, spans
from .heads import BertForMaskedLM, BertForPreTraining
from .masking import mask_tokens, span_corruption

__all__ = ["heads", "masking", "minilm_head", "nsp", "pretrain", "spans", "BertForMaskedLM", "BertForPreTraining",
           "mask_tokens", "span_corruption"]
