r"""Chapter 6 (training efficiency) checkers.

* :func:`check_fp16_underflow_count` -- ``fn(grad, scale) -> int``: how many *non-zero* entries of
  the fp32 tensor ``grad`` become exactly 0 when ``scale * grad`` is stored in fp16
  (:func:`course_lib.efficiency.precision.fp16_cast_underflow`).
* :func:`check_accumulation_weights` -- ``fn(token_counts) -> list[float]``: the weight of each
  micro-batch's mean loss so that the weighted sum is the mean over all tokens
  (:func:`course_lib.efficiency.accumulation.accumulation_weights`).
* :func:`check_combine_rank_gradients` -- ``fn(grads, token_counts) -> dict``: the gradient of the
  global token-mean loss from each rank's gradient of its own token mean
  (:func:`course_lib.efficiency.ddp.combine_rank_gradients`).
"""
from __future__ import annotations

import numpy as np
import torch

from ..efficiency.accumulation import accumulation_weights
from ..efficiency.ddp import combine_rank_gradients
from ..efficiency.precision import fp16_cast_underflow
from .core import CheckReport, ExerciseFailure, call, close, expect_close, passed

_UNDER, _WEIGHTS, _COMBINE = "fp16_underflow_count", "accumulation_weights", "combine_rank_gradients"


def _underflow_cases():
    g = torch.Generator().manual_seed(5)
    logs = torch.empty(2000).uniform_(-11, -2, generator=g)                    # magnitudes 1e-11 .. 1e-2
    grad = torch.sign(torch.randn(2000, generator=g)) * 10 ** logs
    grad[::7] = 0.0                                                            # exact zeros were never gradients
    return [("typical gradients, no scaling", grad, 1.0),
            ("same gradients, loss scale 2**8", grad, 2.0 ** 8),
            ("same gradients, loss scale 2**16", grad, 2.0 ** 16),
            ("values around fp16's smallest subnormal 2**-24", torch.tensor([2.0 ** -26, 2.0 ** -25, 2.0 ** -24,
                                                                            3e-8, 1e-7, -2.0 ** -26]), 1.0),
            ("all zeros", torch.zeros(10), 1.0)]


def _underflow_hint(got, grad, scale) -> str:
    g = grad.float()
    if got == int(((g * scale).half() == 0).sum()):
        return "you also count entries that were already 0 in fp32: count only g != 0 that become 0"
    if got == int(((g[g != 0]).half() == 0).sum()) and scale != 1.0:
        return "multiply by the loss scale before the cast: (g * scale).half()"
    if got == int(((g[g != 0] * scale).abs() < 2.0 ** -14).sum()):
        return ("you count every value below fp16's smallest *normal* number 2**-14; values between 2**-24 "
                "and 2**-14 survive as subnormals. Let fp16 decide: cast with .half() and compare with 0")
    if got == int(((g[g != 0] * scale).abs() < 2.0 ** -24).sum()):
        return ("a value just under 2**-24 still rounds *up* to 2**-24 (round to nearest): the threshold is "
                "2**-25, so cast with .half() and compare with 0 instead of testing a threshold")
    return "count torch.count_nonzero((g[g != 0] * scale).half() == 0)"


def check_fp16_underflow_count(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(grad, scale) -> int`` on hidden cases (typical gradients at 3 scales, the subnormal edge, zeros)."""
    report = CheckReport(_UNDER)
    for case, grad, scale in _underflow_cases():
        want = fp16_cast_underflow([grad], scale)["underflow"]
        got = call(_UNDER, case, fn, grad.clone(), scale)
        if isinstance(got, torch.Tensor):
            got = got.item()
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            raise ExerciseFailure(_UNDER, case, f"expected an int, got {type(got).__name__}",
                                  "return a count, e.g. int(((g * scale).half() == 0).sum())")
        if int(got) != want:
            raise ExerciseFailure(_UNDER, case, f"you counted {int(got)} underflows, expected {want}",
                                  _underflow_hint(int(got), grad, scale))
        report.cases.append(case)
    return passed(report, verbose)


def _weights_hint(got, counts) -> str:
    k = len(counts)
    g = np.asarray(got, dtype=float)
    if np.allclose(g, 1.0 / k):
        return ("1/k for every micro-batch is the mean of the micro-batch means: a token of a short micro-batch "
                "then weighs more than a token of a long one. Weight micro-batch i by its share of the tokens")
    if np.allclose(g, 1.0):
        return "weights of 1 add the k means: the gradient comes out about k times too large"
    if np.allclose(g, np.asarray(counts, dtype=float)):
        return "these are the token counts; divide by their total N so that the weights add up to 1"
    return "w_i = n_i / N, where N = sum of all n_i"


def check_accumulation_weights(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(token_counts) -> weights`` on equal, unequal, one-micro-batch and empty-micro-batch cases."""
    report = CheckReport(_WEIGHTS)
    for case, counts in [("unequal counts [120, 40, 8]", [120, 40, 8]), ("one micro-batch [37]", [37]),
                         ("a micro-batch with no real token [10, 0, 30]", [10, 0, 30]),
                         ("padded batch [64, 3, 64, 17]", [64, 3, 64, 17]), ("equal counts [5, 5, 5, 5]", [5] * 4)]:
        want = accumulation_weights(counts)
        got = call(_WEIGHTS, case, fn, list(counts))
        got = [float(x) for x in (got.tolist() if isinstance(got, torch.Tensor) else got)]
        if len(got) != len(counts):
            raise ExerciseFailure(_WEIGHTS, case, f"got {len(got)} weights for {len(counts)} micro-batches",
                                  "return one weight per micro-batch")
        if not close(got, want, 1e-9, 1e-12):
            raise ExerciseFailure(_WEIGHTS, case, f"weights {np.round(got, 4).tolist()} differ from the expected ones",
                                  _weights_hint(got, counts))
        report.cases.append(case)
    return passed(report, verbose)


def _rank_cases():
    g = torch.Generator().manual_seed(6)
    make = lambda: {"w": torch.randn(3, 4, generator=g, dtype=torch.float64),  # noqa: E731
                    "b": torch.randn(4, generator=g, dtype=torch.float64)}
    return [("2 ranks, unequal tokens [300, 100]", [make(), make()], [300, 100]),
            ("4 ranks, one nearly empty [64, 64, 2, 64]", [make() for _ in range(4)], [64, 64, 2, 64]),
            ("2 ranks, equal tokens [50, 50]", [make(), make()], [50, 50]),
            ("1 rank", [make()], [17])]


def check_combine_rank_gradients(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(grads, token_counts) -> dict`` against the token-weighted combination of the ranks' gradients."""
    report = CheckReport(_COMBINE)
    for case, grads, counts in _rank_cases():
        want = combine_rank_gradients(grads, counts)
        got = call(_COMBINE, case, fn, [{k: v.clone() for k, v in d.items()} for d in grads], list(counts))
        if not isinstance(got, dict) or set(got) != set(want):
            raise ExerciseFailure(_COMBINE, case, f"expected a dict with keys {sorted(want)}",
                                  "return {name: combined gradient} with the parameter names of the inputs")
        plain = {k: sum(d[k] for d in grads) / len(grads) for k in want}
        summed = {k: sum(d[k] for d in grads) for k in want}
        for k in want:
            if close(got[k], plain[k]) and not close(plain[k], want[k]):
                hint = ("that is the plain mean over ranks (what all_reduce + /W gives); it is right only when every "
                        "rank has the same number of tokens. Weight rank r by n_r / N")
            elif close(got[k], summed[k]):
                hint = "that is the sum over ranks; each rank's gradient needs the weight n_r / N"
            else:
                hint = "g = sum_r (n_r / N) g_r, with N the total number of tokens"
            expect_close(_COMBINE, case, f"gradient '{k}'", got[k], want[k], hint, rtol=1e-9, atol=1e-12)
        report.cases.append(case)
    return passed(report, verbose)
