r"""Chapter 2 checkers: sub-sampling keep probabilities and the negative-sampling loss.

* :func:`check_keep_probs` -- ``fn(counts, sample) -> keep`` (V,): the probability that word2vec
  (and gensim) keeps each occurrence of a word of count :math:`c` in a corpus of :math:`N` tokens,
  :math:`p = \min\big(1, (\sqrt{c / tN} + 1)\, tN / c\big)` with :math:`t` = ``sample``; ``sample = 0``
  keeps everything. The course's version is :meth:`course_lib.embeddings.vocab.Vocab.keep_probs`.
* :func:`check_negative_sampling_loss` -- ``fn(w_in, w_out, centers, contexts, negatives) ->
  (loss, grad_v, targets, grad_u)`` with the signature and return values of
  :func:`course_lib.embeddings.word2vec_numpy.sgns_batch`.
"""
from __future__ import annotations

import numpy as np

from ..embeddings.vocab import Vocab
from ..embeddings.word2vec_numpy import sgns_batch
from .core import CheckReport, ExerciseFailure, call, close, expect_close, expect_shape, passed

_KEEP = "keep_probs"
_SGNS = "negative_sampling_loss"


def _keep_cases():
    zipf = (10_000 / np.arange(1, 41)).astype(np.int64)                 # Zipf-like counts, 40 words
    return [("Zipf counts, sample = 1e-3", zipf, 1e-3),
            ("Zipf counts, sample = 1e-5 (aggressive)", zipf, 1e-5),
            ("sample = 0 turns sub-sampling off", zipf, 0.0),
            ("rare words next to a frequent one (their p is clipped to 1)", np.array([100_000, 50, 5, 3, 1]), 1e-3),
            ("one word", np.array([50]), 1e-3)]


def _keep_hint(got: np.ndarray, want: np.ndarray, counts: np.ndarray, sample: float) -> str:
    if sample == 0:
        return "sample = 0 means no sub-sampling: return ones (and avoid dividing by t N = 0)"
    if (got > 1 + 1e-9).any():
        return "a probability cannot exceed 1: clip with np.minimum(p, 1.0) (rare words are always kept)"
    f = counts / counts.sum()
    if close(got, np.clip(1 - np.sqrt(sample / f), 0, 1), 1e-6, 1e-9) or \
            close(got, np.clip(np.sqrt(sample / f), 0, 1), 1e-6, 1e-9):
        return ("that is the paper's discard rule 1 - sqrt(t/f) (or its complement); word2vec's C code and "
                "gensim keep a word with p = (sqrt(c / (t N)) + 1) * t N / c")
    return "threshold = sample * N with N = counts.sum(); p = (sqrt(c / threshold) + 1) * threshold / c"


def check_keep_probs(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(counts, sample) -> keep probabilities`` (V,) against ``Vocab.keep_probs``.

    Hidden cases: Zipf counts at two thresholds, ``sample = 0``, only rare words (clipping), one word.
    """
    report = CheckReport(_KEEP)
    for case, counts, sample in _keep_cases():
        want = Vocab([f"w{i}" for i in range(len(counts))], counts).keep_probs(sample)
        got = np.asarray(call(_KEEP, case, fn, counts.copy(), sample), dtype=np.float64)
        expect_shape(_KEEP, case, "keep", got, want.shape, "return one probability per word: shape (V,)")
        expect_close(_KEEP, case, "keep", got, want, _keep_hint(got, want, counts, sample), 1e-6, 1e-9)
        report.cases.append(case)
    return passed(report, verbose)


def _sgns_cases():
    rng = np.random.default_rng(2)
    V, D = 12, 5
    out = []
    for case, B, K, scale in [("B = 1 pair, K = 1 negative", 1, 1, 0.5),
                              ("B = 6 pairs, K = 4 negatives, repeated words", 6, 4, 0.5),
                              ("large scores |u.v| ~ 100 (overflow)", 3, 2, 5.0),
                              ("K = 0 negatives (only the true context)", 4, 0, 0.5),
                              ("empty batch B = 0", 0, 3, 0.5)]:
        w_in, w_out = scale * rng.normal(size=(V, D)), scale * rng.normal(size=(V, D))
        centers = rng.integers(0, 4 if B > 1 else V, size=B)         # few centres: words repeat
        contexts = rng.integers(0, V, size=B)
        negatives = rng.integers(0, V, size=(B, K))
        out.append((case, w_in, w_out, centers, contexts, negatives))
    return out


def _sgns_hint(which: str, got, want, args) -> str:
    if which == "loss":
        if not np.isfinite(got):
            return ("your loss overflows: -log(sigmoid(s)) = log(1 + exp(-s)); compute it as "
                    "np.logaddexp(0, -s) so exp never sees a large argument")
        B = len(args[2])
        if B and np.isclose(got * B, want):
            return "the course sums the loss over the batch (not the mean): return sum_b l_b"
        loss_swapped = float(np.logaddexp(0.0, np.einsum("bkd,bd->bk", args[1][np.concatenate(
            [args[3][:, None], args[4]], 1)], args[0][args[2]]) * np.r_[1.0, -np.ones(args[4].shape[1])]).sum())
        if np.isclose(got, loss_swapped):
            return "the signs are swapped: the true context gets -log sigma(s_o), each negative -log sigma(-s_k)"
        return "l = -log sigma(u_o . v_c) - sum_k log sigma(-u_k . v_c), summed over the batch"
    if close(got, -np.asarray(want), 1e-5, 1e-8):
        return f"{which} has the wrong sign: with g = label - sigma(s), dl/dv_c = -sum_t g_t u_t and dl/du_t = -g_t v_c"
    if which == "targets":
        return "targets are the context then the negatives of each row: np.concatenate([contexts[:, None], negatives], 1)"
    if which == "grad_u":
        return "dl/du_t = (sigma(s_t) - label_t) v_c for every target t (context first, label 1; negatives label 0)"
    return "dl/dv_c = (sigma(s_o) - 1) u_o + sum_k sigma(s_k) u_k"


def check_negative_sampling_loss(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(w_in, w_out, centers, contexts, negatives) -> (loss, grad_v, targets, grad_u)`` against ``sgns_batch``.

    Hidden cases: one pair, a batch with repeated words, large scores (overflow), K = 0, an empty batch.
    """
    report = CheckReport(_SGNS)
    for case, *args in _sgns_cases():
        want = sgns_batch(*args)
        got = call(_SGNS, case, fn, *(a.copy() for a in args))
        if not isinstance(got, (tuple, list)) or len(got) != 4:
            raise ExerciseFailure(_SGNS, case, f"expected (loss, grad_v, targets, grad_u), got {type(got).__name__}",
                                  "return the four values in that order, like sgns_batch")
        loss = float(got[0])
        if not (np.isfinite(loss) and np.isclose(loss, want[0], rtol=1e-6, atol=1e-9)):
            raise ExerciseFailure(_SGNS, case, f"loss is {loss:.6g}, expected {want[0]:.6g}",
                                  _sgns_hint("loss", loss, want[0], args))
        for name, g, w in zip(("grad_v", "targets", "grad_u"), got[1:], want[1:]):
            expect_shape(_SGNS, case, name, g, w.shape)
            expect_close(_SGNS, case, name, g, w, _sgns_hint(name, g, w, args), 1e-6, 1e-9)
        report.cases.append(case)
    return passed(report, verbose)
