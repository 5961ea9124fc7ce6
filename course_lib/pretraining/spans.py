r"""T5's span corruption (Raffel et al., 2020, §3.1.4): drop spans, name them with sentinels, predict them.

Instead of masking single tokens (BERT), T5 removes *spans* of consecutive tokens. With noise
density :math:`d` = 15 % and mean span length :math:`\mu` = 3, a sequence of :math:`L` tokens gets

.. math::
    N_{noise} = \mathrm{round}(d L), \qquad S = \mathrm{round}(N_{noise} / \mu)

noise tokens in :math:`S` spans. The noise and non-noise tokens are each cut into :math:`S` random
non-empty pieces (every composition equally likely) and interleaved, non-noise first. Each noise
span is replaced in the **input** by one sentinel token ``<extra_id_k>``; the **target** lists
every sentinel followed by the tokens it hides, and ends with one more sentinel (the paper's example):

.. code-block:: text

    original  Thank you for inviting me to your party last week .
    inputs    Thank you <extra_id_0> me to your party <extra_id_1> week .
    targets   <extra_id_0> for inviting <extra_id_1> last <extra_id_2>

Inputs and targets together rebuild the original (:func:`reconstruct_from_spans`), and both are
much shorter than a BERT-style (input, labels) pair of full length, which makes pre-training cheaper.
:func:`random_spans_noise_mask` follows ``random_spans_noise_mask`` of the T5 code base step by step.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["random_spans_noise_mask", "span_corruption", "reconstruct_from_spans", "default_sentinels"]


def _random_segmentation(num_items: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``num_items`` into ``num_segments`` non-empty pieces, uniformly over all compositions."""
    first = np.arange(num_items - 1) < (num_segments - 1)      # S-1 cut points among the L-1 gaps
    rng.shuffle(first)
    segment_id = np.cumsum(np.concatenate([[0], first]))       # item -> piece index
    return np.bincount(segment_id, minlength=num_segments)      # piece lengths, sum = num_items


def random_spans_noise_mask(length: int, rng: np.random.Generator, noise_density: float = 0.15,
                            mean_noise_span_length: float = 3.0) -> np.ndarray:
    """Boolean mask of length ``length``: True on the tokens to drop, in spans.

    Parameters
    ----------
    length : int
        Number of tokens, at least 2 (one noise and one kept token).
    rng : numpy.random.Generator
    noise_density : float
        Fraction of tokens to drop (T5: 0.15); the count is ``round(density * length)``, clipped to
        ``[1, length - 1]``.
    mean_noise_span_length : float
        Average span length (T5: 3); the number of spans is ``round(noise tokens / mean)``, at least 1.

    Returns
    -------
    ndarray of bool, shape (length,); the first token is never noise.
    """
    if not 0.0 < noise_density < 1.0:
        raise ValueError(f"noise_density must be in (0, 1), got {noise_density}")
    if mean_noise_span_length < 1:
        raise ValueError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}")
    if length < 2:
        raise ValueError(f"span corruption needs at least 2 tokens, got {length}")
    num_noise = min(max(int(np.round(length * noise_density)), 1), length - 1)   # N = round(d L)
    num_spans = max(int(np.round(num_noise / mean_noise_span_length)), 1)        # S = round(N / mu)
    num_spans = min(num_spans, num_noise, length - num_noise)                    # each piece non-empty
    noise_lengths = _random_segmentation(num_noise, num_spans, rng)
    keep_lengths = _random_segmentation(length - num_noise, num_spans, rng)
    interleaved = np.stack([keep_lengths, noise_lengths], axis=1).reshape(-1)    # keep, noise, keep, ...
    span_index = np.repeat(np.arange(2 * num_spans), interleaved)                # token -> span number
    return span_index % 2 == 1                                                   # odd spans are noise


def default_sentinels(n: int) -> list[str]:
    """T5's sentinel tokens ``<extra_id_0>``, ``<extra_id_1>``, ... (ids 32099, 32098, ... in T5's vocabulary)."""
    return [f"<extra_id_{k}>" for k in range(n)]


def span_corruption(tokens: Sequence, rng: np.random.Generator, noise_density: float = 0.15,
                    mean_noise_span_length: float = 3.0, sentinels: Sequence | None = None,
                    noise_mask: np.ndarray | None = None) -> tuple[list, list, np.ndarray]:
    """Corrupt ``tokens`` T5-style: returns ``(inputs, targets, noise_mask)``.

    Parameters
    ----------
    tokens : sequence
        Token strings or ids, at least 2.
    rng : numpy.random.Generator
    noise_density, mean_noise_span_length : float
        See :func:`random_spans_noise_mask`.
    sentinels : sequence, optional
        Sentinel tokens to use in order; default ``<extra_id_0>``, ... (:func:`default_sentinels`).
        For ids pass e.g. ``[32099 - k for k in range(100)]``; it must not overlap ``tokens``.
    noise_mask : ndarray of bool, optional
        Use this mask instead of drawing one.
    """
    tokens = list(tokens)
    mask = random_spans_noise_mask(len(tokens), rng, noise_density, mean_noise_span_length) \
        if noise_mask is None else np.asarray(noise_mask, dtype=bool)
    if mask.shape != (len(tokens),):
        raise ValueError(f"noise_mask has shape {mask.shape}, expected ({len(tokens)},) like tokens")
    starts = mask & ~np.concatenate([[False], mask[:-1]])                        # first token of each span
    n_spans = int(starts.sum())
    sentinels = default_sentinels(n_spans + 1) if sentinels is None else list(sentinels)
    if len(sentinels) < n_spans + 1:
        raise ValueError(f"{n_spans} noise spans need {n_spans + 1} sentinels, got {len(sentinels)}")
    if set(sentinels[:n_spans + 1]) & set(tokens):
        raise ValueError("a sentinel token also occurs in tokens; use sentinels outside the text's vocabulary")
    inputs, targets, k = [], [], -1
    for tok, noise, start in zip(tokens, mask, starts):
        if start:
            k += 1
            inputs.append(sentinels[k])                       # the span becomes one sentinel in the input
            targets.append(sentinels[k])                      # ... and is spelled out after it in the target
        (targets if noise else inputs).append(tok)
    targets.append(sentinels[n_spans])                        # closing sentinel, as in the paper's example
    return inputs, targets, mask


def reconstruct_from_spans(inputs: Sequence, targets: Sequence, sentinels: Sequence) -> list:
    """Invert :func:`span_corruption`: put every target span back where its sentinel stands in the input."""
    position = {s: i for i, s in enumerate(sentinels)}
    spans, current = {}, None
    for tok in targets:
        if tok in position:
            current = tok
            spans[current] = []
        elif current is None:
            raise ValueError("targets must start with a sentinel token")
        else:
            spans[current].append(tok)
    out = []
    for tok in inputs:
        if tok in position:
            if tok not in spans:
                raise ValueError(f"sentinel {tok!r} in the inputs has no span in the targets")
            out.extend(spans[tok])
        else:
            out.append(tok)
    return out
