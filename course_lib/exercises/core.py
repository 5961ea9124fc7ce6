"""The machinery every checker shares: run a case, compare, fail with a hint, report success.

A checker calls the learner's function on hidden cases. Each case is run through
:func:`call`, so that

* a stub that still says ``raise NotImplementedError`` fails with "not implemented yet",
  naming the exercise;
* a function that crashes fails with the exception, the case it crashed on and the line of
  the learner's code that raised it, instead of a traceback from deep inside NumPy or torch;

and the result is compared with the course's own implementation by :func:`expect_close`,
whose failure message names the case and gives the hint the checker chose for what it saw.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np
import torch


class ExerciseFailure(AssertionError):
    """A learner's function gave a wrong answer (or crashed) on one of the checker's cases.

    Attributes
    ----------
    exercise : str
        The exercise's name, e.g. ``"masked_softmax"``.
    case : str or None
        The case that failed.
    hint : str
        What to look at.
    """

    def __init__(self, exercise: str, case: str | None, problem: str, hint: str = ""):
        self.exercise, self.case, self.problem, self.hint = exercise, case, problem, hint
        where = f" on case '{case}'" if case else ""
        text = f"[{exercise}] {problem}{where}."
        if hint:
            text += f"\nHint: {hint}"
        super().__init__(text)


@dataclass
class CheckReport:
    """What a passing checker checked: the exercise and the names of its cases."""
    exercise: str
    cases: list[str] = field(default_factory=list)

    def _ipython_display_(self) -> None:
        """Show nothing when a notebook cell ends with ``check_x(f)``: the checker already printed the report."""

    def __str__(self) -> str:
        lines = [f"[{self.exercise}] all {len(self.cases)} checks passed:"]
        lines += [f"  ✓ {c}" for c in self.cases]
        return "\n".join(lines)


def _learner_frame(tb) -> str:
    """'file:line in function' of the deepest frame outside NumPy/torch/this package, if any."""
    frames = [f for f in traceback.extract_tb(tb)
              if "site-packages" not in f.filename and "course_lib/exercises" not in f.filename.replace("\\", "/")]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename}:{f.lineno}, in {f.name}: `{(f.line or '').strip()}`)"


def call(exercise: str, case: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, turning a stub or a crash into an :class:`ExerciseFailure`."""
    if not callable(fn):
        raise ExerciseFailure(exercise, None, f"expected a function, got {type(fn).__name__}",
                              "pass the function itself, e.g. check_x(my_x), not my_x(...)")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseFailure(exercise, None, "not implemented yet: the function still raises "
                              "NotImplementedError", "replace the `raise NotImplementedError(...)` "
                              "line with your implementation, then run the check again") from None
    except ExerciseFailure:
        raise
    except Exception as err:  # noqa: BLE001 - any crash of the learner's code is reported, not re-raised
        raise ExerciseFailure(exercise, case, f"your function raised {type(err).__name__}: {err}"
                              f"{_learner_frame(err.__traceback__)}",
                              "read the message above; the case name says which input caused it") from None


def to_numpy(x) -> np.ndarray:
    """A float64 NumPy copy of an array, a tensor or a number (for comparisons only)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return x.double().numpy() if x.dtype.is_floating_point else x.numpy()
    arr = np.asarray(x)
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr


def expect_shape(exercise: str, case: str, name: str, got, want_shape: tuple, hint: str = "") -> None:
    shape = tuple(np.shape(got)) if not isinstance(got, torch.Tensor) else tuple(got.shape)
    if shape != tuple(want_shape):
        raise ExerciseFailure(exercise, case, f"{name} has shape {shape}, expected {tuple(want_shape)}",
                              hint or "check which axis you reduce or index; keep the input's leading axes")


def expect_close(exercise: str, case: str, name: str, got, want, hint: str,
                 rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Fail with ``hint`` unless ``got`` equals ``want`` within tolerance (shape first, then NaN, then values)."""
    expect_shape(exercise, case, name, got, np.shape(to_numpy(want)))
    g, w = to_numpy(got), to_numpy(want)
    if np.isnan(g).any() and not np.isnan(w).any():
        raise ExerciseFailure(exercise, case, f"{name} contains NaN", hint)
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        err = np.nanmax(np.abs(g - w)) if g.size else 0.0
        raise ExerciseFailure(exercise, case, f"{name} differs from the expected values "
                              f"(largest difference {err:.3g})", hint)


def close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """True when two arrays/tensors have the same shape and close values (used to diagnose)."""
    a, b = to_numpy(a), to_numpy(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def passed(report: CheckReport, verbose: bool = True) -> CheckReport:
    if verbose:
        print(report)
    return report


def expect_failure(checker, fn, *words: str) -> ExerciseFailure:
    """For checker authors: assert that ``checker`` rejects ``fn`` with a hint containing ``words``.

    Use it to test a new checker against the typical wrong implementations it must recognise:
    the failure must carry a hint (never a bare "wrong") and mention every one of ``words``
    (the case's name, the key phrase of the hint). Returns the :class:`ExerciseFailure`.
    """
    try:
        checker(fn, verbose=False)
    except ExerciseFailure as failure:
        text = str(failure)
        missing = [w for w in words if w not in text]
        assert not missing, f"expected {missing!r} in:\n{text}"
        assert "\nHint: " in text, f"the failure gives no hint:\n{text}"
        return failure
    raise AssertionError(f"{getattr(checker, '__name__', checker)} accepted a function it should reject")
