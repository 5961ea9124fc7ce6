"""Chapter 1 checkers: the course's code passes, typical mistakes fail with their specific hint."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from course_lib.baselines.summarization import pagerank, rouge_n
from course_lib.exercises import check_pagerank, check_rouge_n
from course_lib.exercises.core import expect_failure as fails_with


@pytest.mark.parametrize("checker, fn", [(check_rouge_n, rouge_n), (check_pagerank, pagerank)])
def test_course_implementation_passes(checker, fn, capsys):
    report = checker(fn)
    assert len(report.cases) >= 5
    assert f"all {len(report.cases)} checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("checker, name", [(check_rouge_n, "rouge_n"), (check_pagerank, "pagerank")])
def test_stub_is_not_implemented_yet(checker, name):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise 5")
    fails_with(checker, stub, "not implemented yet", f"[{name}]")


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def test_rouge_unclipped_overlap():
    def unclipped(hyp, ref, n):
        h, r = _ngrams(hyp, n), set(_ngrams(ref, n))
        overlap = sum(g in r for g in h)                       # counts every repeat of "the"
        p = overlap / len(h) if h else 0.0
        rr = overlap / len(_ngrams(ref, n))
        return {"precision": p, "recall": rr, "fmeasure": 2 * p * rr / (p + rr) if p + rr else 0.0}
    err = fails_with(check_rouge_n, unclipped, "a repeated word must be clipped", "clip")
    assert "min(count_hyp(g), count_ref(g))" in err.hint


def test_rouge_divides_by_zero():
    def naive(hyp, ref, n):
        h, r = Counter(_ngrams(hyp, n)), Counter(_ngrams(ref, n))
        o = sum((h & r).values())
        p, rr = o / sum(h.values()), o / sum(r.values())
        return {"precision": p, "recall": rr, "fmeasure": 2 * p * rr / (p + rr)}
    fails_with(check_rouge_n, naive, "raised ZeroDivisionError", "no overlap at all")


def test_rouge_swapped():
    def swapped(hyp, ref, n):
        out = rouge_n(hyp, ref, n)
        return {"precision": out["recall"], "recall": out["precision"], "fmeasure": out["fmeasure"]}
    fails_with(check_rouge_n, swapped, "swapped", "partial overlap")


def test_rouge_wrong_return_type():
    fails_with(check_rouge_n, lambda h, r, n: 0.5, "expected a dict")


def test_pagerank_dangling_nan():
    def no_dangling(W, d):
        P = W / W.sum(1, keepdims=True)
        n = len(W)
        s = np.full(n, 1 / n)
        for _ in range(200):
            s = (1 - d) / n + d * P.T @ s
        return s
    with np.errstate(invalid="ignore", divide="ignore"):
        fails_with(check_pagerank, no_dangling, "contains NaN", "dangling", "uniformly")


def test_pagerank_leaks_probability():
    def leaky(W, d):
        out = W.sum(1, keepdims=True)
        P = np.divide(W, out, out=np.zeros_like(W), where=out > 0)      # dangling row left at zero
        n = len(W)
        s = np.full(n, 1 / n)
        for _ in range(200):
            s = (1 - d) / n + d * P.T @ s
        return s
    fails_with(check_pagerank, leaky, "dangling", "leaks")


def test_pagerank_transposed():
    def untransposed(W, d):
        out = W.sum(1, keepdims=True)
        P = np.where(out > 0, W / np.where(out > 0, out, 1), 1 / len(W))
        n = len(W)
        s = np.full(n, 1 / n)
        for _ in range(200):
            s = (1 - d) / n + d * P @ s                               # P, not P.T
        return s / s.sum()
    fails_with(check_pagerank, untransposed, "P.T, not P")
