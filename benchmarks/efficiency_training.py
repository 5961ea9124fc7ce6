"""Chapter 6 training efficiency, measured on our models in one run: mixed precision, torch.compile,
activation checkpointing, and data-parallel training under torchrun.

Run (one thread; the full run compiles two models, minutes on a CPU: start it in the background):
    .venv/bin/python benchmarks/efficiency_training.py                 # full, writes results/efficiency-training-cpu.json
    .venv/bin/python benchmarks/efficiency_training.py --quick         # smoke run (no compile, no torchrun)
    .venv/bin/python benchmarks/efficiency_training.py --device cuda   # fp16 + GradScaler, real peak memory

Every figure is a ratio measured in the same run with the calls interleaved (median of repeats):
- precision: the same tiny-GPT training (random init, WikiText-2 batches) in fp32, bf16 (and fp16 on
  CUDA), steps interleaved; median seconds per step and the loss after the last step; plus the share
  of the trained tiny GPT's gradients that underflow when cast to fp16, for several loss scales;
- compile: our BERT (MiniLM) inference and our GPT's training step, eager vs torch.compile vs
  Hugging Face's default attention path; compile time (cold: a fresh, empty Inductor cache directory);
  largest output/gradient difference;
- checkpointing: activation bytes kept for backward (saved-tensor hooks; see
  course_lib.efficiency.checkpointing) and seconds per step, with and without, for several depths;
- ddp: torchrun with 2 gloo ranks on loopback: gradient equality and a short training, and HF Trainer
  (ddp_backend="gloo") with average_tokens_across_devices on and off.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib.efficiency import checkpointing, compilation, ddp, precision  # noqa: E402
from course_lib.efficiency.workloads import lm_batches, minilm_bert, tiny_gpt, wikitext_blocks  # noqa: E402


def bench_precision(quick: bool, device: str) -> dict:
    blocks = wikitext_blocks(64, 40_000)
    steps, bs = (3, 4) if quick else (20, 8)
    batches = [tuple(t.to(device) for t in b) for b in lm_batches(blocks, steps, bs, seed=0)]
    model = tiny_gpt(pretrained=False, seed=0).to(device)
    precs = ("fp32", "bf16", "fp16") if device == "cuda" else ("fp32", "bf16")
    runs = precision.compare_precisions(model, batches, precs)
    base = runs["fp32"].median_step()
    out = {"steps": steps, "batch_size": bs, "block_size": 64, "cpu_has_bf16_units": precision.cpu_has_bf16_units(),
           "runs": {p: {"median_step_s": r.median_step(), "time_ratio_vs_fp32": r.median_step() / base,
                        "first_loss": r.losses[0], "final_loss": r.losses[-1], "skipped_steps": r.skipped_steps}
                    for p, r in runs.items()}}
    trained = tiny_gpt().to(device)
    batch = tuple(t.to(device) for t in lm_batches(blocks, 1, 16, seed=1)[0])
    out["fp16_underflow"] = precision.fp16_underflow_by_scale(trained, batch, (1.0, 2.0 ** 8, 2.0 ** 16, 2.0 ** 24))
    for p, r in out["runs"].items():
        print(f"precision {p:5s} {r['median_step_s'] * 1e3:8.1f} ms/step  x{r['time_ratio_vs_fp32']:.2f} vs fp32  "
              f"loss {r['first_loss']:.3f} -> {r['final_loss']:.3f}")
    for u in out["fp16_underflow"]:
        print(f"fp16 cast, loss scale {u['scale']:>10.0f}: underflow {100 * u['underflow_frac']:.3f}%  "
              f"subnormal {100 * u['subnormal_frac']:.2f}%  overflow {100 * u['overflow_frac']:.3f}%")
    return out


def bench_compile(quick: bool, device: str) -> dict:
    if quick:
        return {"skipped": "quick mode (compiling takes a minute or more on a CPU)"}
    import tempfile
    from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir
    with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cold_dir, temporary_cache_dir(cold_dir):
        return _bench_compile(device)                                         # an empty Inductor cache: a cold compile


def _bench_compile(device: str) -> dict:
    ours, hf = minilm_bert()
    ours, hf = ours.to(device), hf.to(device)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (8, 64), generator=g)
    mask = torch.ones_like(ids)
    mask[1::2, 40:] = 0                                                            # half the rows padded
    ids[:, 0] = 101
    bert = compilation.compare_bert_inference(ours, hf, ids.to(device), mask.to(device), repeats=15)
    model = tiny_gpt().train().to(device)
    batch = tuple(t.to(device) for t in lm_batches(wikitext_blocks(64, 40_000), 1, 8, seed=2)[0])
    gpt = compilation.compare_gpt_train_step(model, batch, repeats=15)
    for name, r in (("BERT inference (8 x 64)", bert), ("GPT train step (8 x 64)", gpt)):
        print(f"{name}: eager {r['ours_eager_s'] * 1e3:.1f} ms, compiled {r['ours_compiled_s'] * 1e3:.1f} ms, "
              f"HF {r['hf_s'] * 1e3:.1f} ms; compiled x{r['speedup_compiled_vs_eager']:.2f} vs eager, "
              f"x{r['speedup_compiled_vs_hf']:.2f} vs HF; compile {r['compile_s']:.0f} s")
    return {"bert_inference": bert, "gpt_train_step": gpt, "batch": [8, 64], "cold_compile_cache": True}


def bench_checkpointing(quick: bool, device: str) -> dict:
    depths = [2, 4] if quick else [2, 4, 8, 12]
    batch = tuple(t.to(device) for t in lm_batches(wikitext_blocks(64, 40_000), 1, 8, seed=3)[0])
    rows = checkpointing.checkpoint_tradeoff(lambda L: tiny_gpt(pretrained=False, n_layer=L).to(device), depths,
                                             batch, repeats=2 if quick else 7)
    if device == "cuda":
        from course_lib.transformer.training import causal_lm_loss
        for r in rows:
            model = tiny_gpt(pretrained=False, n_layer=r["n_layer"]).to(device)
            for ck in (False, True):
                (checkpointing.enable_checkpointing if ck else checkpointing.disable_checkpointing)(model)
                model.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                causal_lm_loss(model, batch)[0].backward()
                r["cuda_peak_mb" + ("_ckpt" if ck else "")] = torch.cuda.max_memory_allocated() / 2 ** 20
    for r in rows:
        print(f"checkpointing L={r['n_layer']:2d}: activations {r['peak_mb']:6.1f} -> {r['peak_mb_ckpt']:6.1f} MB "
              f"(x{r['memory_ratio']:.2f}), step x{r['time_ratio']:.2f}")
    return {"batch": [8, 64], "rows": rows}


def bench_ddp(quick: bool) -> dict:
    if quick:
        return {"skipped": "quick mode (torchrun starts 3 Python processes)"}
    import tempfile
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ddp.json"
        run = ddp.launch_torchrun("course_lib.efficiency.ddp_train", ["--mode", "both", "--steps", "20",
                                                                      "--out", str(path)], timeout=600)
        out["ddp_train"] = {**json.loads(path.read_text()), "stdout": run.stdout.splitlines()[-12:]}
        for flag in (1, 0):
            path = Path(tmp) / f"trainer{flag}.json"
            run = ddp.launch_torchrun("course_lib.efficiency.ddp_trainer", ["--max-steps", "3",
                                      "--average-tokens-across-devices", str(flag), "--out", str(path)], timeout=600)
            out[f"trainer_average_tokens_{flag}"] = {**json.loads(path.read_text()),
                                                     "stdout": [l for l in run.stdout.splitlines()
                                                                if l.startswith(("step", "Trainer"))]}
    print("ddp:", out["ddp_train"]["stdout"][-1])
    return out


SECTIONS = ("precision", "checkpointing", "compile", "ddp")


def run(quick: bool = False, device: str = "cpu", sections=SECTIONS) -> dict:
    """The chosen sections (default all); returns the report (see the module docstring)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU on this machine")
    torch.manual_seed(0)
    report = {"quick": quick, "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(),
              "note": "ratios are measured in one run with interleaved calls; absolute times are inflated "
                      "on a shared machine"}
    if "precision" in sections:
        report["precision"] = bench_precision(quick, device)
    if "checkpointing" in sections:
        report["checkpointing"] = bench_checkpointing(quick, device)
    if "compile" in sections:
        report["compile"] = bench_compile(quick, device)
    if "ddp" in sections:
        report["ddp"] = bench_ddp(quick) if device == "cpu" else {"skipped": "run ddp_train with --backend nccl"}
    return report


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: few steps, no compile, no torchrun")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                    help="run only these; their results replace those sections of an existing --json file")
    ap.add_argument("--json", type=Path, default=None,
                    help="default (full runs): benchmarks/results/efficiency-training-<device>.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = run(args.quick, args.device, args.sections)
    path = args.json or (None if args.quick else ROOT / "benchmarks" / "results" /
                         f"efficiency-training-{args.device}.json")
    if path and set(args.sections) != set(SECTIONS) and path.exists():
        report = {**json.loads(path.read_text()), **report}                   # keep the sections not rerun
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
