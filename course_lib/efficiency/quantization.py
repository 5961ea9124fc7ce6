r"""int8 weight quantisation from scratch, and the two library routes it is measured against.

A weight matrix :math:`W` (out, in) is stored as 8-bit integers :math:`q` and, per output channel
(row) :math:`i`, a float scale :math:`s_i` (and, asymmetric, a zero point :math:`z_i`):

.. math::
    \text{symmetric (absmax):}\quad s_i = \frac{\max_j |W_{ij}|}{127},\;
        q_{ij} = \mathrm{clamp}(\mathrm{round}(W_{ij}/s_i), -127, 127),\; \hat W_{ij} = s_i q_{ij}

    \text{asymmetric:}\quad s_i = \frac{\max_j W_{ij} - \min_j W_{ij}}{255},\;
        z_i = -128 - \mathrm{round}(\min_j W_{ij}/s_i),\;
        q_{ij} = \mathrm{clamp}(\mathrm{round}(W_{ij}/s_i) + z_i, -128, 127),\; \hat W_{ij} = s_i (q_{ij} - z_i)

Rounding moves each weight by at most :math:`s_i/2`. Symmetric spends half its 255 levels on a
sign a skewed row may not use; asymmetric fits the levels to ``[min, max]``.

This is *weight-only* quantisation: the int8 matrix is stored (4x fewer bytes than fp32) and
expanded to float just before the matmul, so the arithmetic (FLOPs) is unchanged. PyTorch's
dynamic quantisation (``torch.ao.quantization.quantize_dynamic``, which now warns that it is
deprecated and points to torchao) also quantises the *activations* on the fly and runs an int8 x int8
matmul.
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizedTensor:
    """int8 codes ``qdata`` (out, in), per-row ``scale`` (out, 1) and ``zero_point`` (out, 1) (0 if symmetric)."""
    qdata: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    symmetric: bool

    def dequantize(self) -> torch.Tensor:
        """``s (q - z)`` in float32."""
        return self.scale * (self.qdata.float() - self.zero_point.float())     # W_hat = s (q - z)


def quantize_per_channel(w: torch.Tensor, symmetric: bool = True, bits: int = 8, eps: float = 1e-12) -> QuantizedTensor:
    """Quantise a 2-D weight per output channel (row) to ``bits``-bit integers (stored in int8).

    See the module docstring for the 8-bit formulas; with ``b`` bits, 127 becomes
    :math:`2^{b-1} - 1`, 255 becomes :math:`2^b - 1` and -128 becomes :math:`-2^{b-1}`.

    Parameters
    ----------
    w : Tensor (out, in), floating point
    symmetric : bool
        True: absmax scale, zero point 0, codes in [-127, 127]; False: min/max scale and a zero point,
        codes in [-128, 127].
    bits : int
        2 to 8 (4 shows the symmetric/asymmetric difference more clearly than 8).
    eps : float
        Smallest scale (an all-zero row would otherwise divide by 0).
    """
    if not isinstance(w, torch.Tensor) or w.ndim != 2 or not w.is_floating_point():
        raise ValueError("quantize_per_channel expects a 2-D floating-point weight (out_features, in_features), "
                         f"got {type(w).__name__} {getattr(w, 'shape', '')} {getattr(w, 'dtype', '')}")
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int from 2 to 8 (codes are stored in int8), got {bits!r}")
    w = w.detach().float()
    qmin, qmax = -2 ** (bits - 1), 2 ** (bits - 1) - 1                            # int8: -128, 127
    if symmetric:
        scale = (w.abs().amax(dim=1, keepdim=True) / qmax).clamp_min(eps)         # s = max|W| / 127, (out, 1)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        q = torch.clamp(torch.round(w / scale), -qmax, qmax)                      # q = clamp(round(W / s))
    else:
        lo = w.amin(dim=1, keepdim=True).clamp_max(0.0)                           # the range holds 0 exactly
        hi = w.amax(dim=1, keepdim=True).clamp_min(0.0)
        scale = ((hi - lo) / (qmax - qmin)).clamp_min(eps)                        # s = (max - min) / 255
        zero = (qmin - torch.round(lo / scale)).to(torch.int32)                   # z = -128 - round(min / s)
        q = torch.clamp(torch.round(w / scale) + zero, qmin, qmax)                # q = clamp(round(W / s) + z)
    return QuantizedTensor(q.to(torch.int8), scale, zero, symmetric)


class Int8Linear(nn.Module):
    """A linear layer that stores int8 weights and per-channel scales; computes in the input's dtype."""

    def __init__(self, linear: nn.Linear, symmetric: bool = True, bits: int = 8):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"Int8Linear wraps an nn.Linear, got {type(linear).__name__}")
        qt = quantize_per_channel(linear.weight, symmetric, bits)
        self.in_features, self.out_features, self.symmetric = linear.in_features, linear.out_features, symmetric
        self.register_buffer("qdata", qt.qdata)                                 # (out, in) int8
        self.register_buffer("scale", qt.scale)                                 # (out, 1) fp32
        self.register_buffer("zero_point", qt.zero_point if not symmetric else None)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def weight_dequantized(self) -> torch.Tensor:
        q = self.qdata.float()
        if self.zero_point is not None:
            q = q - self.zero_point
        return self.scale * q                                                   # W_hat = s (q - z), (out, in)

    def forward(self, x):
        w = self.weight_dequantized().to(x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))   # x W_hat^T + b


def _linears(model: nn.Module, skip: tuple[str, ...]):
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(name == s or name.startswith(s + ".") for s in skip)]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def quantize_linears(model: nn.Module, symmetric: bool = True, skip: tuple[str, ...] = ("lm_head",),
                     bits: int = 8) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` (except those named in ``skip``) replaced by :class:`Int8Linear`.

    GPT-2's ``lm_head`` shares its weight with the token embedding, so it is skipped by default
    (embeddings stay float, as in both library routes).
    """
    out = copy.deepcopy(model).eval()
    found = _linears(out, skip)
    if not found:
        raise ValueError("the model has no nn.Linear layer to quantise (check skip=...)")
    for name, lin in found:
        _set(out, name, Int8Linear(lin, symmetric, bits))
    return out


def quantize_dynamic_route(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)):
    """PyTorch's dynamic int8 quantisation of the linear layers; returns ``(model, warnings)``.

    The warnings it raises (deprecation of ``torch.ao.quantization``) are captured and returned as
    strings so that a notebook can show them.
    """
    names = {name for name, _ in _linears(model, skip)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from torch.ao.quantization import quantize_dynamic
        q = quantize_dynamic(copy.deepcopy(model).eval(), names, dtype=torch.qint8)
    return q, [f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught]


def torchao_route(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """torchao's int8 weight-only quantisation (``quantize_(m, Int8WeightOnlyConfig())``, per-row symmetric)."""
    import course_lib  # noqa: F401  (quiets torchao's GPU-kernel warnings)
    from torchao.quantization import Int8WeightOnlyConfig, quantize_
    out = copy.deepcopy(model).eval()
    names = {name for name, _ in _linears(out, skip)}
    quantize_(out, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in names)
    return out


def bf16_route(model: nn.Module) -> nn.Module:
    """A bfloat16 copy (every parameter and buffer in 16 bits)."""
    return copy.deepcopy(model).eval().to(torch.bfloat16)


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (what goes to disk; tied weights stored once)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue())


def weight_errors(model: nn.Module, symmetric: bool = True, skip: tuple[str, ...] = ("lm_head",),
                  bits: int = 8) -> dict[str, float]:
    r"""Per linear layer, the relative error :math:`\|W - \hat W\|_F / \|W\|_F` of our int8 round trip."""
    errors = {}
    for name, lin in _linears(model, skip):
        w = lin.weight.detach().float()
        w_hat = quantize_per_channel(w, symmetric, bits).dequantize()
        errors[name] = float((w - w_hat).norm() / w.norm().clamp_min(1e-30))
    return errors


def interleaved_times(fns: dict, repeat: int = 10, warmup: int = 1, sync=None) -> dict[str, float]:
    """Median wall time of each ``fns[name]()``, run in rounds (a, b, c, a, b, c, ...) so that a busy
    machine slows all of them alike; compare them as ratios, not as absolute seconds."""
    import statistics
    import time
    if not fns or repeat < 1:
        raise ValueError("interleaved_times needs at least one function and repeat >= 1")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
