"""Fixtures of the browser test of the website (run by `make browser`, part of `make test`).

The built site (_build/html) is served on 127.0.0.1 by Python's http.server in a thread,
and Debian's Chromium is driven by Playwright: the *system* browser, since
`playwright install` (a browser download) is never used. The session fixture ``site``
visits every page once (sitecrawl.py) and the tests in test_site.py assert on that record.

These tests need a built site and a browser, so the unit-test run (``pytest tests``)
leaves this folder out: it is collected only when named, ``pytest tests/browser``.

Without Chromium the tests are skipped with a message saying how to install it, except
in CI (``CI=true``), where a missing browser is an error.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sitecrawl import (CHROMIUM_ARGS, DEFAULT_CHROMIUM, PAGE_TIMEOUT_MS, SITE, SUMMARY, crawl,
                       local_only_context, serve)

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- collection

def _explicitly_requested(config) -> bool:
    """True when the command line names this folder or a file in it."""
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        target = (base / arg.split("::")[0]).resolve()
        if target == HERE or HERE in target.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    # `pytest tests` (the unit-test run) must not start a browser: only `pytest tests/browser`.
    if HERE in Path(collection_path).resolve().parents and not _explicitly_requested(config):
        return True
    return None


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("the website in Chromium")
        for line in SUMMARY:
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def site_dir() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built website in {SITE}: run `make book` first")
    return SITE


@pytest.fixture(scope="session")
def base_url(site_dir):
    """http://127.0.0.1:PORT/ serving _build/html."""
    with serve(site_dir) as url:
        yield url


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def browser():
    path = os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        message = (f"Chromium not found at {path}. Install it (Debian: `apt-get install -y "
                   "chromium`, which `make browser` does when run as root) or name another "
                   "Chromium/Chrome binary with CHROMIUM=/path/to/chromium")
        if _in_ci():
            pytest.fail(f"CI=true, so the browser test must run. {message}")
        pytest.skip(f"browser test skipped. {message}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS,
                                      timeout=PAGE_TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def site(site_dir, base_url, browser):
    """Every page of the site, visited once: a sitecrawl.SiteRecord."""
    return crawl(browser, site_dir, base_url)


@pytest.fixture(scope="session")
def new_page(browser):
    """A factory of fresh pages for one-off checks, under the same local-only rule.

    Requests to other hosts are blocked and collected in ``new_page.outside_requests``.
    """
    contexts, outside = [], []

    def make():
        context = local_only_context(browser, outside)
        contexts.append(context)
        return context.new_page()

    make.outside_requests = outside
    yield make
    for context in contexts:
        context.close()
