"""Fixtures for the unit tests."""
from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine"))]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every device-parametrised test runs on cpu, and on cuda when a GPU is present."""
    return torch.device(request.param)


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(0)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: tiny training batches gain nothing from two, and on
    a busy shared machine spinning OpenMP threads made them many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
