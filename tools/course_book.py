"""Local Sphinx extension of the course website (listed in book.yml, sphinx.local_extensions).

Sphinx adds MathJax only to pages that contain an equation. But a notebook title can hold
math ("... removes the $T^2$ memory"), and titles are repeated in the navigation sidebar
of *every* page, so pages without equations of their own (search, index, bibliography)
would show the raw LaTeX ``\\(T^2\\)`` there. The "always" assets policy makes every page
load the local MathJax (sphinx-mathjax-offline), so the sidebar renders everywhere.
"""
from __future__ import annotations


def setup(app):
    app.set_html_assets_policy("always")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
