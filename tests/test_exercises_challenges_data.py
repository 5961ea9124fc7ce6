"""Chapter 6 checkers: the reference passes, typical mistakes fail with their hint, a stub says so."""
from __future__ import annotations

import pytest
import torch

from course_lib.challenges import imbalance, model_choice, overfitting
from course_lib.exercises.challenges_data import check_focal_loss, check_pareto_front, check_patience_stop
from course_lib.exercises.core import ExerciseFailure


def stub(*args, **kwargs):
    raise NotImplementedError("write this function")


@pytest.mark.parametrize("check", [check_focal_loss, check_patience_stop, check_pareto_front])
def test_stub_is_not_implemented_yet(check):
    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        check(stub)


def test_focal_reference_passes(capsys):
    report = check_focal_loss(lambda z, y, g, a: imbalance.focal_loss(z, y, g, a))
    assert len(report.cases) == 6 and "all 6 checks passed" in capsys.readouterr().out


def _naive(z, y, g, a):
    p = torch.softmax(z, -1)[torch.arange(len(y)), y]
    w = 1.0 if a is None else a[y]
    return (-w * (1 - p) ** g * torch.log(p)).mean()


@pytest.mark.parametrize("fn, words", [
    (_naive, "log_softmax"),
    (lambda z, y, g, a: imbalance.focal_loss(z, y, g, a, reduction="sum"), "sum over the batch"),
    (lambda z, y, g, a: imbalance.focal_loss(z, y, g, None), "alpha is ignored"),
    (lambda z, y, g, a: torch.nn.functional.cross_entropy(z, y), "plain cross-entropy"),
    (lambda z, y, g, a: imbalance.focal_loss(z, y, g, a).detach(), "no gradient"),
])
def test_focal_mistakes_get_their_hint(fn, words):
    with pytest.raises(ExerciseFailure, match=words):
        check_focal_loss(fn, verbose=False)


def test_patience_reference_passes():
    assert len(check_patience_stop(overfitting.patience_stop, verbose=False).cases) == 6


def _never_stops(losses, patience):
    return min(range(len(losses)), key=losses.__getitem__), len(losses) - 1


def _one_based(losses, patience):
    b, s = overfitting.patience_stop(losses, patience)
    return b + 1, s + 1


def _less_equal(losses, patience):
    best, waited = 0, 0
    for e in range(1, len(losses)):
        if losses[e] <= losses[best]:
            best, waited = e, 0
        else:
            waited += 1
            if waited >= patience:
                return best, e
    return best, len(losses) - 1


@pytest.mark.parametrize("fn, words", [(_never_stops, "never stop early"), (_one_based, "0-based"),
                                       (_less_equal, "not an improvement")])
def test_patience_mistakes_get_their_hint(fn, words):
    with pytest.raises(ExerciseFailure, match=words):
        check_patience_stop(fn, verbose=False)


def test_pareto_reference_passes():
    assert len(check_pareto_front(model_choice.pareto_front, verbose=False).cases) == 5


def _keep_all(rows):
    return [r["name"] for r in rows]


def _strict_only(rows):                        # drops a row when another is merely as good: loses identical rows
    return [r["name"] for r in rows if not any(o is not r and o["accuracy"] >= r["accuracy"]
                                               and o["latency_b1_ms"] <= r["latency_b1_ms"] for o in rows)]


def _reversed(rows):
    return list(reversed(model_choice.pareto_front(rows)))


@pytest.mark.parametrize("fn, words", [(_keep_all, "dominated row"), (_strict_only, "identical rows"),
                                       (_reversed, "input order")])
def test_pareto_mistakes_get_their_hint(fn, words):
    with pytest.raises(ExerciseFailure, match=words):
        check_pareto_front(fn, verbose=False)
