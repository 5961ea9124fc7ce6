"""Chapter 6 training-efficiency checkers: the reference passes, typical mistakes get their hint, stubs are caught."""
import pytest
import torch

from course_lib.exercises.core import ExerciseFailure
from course_lib.exercises.efficiency_training import (check_accumulation_weights, check_combine_rank_gradients,
                                                      check_fp16_underflow_count)


def good_count(grad, scale):
    g = grad[grad != 0].float()
    return int(((g * scale).half() == 0).sum())


def test_underflow_reference_passes():
    report = check_fp16_underflow_count(good_count, verbose=False)
    assert len(report.cases) == 5


@pytest.mark.parametrize("wrong, hint", [
    (lambda g, s: int(((g * s).half() == 0).sum()), "already 0 in fp32"),
    (lambda g, s: int((g[g != 0].half() == 0).sum()), "multiply by the loss scale"),
    (lambda g, s: int(((g[g != 0] * s).abs() < 2.0 ** -14).sum()), "smallest *normal*"),
    (lambda g, s: int(((g[g != 0] * s).abs() < 2.0 ** -24).sum()), "rounds *up*"),
])
def test_underflow_mistakes(wrong, hint):
    with pytest.raises(ExerciseFailure, match="Hint") as err:
        check_fp16_underflow_count(wrong, verbose=False)
    assert hint in str(err.value)


def stub(*args):
    raise NotImplementedError("write it")


@pytest.mark.parametrize("checker", [check_fp16_underflow_count, check_accumulation_weights,
                                     check_combine_rank_gradients])
def test_stubs(checker):
    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        checker(stub, verbose=False)


def test_weights():
    assert len(check_accumulation_weights(lambda c: [n / sum(c) for n in c], verbose=False).cases) == 5
    for wrong, hint in [(lambda c: [1 / len(c)] * len(c), "mean of the micro-batch means"),
                        (lambda c: [1.0] * len(c), "k times too large"),
                        (lambda c: list(map(float, c)), "divide by their total")]:
        with pytest.raises(ExerciseFailure, match="Hint") as err:
            check_accumulation_weights(wrong, verbose=False)
        assert hint in str(err.value)


def test_combine():
    def good(grads, counts):
        n = sum(counts)
        return {k: sum(g[k] * c / n for g, c in zip(grads, counts)) for k in grads[0]}

    assert len(check_combine_rank_gradients(good, verbose=False).cases) == 4
    plain = lambda grads, counts: {k: torch.stack([g[k] for g in grads]).mean(0) for k in grads[0]}  # noqa: E731
    with pytest.raises(ExerciseFailure, match="plain mean over ranks"):
        check_combine_rank_gradients(plain, verbose=False)
    summed = lambda grads, counts: {k: sum(g[k] for g in grads) for k in grads[0]}  # noqa: E731
    with pytest.raises(ExerciseFailure, match="sum over ranks"):
        check_combine_rank_gradients(summed, verbose=False)
