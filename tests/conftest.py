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
