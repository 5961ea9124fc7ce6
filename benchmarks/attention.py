"""Attention benchmark: our PyTorch attention (eager and tiled) vs F.scaled_dot_product_attention.

Run:  .venv/bin/python benchmarks/attention.py            # full: T in 256, 1024, 4096
      .venv/bin/python benchmarks/attention.py --quick    # CI smoke run: small T
      .venv/bin/python benchmarks/attention.py --device cuda

Every line compares two implementations on the same inputs in the same process.
Time is forward + backward (sum of outputs as the loss), the best of several runs;
"ratio" = reference time / our time, so > 1 means ours is faster.
Peak memory: on CPU, the NumPy forward pass of the same algorithm, traced by
tracemalloc (exact byte counts); on CUDA, torch.cuda.max_memory_allocated of
forward + backward.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib.attention import causal_mask, tiled  # noqa: E402
from course_lib.attention import numpy_attention as npa  # noqa: E402
from course_lib.attention import torch_attention as tta  # noqa: E402
from course_lib.utils import best_time, write_json  # noqa: E402


def fwd_bwd(fn, q, k, v):
    def run():
        for t in (q, k, v):
            t.grad = None
        fn(q, k, v).sum().backward()
    return run


def implementations(causal: bool, block: int):
    mask_cache = {}

    def mask_for(q):
        T = q.shape[-2]
        if T not in mask_cache:
            mask_cache[T] = causal_mask(T, device=q.device)
        return mask_cache[T]

    return {
        "ours (eager)": lambda q, k, v: tta.scaled_dot_product_attention(
            q, k, v, mask_for(q) if causal else None)[0],
        "ours (tiled)": lambda q, k, v: tiled.tiled_attention_torch(
            q, k, v, causal=causal, block_size=block),
        "F.sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
    }


def time_all(T, args, device):
    gen = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(args.batch, args.heads, T, args.head_dim, generator=gen)
               .to(device).requires_grad_() for _ in range(3))
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    repeat = args.repeat if T <= 1024 else max(1, args.repeat // 2)
    results = {}
    for name, fn in implementations(args.causal, args.block).items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        results[name] = {"seconds": best_time(fwd_bwd(fn, q, k, v), repeat=repeat, warmup=1, sync=sync)}
        if device.type == "cuda":
            results[name]["peak_bytes"] = torch.cuda.max_memory_allocated()
    with torch.no_grad():
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=args.causal)
        for name, fn in implementations(args.causal, args.block).items():
            results[name]["max_abs_diff"] = (fn(q, k, v) - ref).abs().max().item()
    return results


def numpy_peaks(T, args):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((args.heads, T, args.head_dim)).astype(np.float32) for _ in range(3))
    mask = causal_mask(T, xp="numpy") if args.causal else None
    naive, _ = tiled.peak_memory_numpy(npa.scaled_dot_product_attention, q, k, v, mask)
    tiles, _ = tiled.peak_memory_numpy(tiled.tiled_attention, q, k, v, causal=args.causal,
                                       block_size=args.block)
    return naive, tiles


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, for CI")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lengths", type=int, nargs="+")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--causal", action="store_true")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    lengths = args.lengths or ([128, 256] if args.quick else [256, 1024, 4096])
    if args.quick:
        args.block, args.repeat = 64, 1
    device = torch.device(args.device)

    print(f"# attention benchmark: torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}, "
          f"threads {torch.get_num_threads()}, {platform.machine()}")
    print(f"# B={args.batch} H={args.heads} Dh={args.head_dim} float32 causal={args.causal} "
          f"tile={args.block}; time = forward+backward, ratio = F.sdpa time / ours")
    print(f"{'T':>5}  {'implementation':<14} {'time (ms)':>10} {'ratio':>7} {'max|diff|':>10}")
    report = {"device": str(device), "lengths": lengths, "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                   for k, v in vars(args).items()},
              "timing": {}, "memory": {}}
    for T in lengths:
        res = time_all(T, args, device)
        ref = res["F.sdpa"]["seconds"]
        for name, r in res.items():
            r["ratio_vs_sdpa"] = ref / r["seconds"]
            print(f"{T:>5}  {name:<14} {1e3 * r['seconds']:>10.1f} {r['ratio_vs_sdpa']:>7.2f} "
                  f"{r['max_abs_diff']:>10.1e}")
        report["timing"][T] = res
    print()
    if device.type == "cuda":
        print(f"{'T':>5}  peak CUDA memory, forward+backward (MiB): eager / tiled / F.sdpa")
        for T in lengths:
            r = report["timing"][T]
            print(f"{T:>5}  " + " / ".join(f"{r[n]['peak_bytes'] / 2**20:.1f}"
                                            for n in ("ours (eager)", "ours (tiled)", "F.sdpa")))
    print(f"{'T':>5}  peak memory of the NumPy forward (MiB, tracemalloc): naive  tiled  naive/tiled")
    for T in lengths:
        naive, tiles = numpy_peaks(T, args)
        report["memory"][T] = {"naive_bytes": naive, "tiled_bytes": tiles}
        print(f"{T:>5}  {naive / 2**20:>10.1f} {tiles / 2**20:>6.1f} {naive / tiles:>8.1f}x")
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
