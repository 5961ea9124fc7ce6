"""benchmarks/efficiency.py --quick, the CI-sized run of chapter 6's efficiency measurements.

The driver runs both halves in one process. Timings are not asserted (the machine is shared); the
numbers that do not depend on the machine are: losses, underflow counts, saved bytes, perplexity
ratios, pruning sparsity and the cost calculator's extrapolations.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("efficiency_driver", ROOT / "benchmarks" / "efficiency.py")
driver = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = driver
_spec.loader.exec_module(driver)


@pytest.mark.slow
def test_efficiency_quick_both_parts():
    training = driver._load("training").run(quick=True, device="cpu")
    runs = training["precision"]["runs"]
    assert abs(runs["bf16"]["final_loss"] - runs["fp32"]["final_loss"]) < 0.1      # bf16 tracks fp32
    assert runs["fp32"]["final_loss"] < runs["fp32"]["first_loss"]
    under = {row["scale"]: row for row in training["precision"]["fp16_underflow"]}
    assert under[1.0]["underflow"] > under[65536.0]["underflow"]                 # loss scaling rescues gradients
    assert under[2.0 ** 24]["overflow"] > 0                                         # ... until it overflows
    for row in training["checkpointing"]["rows"]:
        assert row["peak_mb_ckpt"] < row["peak_mb"]

    compression = driver._load("compression").run(quick=True, device="cpu")
    routes = compression["quantisation_gpt"]["routes"]
    assert routes["ours int8 symmetric"]["perplexity_ratio"] < 1.02
    assert 0.5 < routes["ours int8 symmetric"]["size_ratio"] < 0.7
    bytes_ = {row["bytes"] for row in compression["pruning_gpt"]["unstructured"]}
    assert len(bytes_) == 1                                      # unstructured sparsity stores the same bytes
    gpt3 = compression["cost"]["models"]["GPT-3 175B"]
    assert math.isclose(gpt3["flops"], gpt3["published_flops"], rel_tol=0.01)


def test_driver_rejects_cuda_without_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        driver.main(["--quick", "--device", "cuda"])
