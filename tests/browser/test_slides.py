"""A slide deck in Chromium, opened from file:// with the network blocked (run by `make browser`).

Builds the deck of tests/fixtures/slides_demo.ipynb with tools/slides.py into a temporary folder,
opens it from file://, and checks that reveal.js starts, MathJax typesets the formula, the right
arrow key advances, and no request goes anywhere but file:// or 127.0.0.1. Self-contained: its
own fixtures (the folder's conftest serves the website, which this test does not need).
Skipped without Chromium (failing in CI) or without the two wheels the assets come from.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "slides_demo.ipynb"
_spec = importlib.util.spec_from_file_location("slides_tool", ROOT / "tools" / "slides.py")
slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slides)


SECTIONS = ".reveal .slides section"
CURRENT = ("() => Array.from(document.querySelectorAll('.reveal .slides > section'))"
           ".findIndex(s => s.classList.contains('present'))")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> Path:
    wheels = slides.cached_wheels()
    if wheels is None:
        msg = "the sphinx-revealjs/nbclassic wheels are not on disk: run `make slides` once"
        pytest.fail(msg) if _ci() else pytest.skip(msg)
    out = tmp_path_factory.mktemp("slides")
    slides.vendor_assets(out / "_static", wheels)
    return slides.export(slides.deck_notebook([FIXTURE], "Chapter 0"), out / "demo.slides.html")


@pytest.fixture(scope="module")
def chromium(browser):
    """The session's Chromium (conftest.py; skipped without it, failing in CI): one Playwright
    per pytest process, since a second sync_playwright() in the same thread fails."""
    return browser


def _local(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme in ("file", "data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


def test_deck_offline(deck, chromium):
    outside, errors = [], []
    context = chromium.new_context(viewport={"width": 1280, "height": 720})

    def route(r):
        if _local(r.request.url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}")
            if _local(r.url) and not r.url.startswith("about:") else None)
    page.goto(deck.as_uri(), wait_until="load", timeout=60_000)
    # The template loads reveal.js through require.js (no global Reveal): reveal.js marks its root
    # element "ready" once initialised.
    page.wait_for_function("() => document.querySelector('.reveal.ready') !== null", timeout=60_000)
    assert page.evaluate(f"() => document.querySelectorAll({SECTIONS!r}).length") >= 5
    # MathJax 2: wait for the typesetting queue, then look for typeset output.
    page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue && "
                           "MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML, "
                           ".MathJax_SVG').length > 0", timeout=60_000)
    assert page.evaluate("() => MathJax.version") == "2.7.9"
    assert page.evaluate("() => document.querySelectorAll('.MathJax_Error, "
                         "merror').length") == 0
    before = page.evaluate(CURRENT)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => ({CURRENT})() === {before + 1}", timeout=10_000)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => ({CURRENT})() === {before + 2}", timeout=10_000)
    theme = page.evaluate("() => document.getElementById('theme').getAttribute('href')")
    assert theme.endswith("theme/white.css")
    if (ROOT / "test-artifacts").is_dir():
        page.keyboard.press("Home")
        page.wait_for_timeout(300)
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(800)
        page.screenshot(path=str(ROOT / "test-artifacts" / "slides-demo.png"))
    context.close()
    assert outside == [], f"requests left file:// / 127.0.0.1: {outside}"
    assert not errors, errors
