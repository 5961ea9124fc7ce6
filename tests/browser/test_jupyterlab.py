"""A notebook in JupyterLab, as a learner opens it: Chromium, driven by Playwright.

Self-study in JupyterLab is the first way the course is used, so this test starts
JupyterLab (``jupyter lab --no-browser`` on 127.0.0.1, a free port, a random token) on
``notebooks/``, opens one notebook that uses MyST roles and has exercise solutions, and
checks what a learner sees:

* the MyST roles are rendered (jupyterlab-myst): no raw ``{term}`` / ``{cite}`` text in
  any markdown cell, and the roles became links or citations;
* every cell tagged ``solution`` starts collapsed (its code hidden, so are its outputs),
  while the other code cells show their code;
* nothing is requested from outside 127.0.0.1 and no script error is logged.

The server gets its own settings and runtime folders (notebooks are shown whole, not
windowed, so every cell is in the page), and is stopped, with its kernel, at the end.
Without Chromium the test is skipped, like the website test (conftest.py).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sitecrawl import ARTIFACTS, ROOT, SUMMARY, VIEWPORT, local_only_context

NOTEBOOK = "03_attention/03_masks_and_multihead.ipynb"
START_TIMEOUT_S = 90          # JupyterLab answering on its port
RENDER_TIMEOUT_MS = 90_000    # the notebook open, then its markdown rendered (a busy CI machine)
RAW_ROLE_RE = re.compile(r"\{(?:term|cite|ref|doc|numref|eq)(?::[a-z]+)?\}")
# jupyterlab-myst resolves {term} only inside the notebook; for a term of the website's
# glossary (notebooks/glossary.md) it renders the term's text and logs this to the console.
UNRESOLVED_TERM_RE = re.compile(r"^Cross reference target was not found: term-(.+)$")
# The notebook tracker's settings: render every cell (no windowing), so that the test sees
# the whole notebook, as a learner who scrolls does.
LAB_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
                {"windowingMode": "none"},
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False},
                # Opening a notebook must never write to it.
                "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings":
                {"autosave": False}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n"
                        + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on {url} within {START_TIMEOUT_S} s:\n"
                + log.read_text(errors="replace")[-3000:])


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """(base URL with the token, server log path) of a JupyterLab serving notebooks/."""
    home = tmp_path_factory.mktemp("jupyterlab")
    settings = home / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
               "--port", str(port), f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={ROOT / 'notebooks'}",
               f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/status?token={token}", proc, log)
        yield base, token, log
    finally:
        # The server and the kernel it started share the new session's process group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _glossary_terms() -> set[str]:
    """Terms (lower case) of the ```{glossary} block of notebooks/glossary.md."""
    text = (ROOT / "notebooks" / "glossary.md").read_text(encoding="utf8")
    block = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert block, "no ```{glossary} block in notebooks/glossary.md"
    return {line.strip().lower() for line in block.group(1).splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")}


def _real_errors(messages: list[str]) -> list[str]:
    """Console errors, without jupyterlab-myst's notes on glossary terms it cannot link."""
    terms, real = _glossary_terms(), []
    for message in messages:
        for line in message.splitlines():
            unresolved = UNRESOLVED_TERM_RE.match(line.strip())
            if not (unresolved and unresolved.group(1).strip().lower() in terms):
                real.append(line)
    return real


def _solution_cells(path: Path) -> list[int]:
    nb = json.loads(path.read_text(encoding="utf8"))
    return [i for i, cell in enumerate(nb["cells"])
            if "solution" in cell.get("metadata", {}).get("tags", [])]


# What the page shows, cell by cell, once the notebook is open.
CELLS_JS = r"""
() => Array.from(document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"))
  .map(cell => {
    const visible = el => !!el && el.getClientRects().length > 0
                          && getComputedStyle(el).visibility !== "hidden";
    const editor = cell.querySelector(".jp-InputArea-editor");
    const rendered = cell.querySelector(".myst, .jp-RenderedMarkdown");
    return {
      kind: cell.classList.contains("jp-CodeCell") ? "code"
            : cell.classList.contains("jp-MarkdownCell") ? "markdown" : "raw",
      code_visible: visible(editor),
      input_placeholder: visible(cell.querySelector(".jp-InputPlaceholder")),
      output_placeholder: visible(cell.querySelector(".jp-OutputPlaceholder")),
      outputs_visible: Array.from(cell.querySelectorAll(".jp-OutputArea-output")).some(visible),
      rendered: !!rendered && !cell.classList.contains("jp-mod-editMode")
                && !visible(editor),
      text: rendered ? rendered.innerText : "",
      links: rendered ? rendered.querySelectorAll("a, cite, [class*='cite'], abbr").length : 0,
    };
  })
"""

# True once the notebook is open with every cell attached.
NOTEBOOK_OPEN_JS = """
n => document.querySelectorAll(
       ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").length === n
"""
# JupyterLab renders a markdown cell when it first comes into view: scroll through the
# notebook as a reader would, waiting at each markdown cell until it is rendered. Returns
# how many markdown cells stayed unrendered.
SCROLL_THROUGH_JS = """
async timeoutMs => {
  const cells = Array.from(document.querySelectorAll(
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-MarkdownCell"));
  const deadline = Date.now() + timeoutMs;
  let missing = 0;
  for (const cell of cells) {
    cell.scrollIntoView({block: "center"});
    while (!cell.querySelector(".myst, .jp-RenderedMarkdown") && Date.now() < deadline)
      await new Promise(r => setTimeout(r, 50));
    if (!cell.querySelector(".myst, .jp-RenderedMarkdown")) missing += 1;
  }
  cells[0].scrollIntoView({block: "start"});
  return missing;
}
"""
PAGE_STATE_JS = """
() => ({cells: document.querySelectorAll(".jp-Cell").length,
        markdown: document.querySelectorAll(".jp-MarkdownCell").length,
        rendered: document.querySelectorAll(".jp-MarkdownCell .myst, .jp-MarkdownCell .jp-RenderedMarkdown").length,
        dialogs: Array.from(document.querySelectorAll(".jp-Dialog")).map(d => d.innerText.slice(0, 200)),
        title: document.title})
"""


def _wait_for_notebook(page, n_cells: int, log: Path) -> None:
    try:
        page.wait_for_function(NOTEBOOK_OPEN_JS, arg=n_cells, timeout=RENDER_TIMEOUT_MS)
        missing = page.evaluate(SCROLL_THROUGH_JS, RENDER_TIMEOUT_MS)
        if missing:
            raise TimeoutError(f"{missing} markdown cells not rendered")
    except Exception as error:  # noqa: BLE001 - re-raised with what the page showed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-failed.png"))
        state = page.evaluate(PAGE_STATE_JS)
        pytest.fail(f"{NOTEBOOK} did not open with its {n_cells} cells rendered within "
                    f"{RENDER_TIMEOUT_MS / 1000:.0f} s ({error.__class__.__name__}: {error}). The page: "
                    f"{state}; screenshot test-artifacts/jupyterlab-failed.png; server log:\n"
                    + log.read_text(errors="replace")[-2000:])


def test_a_notebook_reads_well_in_jupyterlab(lab, browser):
    base, token, log = lab
    expected_solutions = _solution_cells(ROOT / "notebooks" / NOTEBOOK)
    assert expected_solutions, f"{NOTEBOOK} has no cell tagged 'solution' to check"
    source_bytes = (ROOT / "notebooks" / NOTEBOOK).read_bytes()
    source = source_bytes.decode("utf8")
    assert "{term}" in source and "{cite}" in source, f"{NOTEBOOK} uses no {{term}}/{{cite}} role"
    n_cells = len(json.loads(source)["cells"])

    outside, errors = [], []
    context = local_only_context(browser, outside)
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    start = time.monotonic()
    try:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="load")
        # Open, with every cell attached and every markdown cell rendered.
        _wait_for_notebook(page, n_cells, log)
        page.wait_for_timeout(1000)      # jupyterlab-myst renders asynchronously
        cells = page.evaluate(CELLS_JS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))
    finally:
        context.close()
    SUMMARY.append(f"JupyterLab: {NOTEBOOK} opened and checked in "
                   f"{time.monotonic() - start:.1f} s; screenshot test-artifacts/jupyterlab.png")

    assert len(cells) == n_cells, f"{len(cells)} cells on the page, {n_cells} in the notebook"
    # MyST roles rendered, not shown as raw text.
    markdown = [(i, c) for i, c in enumerate(cells) if c["kind"] == "markdown"]
    raw = {i: RAW_ROLE_RE.findall(c["text"]) for i, c in markdown if RAW_ROLE_RE.search(c["text"])}
    assert not raw, f"raw MyST roles shown in markdown cells (cell index: roles): {raw}"
    assert sum(c["links"] for _, c in markdown) >= 5, "the {term}/{cite} roles rendered to no links"
    # Solutions start collapsed; other code cells show their code.
    for i in expected_solutions:
        cell = cells[i]
        assert cell["input_placeholder"] and not cell["code_visible"], (
            f"cell {i} (a solution) shows its code: set metadata jupyter.source_hidden = true")
        if cell["kind"] == "code":
            assert not cell["outputs_visible"], (
                f"cell {i} (a solution) shows its outputs: set jupyter.outputs_hidden = true")
    shown = [i for i, c in enumerate(cells)
             if c["kind"] == "code" and i not in expected_solutions and c["code_visible"]]
    assert shown, "no code cell shows its code: is the notebook rendered at all?"
    assert not outside, f"JupyterLab requested something outside 127.0.0.1: {sorted(set(outside))}"
    real_errors = _real_errors(errors)
    assert not real_errors, f"JavaScript errors in JupyterLab's console: {real_errors[:10]}"
    assert (ROOT / "notebooks" / NOTEBOOK).read_bytes() == source_bytes, (
        f"opening {NOTEBOOK} in JupyterLab changed the file")
