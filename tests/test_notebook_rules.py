"""The course's notebook rules, checked on the stored notebooks in a second (nothing runs).

For every notebook under notebooks/:

* no ``NBVAL_`` text in any cell: nbval's markers are cell-metadata tags
  (``nbval-ignore-output``, ``nbval-skip``), never comments a learner would read;
* every cell tagged ``solution`` is collapsed in JupyterLab (metadata
  ``jupyter.source_hidden``, and for a code cell also ``jupyter.outputs_hidden``) and on
  the website (a code cell by the tag ``hide-cell``; a markdown answer, which the website
  cannot collapse by tag, by being a dropdown admonition, ``:class: dropdown``);
* the first cell's title is numbered "N.M Title" (``# 3.2 Scaled dot-product attention``);
* every ``{cite}`` key is in notebooks/references.bib and every ``{term}`` names an entry
  of notebooks/glossary.md (the website build fails on either, ``make book -W``).

Each test is parametrised by notebook, so a failure names the notebook and the cell.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
BIB = NB_DIR / "references.bib"
GLOSSARY = NB_DIR / "glossary.md"
SKIP_PARTS = {"_build", ".ipynb_checkpoints"}

TITLE_RE = re.compile(r"^# \d+\.\d+ ")
DROPDOWN_RE = re.compile(r"^:class:.*\bdropdown\b", re.MULTILINE)
CITE_RE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
TERM_RE = re.compile(r"\{term\}`([^`]+)`")
BIB_KEY_RE = re.compile(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


def notebooks() -> list[Path]:
    return sorted(p for p in NB_DIR.rglob("*.ipynb")
                  if not SKIP_PARTS.intersection(p.relative_to(NB_DIR).parts))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf8"))


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def bib_keys() -> set[str]:
    return {key for kind, key in BIB_KEY_RE.findall(BIB.read_text(encoding="utf8"))
            if kind.lower() not in {"comment", "string", "preamble"}}


def glossary_terms() -> set[str]:
    """Terms (lower case) of the ```{glossary} block: unindented lines of the block."""
    text = GLOSSARY.read_text(encoding="utf8")
    block = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert block, f"no ```{{glossary}} block in {GLOSSARY}"
    return {line.strip().lower() for line in block.group(1).splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")}


def term_target(body: str) -> str:
    """'self-attention' -> itself; 'heads <multi-head attention>' -> 'multi-head attention'."""
    match = re.fullmatch(r"(?s).*<([^<>]+)>\s*", body)
    return (match.group(1) if match else body).strip().lower()


def cell_problems(nb: dict, check) -> list[str]:
    """'cell i: problem' for every cell where check(cell) returns a problem."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        problem = check(cell)
        if problem:
            problems.append(f"cell {i}: {problem}")
    return problems


NOTEBOOKS = notebooks()
IDS = [p.relative_to(NB_DIR).as_posix() for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10, f"only {len(NOTEBOOKS)} notebooks under {NB_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_nbval_comments(path):
    def check(cell):
        for line in source(cell).splitlines():
            if "NBVAL_" in line:
                return (f"{line.strip()!r}: use the cell tag nbval-ignore-output (or "
                        "nbval-skip) in the cell's metadata instead")
        return None

    problems = cell_problems(load(path), check)
    assert not problems, "\n".join(problems)


def solution_problem(cell: dict) -> str | None:
    """Why a cell tagged `solution` would show in JupyterLab or on the website (or None)."""
    metadata = cell.get("metadata", {})
    if "solution" not in metadata.get("tags", []):
        return None
    jupyter = metadata.get("jupyter", {})
    missing = []
    if jupyter.get("source_hidden") is not True:
        missing.append('"jupyter": {"source_hidden": true}')
    if cell.get("cell_type") == "code" and jupyter.get("outputs_hidden") is not True:
        missing.append('"jupyter": {"outputs_hidden": true}')
    if cell.get("cell_type") == "code" and "hide-cell" not in metadata.get("tags", []):
        missing.append('the tag "hide-cell"')
    if cell.get("cell_type") == "markdown" and not DROPDOWN_RE.search(source(cell)):
        # The website cannot collapse a tagged markdown cell: a dropdown admonition does.
        missing.append("its answer inside a dropdown admonition (:class: dropdown)")
    if missing:
        return "a solution cell without " + ", ".join(missing)
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solutions_are_collapsed(path):
    problems = cell_problems(load(path), solution_problem)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_is_numbered(path):
    cells = load(path).get("cells", [])
    assert cells, f"{path.name} has no cells"
    first = source(cells[0]).lstrip().splitlines()[0] if source(cells[0]).strip() else ""
    assert cells[0].get("cell_type") == "markdown" and TITLE_RE.match(first), (
        f"the first cell must start with a numbered title '# N.M Title', found {first!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_citations_and_terms_exist(path):
    keys, terms = bib_keys(), glossary_terms()

    def check(cell):
        if cell.get("cell_type") != "markdown":
            return None
        text = source(cell)
        unknown_keys = sorted({k.strip() for group in CITE_RE.findall(text)
                               for k in group.split(",") if k.strip()} - keys)
        unknown_terms = sorted({term_target(body) for body in TERM_RE.findall(text)} - terms)
        found = []
        if unknown_keys:
            found.append(f"{{cite}} keys not in references.bib: {unknown_keys}")
        if unknown_terms:
            found.append(f"{{term}}s not in glossary.md (add them or write plain bold): "
                         f"{unknown_terms}")
        return "; ".join(found) or None

    problems = cell_problems(load(path), check)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_mistakes():
    """The helpers above find what they are meant to find."""
    solution = {"cell_type": "code", "metadata": {"tags": ["solution", "hide-cell"],
                                                  "jupyter": {"source_hidden": True}}}
    assert "outputs_hidden" in solution_problem(solution)
    solution["metadata"]["jupyter"]["outputs_hidden"] = True
    assert solution_problem(solution) is None
    solution["metadata"]["tags"] = ["solution"]
    assert "hide-cell" in solution_problem(solution)
    markdown = {"cell_type": "markdown", "metadata": {"tags": ["solution"],
                                                      "jupyter": {"source_hidden": True}},
                "source": "Answer: because."}
    assert "dropdown" in solution_problem(markdown)
    markdown["source"] = ":::{admonition} Answer\n:class: dropdown\n\nBecause.\n:::"
    assert solution_problem(markdown) is None
    assert TITLE_RE.match("# 3.2 Scaled dot-product attention")
    assert not TITLE_RE.match("# Scaled dot-product attention")
    assert not TITLE_RE.match("## 3.2 Scaled")
    assert term_target("heads <multi-head attention>") == "multi-head attention"
    assert term_target("Softmax") == "softmax"


GRADE_RE = re.compile(r"(?<![★])(★{1,3})(?![★])")
SLIDE_TAGS = {"slide", "subslide", "fragment"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_are_graded_and_slides_tagged(path):
    """Workshop kit: every notebook has graded exercises (★ apply, ★★ extend, ★★★ derive/design),
    at least one solution, and cells tagged for the chapter's slide deck (tools/slides.py)."""
    nb = load(path)
    grades = {len(m) for c in nb["cells"] if c["cell_type"] == "markdown"
              for m in GRADE_RE.findall(source(c)) if "Exercise" in source(c) or re.search(r"^\s*\**\d+\.", source(c), re.M)}
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    slides = [c for c in nb["cells"] if SLIDE_TAGS.intersection(c.get("metadata", {}).get("tags", []))]
    assert grades, f"{path.name}: no graded exercise (★, ★★ or ★★★ in an exercise's title)"
    assert solutions, f"{path.name}: exercises without a solution cell tagged 'solution'"
    assert len(slides) >= 2, f"{path.name}: tag the key formula, figure and result cells 'slide' (found {len(slides)})"


def test_every_chapter_spans_the_grades():
    per_chapter: dict[str, set[int]] = {}
    for path in NOTEBOOKS:
        if not re.match(r"\d\d_", path.parent.name):
            continue
        for c in load(path)["cells"]:
            if c["cell_type"] == "markdown":
                per_chapter.setdefault(path.parent.name, set()).update(len(m) for m in GRADE_RE.findall(source(c)))
    short = {ch: sorted(g) for ch, g in per_chapter.items() if not {1, 2, 3} <= g}
    assert not short, f"chapters whose exercises do not span ★ to ★★★: {short}"
