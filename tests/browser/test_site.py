"""The website in a real browser: Chromium, driven by Playwright, on the site served locally.

`make browser` (and `make test`) builds the site and runs this file:
``pytest tests/browser``. The session fixture ``site`` (conftest.py) visits every page
once; each test below checks one promise of the website on that record:

* every page returns 200, and nothing is requested from outside 127.0.0.1;
* no request fails and no script error is logged;
* math is rendered by the local MathJax (no raw ``\\(``, ``\\[`` or ``$$`` left);
* every image loads and every internal link (page, file or ``#anchor``) resolves;
* notebook pages offer the notebook for download and keep solutions collapsed;
* the glossary and the bibliography are complete and linked;
* the search page finds a term.

Screenshots of the landing page and of a notebook page are saved in test-artifacts/.
"""
from __future__ import annotations

import re
import urllib.request
from urllib.parse import unquote, urldefrag

import pytest
from sitecrawl import (ARTIFACTS, PAGE_TIMEOUT_MS, ROOT, SUMMARY, TOLERATED_CONSOLE_ERRORS,
                       local_path, notebook_tag_counts, toc_notebooks)

BIB = ROOT / "notebooks" / "references.bib"


def _report(problems: dict) -> str:
    return "\n".join(f"  {page}: {what}" for page, what in sorted(problems.items()))


# --------------------------------------------------------------------------- pages and requests

def test_every_page_returns_200(site):
    assert len(site.pages) >= 5, f"only {len(site.pages)} pages in the site"
    bad = {rel: rec.status for rel, rec in site.pages.items() if rec.status != 200}
    assert not bad, f"pages that did not return 200:\n{_report(bad)}"
    assert site.pages["index.html"].redirect == "intro.html", "index.html must lead to intro.html"


def test_every_toc_page_was_built(site):
    missing = [doc for doc in toc_notebooks() if f"{doc}.html" not in site.pages]
    assert not missing, f"notebooks in the toc with no page in _build/html: {missing}"


def test_no_request_leaves_the_site(site):
    assert not site.outside_requests, (
        "the website requested something outside 127.0.0.1 (blocked by the test):\n  "
        + "\n  ".join(sorted(set(site.outside_requests))))


def test_no_request_fails(site):
    assert not site.failed_requests, ("requests that failed or returned an error:\n  "
                                      + "\n  ".join(sorted(set(site.failed_requests))))


def test_no_console_errors(site):
    errors = {}
    for rel, rec in site.pages.items():
        bad = [e for e in rec.console_errors
               if not any(ok in e for ok in TOLERATED_CONSOLE_ERRORS)]
        if bad:
            errors[rel] = bad
    assert not errors, f"JavaScript errors in the console:\n{_report(errors)}"


# --------------------------------------------------------------------------- math, images, links

def test_math_is_rendered(site):
    pages_with_math = [rec for rec in site.pages.values() if rec.math_total]
    assert pages_with_math, "no page has any math: is the site built from the notebooks?"
    problems = {}
    for rel, rec in site.pages.items():
        issues = []
        if rec.math_unrendered:
            issues.append(f"{rec.math_unrendered} of {rec.math_total} formulas not rendered")
        if rec.mathjax_errors:
            issues.append(f"MathJax errors {rec.mathjax_errors}")
        if rec.raw_delimiters:
            issues.append(f"raw LaTeX delimiters in the text: {rec.raw_delimiters}")
        if issues:
            problems[rel] = "; ".join(issues)
    assert not problems, f"math not rendered:\n{_report(problems)}"
    assert sum(rec.mathjax_containers for rec in site.pages.values()) >= 50


def test_every_image_loads(site):
    images = [img for rec in site.pages.values() for img in rec.images]
    assert any("_images/" in img["src"] for img in images), "no notebook plot on any page"
    broken = {rel: [img["src"][:100] for img in rec.images
                    if not img["complete"] or img["width"] == 0]
              for rel, rec in site.pages.items()}
    broken = {rel: srcs for rel, srcs in broken.items() if srcs}
    assert not broken, f"images that did not load:\n{_report(broken)}"


def test_every_internal_link_resolves(site, site_dir):
    checked_files: dict[str, int] = {}
    problems = {}
    n_links = 0
    for rel, rec in site.pages.items():
        bad = []
        for url in rec.links:
            if url.startswith("file:"):
                bad.append(f"{url} (a file: link)")
                continue
            target = local_path(url, site.base_url)
            if target is None:           # another site (a DOI, arXiv...) or mailto: - not followed
                continue
            n_links += 1
            fragment = unquote(urldefrag(url)[1])
            if target in site.pages:
                if fragment and fragment not in site.pages[target].ids:
                    bad.append(f"{url} (no element with id {fragment!r} on {target})")
                continue
            if target not in checked_files:    # a notebook download, an image, ...
                try:
                    with urllib.request.urlopen(urldefrag(url)[0], timeout=10) as response:
                        checked_files[target] = response.status
                except Exception as error:  # noqa: BLE001 - reported below
                    checked_files[target] = getattr(error, "code", -1)
            if checked_files[target] != 200:
                bad.append(f"{url} (HTTP {checked_files[target]})")
        if bad:
            problems[rel] = bad
    assert n_links > 100, f"only {n_links} internal links found"
    assert not problems, f"internal links that do not resolve:\n{_report(problems)}"


# --------------------------------------------------------------------------- notebook pages

def test_notebook_pages_offer_the_notebook_for_download(site):
    notebooks = toc_notebooks()
    assert notebooks, "no notebooks in notebooks/_toc.yml"
    missing = [doc for doc in notebooks
               if not any(link.endswith(f"_sources/{doc}.ipynb")
                          for link in site.pages[f"{doc}.html"].download_links)]
    assert not missing, f"pages without a 'download .ipynb' button: {missing}"


def test_solutions_and_long_outputs_are_collapsed(site):
    problems, n_collapsed = {}, 0
    for doc in toc_notebooks():
        rendered = site.pages[f"{doc}.html"].collapsibles
        for tag, expected in notebook_tag_counts(doc).items():
            states = rendered.get(tag, [])
            n_collapsed += sum(states)
            if len(states) != expected or not all(states):
                problems[f"{doc} [{tag}]"] = (f"{expected} tagged cells in the notebook, "
                                              f"{len(states)} on the page, {sum(states)} collapsed")
    assert n_collapsed > 0, "no collapsed solution on any notebook page"
    assert not problems, f"tagged cells not collapsed on the page:\n{_report(problems)}"


def test_a_collapsed_solution_opens(site, new_page):
    doc = next(d for d in toc_notebooks() if notebook_tag_counts(d)["hide-cell"])
    page = new_page()
    page.goto(site.base_url + f"{doc}.html", wait_until="load")
    cell = page.locator(".cell.tag_hide-cell").first
    code = cell.locator(".cell_input")
    assert not code.is_visible(), "a solution is visible before it is opened"
    cell.locator("summary").click()
    code.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
    page.close()


# --------------------------------------------------------------------------- landing, glossary, bibliography

def test_landing_page_introduces_the_course_and_its_chapters(site):
    landing = site.pages["intro.html"]
    chapter_pages = sorted({f"{doc.rsplit('/', 1)[0]}/index.html" for doc in toc_notebooks()})
    linked = {local_path(url, site.base_url) for url in landing.content_links}
    unlinked = [page for page in chapter_pages if page not in linked]
    assert not unlinked, (f"chapter pages not linked from the landing page's text "
                          f"(add them to the chapter table in notebooks/intro.md): {unlinked}")
    for anchor in ("who-this-course-is-for", "for-instructors"):
        assert anchor in landing.ids, f"landing page section #{anchor} is missing"


def test_glossary_is_bilingual_and_linked(site):
    glossary = site.pages["glossary.html"]
    for term in ("term-self-attention", "term-multi-head-attention", "term-positional-encoding"):
        assert term in glossary.ids, f"glossary entry {term} missing"
    linked_terms = {urldefrag(url)[1] for rec in site.pages.values() for url in rec.content_links
                    if local_path(url, site.base_url) == "glossary.html"}
    assert "term-self-attention" in linked_terms, "no page links to the glossary's self-attention"
    assert len(linked_terms) >= 5, f"only {len(linked_terms)} glossary terms linked from pages"


def test_glossary_page_shows_the_chinese_terms(site, new_page):
    page = new_page()
    page.goto(site.base_url + "glossary.html", wait_until="load")
    text = page.locator("article").inner_text()
    page.close()
    for chinese in ("自注意力", "多头注意力", "位置编码", "词嵌入"):
        assert chinese in text, f"{chinese} missing from the glossary page"


def test_bibliography_lists_every_entry(site, new_page):
    n_entries = len(re.findall(r"^@(?!comment|string|preamble)\w+\s*\{", BIB.read_text("utf8"),
                               re.MULTILINE | re.IGNORECASE))
    page = new_page()
    page.goto(site.base_url + "bibliography.html", wait_until="load")
    shown = page.locator(".citation").count()
    page.close()
    assert shown == n_entries, f"{shown} entries on the bibliography page, {n_entries} in {BIB.name}"
    cited = [url for rec in site.pages.values() for url in rec.content_links
             if local_path(url, site.base_url) == "bibliography.html" and urldefrag(url)[1]]
    assert cited, "no page cites the bibliography"


# --------------------------------------------------------------------------- search

def test_search_finds_a_term(site, new_page):
    page = new_page()
    page.goto(site.base_url + "search.html?q=softmax", wait_until="load")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
    found = {local_path(href, site.base_url)
             for href in results.evaluate_all("links => links.map(a => a.href)")}
    assert found & set(site.pages), f"search results point to no page of the site: {found}"
    page.goto(site.base_url + "search.html?q=zzqxjvkw", wait_until="load")
    page.locator("#search-results p").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator("#search-results ul.search li").count() == 0
    page.close()
    assert not new_page.outside_requests, new_page.outside_requests


# --------------------------------------------------------------------------- screenshots

@pytest.fixture(scope="module")
def screenshots(site, new_page):
    ARTIFACTS.mkdir(exist_ok=True)
    notebook = next((doc for doc in toc_notebooks() if site.pages[f"{doc}.html"].math_total),
                    toc_notebooks()[0])
    shots = {"landing.png": "intro.html", "notebook.png": f"{notebook}.html"}
    page = new_page()
    for name, rel in shots.items():
        page.goto(site.base_url + rel, wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.screenshot(path=str(ARTIFACTS / name), full_page=(name == "landing.png"))
        SUMMARY.append(f"screenshot of {rel}: {(ARTIFACTS / name).relative_to(ROOT)}")
    page.close()
    return [ARTIFACTS / name for name in shots]


def test_screenshots_are_saved(screenshots):
    for path in screenshots:
        assert path.is_file() and path.stat().st_size > 10_000, f"{path} is missing or blank"
