"""Softmax: stability, log-sum-exp, Jacobian, NumPy vs torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import softmax as sm


def test_softmax_is_stable_where_the_naive_formula_overflows():
    x = np.array([1000.0, 1001.0, 1002.0])
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(sm.softmax_naive(x)).any()
    y = sm.softmax(x)
    np.testing.assert_allclose(y, sm.softmax(x - 1000.0), rtol=1e-15)
    assert abs(y.sum() - 1) < 1e-15


def test_logsumexp_and_log_softmax(rng):
    x = rng.normal(size=(4, 7)) * 50
    np.testing.assert_allclose(sm.logsumexp(x), torch.logsumexp(torch.tensor(x), -1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sm.log_softmax(x), torch.log_softmax(torch.tensor(x), -1).numpy(),
                               rtol=1e-12, atol=1e-12)
    assert sm.logsumexp(np.full(3, -np.inf)) == -np.inf


def test_temperature_limits():
    x = np.array([1.0, 2.0, 3.0])
    assert sm.softmax(x, temperature=1e-3)[2] > 0.999
    np.testing.assert_allclose(sm.softmax(x, temperature=1e6), np.full(3, 1 / 3), atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        sm.softmax(x, temperature=0)


def test_jacobian_matches_finite_differences_and_autograd(rng):
    x = rng.normal(size=6)
    J = sm.softmax_jacobian(x)
    eps = 1e-6
    numeric = np.stack([(sm.softmax(x + eps * e) - sm.softmax(x - eps * e)) / (2 * eps)
                        for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(J, numeric, atol=1e-9)
    auto = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), torch.tensor(x))
    np.testing.assert_allclose(J, auto.numpy(), atol=1e-14)
    np.testing.assert_allclose(J.sum(axis=0), 0, atol=1e-15)


def test_softmax_backward_equals_autograd(rng):
    x = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    g = torch.tensor(rng.normal(size=(3, 5)))
    y = torch.softmax(x, -1)
    y.backward(g)
    ours = sm.softmax_backward(g.numpy(), y.detach().numpy())
    np.testing.assert_allclose(ours, x.grad.numpy(), atol=1e-14)
    ours_t = sm.softmax_backward_torch(g, y.detach())
    np.testing.assert_allclose(ours_t.numpy(), x.grad.numpy(), atol=1e-14)


def test_numpy_and_torch_agree(rng, device):
    x = rng.normal(size=(2, 3, 9))
    ours = sm.softmax_torch(torch.tensor(x, device=device), temperature=0.7).cpu().numpy()
    np.testing.assert_allclose(ours, sm.softmax(x, temperature=0.7), rtol=1e-12)


def test_jacobian_rejects_a_matrix():
    with pytest.raises(ValueError, match="shape"):
        sm.softmax_jacobian(np.zeros((2, 2)))
