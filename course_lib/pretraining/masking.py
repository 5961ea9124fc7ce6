r"""Pre-training objectives as data transformations: masked LM, next-sentence pairs, span corruption.

A pre-training objective turns unlabelled text into (input, target) pairs, so a model can learn from
text alone (Source B §3.2: "通常采用无监督学习方法，如MASK预测、NSP（Next Sentence Prediction）等").

**Masked language modelling** (MLM, Devlin et al., 2019). Choose each non-special token with
probability :math:`p` = ``mlm_probability`` (15 %); the model must predict the chosen tokens from the
rest. Of the chosen tokens, 80 % are replaced by ``[MASK]``, 10 % by a random token and 10 % are
left unchanged, so that the model cannot learn "only [MASK] positions matter" (there is no [MASK]
at fine-tuning time). Per token, with :math:`m` = ``mask_replace_prob`` and :math:`r` =
``random_replace_prob``:

.. math::
    P(\text{[MASK]}) = p\,m, \qquad P(\text{random}) = p\,r, \qquad P(\text{kept, but predicted}) = p\,(1-m-r).

The random replacement is drawn in two steps, exactly as ``transformers.DataCollatorForLanguageModeling``
does: a Bernoulli(:math:`m`) picks [MASK]; among the rest a Bernoulli(:math:`r / (1-m)`) picks
"random", so that overall :math:`P(\text{random} \mid \text{chosen}) = (1-m)\cdot r/(1-m) = r`.
With the same ``torch.Generator`` state, :func:`mask_tokens` draws the same random numbers in
the same order as the collator and returns identical tensors.

**Next-sentence prediction** lives in :mod:`course_lib.pretraining.nsp`; **T5 span corruption**
(Raffel et al., 2020) in :mod:`course_lib.pretraining.spans`. Both are re-exported here.
The causal LM objective is chapter 4's ``course_lib.transformer.training.causal_lm_loss``.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from .nsp import NSPPair, encode_pair, make_nsp_pairs, split_documents, split_sentences
from .spans import random_spans_noise_mask, reconstruct_from_spans, span_corruption

__all__ = ["IGNORE_INDEX", "special_tokens_mask", "mask_tokens", "masking_statistics",
           "NSPPair", "encode_pair", "make_nsp_pairs", "split_documents", "split_sentences",
           "random_spans_noise_mask", "reconstruct_from_spans", "span_corruption"]

IGNORE_INDEX = -100     # label of a position without a target: ``F.cross_entropy(ignore_index=-100)`` skips it


def _check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def special_tokens_mask(input_ids: torch.Tensor, special_ids: Iterable[int]) -> torch.Tensor:
    """True where ``input_ids`` holds a special token ([CLS], [SEP], [PAD], ...): never masked.

    Parameters
    ----------
    input_ids : LongTensor (B, T)
    special_ids : iterable of int
        E.g. ``tokenizer.all_special_ids``.

    Returns
    -------
    BoolTensor (B, T)
    """
    ids = torch.as_tensor(sorted(set(int(i) for i in special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    return torch.isin(input_ids, ids)


def mask_tokens(input_ids: torch.Tensor, *, vocab_size: int, mask_token_id: int, special_ids: Iterable[int],
                mlm_probability: float = 0.15, mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-LM corruption: choose ``mlm_probability`` of the tokens, then 80/10/10.

    Parameters
    ----------
    input_ids : LongTensor (B, T)
        Token ids, padded; not modified (a corrupted copy is returned).
    vocab_size : int
        Random replacements are drawn uniformly from ``0 .. vocab_size - 1`` (like the collator,
        which uses ``len(tokenizer)``; special tokens can be drawn too).
    mask_token_id : int
        Id of ``[MASK]``.
    special_ids : iterable of int
        Ids that are never chosen ([CLS], [SEP], [PAD], ...; ``tokenizer.all_special_ids``).
    mlm_probability : float
        Probability p that a (non-special) token is chosen for prediction.
    mask_replace_prob, random_replace_prob : float
        Of the chosen tokens, the fraction replaced by [MASK] and by a random token; the remaining
        ``1 - mask_replace_prob - random_replace_prob`` keep their original token.
    generator : torch.Generator, optional
        Source of randomness (on ``input_ids``' device); with the same state as the generator of
        ``DataCollatorForLanguageModeling`` the outputs are identical.

    Returns
    -------
    inputs : LongTensor (B, T)
        The corrupted ids, to feed the model.
    labels : LongTensor (B, T)
        The original id at chosen positions, ``-100`` (:data:`IGNORE_INDEX`) everywhere else.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int32, torch.int64):
        raise TypeError("input_ids must be an integer torch tensor of shape (B, T); tokenize with "
                        "return_tensors='pt'")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}; "
                         "add a batch dimension with input_ids[None]")
    for name, value in [("mlm_probability", mlm_probability), ("mask_replace_prob", mask_replace_prob),
                        ("random_replace_prob", random_replace_prob)]:
        _check_probability(name, value)
    if mask_replace_prob + random_replace_prob > 1.0 + 1e-12:
        raise ValueError(f"mask_replace_prob + random_replace_prob = {mask_replace_prob + random_replace_prob} "
                         "exceeds 1; they are fractions of the chosen tokens")
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id={mask_token_id} is outside the vocabulary 0..{vocab_size - 1}")
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise ValueError(f"input_ids hold ids outside 0..{vocab_size - 1}: the tokenizer's vocabulary "
                         f"does not match vocab_size={vocab_size}")
    device, shape = input_ids.device, input_ids.shape
    inputs, labels = input_ids.clone(), input_ids.clone()
    probability = torch.full(shape, float(mlm_probability), device=device)           # p for every token
    probability.masked_fill_(special_tokens_mask(input_ids, special_ids), 0.0)       # specials/padding: 0
    chosen = torch.bernoulli(probability, generator=generator).bool()                # ~ Bernoulli(p)
    labels[~chosen] = IGNORE_INDEX                                                   # predict chosen only
    to_mask = torch.bernoulli(torch.full(shape, float(mask_replace_prob), device=device),
                              generator=generator).bool() & chosen                   # ~ Bernoulli(m)
    inputs[to_mask] = mask_token_id
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return inputs, labels
    scaled = random_replace_prob / (1 - mask_replace_prob)                           # r / (1 - m)
    to_random = torch.bernoulli(torch.full(shape, scaled, device=device),
                                generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, shape, dtype=torch.long, device=device, generator=generator)
    inputs[to_random] = random_ids[to_random].to(inputs.dtype)
    return inputs, labels


def masking_statistics(input_ids: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor,
                       special_ids: Iterable[int], mask_token_id: int) -> dict[str, float]:
    """Fractions that describe one corruption: how much was chosen, and what became of it.

    Returns a dict with ``chosen`` (chosen / non-special tokens), ``mask``, ``random``, ``kept``
    (each a fraction of the chosen tokens; "random" counts a random draw that differs from the
    original, so a random draw that happens to hit the same token counts as "kept"),
    ``special_chosen`` (number of special tokens chosen: always 0).
    """
    special = special_tokens_mask(input_ids, special_ids)
    chosen = labels != IGNORE_INDEX
    n = max(int(chosen.sum()), 1)
    masked = chosen & (inputs == mask_token_id)
    kept = chosen & (inputs == input_ids)
    return {"chosen": int(chosen.sum()) / max(int((~special).sum()), 1),
            "mask": int(masked.sum()) / n,
            "random": int((chosen & ~masked & ~kept).sum()) / n,
            "kept": int(kept.sum()) / n,
            "special_chosen": int((chosen & special).sum())}
