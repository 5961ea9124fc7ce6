r"""Chapter 6 (data and trust) checkers: the focal loss, early stopping with patience, the Pareto front.

* :func:`check_focal_loss` -- ``fn(logits, labels, gamma, alpha) -> loss``: the mean over the batch of
  :math:`-\alpha_{y}(1 - p_y)^\gamma \log p_y` (``alpha`` None or one weight per class), compared with
  :func:`course_lib.challenges.imbalance.focal_loss`.
* :func:`check_patience_stop` -- ``fn(valid_losses, patience) -> (best_epoch, stop_epoch)``, compared
  with :func:`course_lib.challenges.overfitting.patience_stop`.
* :func:`check_pareto_front` -- ``fn(rows) -> names`` of the rows no other row beats on accuracy
  (higher) and latency (lower), compared with :func:`course_lib.challenges.model_choice.pareto_front`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..challenges import imbalance, model_choice, overfitting
from .core import CheckReport, ExerciseFailure, call, close, expect_close, passed

_FOCAL, _PATIENCE, _PARETO = "focal_loss", "patience_stop", "pareto_front"


# ----------------------------------------------------------------------------- focal loss

def _focal_cases():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    alpha = torch.tensor([0.25, 1.0, 2.0], dtype=torch.float64)
    big = torch.tensor([[60.0, -60.0], [-50.0, 50.0], [80.0, 0.0]])          # float32: exp(-120) underflows to 0
    return [
        ("gamma = 0, no alpha (must equal cross-entropy)", logits, y, 0.0, None),
        ("gamma = 2, no alpha", logits, y, 2.0, None),
        ("gamma = 2, alpha = [0.25, 1, 2]", logits, y, 2.0, alpha),
        ("gamma = 0.5, alpha, one row", logits[:1], y[:1], 0.5, alpha),
        ("float32 large logits (|z| up to 80): confidently wrong rows", big, torch.tensor([0, 0, 0]), 2.0, None),
    ]


def _focal_hint(fn, logits, y, gamma, alpha, got) -> str:
    g = torch.as_tensor(got, dtype=torch.float64)
    if torch.isnan(g).any() or torch.isinf(g).any():
        return ("your loss is NaN/inf for large logits: log(softmax(z)) underflows to log(0). Use "
                "torch.log_softmax(logits, -1) and take p = log_p.exp()")
    per = imbalance.focal_loss(logits, y, gamma, alpha, reduction="none")
    if close(g, per.sum()):
        return "you return the sum over the batch; return the mean (divide by N, the number of rows)"
    if alpha is not None and close(g, per.sum() / torch.as_tensor(alpha)[y].sum()):
        return "divide by N (the number of rows), not by the sum of the alpha weights"
    if alpha is not None and close(g, imbalance.focal_loss(logits, y, gamma, None)):
        return "alpha is ignored: multiply each row's loss by alpha[label of that row]"
    if close(g, F.cross_entropy(logits, y)) and gamma:
        return "this is plain cross-entropy: multiply each row's -log p_y by (1 - p_y) ** gamma"
    p_wrong = torch.softmax(logits, -1)
    if gamma and close(g, (-(p_wrong.gather(1, y[:, None])[:, 0]) ** gamma * torch.log_softmax(logits, -1)
                            .gather(1, y[:, None])[:, 0]).mean()):
        return "the modulating factor is (1 - p_y) ** gamma, not p_y ** gamma: easy examples (p_y near 1) get less weight"
    return ("p_y is the softmax probability of the TRUE class of each row: log_p = log_softmax(logits, -1)"
            ".gather(1, labels[:, None]); loss = -(alpha[labels]) * (1 - p) ** gamma * log_p, then .mean()")


def check_focal_loss(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(logits, labels, gamma, alpha) -> mean focal loss`` on hidden cases.

    Cases: gamma 0 (cross-entropy), gamma 2 with and without alpha, a single row, large logits.
    """
    report = CheckReport(_FOCAL)
    for case, logits, y, gamma, alpha in _focal_cases():
        want = imbalance.focal_loss(logits, y, gamma, alpha)
        got = call(_FOCAL, case, fn, logits.clone(), y.clone(), gamma, None if alpha is None else alpha.clone())
        if not isinstance(got, torch.Tensor) and not np.isscalar(got):
            raise ExerciseFailure(_FOCAL, case, f"returned {type(got).__name__}", "return one number (a 0-d tensor)")
        if np.shape(got) != ():
            raise ExerciseFailure(_FOCAL, case, f"returned shape {tuple(np.shape(got))}",
                                  "reduce to one number: the mean over the rows")
        if not close(got, want):
            raise ExerciseFailure(_FOCAL, case, "the loss differs from the expected value",
                                  _focal_hint(fn, logits, y, gamma, alpha, got))
        report.cases.append(case)
    logits = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    out = call(_FOCAL, "gradient", fn, logits, y, 2.0, None)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseFailure(_FOCAL, "gradient flows to the logits", "the loss has no gradient",
                              "compute it with torch operations on the logits (no .item(), .numpy() or detach)")
    (grad,) = torch.autograd.grad(out, logits)
    ref = logits.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad(imbalance.focal_loss(ref, y, 2.0), ref)
    expect_close(_FOCAL, "gradient flows to the logits", "d loss / d logits", grad, want,
                 "the value is right but the gradient is not: do not detach p before (1 - p) ** gamma "
                 "(Lin et al. back-propagate through the modulating factor)")
    report.cases.append("gradient flows to the logits (equal to the course's)")
    return passed(report, verbose)


# ----------------------------------------------------------------------------- patience

_PATIENCE_CASES = [
    ("falls, then rises for good", [1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0], 2),
    ("a plateau that is not an improvement (equal loss)", [1.0, 0.6, 0.6, 0.6, 0.5], 2),
    ("recovers just before patience runs out", [1.0, 0.7, 0.72, 0.71, 0.69, 0.75, 0.8, 0.9], 3),
    ("never stops early (keeps improving)", [5.0, 4.0, 3.0, 2.0], 1),
    ("one epoch", [0.3], 4),
    ("best epoch is the first", [0.2, 0.3, 0.4, 0.5], 2),
]


def check_patience_stop(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(valid_losses, patience) -> (best_epoch, stop_epoch)`` (0-based) on hidden cases."""
    report = CheckReport(_PATIENCE)
    for case, losses, patience in _PATIENCE_CASES:
        want = overfitting.patience_stop(losses, patience)
        got = call(_PATIENCE, case, fn, list(losses), patience)
        try:
            got = tuple(int(v) for v in got)
        except (TypeError, ValueError):
            raise ExerciseFailure(_PATIENCE, case, f"returned {got!r}",
                                  "return a pair of ints (best_epoch, stop_epoch)") from None
        if got == want:
            report.cases.append(case)
            continue
        if got == tuple(v + 1 for v in want):
            hint = "epochs are 0-based here (the first epoch is 0), as Python indices"
        elif got[0] != want[0] and got[0] == int(np.argmax(losses)):
            hint = "the best epoch has the LOWEST validation loss"
        elif got[1] == len(losses) - 1 and want[1] < len(losses) - 1:
            hint = ("you never stop early: count the epochs since the last improvement, and stop when "
                    "the count reaches patience")
        elif got[1] == want[1] - 1 or got[1] == want[1] + 1:
            hint = ("off by one in the counter: after `patience` epochs in a row without improvement you "
                    "stop at that epoch (patience=2: best at 2, no better at 3 and 4 -> stop at 4)")
        elif case.startswith("a plateau"):
            hint = "an equal loss is not an improvement: use <, not <="
        else:
            hint = "reset the counter to 0 on every improvement, and keep the epoch of the lowest loss as best"
        raise ExerciseFailure(_PATIENCE, case, f"returned {got}, expected {want}", hint)
    return passed(report, verbose)


# ----------------------------------------------------------------------------- Pareto front

def _rows(*triples):
    return [{"name": n, "accuracy": a, "latency_b1_ms": t} for n, a, t in triples]


_PARETO_CASES = [
    ("one model dominates the rest", _rows(("a", 0.9, 1.0), ("b", 0.8, 2.0), ("c", 0.7, 3.0))),
    ("a trade-off: fast and weak vs slow and strong", _rows(("fast", 0.8, 1.0), ("slow", 0.95, 100.0),
                                                              ("bad", 0.7, 50.0))),
    ("equal accuracy, one slower (it is dominated)", _rows(("a", 0.9, 10.0), ("b", 0.9, 12.0))),
    ("two identical rows (neither beats the other)", _rows(("a", 0.9, 10.0), ("b", 0.9, 10.0))),
    ("a single model", _rows(("only", 0.5, 5.0))),
]


def check_pareto_front(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(rows) -> list of names`` (input order) against the course's ``pareto_front``."""
    report = CheckReport(_PARETO)
    for case, rows in _PARETO_CASES:
        want = model_choice.pareto_front(rows)
        got = call(_PARETO, case, fn, [dict(r) for r in rows])
        got = list(got) if not isinstance(got, str) else [got]
        if got == want:
            report.cases.append(case)
            continue
        if sorted(got) == sorted(want):
            hint = "right names, wrong order: keep the rows' input order"
        elif set(got) > set(want):
            hint = ("you keep a dominated row: drop a row when another is at least as good on both criteria "
                    "and strictly better on one")
        elif case.startswith("two identical"):
            hint = "identical rows do not dominate each other (neither is strictly better): keep both"
        elif set(got) & set(want) != set(got):
            hint = "check the directions: accuracy is maximised, latency minimised"
        else:
            hint = "a row is on the front unless ANOTHER row is >= on accuracy, <= on latency, and better on one"
        raise ExerciseFailure(_PARETO, case, f"returned {got}, expected {want}", hint)
    return passed(report, verbose)
