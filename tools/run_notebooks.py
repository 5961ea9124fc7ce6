"""Re-execute notebooks in place so their stored outputs are fresh (`make notebooks`).

Usage: python tools/run_notebooks.py [NOTEBOOK_OR_FOLDER ...]   (default: notebooks/)
Runs each notebook top to bottom in its own folder with the current Python,
prints its duration, and writes the outputs back into the .ipynb file.
The kernels run under the offline guard (tools/offline/), as they do under the test command.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
GUARD_DIR = str(ROOT / "tools" / "offline")
os.environ["COURSE_NETWORK_GUARD"] = "1"                      # kernels inherit this environment
os.environ["PYTHONPATH"] = os.pathsep.join([GUARD_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def find_notebooks(args: list[str]) -> list[Path]:
    targets = [Path(a) for a in args] or [ROOT / "notebooks"]
    found = []
    for t in targets:
        if t.is_dir():
            found += sorted(p for p in t.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                            and "_build" not in p.parts)
        elif t.suffix == ".ipynb" and t.exists():
            found.append(t)
        else:
            raise SystemExit(f"not a notebook or folder: {t}")
    return found


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    notebooks = find_notebooks(sys.argv[1:])
    total = 0.0
    for path in notebooks:
        rel = path.resolve().relative_to(ROOT)
        print(f"running {rel} ...", flush=True)
        seconds = run(path)
        total += seconds
        print(f"  {seconds:6.1f} s  {rel}", flush=True)
    print(f"{len(notebooks)} notebooks in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
