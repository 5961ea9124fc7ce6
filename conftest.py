"""Test-session set-up shared by unit tests and nbval (both collected from the repo root).

* Offline: Hugging Face libraries are told to stay offline, and any attempt to
  connect a socket to a non-loopback address fails the test that made it
  (loopback stays open: nbval talks to its Jupyter kernel over 127.0.0.1).
* Each notebook's total run time is printed at the end, and a notebook over the
  budget (90 s on a 2-core CPU) fails the run.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from collections import defaultdict

import pytest

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

NOTEBOOK_BUDGET_S = float(os.environ.get("NOTEBOOK_BUDGET_S", "90"))


class NetworkAccessError(RuntimeError):
    """Raised when code under test tries to reach the network."""


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):          # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self, address):
    if not _is_local(address):
        raise NetworkAccessError(f"network access attempted: connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        raise NetworkAccessError(f"network access attempted: connect to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local((host,)):
        raise NetworkAccessError(f"network access attempted: DNS lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    config._nb_durations = defaultdict(float)


def pytest_unconfigure(config):
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


def pytest_runtest_logreport(report):
    # Runs in the controller for xdist too, so durations from both workers arrive here.
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _DURATIONS[path] += report.duration


_DURATIONS: dict[str, float] = defaultdict(float)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _DURATIONS:
        return
    tr = terminalreporter
    tr.section(f"notebook run times (budget {NOTEBOOK_BUDGET_S:.0f} s each)")
    over = []
    for path, secs in sorted(_DURATIONS.items()):
        flag = "" if secs <= NOTEBOOK_BUDGET_S else "  OVER BUDGET"
        if flag:
            over.append(path)
        tr.write_line(f"{secs:7.1f} s  {path}{flag}")
    tr.write_line(f"{sum(_DURATIONS.values()):7.1f} s  total over {len(_DURATIONS)} notebooks")
    if over:
        tr.write_line(f"{len(over)} notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget")
        config._nb_over_budget = over


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # Terminal summary runs after sessionfinish, so check the budget here as well.
    over = [p for p, s in _DURATIONS.items() if s > NOTEBOOK_BUDGET_S]
    if over and session.exitstatus == 0:
        session.exitstatus = 1
