"""Local Sphinx extension of the course website (listed in book.yml, sphinx.local_extensions).

Three things the configuration alone cannot do in Jupyter Book 1.0.4:

* **MathJax on every page.** Sphinx adds MathJax only to pages that contain an equation.
  But a notebook title can hold math ("... removes the $T^2$ memory"), and titles are
  repeated in the navigation sidebar of *every* page, so pages without equations of their
  own (search, index, bibliography) would show the raw LaTeX ``\\(T^2\\)`` there. The
  "always" assets policy makes every page load the local MathJax (sphinx-mathjax-offline).
* **No thebe.** Jupyter Book always loads sphinx-thebe (live code cells run by a remote
  Binder kernel). The course has no such button (``launch_buttons.thebe: false``), yet
  sphinx-thebe 0.3.1 still adds its scripts, and with the "always" policy the inline one
  twice, so every page logged "Identifier 'THEBE_JS_URL' has already been declared". The
  thebe scripts and style sheet are dropped from every page, and any other script that
  would be included twice is included once.
* **The landing page's tab title.** Its heading is the course's name, and Sphinx's page
  template appends the site title to every page title, so the tab read
  "<course> — <course>". The template sets that suffix itself, so the landing page's HTML
  is corrected once written: its tab shows the course's name once.
"""
from __future__ import annotations

import html
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

THEBE_FILES = ("sphinx-thebe.js", "sphinx-thebe.css")
THEBE_BODY_MARKER = "THEBE_JS_URL"


def _asset_key(asset) -> tuple:
    """What makes two script or style-sheet entries the same (file name and inline body)."""
    filename = getattr(asset, "filename", asset)
    attributes = getattr(asset, "attributes", {}) or {}
    return (str(filename), str(attributes.get("body", "")))


def _is_thebe(asset) -> bool:
    filename, body = _asset_key(asset)
    return filename.split("?")[0].endswith(THEBE_FILES) or THEBE_BODY_MARKER in body


def clean_assets(assets: list) -> list:
    """`assets` without thebe's entries and without repeats, in the original order."""
    seen, kept = set(), []
    for asset in assets:
        key = _asset_key(asset)
        if _is_thebe(asset) or key in seen:
            continue
        seen.add(key)
        kept.append(asset)
    return kept


def on_page_context(app, pagename, templatename, context, doctree):
    for name in ("script_files", "css_files"):
        if name in context:
            context[name] = clean_assets(context[name])


def fix_landing_title(app, exception):
    """Write the landing page's <title> as "<course>" instead of "<course> — <course>"."""
    if exception is not None or app.builder.format != "html":
        return
    page = Path(app.outdir) / f"{app.config.root_doc}{app.builder.out_suffix}"
    if not page.is_file():
        return
    title = html.escape(app.config.html_title, quote=False)
    text = page.read_text(encoding="utf8")
    repeated = f"<title>{title} &#8212; {title}</title>"
    if repeated in text:
        page.write_text(text.replace(repeated, f"<title>{title}</title>"), encoding="utf8")
    elif f"<title>{title}</title>" not in text:
        LOGGER.warning("course_book: the landing page's <title> is neither %r nor the course's "
                       "name; update fix_landing_title for the theme's new template", repeated)


def setup(app):
    app.set_html_assets_policy("always")
    # After sphinx-book-theme and pydata-sphinx-theme (default priority 500) have added theirs.
    app.connect("html-page-context", on_page_context, priority=900)
    app.connect("build-finished", fix_landing_title)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
