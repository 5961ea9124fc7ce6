"""tools/student.py: the learners' copy of the notebooks holds stubs where the solutions were."""
from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("student_tool", ROOT / "tools" / "student.py")
student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student)

# Executed up to (and including) their first stub. Chosen because they are light: 1.1 imports
# course_lib and prints the environment (no model, no data download), 3.1 is NumPy softmax on
# small arrays; both run their first exercise within seconds. The heavy notebooks (training,
# MiniLM) are left to nbval, which runs them with their solutions anyway.
EXECUTED = ["01_background/01_orientation.ipynb", "03_attention/01_softmax.ipynb"]


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """A snapshot of notebooks/ (the notebooks can be re-recorded while the tests run)."""
    snap = tmp_path_factory.mktemp("notebooks")
    for path in student.notebooks_under(NOTEBOOKS):
        target = snap / path.relative_to(NOTEBOOKS)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return snap


@pytest.fixture(scope="module")
def built(tmp_path_factory, src):
    dst = tmp_path_factory.mktemp("student")
    written = student.write_student(src, dst)
    return dst, written


def _solution_notebooks(src):
    return [p for p in student.notebooks_under(src)
            if student.solution_sources(nbformat.read(p, as_version=4))]


def test_every_notebook_copied(src, built):
    dst, written = built
    expected = {p.relative_to(src).as_posix() for p in student.notebooks_under(src)}
    assert set(written) == expected
    assert all((dst / rel).is_file() for rel in expected)
    assert sum(written.values()) >= 50


def _blob(cells) -> str:
    """Sources and text outputs of some cells, as one string."""
    parts = []
    for c in cells:
        parts.append(c.source)
        for o in c.get("outputs", []):
            parts.append(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_no_solution_source_reaches_students(src, built):
    dst, _ = built
    checked = 0
    for path in _solution_notebooks(src):
        rel = path.relative_to(src)
        src_nb, stu_nb = nbformat.read(path, as_version=4), nbformat.read(dst / rel, as_version=4)
        student_sources = {c.source.strip() for c in stu_nb.cells}
        student_text = _blob(stu_nb.cells)
        # Lines a solution shares with the rest of its notebook (an import, a printed source) are legitimate.
        shared = _blob([c for c in src_nb.cells if "solution" not in c.metadata.get("tags", [])])
        for sol in student.solution_sources(src_nb):
            body = sol.strip()
            assert body not in student_sources, f"a solution cell of {rel} reached the student copy"
            for line in body.splitlines():
                line = line.strip()
                if len(line) > 30 and line not in shared and not student._DEF.match(line):  # signatures stay
                    assert line not in student_text, f"{rel}: solution line {line!r} in the student notebook"
            checked += 1
    assert checked >= 50


def test_stubs_where_solutions_were(src, built):
    dst, _ = built
    for path in _solution_notebooks(src):
        rel = path.relative_to(src)
        src_nb, stu_nb = nbformat.read(path, as_version=4), nbformat.read(dst / rel, as_version=4)
        assert len(src_nb.cells) == len(stu_nb.cells)
        for a, b in zip(src_nb.cells, stu_nb.cells):
            if "solution" in a.metadata.get("tags", []):
                assert "exercise-stub" in b.metadata.tags and "solution" not in b.metadata.tags
                assert b.cell_type == a.cell_type
                if b.cell_type == "code":
                    assert b.source.splitlines()[-1].strip().startswith('raise NotImplementedError("exercise ')
                    assert rel.with_suffix("").as_posix() in b.source
                    assert b.outputs == [] and b.execution_count is None
                    number = a.source.split("exercise", 1)[1].split()[0] if a.source.startswith(
                        "# Solution to exercise") else None
                    if number:
                        assert f"exercise {number} of" in b.source
                else:
                    assert "Your answer to exercise" in b.source
            else:
                assert a == b, f"{rel}: a cell that is not a solution changed"


def test_written_answers_removed(src, built):
    """Chapter 5 puts written answers in markdown cells tagged solution ({admonition} dropdowns)."""
    dst, _ = built
    text = (dst / "05_pretraining" / "07_lora.ipynb").read_text(encoding="utf-8")
    nb = nbformat.read(src / "05_pretraining" / "07_lora.ipynb", as_version=4)
    answers = [c for c in nb.cells if c.cell_type == "markdown" and "solution" in c.metadata.get("tags", [])]
    assert answers, "07_lora has written answers tagged solution"
    student_nb = nbformat.read(dst / "05_pretraining" / "07_lora.ipynb", as_version=4)
    admonitions = [c for c in student_nb.cells if "admonition} Answer" in c.source]
    assert not admonitions and "Derivation." not in text


def test_idempotent(src, built, tmp_path):
    dst, written = built
    before = {p: p.read_bytes() for p in dst.rglob("*.ipynb")}
    (dst / "stale").mkdir(exist_ok=True)
    (dst / "stale" / "gone.ipynb").write_text("{}")
    again = student.write_student(src, dst)
    assert again == written
    assert not (dst / "stale" / "gone.ipynb").exists()
    assert {p: p.read_bytes() for p in dst.rglob("*.ipynb")} == before


@pytest.mark.parametrize("rel", EXECUTED)
def test_runs_up_to_first_exercise(built, rel):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    dst, _ = built
    nb = nbformat.read(dst / rel, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if "exercise-stub" in c.metadata.get("tags", [])
                 and c.cell_type == "code")
    nb.cells = nb.cells[:first + 1]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks" / Path(rel).parent)}})
    stub = nb.cells[first].source
    defines = "\ndef " in stub or "\nclass " in stub
    start = time.perf_counter()
    if defines:                         # an implement-it stub: defining it works, calling it raises
        client.execute()
    else:
        with pytest.raises(CellExecutionError) as info:
            client.execute()
        # The stub itself raised NotImplementedError naming its exercise.
        assert "NotImplementedError" in str(info.value)
        assert f"of {Path(rel).with_suffix('').as_posix()}" in str(info.value)
    ran = [c for c in nb.cells[:first] if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in ran)
    assert not any(o.get("output_type") == "error" for c in ran for o in c.outputs)
    print(f"{rel}: {len(ran)} cells up to the first exercise in {time.perf_counter() - start:.1f} s")


def test_implement_it_stub_keeps_signature_and_checker_says_not_implemented():
    """An implement-it solution keeps its def line; the checker then names the exercise."""
    src = "# Solution to exercise 2\ndef masked_softmax(scores, mask):\n    return scores\n"
    cell = nbformat.v4.new_code_cell(src, metadata={"tags": ["hide-cell", "solution"]})
    stub = student.stub_cell(cell, "exercise 2 of 03_attention/03_masks")
    assert "def masked_softmax(scores, mask):" in stub.source and "return scores" not in stub.source
    namespace = {}
    exec(stub.source, namespace)
    from course_lib.exercises import ExerciseFailure, check_masked_softmax
    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        check_masked_softmax(namespace["masked_softmax"], verbose=False)
    with pytest.raises(NotImplementedError, match="exercise 2 of 03_attention/03_masks"):
        namespace["masked_softmax"](None, None)
    klass = student.stub_cell(nbformat.v4.new_code_cell("class LoraLinear(nn.Module):\n    pass\n",
                                                        metadata={"tags": ["solution"]}), "exercise 1 of x")
    assert klass.source.splitlines()[1] == "class LoraLinear(nn.Module):"
    plain = student.stub_cell(nbformat.v4.new_code_cell("x = 1\nassert x", metadata={"tags": ["solution"]}), "e")
    assert plain.source.endswith('raise NotImplementedError("e")')
