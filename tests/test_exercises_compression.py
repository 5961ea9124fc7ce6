"""Chapter 6 compression checkers: the course's code passes, typical mistakes fail with their hint."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.efficiency.distillation import distillation_loss
from course_lib.efficiency.pruning import magnitude_mask
from course_lib.efficiency.quantization import quantize_per_channel
from course_lib.exercises.compression import check_distillation_loss, check_magnitude_mask, check_quantize_absmax
from course_lib.exercises.core import expect_failure as fails_with


def course_quant(w):
    qt = quantize_per_channel(w, symmetric=True)
    return qt.qdata, qt.scale


@pytest.mark.parametrize("checker, fn", [(check_quantize_absmax, course_quant), (check_magnitude_mask, magnitude_mask),
                                         (check_distillation_loss, distillation_loss)])
def test_course_implementation_passes(checker, fn, capsys):
    report = checker(fn)
    assert len(report.cases) >= 5
    assert f"all {len(report.cases)} checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [check_quantize_absmax, check_magnitude_mask, check_distillation_loss])
def test_stub_is_not_implemented_yet(checker):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise 2")
    fails_with(checker, stub, "not implemented yet", f"[{checker.__name__[6:]}]")


# --------------------------------------------------------------------------- quantisation

def test_per_tensor_scale_is_named():
    def per_tensor(w):
        s = w.abs().max() / 127
        return torch.clamp(torch.round(w / s), -127, 127).to(torch.int8), s
    fails_with(check_quantize_absmax, per_tensor, "per-tensor")


def test_dividing_by_128_is_named():
    def by_128(w):
        s = (w.abs().amax(1, keepdim=True) / 128).clamp_min(1e-12)
        return torch.clamp(torch.round(w / s), -127, 127).to(torch.int8), s
    fails_with(check_quantize_absmax, by_128, "-127..127")


def test_truncation_is_named():
    def trunc(w):
        s = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
        return (w / s).to(torch.int8), s
    fails_with(check_quantize_absmax, trunc, "torch.round")


def test_zero_row_nan_is_named():
    def no_clamp(w):
        s = w.abs().amax(1, keepdim=True) / 127
        return torch.clamp(torch.round(w / s), -127, 127).to(torch.int8), s
    fails_with(check_quantize_absmax, no_clamp, "all-zero row", "clamp_min")


# --------------------------------------------------------------------------- pruning

def test_signed_ranking_is_named():
    def signed(w, amount):
        k = round(amount * w.numel())
        m = torch.ones_like(w)
        if k:
            m.view(-1)[torch.topk(w.reshape(-1), k, largest=False).indices] = 0
        return m
    fails_with(check_magnitude_mask, signed, "magnitude |w|")


def test_removing_the_largest_is_named():
    def largest(w, amount):
        k = round(amount * w.numel())
        m = torch.ones_like(w)
        if k:
            m.view(-1)[torch.topk(w.abs().reshape(-1), k, largest=True).indices] = 0
        return m
    fails_with(check_magnitude_mask, largest, "largest=False")


def test_int_instead_of_round_is_named():
    def floor(w, amount):
        k = int(amount * w.numel())
        m = torch.ones_like(w)
        if k:
            m.view(-1)[torch.topk(w.abs().reshape(-1), k, largest=False).indices] = 0
        return m
    fails_with(check_magnitude_mask, floor, "round(amount * n)")


# --------------------------------------------------------------------------- distillation

def test_missing_t_squared_is_named():
    def no_t2(z, v, y, T, a):
        kl = F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), reduction="batchmean")
        return a * kl + (1 - a) * F.cross_entropy(z, y)
    fails_with(check_distillation_loss, no_t2, "T^2")


def test_reversed_kl_is_named():
    def reversed_kl(z, v, y, T, a):
        kl = F.kl_div(F.log_softmax(v / T, -1), F.softmax(z / T, -1), reduction="batchmean")
        return a * T * T * kl + (1 - a) * F.cross_entropy(z, y)
    fails_with(check_distillation_loss, reversed_kl, "reversed")


def test_sum_instead_of_mean_is_named():
    def summed(z, v, y, T, a):
        kl = F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), reduction="sum")
        return a * T * T * kl + (1 - a) * F.cross_entropy(z, y)
    fails_with(check_distillation_loss, summed, "batchmean")
