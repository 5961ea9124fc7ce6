r"""Pre-training a BERT from scratch on WikiText-2: data, loss, evaluation, fill-mask.

Pipeline (what ``tools/pretrain_tiny_bert.py`` and notebook ``02_pretraining_tiny_bert`` run):

1. **documents -> sentences -> WordPiece ids** (:func:`tokenize_documents`, MiniLM's 30,522-token vocabulary);
2. **segments**: consecutive sentences of one document packed up to ``(max_seq_length - 3) // 2`` tokens
   (:func:`pack_segments`), so that a pair of segments nearly fills a sequence;
3. **NSP pairs** (:func:`~course_lib.pretraining.nsp.make_nsp_pairs`): B follows A, or (probability 1/2)
   comes from another document; packed as ``[CLS] A [SEP] B [SEP]`` with token types;
4. **batches** padded to the longest pair; **dynamic masking**: :func:`~course_lib.pretraining.masking.mask_tokens`
   draws a fresh 15 % / 80-10-10 corruption each time a batch is made (Liu et al., 2019), while the
   validation batches are masked once with a fixed seed so that every evaluation sees the same task;
5. **loss** :math:`\mathcal{L}_{MLM} + \mathcal{L}_{NSP}` (:func:`pretraining_loss`), optimised by chapter 4's
   ``course_lib.transformer.training.train`` (AdamW, warm-up + cosine, clipping).

:func:`pretraining_loss` runs the MLM head only at the ~15 % labelled positions: the head is applied
position by position, so this gives the same loss as the full ``(B, T, V)`` logits, at a fraction of
the cost of the :math:`D \times V` decoder (BERT's original code does the same, ``max_predictions_per_seq``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .masking import IGNORE_INDEX, mask_tokens
from .nsp import encode_pair, make_nsp_pairs

__all__ = ["tokenize_documents", "pack_segments", "PairExamples", "build_nsp_examples", "collate_pairs",
           "MaskedPairBatches", "fixed_validation_batches", "pretraining_loss", "evaluate_pretraining",
           "fill_mask"]


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> list[list[list[int]]]:
    """Every sentence -> WordPiece ids without special tokens (one fast-tokenizer call for all of them)."""
    flat = [s for doc in documents for s in doc]
    if not flat:
        raise ValueError("no sentences to tokenize: the documents are empty")
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"]
    out, i = [], 0
    for doc in documents:
        out.append([x for x in ids[i:i + len(doc)] if x])          # drop sentences that tokenised to nothing
        i += len(doc)
    return out


def pack_segments(sentences: Sequence[Sequence[int]], target_length: int) -> list[list[int]]:
    """Concatenate consecutive sentences (id lists) into segments of at most ``target_length`` ids.

    A sentence longer than ``target_length`` is cut into pieces; order is kept.
    """
    if target_length < 1:
        raise ValueError(f"target_length must be >= 1, got {target_length}")
    segments, current = [], []
    for sent in sentences:
        for start in range(0, len(sent), target_length):
            piece = list(sent[start:start + target_length])
            if current and len(current) + len(piece) > target_length:
                segments.append(current)
                current = []
            current = current + piece
    if current:
        segments.append(current)
    return segments


@dataclass
class PairExamples:
    """Packed NSP pairs: ragged lists of ``input_ids`` and ``token_type_ids`` and one NSP label each."""
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    next_sentence_label: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def build_nsp_examples(documents_ids: Sequence[Sequence[Sequence[int]]], *, max_seq_length: int, cls_token_id: int,
                       sep_token_id: int, rng: np.random.Generator, random_next_prob: float = 0.5) -> PairExamples:
    """Token-id documents -> packed segments -> 50/50 NSP pairs, each at most ``max_seq_length`` ids."""
    target = (max_seq_length - 3) // 2                            # two segments + [CLS] + 2 x [SEP]
    docs = [pack_segments(d, target) for d in documents_ids]
    docs = [d for d in docs if len(d) >= 2]
    pairs = make_nsp_pairs(docs, rng, random_next_prob)
    ids, types = zip(*[encode_pair(p.a, p.b, cls_token_id=cls_token_id, sep_token_id=sep_token_id,
                                   max_length=max_seq_length) for p in pairs])
    return PairExamples(list(ids), list(types), [p.label for p in pairs])


def collate_pairs(examples: PairExamples, indices: Sequence[int], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad the chosen examples to the longest one: ``input_ids``, ``token_type_ids``, ``attention_mask`` (B, T)."""
    T = max(len(examples.input_ids[i]) for i in indices)
    B = len(indices)
    input_ids = torch.full((B, T), pad_token_id, dtype=torch.long)
    token_type_ids = torch.zeros((B, T), dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(examples.input_ids[i])
        input_ids[row, :n] = torch.tensor(examples.input_ids[i])
        token_type_ids[row, :n] = torch.tensor(examples.token_type_ids[i])
        attention_mask[row, :n] = 1
    label = torch.tensor([examples.next_sentence_label[i] for i in indices], dtype=torch.long)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "next_sentence_label": label}


class MaskedPairBatches:
    """``batches(step)`` -> a shuffled, padded, freshly masked training batch (dynamic masking).

    Parameters
    ----------
    examples : PairExamples
    batch_size : int
    tokenizer : a Hugging Face tokenizer (for ``mask_token_id``, ``all_special_ids``, ``len``)
    seed : int
        Seeds both the epoch shuffles and the masking generator.
    mlm_probability : float
    """

    def __init__(self, examples: PairExamples, batch_size: int, tokenizer, seed: int = 0,
                 mlm_probability: float = 0.15):
        if batch_size < 1 or batch_size > len(examples):
            raise ValueError(f"batch_size must be in 1..{len(examples)} (the number of examples), got {batch_size}")
        self.examples, self.batch_size, self.tokenizer = examples, batch_size, tokenizer
        self.mlm_probability = mlm_probability
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.cursor = self.rng.permutation(len(examples)), 0

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        if self.cursor + self.batch_size > len(self.order):       # new epoch: reshuffle
            self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        idx = self.order[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return mask_batch(collate_pairs(self.examples, idx, self.tokenizer.pad_token_id), self.tokenizer,
                          self.generator, self.mlm_probability)


def mask_batch(batch: dict, tokenizer, generator: torch.Generator, mlm_probability: float = 0.15) -> dict:
    """Add MLM ``labels`` and replace ``input_ids`` by their corrupted version (80/10/10)."""
    inputs, labels = mask_tokens(batch["input_ids"], vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                                 special_ids=tokenizer.all_special_ids, mlm_probability=mlm_probability,
                                 generator=generator)
    return {**batch, "input_ids": inputs, "labels": labels}


def fixed_validation_batches(examples: PairExamples, batch_size: int, tokenizer, seed: int = 1234,
                             limit: int | None = None) -> list[dict]:
    """Validation batches in order, masked once with a fixed seed (every evaluation sees the same task)."""
    n = len(examples) if limit is None else min(limit, len(examples))
    g = torch.Generator().manual_seed(seed)
    return [mask_batch(collate_pairs(examples, range(i, min(i + batch_size, n)), tokenizer.pad_token_id),
                       tokenizer, g) for i in range(0, n, batch_size)]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def pretraining_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
    """:math:`\\mathcal{L}_{MLM} + \\mathcal{L}_{NSP}` of a ``BertForPreTraining``, MLM head at labelled positions only.

    Signature of chapter 4's loss functions: returns (loss, number of sequences). Equal to
    ``model(**batch).loss`` (a test checks it).
    """
    batch = _to(batch, next(model.parameters()).device)
    out = model.bert(batch["input_ids"], attention_mask=batch["attention_mask"],
                     token_type_ids=batch["token_type_ids"])
    chosen = batch["labels"] != IGNORE_INDEX                                      # (B, T) positions to predict
    logits = model.cls.predictions(out.last_hidden_state[chosen])                # (N, D) -> (N, V)
    mlm = F.cross_entropy(logits, batch["labels"][chosen])                       # mean over the N chosen tokens
    nsp = F.cross_entropy(model.cls.seq_relationship(out.pooler_output), batch["next_sentence_label"])
    return mlm + nsp, batch["input_ids"].shape[0]


@torch.no_grad()
def evaluate_pretraining(model: nn.Module, batches: Sequence[dict]) -> dict[str, float]:
    """Masked-token accuracy / loss (over all masked tokens) and NSP accuracy / loss (over all pairs)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mlm_sum = mlm_hit = mlm_n = nsp_sum = nsp_hit = nsp_n = 0.0
    for batch in batches:
        batch = _to(batch, device)
        out = model.bert(batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"])
        chosen = batch["labels"] != IGNORE_INDEX
        logits = model.cls.predictions(out.last_hidden_state[chosen])             # (N, V)
        target = batch["labels"][chosen]
        mlm_sum += float(F.cross_entropy(logits, target, reduction="sum"))
        mlm_hit += float((logits.argmax(-1) == target).sum())
        mlm_n += len(target)
        nsp_logits = model.cls.seq_relationship(out.pooler_output)               # (B, 2)
        nsp_sum += float(F.cross_entropy(nsp_logits, batch["next_sentence_label"], reduction="sum"))
        nsp_hit += float((nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum())
        nsp_n += len(nsp_logits)
    model.train(was_training)
    if not mlm_n or not nsp_n:
        raise ValueError("evaluate_pretraining() got no masked tokens or no pairs: the batches are empty")
    return {"mlm_loss": mlm_sum / mlm_n, "mlm_accuracy": mlm_hit / mlm_n,
            "nsp_loss": nsp_sum / nsp_n, "nsp_accuracy": nsp_hit / nsp_n, "masked_tokens": int(mlm_n)}


@torch.no_grad()
def fill_mask(model: nn.Module, tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``top_k`` (token, probability) guesses for every ``[MASK]`` in ``text`` (like HF's fill-mask pipeline)."""
    if tokenizer.mask_token not in text:
        raise ValueError(f"text has no {tokenizer.mask_token} token to fill: {text!r}")
    was_training = model.training
    model.eval()
    enc = tokenizer(text, return_tensors="pt")
    device = next(model.parameters()).device
    out = model.bert(enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
    where = enc["input_ids"][0] == tokenizer.mask_token_id
    probs = model.cls.predictions(out.last_hidden_state[0, where.to(device)]).softmax(-1)   # (M, V)
    model.train(was_training)
    top = probs.topk(top_k, dim=-1)
    return [[(tokenizer.convert_ids_to_tokens(int(i)), round(float(p), 4)) for p, i in zip(ps, ix)]
            for ps, ix in zip(top.values, top.indices)]
