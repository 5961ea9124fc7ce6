"""Sphinx extension loaded by book.yml: make ``--toc notebooks/_toc.yml`` work.

Jupyter Book 1.0.4 checks the ``--toc`` path relative to the current directory, but
passes it on unchanged to sphinx-external-toc, which resolves a relative path
against the *source* folder (``notebooks/``) and so looks for
``notebooks/notebooks/_toc.yml``. This handler runs before sphinx-external-toc's
(priority 100 < 900) and turns such a path into an absolute one. Paths that already
work (absolute, or relative to the source folder) are left alone.
"""
from __future__ import annotations

from pathlib import Path


def _resolve_toc_path(app, config) -> None:
    toc = Path(config.external_toc_path)
    if toc.is_absolute() or (Path(app.srcdir) / toc).is_file():
        return
    if toc.is_file():                      # relative to the directory the build was started in
        config.external_toc_path = toc.resolve().as_posix()


def setup(app):
    app.connect("config-inited", _resolve_toc_path, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
