"""tools/slides.py: tagged cells -> one offline reveal.js deck per chapter (fixture notebook)."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "slides_demo.ipynb"
_spec = importlib.util.spec_from_file_location("slides_tool", ROOT / "tools" / "slides.py")
slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slides)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//|import\s+\w+\s+from\s+["']https?://""", re.I)


def test_deck_holds_only_tagged_cells():
    deck = slides.deck_notebook([FIXTURE], "Chapter 0")
    types = [c.metadata["slideshow"]["slide_type"] for c in deck.cells]
    # chapter title, notebook title, then the four tagged cells in order
    assert types == ["slide", "slide", "slide", "fragment", "slide", "subslide"]
    assert deck.cells[0].source == "# Chapter 0" and deck.cells[1].source == "## 0.1 Slides fixture: softmax"
    text = "\n".join(c.source for c in deck.cells)
    assert "stay out of the deck" not in text and "not on a slide" not in text
    assert slides.count_slides(deck) == 5
    figure = deck.cells[4]
    assert figure.cell_type == "code" and "remove-input" in figure.metadata.tags
    assert any("image/png" in o.get("data", {}) for o in figure.outputs)


def test_notebook_without_tags_gives_no_slides(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 9.9 Untagged")])
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert slides.deck_notebook([path], None).cells == []


@pytest.fixture(scope="module")
def deck_html(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("deck")
    path = slides.export(slides.deck_notebook([FIXTURE], "Chapter 0"), out / "demo.slides.html")
    return path.read_text(encoding="utf-8")


def test_export_points_at_local_assets(deck_html):
    assert not EXTERNAL.search(deck_html), EXTERNAL.search(deck_html)
    for local in ('src="_static/jquery.min.js"', 'src="_static/require.js"',
                  '_static/MathJax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe',
                  '"_static/reveal.js/dist/reveal.js"', 'href="_static/reveal.js/dist/theme/white.css"',
                  'href="_static/reveal.js/dist/reveal.css"'):
        assert local in deck_html, local


def test_export_content(deck_html):
    assert deck_html.count("<section") >= 5
    assert r"\mathrm{softmax}(x)_i" in deck_html               # the formula, left to MathJax
    assert "data:image/png;base64," in deck_html               # the figure, embedded
    assert "plt.subplots" not in deck_html                     # its code is not on the slide
    assert 'class="fragment"' in deck_html or "fragment" in deck_html


def test_build_one_deck_per_tagged_chapter(tmp_path, monkeypatch):
    src = tmp_path / "notebooks"
    (src / "07_demo").mkdir(parents=True)
    (src / "08_plain").mkdir()
    shutil.copy(FIXTURE, src / "07_demo" / "01_demo.ipynb")
    (src / "07_demo" / "index.md").write_text("# 7. Demo chapter\n")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 8.1 x")]),
                   src / "08_plain" / "01_x.ipynb")
    monkeypatch.setattr(slides, "fetch_wheels", lambda cache, extra=(): {})
    monkeypatch.setattr(slides, "vendor_assets", lambda static, wheels: static)
    made = slides.build(src, tmp_path / "out")
    assert made == {"07_demo.slides.html": 5}
    assert "7. Demo chapter" in (tmp_path / "out" / "07_demo.slides.html").read_text()


def test_vendored_assets(tmp_path):
    wheels = slides.cached_wheels()
    if wheels is None:
        pytest.skip("the sphinx-revealjs and nbclassic wheels are not on disk: run `make slides` "
                    "(or `make wheelhouse`) once with a package index")
    static = slides.vendor_assets(tmp_path / "_static", wheels)
    for rel in ("reveal.js/dist/reveal.js", "reveal.js/dist/reveal.css", "reveal.js/dist/theme/white.css",
                "reveal.js/plugin/notes/notes.js", "MathJax/MathJax.js",
                "MathJax/config/TeX-AMS-MML_HTMLorMML-full.js", "MathJax/config/Safe.js",
                "require.js", "jquery.min.js"):
        assert (static / rel).is_file(), rel
    assert "2.7.9" in (static / "MathJax" / "MathJax.js").read_text(errors="ignore")
    size = sum(p.stat().st_size for p in static.rglob("*") if p.is_file())
    assert size < 40 * 2**20
    stamp = (static / ".vendored").stat().st_mtime_ns
    slides.vendor_assets(static, wheels)                       # second run: kept, not re-extracted
    assert (static / ".vendored").stat().st_mtime_ns == stamp
