"""Write the learners' copy of the course: ``student/``, every notebook with its solutions taken out.

    python tools/student.py [--src notebooks] [--dst student]      (``make student``)

For every ``*.ipynb`` under ``notebooks/`` the same path under ``student/`` gets a copy in which

* each **code** cell tagged ``solution`` becomes a stub that raises
  ``NotImplementedError("exercise N of <chapter>/<notebook>")``, its outputs cleared; when the
  solution starts with a one-line ``def``/``class`` (an implement-it exercise), the stub keeps that
  line and raises inside it, so the untagged ``check_<name>(...)`` cell that follows answers
  "not implemented yet" with the exercise's name;
* each **markdown** cell tagged ``solution`` (a written answer, e.g. chapter 5's
  ``{admonition}`` dropdowns) is replaced by an empty "your answer" prompt;
* every other cell is left exactly as it is, outputs included.

The exercise number N comes from the solution's first line (``# Solution to exercise N``) or, for a
written answer, from ``Answer to exercise N``; an answer without a number takes the number of the
exercise solved just before it. Stubs carry the tag ``exercise-stub`` instead of ``solution`` and
are not hidden, so the learner sees where to work. The output is deterministic: running the tool
twice gives identical files.

Tags the tool reads (nbgrader users: ``solution`` corresponds to nbgrader's "Autograded answer"
cell, the checker call that follows it to an "Autograder tests" cell).
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_TAG, STUB_TAG = "solution", "exercise-stub"
_NUMBER = re.compile(r"(?:solution|answer) to exercise\s+(\d+)", re.IGNORECASE)


def notebooks_under(src: Path) -> list[Path]:
    """Every notebook under ``src`` (checkpoints and build folders left out), sorted."""
    return sorted(p for p in src.rglob("*.ipynb")
                  if not any(part.startswith((".", "_build")) for part in p.relative_to(src).parts))


def exercise_name(number: int | None, rel: Path) -> str:
    label = rel.with_suffix("").as_posix()
    return f"exercise {number} of {label}" if number is not None else f"an exercise of {label}"


_DEF = re.compile(r"^(def \w+\(.*\)(?:\s*->\s*[^:]+)?:|class \w+(?:\(.*\))?:)\s*$", re.MULTILINE)


def _code_stub(source: str, name: str) -> str:
    """The stub of a code solution.

    An implement-it solution (its first statement a one-line ``def f(...):`` or ``class C(...):``)
    keeps that line, so the checker cell after it runs and answers "not implemented yet"; any
    other solution becomes a bare ``raise NotImplementedError``.
    """
    first = next((ln for ln in source.splitlines() if ln.strip() and not ln.startswith(("#", "@", "import ", "from "))), "")
    m = _DEF.match(first)
    if not m:
        return f"raise NotImplementedError(\"{name}\")"
    if first.startswith("def "):
        return f"{m.group(1)}\n    raise NotImplementedError(\"{name}\")"
    return (f"{m.group(1)}\n    def __init__(self, *args, **kwargs):\n"
            f"        raise NotImplementedError(\"{name}\")")


def stub_cell(cell, name: str):
    """The learner's version of one solution cell."""
    new = copy.deepcopy(cell)
    tags = [t for t in new.metadata.get("tags", []) if t not in (SOLUTION_TAG, "hide-cell", "hide-input")]
    new.metadata["tags"] = tags + [STUB_TAG]
    new.metadata.pop("jupyter", None)
    new.metadata.pop("execution", None)
    if new.cell_type == "code":
        new.source = f"# Your solution to {name}\n" + _code_stub(cell.source, name)
        new.outputs, new.execution_count = [], None
    else:
        new.source = f"**Your answer to {name}:** _write it here._"
        new.pop("attachments", None)
    return new


def student_notebook(nb, rel: Path):
    """A copy of ``nb`` with its solution cells replaced by stubs; returns (notebook, number of stubs)."""
    out = copy.deepcopy(nb)
    current, stubs = None, 0
    for i, cell in enumerate(out.cells):
        found = _NUMBER.search(cell.source)
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        if found:
            current = int(found.group(1))
        out.cells[i] = stub_cell(cell, exercise_name(current, rel))
        stubs += 1
    return out, stubs


def solution_sources(nb) -> list[str]:
    """The sources of the cells tagged ``solution`` (what must not reach ``student/``)."""
    return [c.source for c in nb.cells if SOLUTION_TAG in c.metadata.get("tags", [])]


def write_student(src: Path = ROOT / "notebooks", dst: Path = ROOT / "student") -> dict[str, int]:
    """Write the student copy of every notebook under ``src`` into ``dst``; return {path: stubs}.

    Student notebooks whose source notebook no longer exists are deleted, so ``dst`` always
    mirrors ``src``.
    """
    src, dst = Path(src), Path(dst)
    written = {}
    for path in notebooks_under(src):
        rel = path.relative_to(src)
        nb = nbformat.read(path, as_version=4)
        student, stubs = student_notebook(nb, rel)
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = nbformat.writes(student) + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written[rel.as_posix()] = stubs
    for old in notebooks_under(dst) if dst.exists() else []:
        if old.relative_to(dst).as_posix() not in written:
            old.unlink()
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--dst", type=Path, default=ROOT / "student")
    args = parser.parse_args(argv)
    written = write_student(args.src, args.dst)
    for rel, stubs in written.items():
        print(f"{stubs:3d} stub(s)  {args.dst.name}/{rel}")
    print(f"{len(written)} student notebooks, {sum(written.values())} solution cells replaced, in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
