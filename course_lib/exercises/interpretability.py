r"""Chapter 6 checkers (interpretability and Chinese text): exact Shapley values and forward maximum matching.

* :func:`check_shapley_values` -- ``fn(value_fn, num_features) -> phi`` (M,): the exact Shapley values
  of a set function given on 0/1 masks, by enumeration, as
  :func:`course_lib.challenges.perturbation.exact_shapley`.
* :func:`check_max_match` -- ``fn(text, vocab, max_len) -> list of str``: forward maximum matching
  segmentation, as :func:`course_lib.challenges.chinese.max_match`.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..challenges.chinese import max_match
from ..challenges.perturbation import exact_shapley
from .core import CheckReport, ExerciseFailure, call, close, expect_shape, passed

_SHAPLEY = "shapley_values"
_MAXMATCH = "max_match"


def _game(kind: str, M: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a, B = rng.normal(size=M), rng.normal(size=(M, M))
    if kind == "additive":
        return lambda Z: np.atleast_2d(Z) @ np.arange(1.0, M + 1) + 0.5
    if kind == "majority":
        return lambda Z: (np.atleast_2d(Z).sum(1) > M / 2).astype(float)
    return lambda Z: np.tanh(np.atleast_2d(Z) @ a + 0.5 * np.einsum("ni,ij,nj->n", np.atleast_2d(Z), B,
                                                                       np.atleast_2d(Z))) - 0.3


def _shapley_cases():
    return [("additive game, M = 3, v(empty) = 0.5", _game("additive", 3), 3),
            ("majority game, M = 4 (symmetric players)", _game("majority", 4), 4),
            ("one player, M = 1", _game("interactions", 1, 2), 1),
            ("pairwise interactions, M = 5", _game("interactions", 5, 3), 5),
            ("pairwise interactions, M = 6, v(empty) != 0", _game("interactions", 6, 4), 6)]


def _weighted(v, M, weight):
    """Alternative sums over subsets with another weight, to recognise typical mistakes."""
    phi = np.zeros(M)
    for S in itertools.product([0, 1], repeat=M):
        S = np.array(S, dtype=float)
        for j in np.flatnonzero(S == 0):
            T = S.copy()
            T[j] = 1
            phi[j] += weight(int(S.sum())) * (v(T)[0] - v(S)[0])
    return phi


def _shapley_hint(got, want, v, M) -> str:
    g = np.asarray(got, dtype=np.float64)
    if close(g, -want, 1e-6, 1e-8):
        return "the sign is flipped: a marginal contribution is v(S with j) - v(S), not v(S) - v(S with j)"
    if close(g, _weighted(v, M, lambda s: 1 / 2 ** (M - 1)), 1e-6, 1e-8):
        return ("you averaged the marginal contributions over subsets with equal weights (that is the Banzhaf "
                "value); Shapley weights a subset S by |S|! (M - |S| - 1)! / M!")
    if close(g, _weighted(v, M, lambda s: math.factorial(s) * math.factorial(M - s) / math.factorial(M)), 1e-6, 1e-8):
        return "the weight is |S|! (M - |S| - 1)! / M!: you wrote (M - |S|)! instead of (M - |S| - 1)!"
    total = v(np.ones(M))[0] - v(np.zeros(M))[0]
    if not np.isclose(g.sum(), total):
        return (f"your values sum to {g.sum():.4g}, but Shapley values are efficient: they must sum to "
                f"v(all) - v(empty) = {total:.4g}. Loop over every subset S not containing j")
    return "phi_j = sum over S without j of |S|!(M-|S|-1)!/M! * (v(S + j) - v(S)); v takes 0/1 masks of shape (N, M)"


def check_shapley_values(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(value_fn, num_features) -> phi`` (exact Shapley values, shape (M,)).

    ``value_fn`` takes a 0/1 array of masks (N, M) and returns (N,) values. Hidden cases: an additive
    game with an offset; a symmetric majority game; one player; two games with interactions.
    """
    report = CheckReport(_SHAPLEY)
    for case, v, M in _shapley_cases():
        want, _ = exact_shapley(v, M)
        got = call(_SHAPLEY, case, fn, v, M)
        if np.ndim(got) == 1 and len(got) == M + 1:
            raise ExerciseFailure(_SHAPLEY, case, f"phi has {M + 1} entries, expected {M}",
                                  "return one value per player only; v(empty) (phi_0) is not part of phi")
        expect_shape(_SHAPLEY, case, "phi", np.asarray(got), (M,), "return an array with one value per player, (M,)")
        if not close(got, want, 1e-6, 1e-8):
            raise ExerciseFailure(_SHAPLEY, case, "your Shapley values differ from the expected ones",
                                  _shapley_hint(got, want, v, M))
        report.cases.append(case)
    return passed(report, verbose)


def _max_match_cases():
    vocab = {"北京", "天安", "天安门", "我们", "喜欢", "中文", "学习", "学习中"}
    return [("longest word wins (天安门 over 天安)", "我爱北京天安门", vocab, 4),
            ("no dictionary word: one character each", "猫狗", vocab, 4),
            ("empty text", "", vocab, 4),
            ("max_len = 2 stops at 天安", "天安门", vocab, 2),
            ("a dictionary word ends the text", "我们学习中文", vocab, 3),
            ("vocab given as a list", "我们喜欢北京", sorted(vocab), 4),
            ("max_len longer than the text", "北京", vocab, 6)]


def _max_match_hint(got, text, vocab, max_len) -> str:
    if not isinstance(got, list) or not all(isinstance(w, str) for w in got):
        return "return a list of strings (the words), e.g. ['我', '爱', '北京']"
    if "".join(got) != text:
        return ("your words do not join back to the text: when no dictionary word starts at a position, "
                "take one character and move on (never drop or repeat characters)")
    if any(len(w) > max_len for w in got):
        return f"a word is longer than max_len={max_len}: try lengths min(max_len, characters left) down to 1"
    shortest = []
    i = 0
    while i < len(text):
        n = next((n for n in range(2, min(max_len, len(text) - i) + 1) if text[i:i + n] in vocab), 1)
        shortest.append(text[i:i + n])
        i += n
    if got == shortest:
        return "you take the shortest dictionary word; maximum matching tries the longest candidate first"
    return "at each position try lengths from min(max_len, len(text) - i) down to 2, else take one character"


def check_max_match(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(text, vocab, max_len) -> list of words`` (forward maximum matching).

    Hidden cases: longest match; no dictionary word; empty text; ``max_len`` shorter than a word;
    a word at the end of the text; ``vocab`` as a list; ``max_len`` longer than the text.
    """
    report = CheckReport(_MAXMATCH)
    for case, text, vocab, max_len in _max_match_cases():
        want = max_match(text, vocab, max_len)
        got = call(_MAXMATCH, case, fn, text, vocab, max_len)
        if got != want:
            raise ExerciseFailure(_MAXMATCH, case, f"got {got!r}, expected {want!r}",
                                  _max_match_hint(got, text, vocab, max_len))
        report.cases.append(case)
    return passed(report, verbose)
