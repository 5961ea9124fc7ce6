"""Argument checks shared by the chapter-2 trainers: bad input fails at our API, in words.

A mistake surfaces as a ``TypeError`` (wrong kind of object) or a ``ValueError`` (right
kind, wrong value) naming the argument, what it got and what to pass instead; a training
run whose vectors stop being finite stops with a ``FloatingPointError`` that names the
likely cause (:func:`check_finite`).
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from ..utils import check_int  # noqa: F401  (re-exported: one integer check for every chapter)


def check_number(name: str, value, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float, ``> minimum`` (``strict``) or ``>= minimum``; NaN and inf are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def check_sentences(sentences) -> None:
    """``sentences`` must be a list (or tuple) of token lists, e.g. ``[["the", "cat"], ["a", "dog"]]``.

    A list of strings would be read as lists of characters, a generator would be used up
    by the first of the two passes the trainers make: both are refused.
    """
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of token lists, e.g. [['the', 'cat'], ['a', 'dog']], got "
                        f"{type(sentences).__name__}; pass list(...) of an iterator, and split raw text with "
                        "course_lib.embeddings.tokenize")
    for n, s in enumerate(sentences):
        if isinstance(s, str):
            raise TypeError(f"sentence {n} is a string ({s[:30]!r}), so its characters would be the tokens; "
                            "sentences must be a list of token lists: split each text with "
                            "course_lib.embeddings.tokenize(text) or text.split()")
        if not isinstance(s, (list, tuple)):
            raise TypeError(f"sentence {n} is a {type(s).__name__}; sentences must be a list of token lists "
                            "(lists of str)")
    kinds = set(map(type, itertools.chain.from_iterable(sentences)))
    if kinds - {str}:
        bad = sorted(k.__name__ for k in kinds - {str})
        raise TypeError(f"tokens must be strings, found tokens of type {', '.join(bad)}; "
                        "convert them with [[str(w) for w in s] for s in sentences]")


def check_ids(name: str, ids, size: int | None = None) -> np.ndarray:
    """A 1-D integer array of ids in ``0..size-1`` (negative ids would silently wrap around)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D array of integer word ids, got shape {arr.shape} and "
                         f"dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or (size is not None and arr.max() >= size)):
        raise ValueError(f"{name} must hold ids in 0..{'V-1' if size is None else size - 1}, "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64, copy=False)


def check_finite(arrays, epoch: int, alpha_name: str, alpha: float, batch_size: int | None = None) -> None:
    """Stop a diverged run: raise ``FloatingPointError`` if any array holds NaN or inf.

    ``arrays`` are the trained parameters (NumPy arrays or torch tensors), checked at the end
    of every epoch so that a run never returns non-finite vectors silently.
    """
    for a in arrays:
        finite = bool(np.isfinite(a).all()) if isinstance(a, np.ndarray) else bool(a.isfinite().all())
        if not finite:
            hint = f"lower {alpha_name} (now {alpha:g})"
            if batch_size is not None:
                hint += (f" or batch_size (now {batch_size}): rows shared by many examples of one batch "
                         "add up many updates computed from the same old values")
            raise FloatingPointError(
                f"training diverged in epoch {epoch}: the vectors contain NaN or inf values. The usual "
                f"cause is too large a step: {hint}")


def check_loop_args(**kwargs) -> None:
    """The trainers' integer knobs: ``batch_size``, ``loss_every``, ``shared_negatives`` >= 1, the rest >= 0."""
    for name, value in kwargs.items():
        check_int(name, value, minimum=1 if name in ("batch_size", "loss_every", "shared_negatives") else 0)


def check_loss(loss: float, epoch: int, step: int, cfg, batch_size: int) -> None:
    """Stop as soon as a recorded loss is NaN or inf (the end-of-epoch check catches the rest)."""
    if not np.isfinite(loss):
        raise FloatingPointError(
            f"training diverged at epoch {epoch}, step {step} (loss {loss}): the step is too large; lower "
            f"batch_size (now {batch_size}) or alpha (now {cfg.alpha}): rows shared by many words of one "
            "batch add up many updates computed from the same old values")


def check_corpus(ids: np.ndarray, sent: np.ndarray) -> None:
    """The encoded corpus must hold at least one pair of in-vocabulary words in one sentence,
    otherwise there is nothing to train on (and the vectors would come back untrained)."""
    if len(ids) == 0:
        raise ValueError("none of the tokens of sentences is in the vocabulary; build the vocabulary from "
                         "these sentences (Vocab.build) or lower min_count")
    if not (sent[1:] == sent[:-1]).any():
        raise ValueError("no sentence holds two in-vocabulary words, so there is no (centre, context) pair "
                         "to train on; use longer sentences or a lower min_count")
