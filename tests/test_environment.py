"""The conda environment, the pip project and the offline guard agree."""
from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    name, _, pin = req.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={pin.strip()}"


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {_norm(r) for r in pip_section if not r.startswith("-")}
    assert conda_pins == {_norm(r) for r in wanted}
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11"


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    loose = [r for r in reqs if "==" not in r]
    assert not loose, f"unpinned: {loose}"


def test_offline_variables_are_set():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert os.environ.get("TRANSFORMERS_OFFLINE") == "1"


def test_network_access_fails_the_test():
    """The session-wide guard refuses non-loopback connections before any packet is sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError, match="network access attempted"):
            s.connect(("192.0.2.1", 80))           # TEST-NET-1, never routed
    finally:
        s.close()
    with pytest.raises(RuntimeError, match="network access attempted"):
        socket.getaddrinfo("example.org", 443)


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket()
    try:
        client.connect(server.getsockname())
    finally:
        client.close()
        server.close()


def test_jupyterlab_renders_myst():
    """{term}/{cite} roles render in JupyterLab only with jupyterlab-myst next to jupyterlab."""
    deps = {_norm(r).split("==")[0]: r for r in
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert "jupyterlab" in deps and "jupyterlab-myst" in deps, sorted(deps)
