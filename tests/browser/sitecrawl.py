"""Visit every page of the built website in Chromium and record what the browser saw.

Used by the browser test (conftest.py, test_site.py). One pass over the site collects,
page by page: the HTTP status, console errors, formulas written by Sphinx and rendered
by MathJax, LaTeX delimiters and MyST roles left in the text, images, links, element ids,
collapsed cells, download buttons, the favicon, and the page's width at 390 px (a phone). Every request goes through a route that lets only
127.0.0.1 through; anything else is recorded and blocked, so a page that would reach
the internet fails the test instead of hanging or silently using a CDN.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}      # every page is also laid out at a phone's width
PAGE_TIMEOUT_MS = 30_000          # one navigation, or one wait on a page
SITE_BUDGET_S = 600               # the whole crawl: a hang guard (about a minute on an idle machine)
REFRESH_RE = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.IGNORECASE)
COLLAPSING_TAGS = ("hide-cell", "hide-input", "hide-output")

# Lines for the end of the pytest report (page count, time, screenshots).
SUMMARY: list[str] = []


@dataclass
class PageRecord:
    """What the browser saw on one page."""
    url: str
    status: int | None = None
    redirect: str | None = None      # where a meta-refresh page (index.html) leads
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    math_total: int = 0              # span.math / div.math elements written by Sphinx
    math_unrendered: int = 0         # of those, how many hold no MathJax output
    mathjax_containers: int = 0
    mathjax_errors: list[str] = field(default_factory=list)
    raw_delimiters: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)          # absolute hrefs, resolved by the browser
    content_links: list[str] = field(default_factory=list)  # the same, inside the article only
    ids: set[str] = field(default_factory=set)
    collapsibles: dict = field(default_factory=dict)        # tag -> [collapsed?, ...] per cell
    download_links: list[str] = field(default_factory=list)
    raw_roles: list[str] = field(default_factory=list)      # MyST roles left as text ({term}...)
    favicon: str = ""                                         # href of <link rel="icon">
    phone_width: int = 0              # document scrollWidth with a 390 px wide viewport
    phone_overflow: list[str] = field(default_factory=list)  # what sticks out at 390 px


@dataclass
class SiteRecord:
    base_url: str
    pages: dict[str, PageRecord]     # path relative to the site root -> record
    outside_requests: list[str]      # requests to any host but 127.0.0.1 (blocked)
    failed_requests: list[str]       # network failures and HTTP >= 400
    seconds: float


# Run in the page once MathJax has finished: everything the tests check, in one call.
INSPECT_JS = r"""
async () => {
  // Load every image now (some may be lazy), then report which ones failed.
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.decode().catch(() => null)));
  await document.fonts.ready;      // MathJax's web fonts, requested after typesetting

  // Text outside code, scripts and rendered math must not contain LaTeX delimiters.
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, textarea, mjx-container, .MathJax")
       .forEach(el => el.remove());
  const text = clone.textContent;
  const raw = [];
  for (const delim of ["\\(", "\\)", "\\[", "\\]", "$$"]) {
    const i = text.indexOf(delim);
    if (i >= 0) raw.push(delim + " in: " + text.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, " "));
  }

  // MyST roles that were not rendered: "{term}`x`" as text (inline code included, code
  // blocks not: a notebook may print such text in a cell).
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll("pre, script, style, textarea").forEach(el => el.remove());
  const roles = [];
  const roleRe = /\{(term|cite|ref|doc|numref|eq)(:[a-z]+)?\}/g;
  for (const m of prose.textContent.matchAll(roleRe))
    roles.push(prose.textContent.slice(Math.max(0, m.index - 30), m.index + 50).replace(/\s+/g, " "));

  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  const tags = {};
  for (const tag of TAGS) {
    tags[tag] = Array.from(document.querySelectorAll(".cell.tag_" + tag)).map(cell => {
      const details = cell.querySelector("details");
      return details !== null && !details.open;
    });
  }
  const hrefs = sel => Array.from(document.querySelectorAll(sel)).map(a => a.href);
  return {
    title: document.title,
    math_total: math.length,
    math_unrendered: math.filter(el => !el.querySelector("mjx-container")).length,
    mathjax_containers: document.querySelectorAll("mjx-container").length,
    mathjax_errors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
                         .map(el => el.getAttribute("data-mjx-error") || el.textContent).slice(0, 5),
    raw_delimiters: raw,
    images: imgs.map(img => ({src: img.currentSrc || img.src, complete: img.complete,
                              width: img.naturalWidth})),
    links: hrefs("a[href]"),
    content_links: hrefs("article a[href]"),
    ids: Array.from(document.querySelectorAll("[id], a[name]")).map(el => el.id || el.name),
    collapsibles: tags,
    download_links: hrefs(".dropdown-download-buttons a[href]"),
    raw_roles: roles.slice(0, 5),
    favicon: (document.querySelector("link[rel~='icon']") || {}).href || "",
  };
}
""".replace("TAGS", json.dumps(COLLAPSING_TAGS))

# With the viewport at a phone's width: how wide the page is, and the outermost elements
# that stick out to the right (those not inside a box that scrolls or clips them).
PHONE_WIDTH_JS = r"""
() => {
  const width = document.documentElement.clientWidth;
  const contained = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX !== "visible" || style.position === "fixed") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("article *")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1 && !contained(el)
        && !(el.parentElement && el.parentElement.getBoundingClientRect().right > width + 1))
      out.push(`<${el.tagName.toLowerCase()} class="${el.className}"> ${Math.round(box.right)} px: `
               + (el.textContent || "").trim().slice(0, 60).replace(/\s+/g, " "));
  }
  return {width: document.documentElement.scrollWidth, overflow: out.slice(0, 5)};
}
"""

# Resolves once MathJax has typeset the page ("no MathJax" on pages that do not load it).
WAIT_FOR_MATHJAX_JS = """
async () => {
  if (!window.MathJax) return "no MathJax";
  for (let i = 0; i < 200 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(MathJax.startup && MathJax.startup.promise)) return "MathJax never started";
  await MathJax.startup.promise;
  return "ok";
}
"""


# --------------------------------------------------------------------------- server

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):   # noqa: A002 - the base class's signature
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The browser drops connections it no longer needs when it leaves a page.
        pass


@contextmanager
def serve(directory: Path):
    """Serve `directory` on http://127.0.0.1:PORT/ (a free port) from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- browser

def local_only_context(browser, outside: list[str]):
    """A browser context that lets only 127.0.0.1 through; other requests go to `outside`."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    context.set_default_timeout(PAGE_TIMEOUT_MS)

    def route(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    return context


def html_pages(site_dir: Path) -> list[str]:
    """Every HTML page of the site (theme templates under _static/ excluded)."""
    return sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*.html")
                  if p.relative_to(site_dir).parts[0] not in ("_static", "_sources"))


def local_path(url: str, base_url: str) -> str | None:
    """'http://127.0.0.1:P/a/b.html#x' -> 'a/b.html'; None for any other site."""
    if not url.startswith(base_url):
        return None
    path = urlsplit(urldefrag(url)[0]).path.lstrip("/")
    return path + "index.html" if path == "" or path.endswith("/") else path


def crawl(browser, site_dir: Path, base_url: str) -> SiteRecord:
    """Visit every page of the site once and record what happened."""
    start = time.monotonic()
    outside, failed = [], []
    context = local_only_context(browser, outside)

    def on_request_failed(request):
        # net::ERR_ABORTED is the browser cancelling a load when it leaves a page, not a
        # failure of the site; blocked requests fail with net::ERR_FAILED, missing files
        # with an HTTP status (on_response).
        if request.failure != "net::ERR_ABORTED":
            failed.append(f"{request.url} ({request.failure})")

    def on_response(response):
        if response.status >= 400:
            failed.append(f"{response.url} (HTTP {response.status})")

    context.on("requestfailed", on_request_failed)
    context.on("response", on_response)

    pages: dict[str, PageRecord] = {}
    page = context.new_page()
    current: list[PageRecord] = []

    def on_console(message):
        if message.type == "error" and current:
            current[-1].console_errors.append(message.text)

    def on_page_error(error):
        if current:
            current[-1].console_errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        for rel in html_pages(site_dir):
            if time.monotonic() - start > SITE_BUDGET_S:
                raise TimeoutError(f"the crawl took over {SITE_BUDGET_S} s; stopped before {rel}")
            record = PageRecord(url=base_url + rel)
            pages[rel] = record
            current.append(record)
            response = page.goto(record.url, wait_until="load")
            record.status = response.status if response else None
            target = REFRESH_RE.search((site_dir / rel).read_text(encoding="utf8"))
            if target:                   # index.html only redirects to the landing page
                page.wait_for_url(urljoin(record.url, target.group(1)))
                record.redirect = local_path(page.url, base_url)
                continue
            state = page.evaluate(WAIT_FOR_MATHJAX_JS)
            if state not in ("ok", "no MathJax"):
                record.mathjax_errors.append(state)
            for key, value in page.evaluate(INSPECT_JS).items():
                setattr(record, key, set(value) if key == "ids" else value)
            # The same page at a phone's width (the layout follows the viewport at once).
            page.set_viewport_size(PHONE)
            page.wait_for_timeout(50)
            phone = page.evaluate(PHONE_WIDTH_JS)
            record.phone_width, record.phone_overflow = phone["width"], phone["overflow"]
            page.set_viewport_size(VIEWPORT)
    finally:
        page.close()
        context.close()
    site = SiteRecord(base_url=base_url, pages=pages, outside_requests=outside,
                      failed_requests=failed, seconds=time.monotonic() - start)
    SUMMARY.append(f"{len(pages)} pages visited in Chromium in {site.seconds:.1f} s "
                   f"({sum(len(p.links) for p in pages.values())} links, "
                   f"{sum(len(p.images) for p in pages.values())} images, "
                   f"{sum(p.mathjax_containers for p in pages.values())} rendered formulas)")
    return site


# --------------------------------------------------------------------------- sources

def toc_notebooks() -> list[str]:
    """Docnames of the notebooks listed in notebooks/_toc.yml, in order."""
    import yaml

    toc = yaml.safe_load((ROOT / "notebooks" / "_toc.yml").read_text(encoding="utf8"))
    names = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node and (ROOT / "notebooks" / f"{node['file']}.ipynb").is_file():
                names.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)

    walk(toc)
    return names


def notebook_tag_counts(docname: str) -> dict[str, int]:
    """How many cells of a notebook carry each collapsing tag (hide-cell, ...)."""
    nb = json.loads((ROOT / "notebooks" / f"{docname}.ipynb").read_text(encoding="utf8"))
    counts = dict.fromkeys(COLLAPSING_TAGS, 0)
    for cell in nb.get("cells", []):
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag in counts:
                counts[tag] += 1
    return counts
