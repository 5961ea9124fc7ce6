r"""Mixed precision: compute in 16 bits where it is safe, keep the weights and the update in 32.

Micikevicius et al. (2018) train in fp16 with three tricks: an fp32 master copy of the weights,
fp32 accumulation in matmuls and reductions, and **loss scaling**. fp16 has 5 exponent bits: its
smallest normal number is :math:`2^{-14} \approx 6.1\times10^{-5}`, its smallest subnormal
:math:`2^{-24} \approx 6.0\times10^{-8}`, and anything smaller rounds to 0. Many gradients are
that small, so they vanish. Multiplying the loss by S (e.g. :math:`2^{16}`) multiplies every
gradient by S (the chain rule is linear), lifting them into fp16's range; the optimizer divides
by S again before the update, and a step whose scaled gradients overflowed (inf/NaN) is skipped
and S halved (``torch.amp.GradScaler``).

bf16 keeps fp32's 8 exponent bits (same range, 8 bits of mantissa instead of 24), so it needs no
loss scaling; ``torch.autocast(device_type, dtype)`` runs matmuls and convolutions in the low
precision and keeps reductions, softmax and the loss in fp32. Whether it is *faster* depends on
the hardware: tensor cores (NVIDIA Volta and later) multiply fp16/bf16 matrices several times
faster than fp32; a CPU without bf16 units (AVX512-BF16 or AMX) converts back and forth and can
be slower.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..transformer.training import causal_lm_loss

__all__ = ["PRECISIONS", "FP16_MIN_SUBNORMAL", "FP16_MIN_NORMAL", "autocast_context", "PrecisionRun",
           "PrecisionTrainer", "train_with_precision", "compare_precisions", "fp16_cast_underflow", "fp16_underflow_by_scale", "cpu_has_bf16_units"]

PRECISIONS = ("fp32", "bf16", "fp16")
FP16_MIN_SUBNORMAL = 2.0 ** -24                       # smallest positive fp16 number; below half of it -> 0
FP16_MIN_NORMAL = 2.0 ** -14                          # below this fp16 keeps fewer than 11 significant bits


def _check_precision(precision: str, device_type: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and device_type != "cuda":
        raise ValueError("fp16 mixed precision with loss scaling is for CUDA GPUs (tensor cores); on "
                         f"{device_type!r} use precision='bf16' (no loss scaling needed) or 'fp32'")


def autocast_context(precision: str, device_type: str = "cpu"):
    """``torch.autocast`` for ``"bf16"``/``"fp16"``, a do-nothing context for ``"fp32"``."""
    _check_precision(precision, device_type)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device_type, dtype=dtype)


@dataclass
class PrecisionRun:
    """One training run: the loss and wall time of every step, and the loss scales used (fp16)."""
    precision: str
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    skipped_steps: int = 0

    def median_step(self, skip: int = 1) -> float:
        """Median seconds per step, leaving out the first ``skip`` (warm-up) steps."""
        t = sorted(self.step_seconds[skip:] or self.step_seconds)
        return t[len(t) // 2]


class PrecisionTrainer:
    """AdamW steps on ``model`` (in place) in one precision; :meth:`step` trains on one batch.

    The weights, gradients and optimizer states stay fp32 in every mode (the "master weights");
    only the forward (and so the backward) runs under autocast. ``"fp16"`` (CUDA only) scales the
    loss with ``torch.amp.GradScaler(init_scale)``; a step whose gradients overflow is skipped.
    """

    def __init__(self, model: nn.Module, precision: str = "fp32", lr: float = 3e-3,
                 loss_fn: Callable = causal_lm_loss, init_scale: float = 2.0 ** 16):
        self.device_type = next(model.parameters()).device.type
        _check_precision(precision, self.device_type)
        self.model, self.loss_fn = model.train(), loss_fn
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        self.scaler = torch.amp.GradScaler(self.device_type, init_scale=init_scale) if precision == "fp16" else None
        self.run = PrecisionRun(precision)

    def step(self, batch: tuple) -> float:
        run, opt, scaler = self.run, self.opt, self.scaler
        sync = torch.cuda.synchronize if self.device_type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        with autocast_context(run.precision, self.device_type):
            loss, _ = self.loss_fn(self.model, batch)                           # matmuls in 16 bits, loss in fp32
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{run.precision} training produced a non-finite loss ({float(loss)}) at step "
                                     f"{len(run.losses)}; lower the learning rate or use precision='fp32'")
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scale_before = scaler.get_scale()
            scaler.scale(loss).backward()                                       # d(S L)/d theta = S dL/d theta
            scaler.step(opt)                                                    # unscale by 1/S; skip if inf/NaN
            scaler.update()                                                     # S/2 after an overflow, 2S after a while
            run.scales.append(scale_before)
            run.skipped_steps += int(scaler.get_scale() < scale_before)
        sync()
        run.step_seconds.append(time.perf_counter() - start)
        run.losses.append(float(loss.detach()))
        return run.losses[-1]


def train_with_precision(model: nn.Module, batches: Sequence[tuple], precision: str = "fp32", lr: float = 3e-3,
                         loss_fn: Callable = causal_lm_loss, init_scale: float = 2.0 ** 16) -> PrecisionRun:
    """Train ``model`` in place, one AdamW step per batch, in ``precision`` (see :class:`PrecisionTrainer`)."""
    if len(batches) == 0:
        raise ValueError("batches is empty; pass at least one (input_ids, labels) batch")
    trainer = PrecisionTrainer(model, precision, lr, loss_fn, init_scale)
    for batch in batches:
        trainer.step(batch)
    return trainer.run


def compare_precisions(model: nn.Module, batches: Sequence[tuple], precisions: Sequence[str] = ("fp32", "bf16"),
                       lr: float = 3e-3, loss_fn: Callable = causal_lm_loss) -> dict[str, PrecisionRun]:
    """Train one copy of ``model`` per precision on the same batches, steps interleaved (fp32 step 1,
    bf16 step 1, fp32 step 2, ...), so a busy machine slows every precision alike."""
    import copy
    if len(batches) == 0:
        raise ValueError("batches is empty; pass at least one (input_ids, labels) batch")
    trainers = {p: PrecisionTrainer(copy.deepcopy(model), p, lr, loss_fn) for p in precisions}
    for batch in batches:
        for t in trainers.values():
            t.step(batch)
    return {p: t.run for p, t in trainers.items()}


def fp16_cast_underflow(grads, scale: float = 1.0) -> dict:
    """Count what happens to fp32 gradients ``g`` when ``scale * g`` is stored in fp16.

    This *emulates* an fp16 backward's last step: the gradients are computed in fp32, multiplied
    by ``scale`` and cast with ``.half()``. (A real fp16 backward also rounds every intermediate
    gradient, so it loses at least as much.)

    Returns
    -------
    dict with ``nonzero`` (fp32 gradient entries that are not 0), ``underflow`` (of those, how many
    become exactly 0 in fp16), ``subnormal`` (become fp16 subnormals, i.e. lose precision),
    ``overflow`` (become inf) and the fractions ``underflow_frac``, ``subnormal_frac``, ``overflow_frac``.
    """
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number (the loss scale S), got {scale!r}")
    tensors = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not tensors:
        raise ValueError("grads is empty; pass the gradients after a backward (e.g. [p.grad for p in model.parameters()])")
    nonzero = underflow = subnormal = overflow = 0
    for g in tensors:
        g = g.detach().float().flatten()
        keep = g != 0
        h = (g[keep] * scale).half()                                            # what fp16 can store
        nonzero += int(keep.sum())
        underflow += int((h == 0).sum())
        subnormal += int(((h != 0) & (h.abs() < FP16_MIN_NORMAL)).sum())
        overflow += int(torch.isinf(h).sum())
    frac = (lambda n: n / nonzero) if nonzero else (lambda n: 0.0)
    return {"scale": float(scale), "nonzero": nonzero, "underflow": underflow, "subnormal": subnormal,
            "overflow": overflow, "underflow_frac": frac(underflow), "subnormal_frac": frac(subnormal),
            "overflow_frac": frac(overflow)}


def fp16_underflow_by_scale(model: nn.Module, batch: tuple, scales: Sequence[float] = (1.0, 2.0 ** 8, 2.0 ** 16),
                            loss_fn: Callable = causal_lm_loss) -> list[dict]:
    """One fp32 forward/backward on ``batch``, then :func:`fp16_cast_underflow` for every loss scale."""
    model.zero_grad(set_to_none=True)
    loss, _ = loss_fn(model, batch)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    out = [fp16_cast_underflow(grads, s) for s in scales]
    model.zero_grad(set_to_none=True)
    return out


def cpu_has_bf16_units() -> bool:
    """True if this CPU advertises native bf16 arithmetic (x86 ``avx512_bf16`` or ``amx_bf16`` flags)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
