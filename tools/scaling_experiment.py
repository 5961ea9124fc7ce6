"""The scaling experiment of chapter 1 (notebook 03_scaling): GPT-2s of six sizes, one fixed token budget.

Usage (from the repository root; about 6 minutes of CPU time on one thread, several times that in
wall time on a busy shared 2-core machine):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 python tools/scaling_experiment.py --threads 1 \
        --out checkpoints/scaling

What it does:

1. trains a byte-level BPE of 1,024 tokens on the WikiText-2 train split (our ``BPETokenizer``);
2. encodes the first 2^19 + 1 training tokens (the fixed budget D: one pass, no token seen twice) and
   the whole valid split, cut into blocks of 64 tokens (context length 64);
3. for each size in ``course_lib.transformer.scaling.SIZES`` (non-embedding N from ~3e3 to ~8e5)
   trains ``GPT2LMHeadModel`` with ``course_lib.transformer.training.train`` (AdamW, lr 3e-3 with
   64 warm-up steps and a cosine, batch 16 x 64 tokens, 512 steps), seed 0, then the two smallest
   sizes again with seeds 1 and 2 (the spread between seeds);
4. measures each model's loss on the whole valid split and writes into ``--out``:
   ``results.json`` (settings, one row per run, the fit), ``curves.json`` (learning curves),
   ``points.csv`` (the plot's data), the tokenizer files, ``checksums.json`` and ``README.md``.

Why this budget: D = 2^19 = 524,288 tokens keeps the nine runs under ~6 CPU-minutes together, and the
smallest size under ~10 s, so the notebook can rerun it live and check that it lands on the shipped point.
The context is short (64) and the vocabulary small (1,024) so that the output layer, which the
6ND rule ignores, does not swamp the compute of the tiny models.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import load_wikitext2                                                      # noqa: E402
from course_lib.transformer.checkpoint import write_checksums, write_readme                      # noqa: E402
from course_lib.transformer.lm_data import save_tokenizer, train_lm_tokenizer                    # noqa: E402
from course_lib.transformer.scaling import (SIZES, ScalingConfig, fit_power_law, fit_pure_power_law,  # noqa: E402
                                            prepare_data, run_size)

EXTRA_SEEDS = (1, 2)        # rerun the two smallest sizes with these seeds


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="checkpoints/scaling", help="output folder")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-tokens", type=int, default=ScalingConfig.n_tokens, help="token budget D per run")
    p.add_argument("--sizes", type=int, default=len(SIZES), help="run only the first K sizes (quick checks)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "python tools/scaling_experiment.py " + " ".join(sys.argv[1:] if argv is None else argv)
    cfg = ScalingConfig(n_tokens=args.n_tokens)
    sizes = SIZES[:args.sizes]
    t_start, c_start = time.perf_counter(), time.process_time()

    train_text, valid_text = load_wikitext2("train"), load_wikitext2("valid")
    tok = train_lm_tokenizer(train_text.splitlines(), cfg.vocab_size)
    data = prepare_data(tok, train_text, valid_text, cfg)
    print(f"BPE {len(tok)} tokens; train {tuple(data['train_blocks'].shape)} blocks, valid "
          f"{tuple(data['valid_blocks'].shape)} blocks; {time.perf_counter() - t_start:.0f} s", flush=True)

    plan = [(s, 0) for s in sizes] + [(s, seed) for s in sizes[:2] for seed in EXTRA_SEEDS]
    runs = []
    for size, seed in plan:
        t = time.perf_counter()
        row = run_size(size, cfg, data, seed=seed,
                       log=lambda line: print(f"  {line} | {time.perf_counter() - t:.0f} s", flush=True))
        runs.append(row)
        print(f"{row['name']} seed {seed}: N = {row['non_embedding_params']:,}, D/N = "
              f"{row['tokens_per_parameter']:.1f}, valid loss {row['valid_loss']:.4f} "
              f"({row['cpu_seconds']:.0f} s CPU, {row['seconds']:.0f} s wall)", flush=True)

    main_runs = [r for r in runs if r["seed"] == 0]
    fit = fit_power_law([r["non_embedding_params"] for r in main_runs], [r["valid_loss"] for r in main_runs])
    alpha_pure, n_c = fit_pure_power_law([r["non_embedding_params"] for r in main_runs],
                                         [r["valid_loss"] for r in main_runs])
    print(f"fit L(N) = {fit.a:.3g} N^-{fit.alpha:.3f} + {fit.c:.3f}; pure power law alpha = {alpha_pure:.4f}",
          flush=True)

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    save_tokenizer(tok, out)
    curves = {f"{r['name']}/seed{r['seed']}": r.pop("history") for r in runs}
    (out / "curves.json").write_text(json.dumps(curves, indent=1) + "\n", encoding="utf-8")
    header = "name,seed,n_layer,n_embd,non_embedding_params,tokens,flops_6nd,flops_total,valid_loss"
    rows = [f"{r['name']},{r['seed']},{r['n_layer']},{r['n_embd']},{r['non_embedding_params']},{r['tokens']},"
            f"{r['flops_6nd']:.6e},{r['flops_total']:.6e},{r['valid_loss']:.6f}" for r in runs]
    (out / "points.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    record = {"config": asdict(cfg), "max_steps": cfg.max_steps, "runs": runs,
              "fit": {**asdict(fit), "pure_power_law_alpha": alpha_pure, "pure_power_law_n_c": n_c},
              "train_lines_note": "the first n_tokens + 1 ids of encode_prefix(tok, train split)",
              "valid_tokens": int(data["valid_blocks"][:, 1:].numel()), "command": command,
              "date": datetime.date.today().isoformat(), "threads": args.threads,
              "total_seconds": round(time.perf_counter() - t_start, 1),
              "total_cpu_seconds": round(time.process_time() - c_start, 1),
              "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)"}
    (out / "results.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    write_card(out, record, sums)
    print(f"wrote {out} in {record['total_seconds']:.0f} s ({record['total_cpu_seconds']:.0f} s CPU)", flush=True)
    return 0


def write_card(out: Path, r: dict, sums: dict) -> None:
    c, fit = r["config"], r["fit"]
    lines = [
        f"# {out.name}: a scaling experiment with tiny GPT-2s on WikiText-2",
        "",
        "Written by `tools/scaling_experiment.py` (chapter 1, notebook `03_scaling.ipynb`) with",
        "",
        "```bash",
        f"OMP_NUM_THREADS={r['threads']} MKL_NUM_THREADS={r['threads']} nice -n 10 {r['command']}",
        "```",
        "",
        f"- date: {r['date']}; machine: {r['machine']} (a shared 2-core CPU)",
        f"- time: {r['total_seconds'] / 60:.1f} min wall, {r['total_cpu_seconds'] / 60:.1f} min CPU",
        f"- budget per run: D = {c['n_tokens']:,} training tokens (one pass), {r['max_steps']} steps of "
        f"{c['per_device_train_batch_size']} x {c['block_size']} tokens, AdamW lr {c['learning_rate']}, "
        f"{c['warmup_steps']} warm-up steps + cosine; byte-level BPE of {c['vocab_size']} tokens",
        f"- validation: the whole WikiText-2 valid split, {r['valid_tokens']:,} tokens",
        "",
        "| run | n_layer | n_embd | non-embedding N | D / N | 6ND (FLOPs) | valid loss |",
        "|---|---|---|---|---|---|---|",
        *[f"| {x['name']} seed {x['seed']} | {x['n_layer']} | {x['n_embd']} | {x['non_embedding_params']:,} | "
          f"{x['tokens_per_parameter']:.1f} | {x['flops_6nd']:.2e} | {x['valid_loss']:.4f} |" for x in r["runs"]],
        "",
        f"- fit over the seed-0 runs: L(N) = {fit['a']:.3g} N^(-{fit['alpha']:.3f}) + {fit['c']:.3f}; "
        f"pure power law (no floor) alpha = {fit['pure_power_law_alpha']:.4f}",
    ]
    write_readme(out, lines, sums)


if __name__ == "__main__":
    raise SystemExit(main())
