"""Chapter 6 checkers (Shapley values, maximum matching): the course's code passes, typical mistakes fail."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from course_lib.challenges.chinese import max_match
from course_lib.challenges.perturbation import exact_shapley
from course_lib.exercises.core import expect_failure as fails_with
from course_lib.exercises.interpretability import check_max_match, check_shapley_values


def course_shapley(v, M):
    return exact_shapley(v, M)[0]


@pytest.mark.parametrize("checker, fn", [(check_shapley_values, course_shapley), (check_max_match, max_match)])
def test_course_implementation_passes(checker, fn, capsys):
    report = checker(fn)
    assert len(report.cases) >= 5
    assert f"all {len(report.cases)} checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [check_shapley_values, check_max_match])
def test_stub_is_not_implemented_yet(checker):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise 2")
    fails_with(checker, stub, "not implemented yet", f"[{checker.__name__[6:]}]")


def _subset_sum(v, M, weight, sign=1.0, with_phi0=False):
    phi = np.zeros(M)
    for S in itertools.product([0, 1], repeat=M):
        S = np.array(S, dtype=float)
        for j in np.flatnonzero(S == 0):
            T = S.copy()
            T[j] = 1
            phi[j] += weight(int(S.sum()), M) * sign * (v(T)[0] - v(S)[0])
    return np.append(v(np.zeros(M))[0], phi) if with_phi0 else phi


def test_banzhaf_weights_get_their_hint():
    fails_with(check_shapley_values, lambda v, M: _subset_sum(v, M, lambda s, M: 1 / 2 ** (M - 1)),
               "Banzhaf", "majority game")


def test_off_by_one_factorial_gets_its_hint():
    w = lambda s, M: math.factorial(s) * math.factorial(M - s) / math.factorial(M)   # noqa: E731
    fails_with(check_shapley_values, lambda v, M: _subset_sum(v, M, w), "(M - |S| - 1)!")


def test_flipped_sign_and_phi0_get_their_hints():
    shap_w = lambda s, M: math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M)   # noqa: E731
    fails_with(check_shapley_values, lambda v, M: _subset_sum(v, M, shap_w, sign=-1.0), "sign is flipped")
    fails_with(check_shapley_values, lambda v, M: _subset_sum(v, M, shap_w, with_phi0=True), "phi_0")


def shortest_match(text, vocab, max_len):
    out, i = [], 0
    while i < len(text):
        n = next((n for n in range(2, min(max_len, len(text) - i) + 1) if text[i:i + n] in vocab), 1)
        out.append(text[i:i + n])
        i += n
    return out


def drops_unknown(text, vocab, max_len):
    out, i = [], 0
    while i < len(text):
        for n in range(min(max_len, len(text) - i), 1, -1):
            if text[i:i + n] in vocab:
                out.append(text[i:i + n])
                i += n
                break
        else:
            i += 1                                         # forgets the single-character fallback
    return out


def test_max_match_typical_mistakes():
    fails_with(check_max_match, shortest_match, "longest candidate first", "天安门")
    fails_with(check_max_match, drops_unknown, "take one character")
    fails_with(check_max_match, lambda t, v, n: max_match(t, v, 4), "longer than max_len", "max_len = 2")
