"""Argument checks shared by the chapter-3 functions: bad input fails at our API, in words.

Every public function of :mod:`course_lib.attention` runs its arguments through these
helpers before any NumPy or torch call, so a mistake surfaces as a ``TypeError`` (wrong
kind of object) or ``ValueError`` (right kind, wrong value) that names the argument, what
it got and what to pass instead, rather than as a broadcasting error deep in a matmul.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..utils import check_int  # noqa: F401  (re-exported: one integer check for every chapter)
import torch


def check_number(name: str, value, positive: bool = False, allow_none: bool = False) -> float | None:
    """``value`` as a finite float (``> 0`` when ``positive``); NaN and inf are refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def as_numpy(name: str, x, min_ndim: int = 0) -> np.ndarray:
    """A real-valued NumPy array from an array or a (nested) list; tensors must be converted first.

    Integer and bool arrays pass unchanged (NumPy promotes them where needed); object,
    string and complex arrays are refused.
    """
    if isinstance(x, torch.Tensor):
        raise TypeError(f"{name} is a torch.Tensor, but this is the NumPy version; pass "
                        f"{name}.detach().cpu().numpy(), or use the torch_attention function of the same name")
    try:
        arr = np.asarray(x)
    except ValueError as err:                       # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array; could not convert it: {err}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype} "
                        f"(from {type(x).__name__}); convert it with np.asarray({name}, dtype=float)")
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    return arr


def check_tensor(name: str, x, floating: bool = True, min_ndim: int = 0) -> torch.Tensor:
    """``x`` must be a torch tensor (floating point when ``floating``); nothing is converted."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        f"torch.as_tensor({name}, dtype=torch.float32) (or use the numpy_attention function)")
    if floating and not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                        f"convert it with {name}.float() (or .double())")
    if x.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    return x


def check_same_dtype_device(**tensors) -> None:
    """All tensors share one dtype and one device, as torch's matmul requires."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    dtypes = {t.dtype for _, t in items}
    if len(dtypes) > 1:
        got = ", ".join(f"{n} {t.dtype}" for n, t in items)
        raise TypeError(f"the tensors must share one dtype, got {got}; convert them with .to(q.dtype)")
    devices = {t.device for _, t in items}
    if len(devices) > 1:
        got = ", ".join(f"{n} on {t.device}" for n, t in items)
        raise ValueError(f"the tensors must be on one device, got {got}; move them with .to(q.device)")
