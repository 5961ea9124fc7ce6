"""tools/wheelhouse.py: the download list is exactly the course's pins (no network used)."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("wheelhouse_tool", ROOT / "tools" / "wheelhouse.py")
wheelhouse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wheelhouse)

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-]+)$")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_requirement_set_equals_the_pins():
    project = _pyproject()["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["test"]) \
        | set(project["optional-dependencies"]["book"])
    reqs = wheelhouse.requirements()
    with_deps = set(reqs["with_deps"])
    backend = set(_pyproject()["build-system"]["requires"])
    assert with_deps == expected | backend
    data = {ln.split("#")[0].strip() for ln in (ROOT / "requirements-data.txt").read_text().splitlines()}
    assert set(reqs["no_deps"]) == data - {""}
    assert len(reqs["no_deps"]) == len(set(reqs["no_deps"])) and len(reqs["with_deps"]) == len(with_deps)


def test_every_package_pinned_exactly():
    reqs = wheelhouse.requirements()
    backend = set(_pyproject()["build-system"]["requires"])
    for line in reqs["with_deps"] + reqs["no_deps"]:
        if line in backend:                        # the build backend: setuptools>=68, needed by `pip install -e .`
            continue
        assert PIN.match(line), f"{line!r} is not pinned with =="


def test_torch_cpu_pin_present():
    """An unpinned torch pulls several GB of CUDA wheels; the wheelhouse must hold the CPU pin."""
    assert "torch==2.13.0" in wheelhouse.requirements()["with_deps"]


def test_pip_commands(tmp_path):
    with_deps, no_deps = wheelhouse.pip_commands(tmp_path / "wh")
    assert with_deps[1:4] == ["-m", "pip", "wheel"] and "--no-deps" not in with_deps
    assert "--no-deps" in no_deps and str(tmp_path / "wh") in no_deps
    assert set(wheelhouse.requirements()["no_deps"]) <= set(no_deps)
    cross = wheelhouse.pip_commands(tmp_path, platforms=["win_amd64"], python_version="3.11")[0]
    assert ["--platform", "win_amd64"] == cross[cross.index("--platform"):cross.index("--platform") + 2]
    assert "--only-binary=:all:" in cross and cross[1:4] == ["-m", "pip", "download"]


def test_dry_run_touches_nothing(tmp_path):
    dest = tmp_path / "wh"
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "wheelhouse.py"), "--dest", str(dest), "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("+ -m pip wheel") == 2 and "torch==2.13.0" in out
    assert not dest.exists()


def test_summary_counts(tmp_path):
    (tmp_path / "a-1.0-py3-none-any.whl").write_bytes(b"x" * 2**20)
    (tmp_path / "b-1.0.tar.gz").write_bytes(b"y")
    assert wheelhouse.summary(tmp_path).startswith("2 files (1 wheels, 1 source archives), 1 MiB")
