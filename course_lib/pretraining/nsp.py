r"""Next-sentence prediction (NSP) data: documents -> sentences -> 50/50 sentence pairs with token types.

BERT's second pre-training task (Devlin et al., 2019; Source B §3.2 "NSP（Next Sentence Prediction）"):
given two segments A and B, predict whether B really follows A in the text (label 0, *IsNext*)
or was drawn from another document (label 1, *NotNext*, with probability 1/2). The pair is packed
as one sequence with **token types** (segment ids) telling the model which token belongs to which
segment:

.. code-block:: text

    [CLS] A_1 ... A_m [SEP] B_1 ... B_n [SEP]
      0    0  ...  0    0     1  ...  1    1      <- token_type_ids

Labels follow ``transformers.BertForPreTraining``'s ``next_sentence_label``: 0 = B continues A, 1 = B is random.
Documents here are WikiText-2 articles, whose headings ``= Title =`` (one equals sign on each side)
separate one article from the next.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["IS_NEXT", "NOT_NEXT", "NSPPair", "clean_wikitext", "split_sentences", "split_documents",
           "make_nsp_pairs", "encode_pair"]

IS_NEXT, NOT_NEXT = 0, 1
_TITLE = re.compile(r"^ ?= [^=].* = ?$")                     # " = Valkyria Chronicles III = " (not " = = Gameplay = = ")
_SENTENCE_END = re.compile(r"(?<= [.!?]) (?=[A-Z0-9\"'(])")  # WikiText-2 puts spaces around punctuation


@dataclass
class NSPPair:
    """One NSP example: segment ``a``, segment ``b`` and ``label`` (0 = IsNext, 1 = NotNext)."""
    a: object
    b: object
    label: int


def clean_wikitext(text: str) -> str:
    """Undo WikiText's number escapes: ``1 @,@ 000`` -> ``1,000``, ``3 @.@ 5`` -> ``3.5``, ``a @-@ b`` -> ``a-b``."""
    return text.replace(" @,@ ", ",").replace(" @.@ ", ".").replace(" @-@ ", "-")


def split_sentences(paragraph: str) -> list[str]:
    """Split one WikiText paragraph after `` . `` / `` ? `` / `` ! `` followed by a capital, digit or quote."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip()]


def split_documents(text: str, min_sentences: int = 2) -> list[list[str]]:
    """WikiText raw text -> documents (articles), each a list of sentences (section headings dropped).

    Parameters
    ----------
    text : str
        E.g. ``course_lib.data.load_wikitext2("train")``.
    min_sentences : int
        Documents with fewer sentences are dropped (an NSP pair needs two).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (e.g. load_wikitext2('train')), got {type(text).__name__}")
    docs, current = [], []
    for line in text.split("\n"):
        if _TITLE.match(line):
            docs.append(current)
            current = []
        elif line.strip() and not line.strip().startswith("="):
            current.extend(split_sentences(clean_wikitext(line)))
    docs.append(current)
    return [d for d in docs if len(d) >= min_sentences]


def make_nsp_pairs(documents: Sequence[Sequence], rng: np.random.Generator, random_next_prob: float = 0.5
                   ) -> list[NSPPair]:
    """One pair per consecutive (A, B) in every document; B replaced by a random segment with prob. 1/2.

    Parameters
    ----------
    documents : sequence of sequences
        Each document a list of segments (sentences as strings, or token-id lists).
    rng : numpy.random.Generator
        ``np.random.default_rng(seed)``; makes the pairs reproducible.
    random_next_prob : float
        Probability of a NotNext pair; the random B comes from a *different* document.

    Returns
    -------
    list of NSPPair, in document order.
    """
    if not 0.0 <= random_next_prob <= 1.0:
        raise ValueError(f"random_next_prob must be in [0, 1], got {random_next_prob}")
    if len(documents) < 2:
        raise ValueError(f"NSP needs at least 2 documents (a random B comes from another one), "
                         f"got {len(documents)}")
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if rng.random() < random_next_prob:
                other = int(rng.integers(len(documents) - 1))
                other += other >= d                              # any document but this one
                b = documents[other][int(rng.integers(len(documents[other])))]
                pairs.append(NSPPair(doc[i], b, NOT_NEXT))
            else:
                pairs.append(NSPPair(doc[i], doc[i + 1], IS_NEXT))
    return pairs


def encode_pair(a_ids: Sequence[int], b_ids: Sequence[int], *, cls_token_id: int, sep_token_id: int,
                max_length: int | None = None) -> tuple[list[int], list[int]]:
    """Pack two segments as ``[CLS] A [SEP] B [SEP]`` with token types 0...0 1...1.

    Like a Hugging Face tokenizer called with ``(text_a, text_b, truncation=True, max_length=...)``
    ("longest_first"), tokens are dropped one at a time from the end of the longer segment
    (from B when they are equally long) until the pair fits.

    Returns
    -------
    input_ids, token_type_ids : list of int, both of length ``len(A) + len(B) + 3`` (after truncation).
    """
    a, b = list(a_ids), list(b_ids)
    if max_length is not None:
        if max_length < 5:
            raise ValueError(f"max_length={max_length} leaves no room for two segments and three "
                             "special tokens; use at least 5")
        while len(a) + len(b) + 3 > max_length:                  # "longest_first" truncation
            (a if len(a) > len(b) else b).pop()                  # the longer one; B on a tie
    ids = [cls_token_id, *a, sep_token_id, *b, sep_token_id]
    types = [0] * (len(a) + 2) + [1] * (len(b) + 1)          # segment A (with [CLS], [SEP]) then B
    return ids, types
