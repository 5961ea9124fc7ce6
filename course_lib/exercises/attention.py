r"""Chapter 3 checkers: the masked softmax and the backward pass of attention.

* :func:`check_masked_softmax` -- ``fn(scores, mask) -> weights`` in NumPy: a softmax over the
  last axis (the keys) that gives weight 0 to masked keys, and all-zero weights to a query with
  no key left (a fully masked row), never NaN. ``mask`` is boolean, True = may attend, or None.
* :func:`check_attention_backward` -- ``fn(grad_out, q, k, v, weights, scale=None) -> (dq, dk, dv)``:
  the hand-derived gradients of :math:`O = \mathrm{softmax}(s QK^\top) V`, with the signature of
  :func:`course_lib.attention.numpy_attention.scaled_dot_product_attention_backward`.
"""
from __future__ import annotations

import numpy as np

from ..attention import numpy_attention as npa
from .core import CheckReport, ExerciseFailure, call, close, expect_close, expect_shape, passed

_SOFTMAX = "masked_softmax"
_BACKWARD = "attention_backward"


def _softmax_cases():
    rng = np.random.default_rng(3)
    causal = np.tril(np.ones((4, 4), dtype=bool))
    last_row_empty = np.ones((3, 5), dtype=bool)
    last_row_empty[2] = False
    return [
        ("no mask, (3, 5) scores", rng.normal(size=(3, 5)), None),
        ("causal mask, (2, 4, 4) scores", rng.normal(size=(2, 4, 4)), causal),
        ("fully masked row (the last query may attend to nothing)", rng.normal(size=(3, 5)), last_row_empty),
        ("T = 1 (one query, one key)", rng.normal(size=(1, 1)), np.ones((1, 1), dtype=bool)),
        ("large scores (up to 1000), causal mask", 1000 * rng.normal(size=(4, 4)), causal),
        ("float16 scores, causal mask", rng.normal(size=(4, 4)).astype(np.float16), causal),
        ("mask broadcast over a batch of 2 x 3 heads", rng.normal(size=(2, 3, 4, 4)), causal[None, None]),
    ]


def _softmax_hint(got, want, mask, scores) -> str:
    g = np.asarray(got, dtype=np.float64)
    m = None if mask is None else np.broadcast_to(mask, np.shape(scores))
    empty = None if m is None else ~m.any(axis=-1)
    if empty is not None and empty.any() and np.isnan(g[empty]).any():
        return ("your softmax returns NaN for a fully masked row: what does exp(-inf - max) give when max "
                "is -inf? Replace a -inf row maximum by 0 (np.where(np.isfinite(m), m, 0)) and divide by a "
                "denominator that is never 0, so the row's weights are all 0")
    if empty is not None and empty.any() and not np.allclose(g[empty], 0.0):
        return ("a query that may attend to no key must get all-zero weights (nothing to average), "
                "not a uniform row: after the exp, zero the masked entries, and divide by 1 where the sum is 0")
    if not np.isfinite(g).all():
        return ("your weights overflow (inf/NaN) for large scores: exp(1000) is inf. Subtract each row's "
                "maximum before the exp; softmax(x) = softmax(x - max x)")
    if m is not None and np.abs(g[~m]).max(initial=0.0) > 1e-6:
        return ("your weights give mass to masked keys: set masked scores to -inf (np.where(mask, scores, "
                "-np.inf)) before the exp, or zero them after it")
    sums = g.sum(axis=-1)
    if g.ndim >= 2 and np.allclose(g.sum(axis=-2), 1.0) and not np.allclose(sums, 1.0):
        return "your rows do not sum to 1 but your columns do: normalise over the last axis (keys), axis=-1"
    if not np.allclose(sums[~empty] if empty is not None else sums, 1.0, atol=1e-2):
        return "each query's weights must sum to 1: divide by e.sum(axis=-1, keepdims=True)"
    return "compare your function with softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) over allowed keys"


def check_masked_softmax(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(scores, mask) -> weights`` against the course's masked softmax.

    Hidden cases: no mask; a causal mask on a batch; a fully masked row; T = 1; scores up to 1000
    (overflow); float16 scores (the result must stay float16); a mask broadcast over heads.

    Raises
    ------
    ExerciseFailure
        Naming the case and what to fix.
    """
    report = CheckReport(_SOFTMAX)
    for case, scores, mask in _softmax_cases():
        want = npa._masked_softmax(scores, mask)
        got = call(_SOFTMAX, case, fn, scores.copy(), None if mask is None else mask.copy())
        expect_shape(_SOFTMAX, case, "weights", got, want.shape,
                     "return one weight per score: the same shape as scores (reduce with keepdims=True)")
        if scores.dtype == np.float16 and np.asarray(got).dtype != np.float16:
            raise ExerciseFailure(_SOFTMAX, case, f"float16 scores gave {np.asarray(got).dtype} weights",
                                  "keep the input's dtype: fill masked scores with -np.inf and use 0.0 "
                                  "(a Python float), not np.float64 arrays, so NumPy keeps float16")
        tol = 2e-3 if scores.dtype == np.float16 else 1e-6
        if not close(got, want, rtol=tol, atol=tol):
            raise ExerciseFailure(_SOFTMAX, case, "your weights differ from the expected ones",
                                  _softmax_hint(got, want, mask, scores))
        report.cases.append(case)
    return passed(report, verbose)


def _backward_cases():
    rng = np.random.default_rng(4)
    causal = np.tril(np.ones((4, 4), dtype=bool))
    row_empty = np.ones((3, 5), dtype=bool)
    row_empty[0] = False
    out = []
    for case, (tq, tk, dk, dv), mask, scale in [
            ("one head, T_q = 3, T_k = 5", (3, 5, 4, 2), None, None),
            ("causal mask, T = 4", (4, 4, 3, 3), causal, None),
            ("fully masked first row", (3, 5, 4, 2), row_empty, None),
            ("T = 1", (1, 1, 4, 3), None, None),
            ("custom scale 0.5", (3, 4, 4, 2), None, 0.5)]:
        q, k, v = rng.normal(size=(2, tq, dk)), rng.normal(size=(2, tk, dk)), rng.normal(size=(2, tk, dv))
        _, w = npa.scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)
        out.append((case, rng.normal(size=(2, tq, dv)), q, k, v, w, scale))
    return out


def _backward_hint(which: str, got, want, q, k, v, weights, grad_out, scale) -> str:
    s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    if which == "dv":
        if close(got, grad_out.swapaxes(-1, -2) @ weights, 1e-4, 1e-6):
            return "dV = P^T dO: transpose the weights, not the upstream gradient"
        return "O = P V, so dV = P^T dO (shape (T_k, d_v))"
    if close(got, want / s, 1e-4, 1e-6):
        return f"{which} is off by the scale factor: S = s Q K^T, so the chain rule multiplies by s = {s:.3g}"
    d_p = grad_out @ v.swapaxes(-1, -2)
    naive = weights * d_p                                                       # missing the rowsum term
    if which == "dq" and close(got, s * naive @ k, 1e-4, 1e-6):
        return ("the softmax backward needs the correction term: dS = P * (dP - rowsum(dP * P)); "
                "you used dS = P * dP")
    if which == "dk" and close(got, s * naive.swapaxes(-1, -2) @ q, 1e-4, 1e-6):
        return "dS = P * (dP - rowsum(dP * P)): the rowsum term is missing"
    return ("dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = s dS K, dK = s dS^T Q; "
            "check each step's shape against the forward pass")


def check_attention_backward(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(grad_out, q, k, v, weights, scale=None) -> (dq, dk, dv)`` against the course's backward pass.

    Hidden cases: one head with T_q != T_k; a causal mask; a fully masked row (zero weights must give
    zero gradient); T = 1; a custom ``scale``.
    """
    report = CheckReport(_BACKWARD)
    for case, grad_out, q, k, v, w, scale in _backward_cases():
        want = npa.scaled_dot_product_attention_backward(grad_out, q, k, v, w, scale=scale)
        got = call(_BACKWARD, case, fn, grad_out.copy(), q.copy(), k.copy(), v.copy(), w.copy(), scale=scale)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise ExerciseFailure(_BACKWARD, case, f"expected a tuple (dq, dk, dv), got {type(got).__name__}",
                                  "return dq, dk, dv in that order")
        for name, g, wnt, x in zip(("dq", "dk", "dv"), got, want, (q, k, v)):
            expect_shape(_BACKWARD, case, name, g, x.shape,
                         f"{name} has the shape of {name[1:]} {x.shape}: a gradient matches its input")
            expect_close(_BACKWARD, case, name, g, wnt,
                         _backward_hint(name, g, wnt, q, k, v, w, grad_out, scale), rtol=1e-5, atol=1e-8)
        report.cases.append(case)
    return passed(report, verbose)
