"""Chapter 6 efficiency benchmarks: one command for both halves of the chapter's measurements.

    python benchmarks/efficiency.py --quick                 (CI-sized, a minute or two on a laptop CPU)
    python benchmarks/efficiency.py                         (the full run recorded in benchmarks/results/)
    python benchmarks/efficiency.py --device cuda           (on a GPU machine)
    python benchmarks/efficiency.py --only training         (or: compression)

* ``efficiency_training.py``: mixed precision, ``torch.compile``, gradient accumulation, activation
  checkpointing, data-parallel training -> ``results/efficiency-training-<device>.json``;
* ``efficiency_compression.py``: quantisation, pruning, distillation, the cost calculator ->
  ``results/efficiency-compression-<device>.json``.

Every figure is a ratio against the fp32 / unpruned / eager baseline measured in the same run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"training": "efficiency_training.py", "compression": "efficiency_compression.py"}


def _load(name: str):
    path = HERE / PARTS[name]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized runs (small models, few repeats)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--only", choices=tuple(PARTS), action="append",
                        help="run only this part (repeatable); default: both")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is visible to PyTorch on this machine")
    results = {}
    for name in args.only or PARTS:
        start = time.perf_counter()
        print(f"==> {name} ({'quick' if args.quick else 'full'}, {args.device})", flush=True)
        results[name] = _load(name).run(quick=args.quick, device=args.device)
        print(f"    {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    print(json.dumps({k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
