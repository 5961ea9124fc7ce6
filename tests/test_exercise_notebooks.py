"""The implement-it exercises inside the notebooks: each solution passes its checker, each student stub fails it.

An implement-it exercise is a solution cell tagged ``solution`` whose first statement is a one-line
``def``/``class`` (tools/student.py keeps that line in the stub), followed by an ordinary cell that
calls ``check_<name>(...)`` from ``course_lib.exercises``. The test runs both cells outside the
notebook: the solution must pass, the stub that learners get must fail with "not implemented yet"
and the exercise's name, and every checker of ``course_lib.exercises.EXERCISES`` must be used by
some notebook.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from course_lib.exercises import EXERCISES, ExerciseFailure

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("student_tool", ROOT / "tools" / "student.py")
student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student)
_CHECK = re.compile(r"^\s*(check_\w+)\(", re.MULTILINE)


def implement_it_pairs() -> list[tuple[str, str, str, str]]:
    """(notebook, checker name, solution source, checker cell source) for every implement-it exercise."""
    pairs = []
    for path in student.notebooks_under(NOTEBOOKS):
        cells = nbformat.read(path, as_version=4).cells
        for sol, nxt in zip(cells, cells[1:]):
            if student.SOLUTION_TAG not in sol.metadata.get("tags", []) or sol.cell_type != "code":
                continue
            found = _CHECK.search(nxt.source) if nxt.cell_type == "code" else None
            if found and "course_lib.exercises" in nxt.source:
                pairs.append((path.relative_to(NOTEBOOKS).as_posix(), found.group(1), sol.source, nxt.source))
    return pairs


PAIRS = implement_it_pairs()


def _namespace() -> dict:
    """What every notebook has imported before its exercises (solutions import anything else themselves)."""
    return {"np": np, "torch": torch, "nn": nn, "__name__": "__exercise__"}


def test_every_checker_is_used_by_a_notebook():
    used = {name for _, name, _, _ in PAIRS}
    missing = [ex.name for ex in EXERCISES if f"check_{ex.name}" not in used]
    assert not missing, f"checkers no notebook uses: {missing}"
    per_chapter: dict[str, int] = {}
    for nb, *_ in PAIRS:
        per_chapter[nb.split("/")[0]] = per_chapter.get(nb.split("/")[0], 0) + 1
    chapters = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and re.match(r"\d\d_", p.name)
                      and any(p.glob("*.ipynb")))
    short = {ch: per_chapter.get(ch, 0) for ch in chapters if per_chapter.get(ch, 0) < 2}
    assert not short, f"chapters with fewer than two implement-it exercises: {short}"


@pytest.mark.parametrize("notebook, checker, solution, check", PAIRS, ids=[f"{p[0]}:{p[1]}" for p in PAIRS])
def test_solution_passes_and_stub_fails(notebook, checker, solution, check):
    ns = _namespace()
    exec(compile(solution, f"{notebook}:solution", "exec"), ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(check, f"{notebook}:check", "exec"), ns)
    assert "checks passed" in out.getvalue(), out.getvalue()

    name = f"exercise N of {Path(notebook).with_suffix('').as_posix()}"
    stub = student.stub_cell(nbformat.v4.new_code_cell(solution, metadata={"tags": ["hide-cell", "solution"]}), name)
    assert "NotImplementedError" in stub.source and solution.strip() not in stub.source
    ns = _namespace()
    exec(compile(stub.source, f"{notebook}:stub", "exec"), ns)
    with pytest.raises(ExerciseFailure, match="not implemented yet") as info:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(check, f"{notebook}:check", "exec"), ns)
    assert "\nHint: " in str(info.value) and checker.removeprefix("check_") in str(info.value)
