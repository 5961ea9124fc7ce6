"""Checks of the website's sources that run in a second, without building the book.

`make book` (Jupyter Book 1.0.4 with -W) is the real test of the website; these tests
catch the common mistakes earlier and with a clearer message:

* a notebook or page that is missing from notebooks/_toc.yml (with
  ``only_build_toc_files`` it would silently vanish from the site), or a toc entry
  whose file does not exist;
* a ``{cite}`key` `` whose key is not in notebooks/references.bib, or a
  ``{term}`name` `` that the glossary does not define;
* a book.yml that would execute notebooks at build time or load MathJax from a CDN;
* the website's own fixes: a favicon, one search box, the course's script and style sheet
  (notebooks/_static/), and tools/course_book.py dropping thebe's scripts and repeats.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
TOC = NB_DIR / "_toc.yml"
BOOK_YML = ROOT / "book.yml"
BIB = NB_DIR / "references.bib"
GLOSSARY = NB_DIR / "glossary.md"
SKIP_PARTS = {"_build", ".ipynb_checkpoints"}
MATHJAX_OFFLINE = "sphinx-mathjax-offline"   # the extension's import name has hyphens

# {cite}`a`, {cite:p}`a,b`, {cite:t}`a` ... (sphinxcontrib-bibtex roles in MyST)
CITE_RE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
# {term}`self-attention` or {term}`heads <multi-head attention>`
TERM_RE = re.compile(r"\{term\}`([^`]+)`")
BIB_KEY_RE = re.compile(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


# --------------------------------------------------------------------------- helpers

def source_files(folder: Path, suffix: str) -> list[Path]:
    """Files with `suffix` under `folder`, ignoring build output and checkpoints."""
    return sorted(p for p in folder.rglob(f"*{suffix}")
                  if not SKIP_PARTS.intersection(p.relative_to(folder).parts))


def toc_entries(toc: dict) -> list[str]:
    """Every `file:` of a jb-book table of contents (root included), in order."""
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def docname(path: Path, folder: Path = NB_DIR) -> str:
    """notebooks/03_attention/01_softmax.ipynb -> '03_attention/01_softmax'."""
    return path.relative_to(folder).with_suffix("").as_posix()


def markdown_texts(folder: Path = NB_DIR) -> dict[str, str]:
    """Markdown of every .md page and of every notebook's markdown cells, by file."""
    texts = {}
    for page in source_files(folder, ".md"):
        texts[str(page.relative_to(folder))] = page.read_text(encoding="utf8")
    for nb_path in source_files(folder, ".ipynb"):
        nb = json.loads(nb_path.read_text(encoding="utf8"))
        cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
        texts[str(nb_path.relative_to(folder))] = "\n\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells)
    return texts


def cited_keys(text: str) -> set[str]:
    """Keys cited with {cite}`a,b` (or {cite:p}, {cite:t}, ...) in MyST text."""
    return {key.strip() for group in CITE_RE.findall(text) for key in group.split(",")
            if key.strip()}


def bib_keys(text: str) -> list[str]:
    """Entry keys of a .bib file, in order (duplicates kept, @comment/@string skipped)."""
    return [key for kind, key in BIB_KEY_RE.findall(text)
            if kind.lower() not in {"comment", "string", "preamble"}]


def glossary_terms(text: str) -> set[str]:
    """Terms (lower case) defined in the ```{glossary} block of a MyST page."""
    match = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "no ```{glossary} block found"
    terms = set()
    for line in match.group(1).splitlines():
        if line.strip() and not line[0].isspace() and not line.startswith(":"):
            terms.add(line.strip().lower())
    return terms


def term_targets(text: str) -> set[str]:
    """Glossary entries referred to with {term}`x` or {term}`label <x>` (lower case)."""
    targets = set()
    for body in TERM_RE.findall(text):
        m = re.fullmatch(r"(?s).*<([^<>]+)>\s*", body)
        targets.add((m.group(1) if m else body).strip().lower())
    return targets


@pytest.fixture(scope="module")
def toc() -> dict:
    return yaml.safe_load(TOC.read_text(encoding="utf8"))


@pytest.fixture(scope="module")
def book() -> dict:
    return yaml.safe_load(BOOK_YML.read_text(encoding="utf8"))


# --------------------------------------------------------------------------- (a) toc

def test_toc_is_a_jupyter_book(toc):
    assert toc.get("format") == "jb-book", "notebooks/_toc.yml must use `format: jb-book`"
    assert toc.get("root") == "intro"


def test_every_toc_entry_exists(toc):
    entries = toc_entries(toc)
    assert len(entries) == len(set(entries)), f"duplicate toc entries: {entries}"
    missing = [e for e in entries
               if not any((NB_DIR / f"{e}{suffix}").is_file() for suffix in (".ipynb", ".md"))]
    assert not missing, f"toc entries with no .ipynb or .md file under notebooks/: {missing}"


def test_every_notebook_and_page_is_in_the_toc(toc):
    listed = set(toc_entries(toc))
    sources = source_files(NB_DIR, ".ipynb") + source_files(NB_DIR, ".md")
    assert sources, "no notebooks or pages found under notebooks/"
    unlisted = [str(p.relative_to(ROOT)) for p in sources if docname(p) not in listed]
    assert not unlisted, (f"not listed in notebooks/_toc.yml, so missing from the website: "
                          f"{unlisted}")


def test_toc_helpers_catch_mistakes(tmp_path):
    """The helpers above really find nested entries and unlisted notebooks."""
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "c", "chapters": [
               {"file": "ch/index", "sections": [{"file": "ch/01_a"}, {"url": "https://x"}]}]}]}
    assert toc_entries(toc) == ["intro", "ch/index", "ch/01_a"]
    (tmp_path / "ch" / ".ipynb_checkpoints").mkdir(parents=True)
    for rel in ("ch/01_a.ipynb", "ch/02_b.ipynb", "ch/.ipynb_checkpoints/01_a-checkpoint.ipynb"):
        (tmp_path / rel).write_text("{}")
    found = [docname(p, tmp_path) for p in source_files(tmp_path, ".ipynb")]
    assert found == ["ch/01_a", "ch/02_b"]
    assert [d for d in found if d not in toc_entries(toc)] == ["ch/02_b"]


# --------------------------------------------------------------------------- (b) citations, glossary

def test_bibliography_keys_are_unique_and_complete():
    text = BIB.read_text(encoding="utf8")
    keys = bib_keys(text)
    assert len(keys) >= 30, f"only {len(keys)} entries in {BIB.name}"
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys in {BIB.name}: {duplicates}"
    for entry in re.split(r"^@", text, flags=re.MULTILINE)[1:]:
        key = entry.split("{", 1)[1].split(",", 1)[0].strip()
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", entry, re.MULTILINE), f"{key}: no {field}"


def test_every_citation_is_in_the_bibliography():
    known = set(bib_keys(BIB.read_text(encoding="utf8")))
    unknown = {name: sorted(cited_keys(text) - known)
               for name, text in markdown_texts().items()}
    unknown = {name: keys for name, keys in unknown.items() if keys}
    assert not unknown, f"citations with no entry in notebooks/references.bib: {unknown}"


def test_every_glossary_reference_is_defined():
    terms = glossary_terms(GLOSSARY.read_text(encoding="utf8"))
    undefined = {name: sorted(term_targets(text) - terms)
                 for name, text in markdown_texts().items()}
    undefined = {name: t for name, t in undefined.items() if t}
    assert not undefined, f"{{term}} references that notebooks/glossary.md lacks: {undefined}"


def test_glossary_is_bilingual():
    terms = glossary_terms(GLOSSARY.read_text(encoding="utf8"))
    for english, chinese in [("self-attention", "自注意力"), ("multi-head attention", "多头注意力"),
                             ("positional encoding", "位置编码"), ("mask", "掩码"),
                             ("word embedding", "词嵌入"), ("kv cache", "键值缓存")]:
        assert english in terms and chinese in terms, (english, chinese)


def test_citation_and_term_parsers():
    text = ("See {cite}`vaswani2017attention`, {cite:p}`a, b` and {cite:t}`c`; "
            "{term}`self-attention` and {term}`heads <multi-head attention>`.")
    assert cited_keys(text) == {"vaswani2017attention", "a", "b", "c"}
    assert term_targets(text) == {"self-attention", "multi-head attention"}
    assert bib_keys("@article{x1,\n title={T}}\n@comment{skip,}\n@Book{ y2 ,}") == ["x1", "y2"]


# --------------------------------------------------------------------------- (c) book.yml

def test_book_serves_mathjax_locally(book):
    extensions = (book.get("sphinx") or {}).get("extra_extensions") or []
    assert MATHJAX_OFFLINE in extensions, (
        f"book.yml must list {MATHJAX_OFFLINE!r} in sphinx.extra_extensions "
        "(otherwise MathJax is loaded from a CDN and math shows as raw LaTeX offline)")
    config = (book.get("sphinx") or {}).get("config") or {}
    assert "mathjax_path" not in config, "mathjax_path would override the offline MathJax"


def test_mathjax_offline_extension_is_importable():
    pytest.importorskip("jupyter_book", reason="book extras not installed")
    assert importlib.util.find_spec(MATHJAX_OFFLINE) is not None, (
        "install it with: pip install sphinx-mathjax-offline==0.0.2")


def test_book_does_not_execute_notebooks(book):
    mode = (book.get("execute") or {}).get("execute_notebooks")
    # YAML 1.1 reads a bare `off` as False; Jupyter Book treats both as "off".
    assert mode in ("off", False), f"execute.execute_notebooks is {mode!r}, expected 'off'"


def test_book_needs_no_network(book):
    launch = book.get("launch_buttons") or {}
    for key in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url"):
        assert not launch.get(key), f"launch_buttons.{key} would send readers online"
    assert launch.get("thebe") is False, "launch_buttons.thebe must be false"
    html = book.get("html") or {}
    assert not (html.get("analytics") or {}).get("google_analytics_id")
    assert book.get("only_build_toc_files") is True


def test_book_paths_resolve(book):
    # sphinxcontrib-bibtex resolves bib files against the source folder notebooks/.
    for bib in book.get("bibtex_bibfiles") or []:
        assert (NB_DIR / bib).is_file(), f"bibtex file {bib} not found in notebooks/"
    # local extensions are found relative to book.yml's folder.
    for module, folder in ((book.get("sphinx") or {}).get("local_extensions") or {}).items():
        assert (ROOT / folder / f"{module}.py").is_file(), f"{folder}/{module}.py missing"


# --------------------------------------------------------------------------- (d) website fixes

def test_book_has_a_favicon_and_its_own_assets(book):
    favicon = (book.get("html") or {}).get("favicon")
    assert favicon and (NB_DIR / favicon).is_file(), f"html.favicon {favicon!r} not in notebooks/"
    # notebooks/_static/*.css and *.js are loaded on every page (Jupyter Book adds them).
    for name in ("course.css", "course.js"):
        assert (NB_DIR / "_static" / name).is_file(), f"notebooks/_static/{name} is missing"
    sidebars = ((book.get("sphinx") or {}).get("config") or {}).get("html_sidebars") or {}
    assert all("search-field.html" not in items and "search-button-field.html" not in items
               for items in sidebars.values()), "a second search box in the sidebar"


def _course_book():
    spec = importlib.util.spec_from_file_location("course_book", ROOT / "tools" / "course_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_course_book_drops_thebe_and_repeated_scripts():
    class Script(str):
        def __new__(cls, filename, body=""):
            obj = super().__new__(cls, filename or "")
            obj.filename, obj.attributes = filename, ({"body": body} if body else {})
            return obj

    thebe_body = 'const THEBE_JS_URL = "https://unpkg.com/thebe"'
    scripts = [Script("doctools.js"), Script(None, thebe_body), Script("sphinx-thebe.js"),
               Script(None, "var x = 1;"), Script(None, "var x = 1;"), Script(None, thebe_body),
               Script("_static/course.js?v=1")]
    kept = _course_book().clean_assets(scripts)
    assert [(s.filename, s.attributes.get("body", "")) for s in kept] == [
        ("doctools.js", ""), (None, "var x = 1;"), ("_static/course.js?v=1", "")]
    assert _course_book().clean_assets(["a.css", "sphinx-thebe.css", "a.css"]) == ["a.css"]
