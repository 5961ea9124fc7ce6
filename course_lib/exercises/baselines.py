r"""Chapter 1 checkers: ROUGE-N and PageRank (the scoring and ranking behind two baselines of 1.2).

* :func:`check_rouge_n` -- ``fn(hyp, ref, n) -> {"precision", "recall", "fmeasure"}`` for token lists:
  the clipped n-gram overlap :math:`\sum_g \min(c_{hyp}(g), c_{ref}(g))` divided by the hypothesis'
  n-grams (precision) and the reference's (recall), and their harmonic mean. The course's version is
  :func:`course_lib.baselines.summarization.rouge_n` (itself checked against ``rouge-score``).
* :func:`check_pagerank` -- ``fn(weights, damping) -> scores`` (n,): PageRank of a weighted graph by
  power iteration, :math:`s = (1-d)/n + d\,P^\top s` with :math:`P` the row-normalised weights and a
  uniform jump from a node with no edge. The course's version is
  :func:`course_lib.baselines.summarization.pagerank` (TextRank's ranking step).
"""
from __future__ import annotations

import numpy as np

from ..baselines.summarization import pagerank, rouge_n
from .core import CheckReport, ExerciseFailure, call, close, expect_close, passed

_ROUGE = "rouge_n"
_PAGERANK = "pagerank"
_KEYS = ("precision", "recall", "fmeasure")


def _rouge_cases():
    return [("identical sentences, n = 1", "the cat sat on the mat".split(), "the cat sat on the mat".split(), 1),
            ("partial overlap, n = 1", "the cat ate".split(), "the cat sat on the mat".split(), 1),
            ("a repeated word must be clipped, n = 1", "the the the the".split(), "the cat sat on the mat".split(), 1),
            ("bigrams, n = 2", "the cat sat on a mat".split(), "the cat sat on the mat".split(), 2),
            ("no overlap at all", "dogs bark".split(), "the cat sat".split(), 1),
            ("empty hypothesis", [], "the cat sat".split(), 1),
            ("hypothesis shorter than n", ["cat"], "the cat sat".split(), 2)]


def _rouge_hint(got: dict, want: dict, hyp, ref, n) -> str:
    if not hyp or len(hyp) < n:
        return ("with no hypothesis n-gram, precision has 0 in the denominator: define it as 0.0 "
                "(as rouge-score does), and F1 as 0.0 when precision + recall = 0")
    if got["precision"] > 1 + 1e-12 or got["recall"] > 1 + 1e-12:
        return ("a score above 1 means the overlap counts a repeated n-gram more often than the other side has "
                "it: clip each n-gram's count, overlap = sum over g of min(count_hyp(g), count_ref(g)) "
                "(Counter's & does exactly this)")
    if close(got["precision"], want["recall"]) and close(got["recall"], want["precision"]) and \
            not close(want["precision"], want["recall"]):
        return "precision and recall are swapped: precision divides by the hypothesis' n-grams, recall by the reference's"
    if n > 1:
        return "n-grams are runs of n consecutive tokens: tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)"
    return "overlap = sum of min(count_hyp(g), count_ref(g)); P = overlap / #hyp n-grams, R = overlap / #ref n-grams"


def check_rouge_n(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(hyp, ref, n) -> dict(precision, recall, fmeasure)`` against the course's ``rouge_n``.

    Hidden cases: identical sentences, partial overlap, a repeated word (clipping), bigrams, no overlap,
    an empty hypothesis and a hypothesis shorter than n.
    """
    report = CheckReport(_ROUGE)
    for case, hyp, ref, n in _rouge_cases():
        want = rouge_n(hyp, ref, n)
        got = call(_ROUGE, case, fn, list(hyp), list(ref), n)
        if not isinstance(got, dict) or any(k not in got for k in _KEYS):
            raise ExerciseFailure(_ROUGE, case, f"expected a dict with keys {list(_KEYS)}, got {got!r:.80}",
                                  "return {'precision': p, 'recall': r, 'fmeasure': f}")
        got = {k: float(got[k]) for k in _KEYS}
        for k in _KEYS:
            expect_close(_ROUGE, case, k, got[k], want[k], _rouge_hint(got, want, hyp, ref, n), 1e-9, 1e-12)
        report.cases.append(case)
    return passed(report, verbose)


def _pagerank_cases():
    rng = np.random.default_rng(0)
    sym = rng.random((5, 5))
    sym = (sym + sym.T) * (1 - np.eye(5))                                # a similarity graph, no self-loops
    return [("a symmetric 5-node similarity graph (as in TextRank)", sym, 0.85),
            ("a directed chain 0 -> 1 -> 2 -> 0", np.roll(np.eye(3), 1, axis=1), 0.85),
            ("a node with no outgoing edge (dangling)", np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], float), 0.85),
            ("a single node", np.zeros((1, 1)), 0.85),
            ("two disconnected pairs, damping 0.5", np.kron(np.eye(2), np.ones((2, 2)) - np.eye(2)), 0.5)]


def _pagerank_hint(got: np.ndarray, weights: np.ndarray, damping: float) -> str:
    if np.isnan(got).any():
        return ("NaN comes from dividing a row with no edge by its sum 0: such a node jumps to every node "
                "uniformly, P[i] = 1/n")
    if abs(got.sum() - 1) > 1e-6:
        if (weights.sum(1) == 0).any():
            return ("the scores must sum to 1, but probability leaks out of the node with no outgoing edge: "
                    "give its row of P the uniform 1/n")
        return "start from s = 1/n and iterate s = (1 - d)/n + d * P.T @ s: the scores then keep summing to 1"
    return ("normalise each row of the weights to sum to 1 (P = W / W.sum(1)), then iterate "
            "s = (1 - d)/n + d * P.T @ s until it stops changing; P.T, not P: rank flows along the edges")


def check_pagerank(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(weights, damping) -> scores`` (n,) against the course's ``pagerank`` (tolerance 1e-6).

    Hidden cases: a symmetric similarity graph, a directed cycle, a dangling node, one node, and a
    disconnected graph at damping 0.5.
    """
    report = CheckReport(_PAGERANK)
    for case, weights, damping in _pagerank_cases():
        want = pagerank(weights, damping)
        got = np.asarray(call(_PAGERANK, case, fn, weights.copy(), damping), dtype=np.float64)
        expect_close(_PAGERANK, case, "scores", got, want, _pagerank_hint(got, weights, damping), 1e-5, 1e-6)
        report.cases.append(case)
    return passed(report, verbose)
