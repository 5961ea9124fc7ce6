"""Small helpers shared by every chapter: device choice, seeding, timing."""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager

import numbers

import numpy as np


def get_device(prefer: str | None = None):
    """The best available torch device: cuda, then mps, then cpu.

    ``prefer`` (or the environment variable ``COURSE_DEVICE``) forces one, e.g. "cpu".
    """
    import torch
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and torch; returns a fresh NumPy Generator."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np.random.default_rng(seed)


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t()`` is the elapsed seconds."""
    start = time.perf_counter()
    end = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def best_time(fn, repeat: int = 5, warmup: int = 1, sync=None) -> float:
    """Minimum wall time of ``fn()`` over ``repeat`` runs (after ``warmup`` runs).

    ``sync`` is called after each run (e.g. ``torch.cuda.synchronize``) so that
    asynchronous GPU work is included.
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return min(times)


def write_json(path, report: dict) -> None:
    """Write a benchmark ``report`` to ``path`` (parents created); nothing when ``path`` is None."""
    if path is None:
        return
    import json
    from pathlib import Path
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


def show_source(obj, lines: tuple[int, int] | None = None) -> None:
    """Print the source code of a ``course_lib`` function, class or method, so a notebook shows the
    code it teaches, read from the real object (it cannot drift from what the tests check).

    Parameters
    ----------
    obj : function, class or method
    lines : (first, last), optional
        Print only these lines of the object's source (1-based, inclusive), e.g. to skip a long docstring.
    """
    import inspect
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source needs a Python function, class or method defined in a file, "
                        f"got {type(obj).__name__}: {err}") from None
    text = source.rstrip("\n").split("\n")
    if lines is not None:
        first, last = lines
        if not (1 <= first <= last):
            raise ValueError(f"lines={lines} must be (first, last) with 1 <= first <= last")
        text = text[first - 1:last]
    module = getattr(obj, "__module__", "?")
    print(f"# {module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}")
    print("\n".join(text))


def check_int(name: str, value, minimum: int | None = None) -> int:
    """``value`` as a Python int; ``TypeError`` for non-integers (bool, float, str ...),
    ``ValueError`` below ``minimum``. Shared by every chapter's argument checks."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
