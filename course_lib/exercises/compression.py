r"""Chapter 6 checkers: int8 absmax quantisation, the magnitude-pruning mask and the distillation loss.

* :func:`check_quantize_absmax` -- ``fn(w) -> (q, scale)``: symmetric per-output-channel int8
  quantisation of a (out, in) float tensor, ``scale = max_j |w_ij| / 127`` (shape (out, 1)) and
  ``q = clamp(round(w / scale), -127, 127)`` as int8, as
  :func:`course_lib.efficiency.quantization.quantize_per_channel`.
* :func:`check_magnitude_mask` -- ``fn(weight, amount) -> mask``: a 0/1 float mask of the weight's
  shape that removes the ``round(amount * n)`` entries of smallest ``|w|``, as
  :func:`course_lib.efficiency.pruning.magnitude_mask` (and ``torch.nn.utils.prune.l1_unstructured``).
* :func:`check_distillation_loss` -- ``fn(student_logits, teacher_logits, labels, temperature, alpha)``:
  Hinton et al.'s ``alpha T^2 KL(softmax(v/T) || softmax(z/T)) + (1 - alpha) CE(z, y)``, mean over
  the batch, as :func:`course_lib.efficiency.distillation.distillation_loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..efficiency.distillation import distillation_loss
from ..efficiency.pruning import magnitude_mask
from ..efficiency.quantization import quantize_per_channel
from .core import CheckReport, ExerciseFailure, call, close, expect_close, expect_shape, passed

_QUANT, _MASK, _DISTIL = "quantize_absmax", "magnitude_mask", "distillation_loss"


def _quant_cases():
    g = torch.Generator().manual_seed(0)
    outlier = torch.randn(4, 16, generator=g)
    outlier[1, 3] = 40.0
    zero_row = torch.randn(3, 8, generator=g)
    zero_row[2] = 0.0
    return [("random (8, 32) weight", torch.randn(8, 32, generator=g)),
            ("rows of very different scales", torch.randn(5, 12, generator=g) * torch.logspace(-3, 1, 5)[:, None]),
            ("one outlier of 40 in row 1", outlier),
            ("an all-zero row (its scale must not make NaN)", zero_row),
            ("one row (1, 7)", torch.randn(1, 7, generator=g))]


def _mostly_equal(a, b, fraction: float = 0.98) -> bool:
    """True when ``a`` and ``b`` (same shape) agree in at least ``fraction`` of their entries."""
    return a.shape == b.shape and float((a == b).double().mean()) >= fraction


def _quant_hint(q, s, w, want_q, want_s) -> str:
    s = torch.as_tensor(s, dtype=torch.float64)
    if s.numel() == 1:
        return ("one scale for the whole matrix is per-tensor quantisation; take the maximum of |w| per output "
                "channel: w.abs().amax(dim=1, keepdim=True)")
    if s.shape != want_s.shape:
        return "return the scale with shape (out_features, 1) (amax with keepdim=True), one per row"
    if close(s.reshape(-1), w.abs().amax(dim=0).double(), rtol=1e-4):
        return "you took the maximum over dim=0 (per input column); a channel is a row of W (out, in): use dim=1"
    if close(s, want_s * 127 / 128, rtol=1e-4) or close(s, want_s * 127 / 255, rtol=1e-4):
        return "symmetric int8 uses the levels -127..127: scale = max|w| / 127 (not 128 or 255)"
    if close(s, want_s, rtol=1e-4):
        qd, x = torch.as_tensor(q).double(), (w / want_s.float()).double()
        if _mostly_equal(qd, torch.trunc(x)) or _mostly_equal(qd, torch.floor(x)):
            return "round to the nearest level with torch.round, not floor or int() truncation"
        return "q = clamp(round(w / scale), -127, 127), then .to(torch.int8)"
    return "scale = w.abs().amax(dim=1, keepdim=True) / 127 (and never 0: clamp it to a tiny positive value)"


def check_quantize_absmax(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(w) -> (q, scale)`` against the course's symmetric per-channel int8 quantisation."""
    report = CheckReport(_QUANT)
    for case, w in _quant_cases():
        out = call(_QUANT, case, fn, w.clone())
        if not isinstance(out, tuple) or len(out) != 2:
            raise ExerciseFailure(_QUANT, case, f"expected a tuple (q, scale), got {type(out).__name__}",
                                  "return q, scale")
        q, s = out
        ref = quantize_per_channel(w, symmetric=True)
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            raise ExerciseFailure(_QUANT, case, f"q has dtype {getattr(q, 'dtype', type(q).__name__)}, expected "
                                  "torch.int8", "store the codes in one byte each: q.to(torch.int8)")
        expect_shape(_QUANT, case, "q", q, tuple(w.shape), "q has one int8 code per weight: the shape of w")
        s_t = torch.as_tensor(s).double()
        if not torch.isfinite(s_t).all() or (s_t <= 0).any() or (q.double() != q.double()).any():
            raise ExerciseFailure(_QUANT, case, "a scale is 0, inf or NaN",
                                  "an all-zero row has max|w| = 0: clamp the scale to a small positive "
                                  "minimum, scale.clamp_min(1e-12), so that w / scale is 0, not NaN")
        live = (w.abs().amax(dim=1) > 0)                          # rows whose scale is defined by the data
        ok = s_t.shape == ref.scale.shape and close(s_t[live], ref.scale[live], rtol=1e-5, atol=1e-12) \
            and torch.equal(q, ref.qdata)
        if not ok:
            raise ExerciseFailure(_QUANT, case, "q or scale differs from the expected values",
                                  _quant_hint(q, s, w, ref.qdata, ref.scale.double()))
        report.cases.append(case)
    return passed(report, verbose)


def _mask_cases():
    g = torch.Generator().manual_seed(1)
    return [("(6, 10) weight, amount 0.5", torch.randn(6, 10, generator=g), 0.5),
            ("negative weights matter by magnitude, amount 0.3", torch.randn(40, generator=g) * 2 - 1, 0.3),
            ("amount 0.25 of 10 weights (round, not floor: 2.5 -> 2)", torch.randn(10, generator=g), 0.25),
            ("amount 0.35 of 10 weights (round(3.5) = 4)", torch.randn(10, generator=g), 0.35),
            ("amount 0 keeps everything", torch.randn(3, 4, generator=g), 0.0),
            ("amount 1 removes everything", torch.randn(3, 4, generator=g), 1.0),
            ("a (2, 3, 4) tensor, amount 0.6", torch.randn(2, 3, 4, generator=g), 0.6)]


def _mask_hint(got, want, w, amount) -> str:
    g = torch.as_tensor(got).double()
    if close(g, 1 - want):
        return "you kept the small weights and removed the large ones: remove the smallest |w| (largest=False)"
    k = int((want == 0).sum())
    signed = torch.ones(w.numel(), dtype=torch.float64)
    if k:
        signed[torch.topk(w.reshape(-1), k, largest=False).indices] = 0
    if k and close(g.reshape(-1), signed):
        return "rank by magnitude |w| (weight.abs()), not by the signed value: -3 is a large weight"
    removed, expected = int((g == 0).sum()), int((want == 0).sum())
    if removed != expected:
        return (f"you removed {removed} weights, expected {expected} = round(amount * n); "
                "Python's round (half to even) gives round(2.5) = 2, and int() truncates")
    return "mask = ones; set the entries at torch.topk(weight.abs().reshape(-1), k, largest=False).indices to 0"


def check_magnitude_mask(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(weight, amount) -> mask`` against the course's (and torch.nn.utils.prune's) magnitude mask."""
    report = CheckReport(_MASK)
    for case, w, amount in _mask_cases():
        want = magnitude_mask(w, amount)
        got = call(_MASK, case, fn, w.clone(), amount)
        expect_shape(_MASK, case, "mask", got, tuple(w.shape), "return a mask of the weight's shape (reshape back)")
        expect_close(_MASK, case, "mask", torch.as_tensor(got).double(), want, _mask_hint(got, want, w, amount))
        report.cases.append(case)
    return passed(report, verbose)


def _distil_cases():
    g = torch.Generator().manual_seed(2)
    z, v = torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3
    y = torch.randint(0, 5, (6,), generator=g)
    return [("T = 1, alpha = 0.5", z, v, y, 1.0, 0.5),
            ("T = 4, alpha = 0.9", z, v, y, 4.0, 0.9),
            ("T = 2, alpha = 1 (soft targets only)", z, v, y, 2.0, 1.0),
            ("T = 3, alpha = 0 (hard labels only)", z, v, y, 3.0, 0.0),
            ("one example, T = 10, alpha = 0.7", z[:1], v[:1], y[:1], 10.0, 0.7)]


def _distil_hint(got, z, v, y, T, a) -> str:
    g = float(got)
    log_q, p = torch.log_softmax(z / T, -1), torch.softmax(v / T, -1)
    kl = (p * (p.log() - log_q)).sum(-1)
    ce = F.cross_entropy(z, y)
    if abs(g - (a * kl.mean() + (1 - a) * ce)) < 1e-4 and T != 1:
        return "multiply the soft-target term by T^2, so that its gradient keeps its size as T grows (Hinton et al.)"
    q, log_p = torch.softmax(z / T, -1), torch.log_softmax(v / T, -1)
    if abs(g - (a * T * T * (q * (q.log() - log_p)).sum(-1).mean() + (1 - a) * ce)) < 1e-4:
        return "the KL divergence is reversed: the teacher's p comes first, KL(p || q) = sum p (log p - log q)"
    if abs(g - (a * T * T * kl.sum() + (1 - a) * ce)) < 1e-4 and len(z) > 1:
        return "average the KL over the batch (reduction='batchmean'), as the cross-entropy is averaged"
    if abs(g - (a * T * T * kl.mean() + (1 - a) * F.cross_entropy(z / T, y))) < 1e-4 and T != 1:
        return "the hard-label cross-entropy uses the student's plain logits z, not z / T"
    return "alpha * T**2 * F.kl_div(log_softmax(z/T), softmax(v/T), reduction='batchmean') + (1-alpha) * CE(z, y)"


def check_distillation_loss(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(student_logits, teacher_logits, labels, temperature, alpha)`` against the course's loss."""
    report = CheckReport(_DISTIL)
    for case, z, v, y, T, a in _distil_cases():
        want = distillation_loss(z, v, y, T, a)
        got = call(_DISTIL, case, fn, z.clone(), v.clone(), y.clone(), T, a)
        expect_shape(_DISTIL, case, "loss", torch.as_tensor(got), (),
                     "return one number (a 0-d tensor): the mean over the batch")
        expect_close(_DISTIL, case, "loss", got, want, _distil_hint(got, z, v, y, T, a), rtol=1e-4, atol=1e-5)
        report.cases.append(case)
    return passed(report, verbose)
