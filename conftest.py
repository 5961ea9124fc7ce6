"""Test-session set-up shared by unit tests and nbval (both collected from the repo root).

* Offline: Hugging Face libraries are told to stay offline, and any attempt to reach a
  non-loopback address (connect, UDP sendto, DNS) fails, in the test process and in every Python
  process it starts: notebook kernels and subprocesses get the guard through
  ``tools/offline/sitecustomize.py`` on ``PYTHONPATH`` (loopback stays open: nbval talks to its
  Jupyter kernel over 127.0.0.1).
* Each notebook's total run time is printed at the end, and a notebook over the
  budget fails the run. The budget is 120 s of wall time measured while two notebooks share the
  two cores (``pytest -n 2``); the aim stays about 90 s for a notebook run on its own. A notebook
  that cannot fit declares its own budget and the reason in its metadata
  (``"course": {"budget_s": 240, "budget_reason": "..."}``); the summary prints both.
"""
from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

NOTEBOOK_BUDGET_S = float(os.environ.get("NOTEBOOK_BUDGET_S", "120"))

# The guard lives in tools/offline/: netguard.py patches socket; sitecustomize.py applies it at the
# start-up of every Python process that inherits this environment (notebook kernels, subprocesses).
_GUARD_DIR = str(Path(__file__).resolve().parent / "tools" / "offline")
sys.path.insert(0, _GUARD_DIR)
import netguard  # noqa: E402

NetworkAccessError = netguard.NetworkAccessError
os.environ[netguard.ENV_FLAG] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_GUARD_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _GUARD_DIR])
netguard.install()


def pytest_configure(config):
    netguard.install()
    config._nb_durations = defaultdict(float)


def pytest_unconfigure(config):
    netguard.uninstall()


def pytest_runtest_logreport(report):
    # Runs in the controller for xdist too, so durations from both workers arrive here.
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _DURATIONS[path] += report.duration


_DURATIONS: dict[str, float] = defaultdict(float)


def _budget(path: str) -> tuple[float, str]:
    """The notebook's budget in seconds, and the reason when it declares its own."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf8")).get("metadata", {}).get("course", {})
    except (OSError, ValueError):
        meta = {}
    if "budget_s" in meta:
        return max(NOTEBOOK_BUDGET_S, float(meta["budget_s"])), meta.get("budget_reason", "no reason given")
    return NOTEBOOK_BUDGET_S, ""


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _DURATIONS:
        return
    tr = terminalreporter
    tr.section(f"notebook run times (budget {NOTEBOOK_BUDGET_S:.0f} s each)")
    over = []
    for path, secs in sorted(_DURATIONS.items()):
        budget, reason = _budget(path)
        flag = "" if secs <= budget else "  OVER BUDGET"
        if flag:
            over.append(path)
        note = f"  (own budget {budget:.0f} s: {reason})" if reason else ""
        tr.write_line(f"{secs:7.1f} s  {path}{flag}{note}")
    tr.write_line(f"{sum(_DURATIONS.values()):7.1f} s  total over {len(_DURATIONS)} notebooks")
    if over:
        tr.write_line(f"{len(over)} notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget")
        config._nb_over_budget = over
    # The instructor guide's tracks are built from these (tools/instructor_guide.py, make guide).
    out = Path(__file__).resolve().parent / "test-artifacts" / "notebook-times.json"
    out.parent.mkdir(exist_ok=True)
    old = json.loads(out.read_text()) if out.is_file() else {}
    old.update({p: round(s, 1) for p, s in _DURATIONS.items()})
    out.write_text(json.dumps(dict(sorted(old.items())), indent=1) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # Terminal summary runs after sessionfinish, so check the budget here as well.
    over = [p for p, s in _DURATIONS.items() if s > _budget(p)[0]]
    if over and session.exitstatus == 0:
        session.exitstatus = 1
