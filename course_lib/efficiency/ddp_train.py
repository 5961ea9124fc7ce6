"""Data-parallel training of the tiny GPT, started by torchrun (gloo on CPU, nccl on GPUs).

::

    torchrun --nproc_per_node 2 -m course_lib.efficiency.ddp_train --mode check --out grads.json
    torchrun --nproc_per_node 2 -m course_lib.efficiency.ddp_train --mode train --steps 20

``--mode check`` computes, on every rank, the gradient of its half of one batch, averages them
twice (by hand with :func:`~course_lib.efficiency.ddp.average_gradients`, and with
``DistributedDataParallel``), and rank 0 compares both with the single-process gradient of the
whole batch (float64). ``--mode train`` trains with ``DistributedDataParallel`` and prints the
loss of every step from rank 0, then checks that the ranks' weights are still identical.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from .ddp import average_gradients, init_from_env, shard
from .workloads import lm_batches, random_lm_batches, tiny_gpt, wikitext_blocks
from ..transformer.training import causal_lm_loss


def _grads(model) -> dict[str, torch.Tensor]:
    return {n.removeprefix("module."): p.grad.detach().clone() for n, p in model.named_parameters()}


def _device(args) -> torch.device:
    """cuda:LOCAL_RANK with nccl (one GPU per process), else the CPU."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if args.backend == "nccl" else torch.device("cpu")


def _ddp(model, device):
    return DDP(model, device_ids=[device.index]) if device.type == "cuda" else DDP(model)


def check(args, rank: int, world: int) -> dict:
    small = dict(n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=32)
    device = _device(args)
    batch = tuple(t.to(device) for t in random_lm_batches(1, args.batch_size, 16, 97, seed=args.seed)[0])  # same on every rank
    local = shard(batch, rank, world)
    model = tiny_gpt(pretrained=False, seed=args.seed, **small).double().to(device)
    causal_lm_loss(model, local)[0].backward()                                           # g_r: mean over my rows
    average_gradients(model)                                                             # mean_r g_r
    manual = _grads(model)
    ddp = _ddp(tiny_gpt(pretrained=False, seed=args.seed, **small).double().to(device), device)
    causal_lm_loss(ddp, local)[0].backward()                                             # DDP all-reduces in backward
    auto = _grads(ddp)
    result = {}
    if rank == 0:
        single = tiny_gpt(pretrained=False, seed=args.seed, **small).double().to(device)
        causal_lm_loss(single, batch)[0].backward()                                      # one process, whole batch
        ref = _grads(single)
        diff = lambda g: max(float((g[n] - ref[n]).abs().max()) for n in ref)            # noqa: E731
        result = {"world_size": world, "batch_size": args.batch_size, "rows_per_rank": len(local[0]),
                  "max_diff_manual": diff(manual), "max_diff_ddp": diff(auto),
                  "max_abs_grad": max(float(g.abs().max()) for g in ref.values())}
        print(f"world size {world}: each rank {len(local[0])} of {args.batch_size} rows; "
              f"max |averaged - single-process| grad: all_reduce {result['max_diff_manual']:.2e}, "
              f"DDP {result['max_diff_ddp']:.2e}", flush=True)
    return result


def train(args, rank: int, world: int) -> dict:
    torch.set_num_threads(1)
    blocks = wikitext_blocks(args.block_size, args.n_chars)
    device = _device(args)
    batches = [tuple(t.to(device) for t in b)                                            # global batches
               for b in lm_batches(blocks, args.steps, args.batch_size, seed=args.seed)]
    model = _ddp(tiny_gpt(pretrained=False, seed=args.seed, n_layer=2).to(device), device)  # same init on every rank
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    losses, start = [], time.perf_counter()
    for step, batch in enumerate(batches):
        loss, _ = causal_lm_loss(model, shard(batch, rank, world))
        opt.zero_grad(set_to_none=True)
        loss.backward()                                                                  # + all-reduce of gradients
        opt.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)                                                            # loss of the global batch
        losses.append(float(mean) / world)
        if rank == 0 and (step % max(1, args.steps // 5) == 0 or step == args.steps - 1):
            print(f"step {step:3d}  loss {losses[-1]:.3f}", flush=True)
    seconds = time.perf_counter() - start
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    if rank == 0:
        print(f"{world} ranks, {args.steps} steps of {args.batch_size} rows ({args.batch_size // world} per rank) "
              f"in {seconds:.1f} s; weights identical on all ranks: {same}", flush=True)
    return {"world_size": world, "losses": losses, "seconds": seconds, "weights_identical": same}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("check", "train", "both"), default="check")
    p.add_argument("--backend", choices=("gloo", "nccl"), default=None, help="gloo (CPU, default) or nccl (one NVIDIA GPU per process)")
    p.add_argument("--batch-size", type=int, default=8, help="global batch (split over the ranks)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--block-size", type=int, default=32)
    p.add_argument("--n-chars", type=int, default=20_000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="rank 0 writes its result here as JSON")
    args = p.parse_args(argv)
    args.backend = args.backend or "gloo"
    rank, world = init_from_env(args.backend)
    try:
        result = {}
        if args.mode in ("check", "both"):
            result["check"] = check(args, rank, world)
        if args.mode in ("train", "both"):
            result["train"] = train(args, rank, world)
        if rank == 0 and args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
