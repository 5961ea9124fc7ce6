"""The website in a real browser: Chromium, driven by Playwright, on the site served locally.

`make browser` (and `make test`) builds the site and runs this file:
``pytest tests/browser``. The session fixture ``site`` (conftest.py) visits every page
once; each test below checks one promise of the website on that record:

* every page returns 200, and nothing is requested from outside 127.0.0.1;
* no request fails and no script error is logged (any error fails), every page has a favicon;
* no MyST role ({term}, {cite}, {ref}) is left as raw text on any page;
* no page is wider than a 390 px phone; the sidebar toggles work at 390, 800 and 1366 px;
* one search box on a desktop, and the landing tab's title names the course once;
* math is rendered by the local MathJax (no raw ``\\(``, ``\\[`` or ``$$`` left);
* every image loads and every internal link (page, file or ``#anchor``) resolves;
* notebook pages offer the notebook for download and keep solutions collapsed;
* the glossary and the bibliography are complete and linked;
* the search page finds a term, with snippets free of raw LaTeX and of button labels.

Screenshots of the landing page and of a notebook page are saved in test-artifacts/.
"""
from __future__ import annotations

import re
import urllib.request
from urllib.parse import unquote, urldefrag

import pytest
from sitecrawl import (ARTIFACTS, PAGE_TIMEOUT_MS, PHONE, ROOT, SUMMARY, VIEWPORT, local_path,
                       notebook_tag_counts, toc_notebooks)

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
    # Any error fails, including the theme's (sphinx-thebe's duplicate THEBE_JS_URL
    # declaration is removed by tools/course_book.py).
    errors = {rel: rec.console_errors for rel, rec in site.pages.items() if rec.console_errors}
    assert not errors, f"JavaScript errors in the console:\n{_report(errors)}"


def test_every_page_has_the_favicon(site):
    missing = [rel for rel, rec in site.pages.items() if not rec.redirect and not rec.favicon]
    assert not missing, f"pages without <link rel='icon'> (html.favicon in book.yml): {missing}"
    icons = {rec.favicon for rec in site.pages.values() if rec.favicon}
    for icon in icons:
        with urllib.request.urlopen(icon, timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 100, icon


def test_no_raw_myst_markup(site):
    raw = {rel: rec.raw_roles for rel, rec in site.pages.items() if rec.raw_roles}
    assert not raw, ("MyST roles shown as raw text ({term}`x`, {cite}`x`, {ref}`x`...) instead of "
                     f"being rendered:\n{_report(raw)}")


def test_no_page_is_wider_than_a_phone(site):
    wide = {rel: f"{rec.phone_width} px wide; {rec.phone_overflow}"
            for rel, rec in site.pages.items()
            if not rec.redirect and rec.phone_width > PHONE["width"]}
    measured = [rec.phone_width for rec in site.pages.values() if not rec.redirect]
    assert measured and min(measured) > 0, "the phone width was not measured"
    assert not wide, (f"pages that scroll sideways on a {PHONE['width']} px phone (wrap or put "
                      f"the wide element in its own scrolling box, notebooks/_static/course.css):"
                      f"\n{_report(wide)}")


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


# --------------------------------------------------------------------------- controls

def _visible_in_viewport(page, selector: str) -> bool:
    return page.evaluate(
        """sel => { const el = document.querySelector(sel); if (!el) return false;
                    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
                    return box.width > 50 && box.height > 50 && style.visibility !== "hidden"
                           && style.display !== "none" && Number(style.opacity) > 0.5
                           && box.left >= -1 && box.right <= window.innerWidth + 1
                           && box.top < window.innerHeight && box.bottom > 0; }""", selector)


def test_sidebars_open_on_a_phone(site, new_page):
    """At 390 px the ☰ button opens the table of contents, the other one the page contents."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = new_page()
    page.set_viewport_size(PHONE)
    page.goto(site.base_url + "03_attention/01_softmax.html", wait_until="load")
    primary = "#pst-primary-sidebar-modal"
    assert not _visible_in_viewport(page, primary), "the sidebar is open before any click"
    page.locator(".primary-toggle:visible").first.click()
    page.wait_for_function(f"() => document.querySelector('{primary}').open", timeout=5_000)
    page.wait_for_timeout(400)                      # the drawer slides in
    assert _visible_in_viewport(page, primary), "the ☰ button did not show the sidebar"
    chapters = page.locator(f"{primary} a[href*='index.html']:visible").count()
    assert chapters >= 3, f"the open sidebar shows {chapters} chapter links"
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => !document.querySelector('{primary}').open", timeout=5_000)

    secondary = "#pst-secondary-sidebar-modal"
    page.locator(".secondary-toggle:visible").first.click()
    page.wait_for_function(f"() => document.querySelector('{secondary}').open", timeout=5_000)
    page.wait_for_timeout(400)
    assert _visible_in_viewport(page, secondary), "the page-contents button did not open it"
    assert page.locator(f"{secondary} nav a:visible").count() >= 3, "page contents are empty"
    page.keyboard.press("Escape")

    # The landing page with its sidebar open, for the record.
    page.goto(site.base_url + "intro.html", wait_until="load")
    page.locator(".primary-toggle:visible").first.click()
    page.wait_for_function(f"() => document.querySelector('{primary}').open", timeout=5_000)
    page.wait_for_timeout(400)
    assert _visible_in_viewport(page, primary)
    shot = ARTIFACTS / "landing-390-sidebar.png"
    page.screenshot(path=str(shot))
    SUMMARY.append(f"screenshot of intro.html at {PHONE['width']} px, sidebar open: "
                   f"{shot.relative_to(ROOT)}")
    page.close()


@pytest.mark.parametrize("width", [800, 1366])
def test_sidebar_toggle_works_on_wider_screens(site, new_page, width):
    """800 px: the ☰ button opens the sidebar as a drawer; 1366 px: it hides and shows it."""
    page = new_page()
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(site.base_url + "03_attention/01_softmax.html", wait_until="load")
    toggle = page.locator(".primary-toggle:visible").first
    if width < 992:
        toggle.click()
        page.wait_for_function("() => document.querySelector('#pst-primary-sidebar-modal').open",
                               timeout=5_000)
        page.wait_for_timeout(400)
        assert _visible_in_viewport(page, "#pst-primary-sidebar-modal")
    else:
        sidebar = "#pst-primary-sidebar"
        assert _visible_in_viewport(page, sidebar), "the sidebar is not shown on a wide screen"
        toggle.click()
        page.wait_for_timeout(600)                  # the sidebar slides out
        assert not _visible_in_viewport(page, sidebar), "the ☰ button did not hide the sidebar"
        toggle.click()
        page.wait_for_timeout(600)
        assert _visible_in_viewport(page, sidebar), "the ☰ button did not bring it back"
    page.close()


def test_one_search_box_on_a_desktop(site, new_page):
    page = new_page()
    page.set_viewport_size(VIEWPORT)
    page.goto(site.base_url + "03_attention/01_softmax.html", wait_until="load")
    boxes = page.locator(".search-button-field:visible, .search-button:visible, "
                         "form.bd-search:visible, input[type='search']:visible").count()
    page.close()
    assert boxes == 1, f"{boxes} search boxes or buttons are visible on a desktop page"


def test_tab_titles_do_not_repeat_the_course_name(site):
    import yaml

    course = yaml.safe_load((ROOT / "book.yml").read_text(encoding="utf8"))["title"]
    assert site.pages["intro.html"].title == course, site.pages["intro.html"].title
    repeated = [rel for rel, rec in site.pages.items() if rec.title.count(course) > 1]
    assert not repeated, f"tab titles with the course name twice: {repeated}"


# --------------------------------------------------------------------------- search

# The search results once every snippet is in and MathJax has typeset them: for each
# result, its title and snippet as text, with rendered formulas left out.
SEARCH_RESULTS_JS = """
async () => {
  for (let i = 0; i < 300; i++) {
    const status = document.querySelector("#search-results .search-summary, #search-results p");
    if (status && /finished|did not match/i.test(status.textContent)) break;
    await new Promise(r => setTimeout(r, 100));
  }
  const items = () => Array.from(document.querySelectorAll("#search-results ul.search li"));
  for (let i = 0; i < 300 && items().some(li => !li.querySelector("p.context")); i++)
    await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup) {
    await new Promise(r => setTimeout(r, 200));
    await MathJax.startup.promise;
  }
  const text = el => {
    if (!el) return "";
    const copy = el.cloneNode(true);
    copy.querySelectorAll("mjx-container").forEach(m => m.replaceWith("[math]"));
    return copy.textContent.trim();
  };
  return items().map(li => ({href: li.querySelector("a").href, title: text(li.querySelector("a")),
                            snippet: text(li.querySelector("p.context"))}));
}
"""


def _search(page, base_url: str, query: str) -> list[dict]:
    page.goto(base_url + f"search.html?q={query}", wait_until="load")
    page.locator("#search-results ul.search li a").first.wait_for(state="attached",
                                                                  timeout=PAGE_TIMEOUT_MS)
    return page.evaluate(SEARCH_RESULTS_JS)


def test_search_finds_a_term(site, new_page):
    page = new_page()
    results = _search(page, site.base_url, "softmax")
    found = {local_path(r["href"], site.base_url) for r in results}
    assert found & set(site.pages), f"search results point to no page of the site: {found}"
    snippets = [r["snippet"] for r in results]
    assert any("softmax" in s.lower() for s in snippets), f"no snippet shows the word: {snippets}"
    bad = [s for s in snippets
           if not s or s.startswith(".") or "\\(" in s or "\\[" in s or ".pdf" in s[:20]]
    assert not bad, f"search snippets empty, starting with dots, or with raw LaTeX: {bad[:3]}"
    # A title with math ("... removes the $T^2$ memory") is typeset, not raw LaTeX.
    tiling = _search(page, site.base_url, "tiling")
    raw = [r["title"] for r in tiling if "\\(" in r["title"] or "\\(" in r["snippet"]]
    assert not raw, f"raw LaTeX in search results: {raw}"
    assert any("[math]" in r["title"] for r in tiling), "no result title with typeset math"
    page.goto(site.base_url + "search.html?q=zzqxjvkw", wait_until="load")
    page.locator("#search-results p").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator("#search-results ul.search li").count() == 0
    page.close()
    assert not new_page.outside_requests, new_page.outside_requests


# --------------------------------------------------------------------------- screenshots

@pytest.fixture(scope="module")
def screenshots(site, new_page):
    ARTIFACTS.mkdir(exist_ok=True)
    built = [doc for doc in toc_notebooks() if f"{doc}.html" in site.pages]
    assert built, "no notebook of notebooks/_toc.yml has a page: rebuild the site (make book)"
    notebook = next((doc for doc in built if site.pages[f"{doc}.html"].math_total), built[0])
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
