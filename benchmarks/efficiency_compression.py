"""Chapter 6 compression: quantisation, pruning and distillation measured on our models, plus the cost calculator.

Run (one thread; the full run takes several minutes on a CPU, start it in the background):
    .venv/bin/python benchmarks/efficiency_compression.py                # full: writes benchmarks/results/efficiency-compression-cpu.json
    .venv/bin/python benchmarks/efficiency_compression.py --quick        # smoke run (about a minute)
    .venv/bin/python benchmarks/efficiency_compression.py --device cuda  # latencies on the GPU (torch.ao dynamic route is CPU-only)
    .venv/bin/python benchmarks/efficiency_compression.py --only distillation --threads 2   # that section, in place

Every figure is a ratio against the fp32 / unpruned / teacher baseline *measured in the same run*;
timings are medians of interleaved repeats (a, b, c, a, b, c, ...) so that other jobs on a shared
machine slow every variant alike.

- quantisation: chapter 4's tiny GPT (``checkpoints/tiny_gpt``: WikiText-2 valid perplexity) and the
  frozen MiniLM encoder of the distillation teacher (TREC-6 test accuracy with the shipped logistic
  head, ``checkpoints/distilled``): fp32, bf16, our int8 (symmetric, asymmetric), torch.ao dynamic
  int8, torchao int8 weight-only; bytes on disk, CPU latency, quality. Also our int4 (accuracy only).
- pruning: tiny GPT; layer-wise magnitude pruning at several sparsities, perplexity before and
  after a short fine-tuning with the masks kept; structured FFN-channel pruning likewise; the
  time of a dense matmul with a 90 %-sparse weight, and of the structurally pruned model.
- distillation: chapter 5's tiny BERT (``checkpoints/tiny_bert``, 4.4 M parameters) fine-tuned on
  TREC-6 with hard labels vs with the soft targets of each teacher shipped in ``checkpoints/distilled``
  (a fully fine-tuned MiniLM and a frozen MiniLM + logistic head), at each (T, alpha) of ``--grid``
  (same epochs, batches, schedule); the pair reported per teacher is chosen on the validation split.
  ``--only distillation`` reruns this section alone and updates it in the existing JSON.
- cost: the calculator's extrapolation to published models.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course_lib  # noqa: E402,F401  (quiets torchao's GPU-kernel warnings)
from course_lib.data import load_wikitext2, minilm_path  # noqa: E402
from course_lib.efficiency import cost, distillation, pruning  # noqa: E402
from course_lib.efficiency import quantization as quant  # noqa: E402
from course_lib.transformer.checkpoint import checkpoint_path, load_model  # noqa: E402
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel  # noqa: E402
from course_lib.transformer.lm_data import (BlockBatches, encode_corpus, eval_batches, load_tokenizer,  # noqa: E402
                                            make_blocks)
from course_lib.transformer.training import causal_lm_loss, evaluate  # noqa: E402

DISTILLED = ROOT / "checkpoints" / "distilled"


def gpt_data(quick: bool) -> dict:
    ckpt = checkpoint_path("tiny_gpt")
    tok = load_tokenizer(ckpt)
    valid = make_blocks(encode_corpus(tok, load_wikitext2("valid")), 128)
    train = make_blocks(encode_corpus(tok, load_wikitext2("train")[: 300_000 if quick else 2_000_000]), 128)
    n_eval = 16 if quick else 128                     # 128 blocks: the slice chapter 4 reports (perplexity ~132)
    return {"ckpt": ckpt, "eval": eval_batches(valid[:n_eval], 32), "train": train,
            "latency_input": valid[:8, :-1]}          # (8, 128)


@torch.no_grad()
def perplexity(model, batches) -> float:
    return math.exp(evaluate(model, batches))


def quantisation_gpt(d: dict, quick: bool, device: str) -> dict:
    fp32 = load_model(d["ckpt"], GPT2LMHeadModel, GPT2Config).eval()
    dyn, caught = quant.quantize_dynamic_route(fp32)
    routes = {"fp32": fp32, "bf16": quant.bf16_route(fp32), "ours int8 symmetric": quant.quantize_linears(fp32, True),
              "ours int8 asymmetric": quant.quantize_linears(fp32, False), "torch.ao dynamic int8": dyn,
              "torchao int8 weight-only": quant.torchao_route(fp32)}
    out = {"model": "tiny GPT (checkpoints/tiny_gpt)", "dynamic_warnings": caught, "routes": {}}
    base_bytes = quant.state_dict_bytes(fp32)
    ppl = {name: perplexity(m, d["eval"]) for name, m in routes.items()}
    for bits in (4,):
        for sym in (True, False):
            name = f"ours int{bits} {'symmetric' if sym else 'asymmetric'} (accuracy only)"
            ppl[name] = perplexity(quant.quantize_linears(fp32, sym, bits=bits), d["eval"])
    x = d["latency_input"]
    timed = {n: m for n, m in routes.items() if not (device == "cuda" and "dynamic" in n)}
    sync = torch.cuda.synchronize if device == "cuda" else None
    timed = {n: m.to(device) for n, m in timed.items()}
    xd = x.to(device)
    with torch.no_grad():
        times = quant.interleaved_times({n: (lambda m=m: m(xd)) for n, m in timed.items()},
                                        repeat=5 if quick else 20, sync=sync)
    for name in ppl:
        m = routes.get(name)
        out["routes"][name] = {
            "perplexity": round(ppl[name], 3), "perplexity_ratio": round(ppl[name] / ppl["fp32"], 4),
            "bytes": quant.state_dict_bytes(m) if m is not None else None,
            "size_ratio": round(quant.state_dict_bytes(m) / base_bytes, 4) if m is not None else None,
            "latency_ratio": round(times[name] / times["fp32"], 3) if name in times else None}
    out["fp32_latency_ms"] = round(1000 * times["fp32"], 2)
    out["layer_errors"] = {f"int{b} {'sym' if s else 'asym'}": quant.weight_errors(fp32, s, bits=b)
                           for b in (8, 4) for s in (True, False)}
    return out


def quantisation_minilm(quick: bool, device: str) -> dict | None:
    """Quantise the teacher's MiniLM encoder; accuracy of the shipped logistic head on TREC-6 test."""
    if not (DISTILLED / "teacher_head.npy").exists():
        return None
    from transformers import AutoTokenizer

    from course_lib.finetuning.data import make_batches, tokenize_texts, trec_splits
    from course_lib.transformer.bert import BertModel
    task = trec_splits(seed=0)
    test = task.test.iloc[:100] if quick else task.test
    tok = AutoTokenizer.from_pretrained(minilm_path())
    batches = make_batches(tokenize_texts(tok, list(test.text), 64), test.label.to_numpy(), batch_size=64)
    head = torch.as_tensor(np.load(DISTILLED / "teacher_head.npy"))                  # (6, D + 1)
    fp32 = BertModel.from_pretrained(minilm_path()).eval()
    dyn, _ = quant.quantize_dynamic_route(fp32, skip=())
    routes = {"fp32": fp32, "bf16": quant.bf16_route(fp32),
              "ours int8 symmetric": quant.quantize_linears(fp32, True, ()),
              "ours int8 asymmetric": quant.quantize_linears(fp32, False, ()), "torch.ao dynamic int8": dyn,
              "torchao int8 weight-only": quant.torchao_route(fp32, skip=())}
    y = test.label.to_numpy()
    out = {"model": "MiniLM encoder + teacher logistic head, TREC-6 test", "examples": len(test), "routes": {}}
    batch = batches[len(batches) // 2]
    timed = {n: m for n, m in routes.items() if not (device == "cuda" and "dynamic" in n)}
    with torch.no_grad():
        times = quant.interleaved_times(
            {n: (lambda m=m: m(batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)))
             for n, m in ((n, m.to(device)) for n, m in timed.items())},
            repeat=3 if quick else 15, sync=torch.cuda.synchronize if device == "cuda" else None)
    base = quant.state_dict_bytes(fp32)
    for name, m in routes.items():
        m = m.cpu()
        feats = distillation.mean_pooled_features(m, batches).float()
        logits = feats @ head[:, :-1].T + head[:, -1]                                  # (N, 6)
        acc = float((logits.argmax(1).numpy() == y).mean())
        out["routes"][name] = {"accuracy": round(acc, 4), "bytes": quant.state_dict_bytes(m),
                               "size_ratio": round(quant.state_dict_bytes(m) / base, 4),
                               "latency_ratio": round(times[name] / times["fp32"], 3) if name in times else None}
    out["fp32_latency_ms"] = round(1000 * times["fp32"], 2)
    return out


def fine_tune(model, train_blocks, steps: int, lr: float = 1e-4, seed: int = 0) -> None:
    """A few AdamW steps of next-token training (masks, if any, stay applied through prune's hooks)."""
    if steps == 0:
        return
    batches = BlockBatches(train_blocks, 8, seed=seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    for step in range(steps):
        loss, _ = causal_lm_loss(model, batches(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()


def pruning_gpt(d: dict, quick: bool) -> dict:
    base = load_model(d["ckpt"], GPT2LMHeadModel, GPT2Config).eval()
    steps = 5 if quick else 60
    base_ppl = perplexity(base, d["eval"])
    ref = load_model(d["ckpt"], GPT2LMHeadModel, GPT2Config)
    fine_tune(ref, d["train"], steps)                        # the unpruned model gets the same extra training
    out = {"fine_tune_steps": steps, "fine_tune_tokens": steps * 8 * 128, "dense_perplexity": round(base_ppl, 3),
           "dense_fine_tuned_perplexity": round(perplexity(ref, d["eval"]), 3), "unstructured": [], "structured": []}
    for amount in ([0.5, 0.9] if quick else [0.3, 0.5, 0.7, 0.8, 0.9]):
        model = load_model(d["ckpt"], GPT2LMHeadModel, GPT2Config)
        masks = pruning.magnitude_masks(model, amount)
        pruning.apply_masks(model, masks, keep_during_training=True)
        before = perplexity(model, d["eval"])
        fine_tune(model, d["train"], steps)
        pruning.make_permanent(model)
        out["unstructured"].append({"sparsity": round(pruning.sparsity(model), 4), "perplexity": round(before, 3),
                                    "perplexity_fine_tuned": round(perplexity(model, d["eval"]), 3),
                                    "bytes": quant.state_dict_bytes(model)})
    x = d["latency_input"]
    for amount in ([0.5] if quick else [0.25, 0.5, 0.75]):
        model = load_model(d["ckpt"], GPT2LMHeadModel, GPT2Config)
        pruning.prune_ffn_channels(model, amount)
        before = perplexity(model, d["eval"])
        with torch.no_grad():
            t = quant.interleaved_times({"dense": lambda: base(x), "pruned": lambda: model(x)},
                                        repeat=5 if quick else 20)
        fine_tune(model, d["train"], steps)
        out["structured"].append({
            "ffn_channels_removed": amount, "parameters": sum(p.numel() for p in model.parameters()),
            "parameter_ratio": round(sum(p.numel() for p in model.parameters())
                                     / sum(p.numel() for p in base.parameters()), 4),
            "perplexity": round(before, 3), "perplexity_fine_tuned": round(perplexity(model, d["eval"]), 3),
            "latency_ratio": round(t["pruned"] / t["dense"], 3)})
    out["matmul"] = sparse_matmul_timing(quick)
    return out


def sparse_matmul_timing(quick: bool) -> dict:
    """(T, 1024) x (1024 -> 4096) with a dense weight, the same weight 90 % zeros, and half its rows removed."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(512, 1024, generator=g), torch.randn(4096, 1024, generator=g)
    w90 = w * pruning.magnitude_mask(w, 0.9)
    w90_csr = w90.to_sparse_csr()
    w_half = w[:2048].contiguous()
    lin = torch.nn.functional.linear
    with torch.no_grad():
        t = quant.interleaved_times({"dense": lambda: lin(x, w), "dense, 90% zeros": lambda: lin(x, w90),
                                     "sparse CSR, 90% zeros": lambda: (w90_csr @ x.T).T,
                                     "structured, half the rows": lambda: lin(x, w_half)},
                                    repeat=5 if quick else 30)
    return {name: round(v / t["dense"], 3) for name, v in t.items()} | {"dense_ms": round(1000 * t["dense"], 3)}


TEACHERS = {"finetuned": "teacher_logits", "frozen": "teacher_frozen_logits"}   # file prefix of each teacher
GRID = ((2.0, 0.5), (4.0, 0.9))          # (temperature, alpha) tried with each teacher; chosen on the VALID split


def parse_grid(text: str) -> tuple[tuple[float, float], ...]:
    """``"2:0.5,4:0.9"`` -> ((2.0, 0.5), (4.0, 0.9))."""
    try:
        grid = tuple((float(t), float(a)) for t, a in (item.split(":") for item in text.split(",")))
    except ValueError:
        raise SystemExit(f"--grid must look like '2:0.5,4:0.9' (temperature:alpha pairs), got {text!r}") from None
    for t, a in grid:
        distillation._check(t, a)
    return grid


def distillation_trec(quick: bool, grid=GRID, teachers=None, previous: dict | None = None) -> dict | None:
    """Tiny BERT on TREC-6: hard labels, then distilled from each shipped teacher at every (T, alpha) of ``grid``.

    Every student starts from the same weights and sees the same batches and schedule; the (T, alpha)
    reported for a teacher is the one with the best *validation* accuracy (ties: the earlier one).
    ``teachers`` (default: all shipped) names the teachers to train students for; the hard-label
    student and the other teachers' results are taken from ``previous`` (the section of an earlier
    run) when it used the same settings and the same teacher logits, and are trained otherwise.
    """
    available = [t for t, prefix in TEACHERS.items()
                 if (DISTILLED / f"{prefix}_train.npy").exists() and (DISTILLED / f"history_{t}.json").exists()]
    if not available:
        return None
    unknown = set(teachers or ()) - set(available)
    if unknown:
        raise SystemExit(f"--teachers {sorted(unknown)}: no such teacher in {DISTILLED} (shipped: {available}); "
                         f"make it with tools/make_distillation_teacher.py")
    from transformers import AutoTokenizer

    from course_lib.finetuning import loop
    from course_lib.finetuning.classification import BertForSequenceClassification
    from course_lib.finetuning.data import make_batches, tokenize_texts, trec_splits
    from course_lib.transformer.bert import BertModel
    task = trec_splits(seed=0)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    splits = {"train": task.train, "valid": task.valid, "test": task.test}
    batches = {name: make_batches(tokenize_texts(tok, list(df.text), 64), df.label.to_numpy(),
                                  batch_size=32 if name == "train" else 64) for name, df in splits.items()}
    student_dir = checkpoint_path("tiny_bert")
    kw = dict(epochs=4, lr=1e-4, seed=0, progress=None, max_steps=5 if quick else None)

    def train_student(teacher_train=None, temperature=None, alpha=None) -> tuple[dict, torch.nn.Module]:
        torch.manual_seed(0)
        student = BertForSequenceClassification.from_pretrained(student_dir, task.num_labels)
        model, train = student, batches["train"]
        if teacher_train is not None:
            model = distillation.DistillationStudent(student, temperature, alpha)
            train = distillation.attach_teacher_logits(train, teacher_train)
        hist = loop.fit(model, train, **kw)
        run = {"valid_accuracy": round(loop.evaluate(student, batches["valid"])["accuracy"], 4),
               "test_accuracy": round(loop.evaluate(student, batches["test"])["accuracy"], 4),
               "train_seconds": round(hist.train_seconds, 1)}
        print(f"  student ({'hard labels' if teacher_train is None else f'T={temperature}, alpha={alpha}'}): "
              f"valid {run['valid_accuracy']:.4f}  test {run['test_accuracy']:.4f}", flush=True)
        return run, student

    res = {"student": "tiny BERT (checkpoints/tiny_bert) + new classifier", "epochs": 4, "lr": 1e-4,
           "max_steps": kw["max_steps"], "grid": [list(g) for g in grid],
           "selection": "per teacher, the (temperature, alpha) with the best validation accuracy",
           "hard_labels": None, "teachers": {}}
    same = previous is not None and all(previous.get(k) == res[k] for k in ("student", "epochs", "lr", "max_steps",
                                                                              "grid")) and previous.get("hard_labels")
    if same:
        res["hard_labels"] = previous["hard_labels"]
        res["earlier_commands"] = [*previous.get("earlier_commands", []), previous.get("command")]
        print("  student (hard labels): reused from the earlier run", flush=True)
    else:
        res["hard_labels"], _ = train_student()
    for name in available:
        logits = {s: np.load(DISTILLED / f"{TEACHERS[name]}_{s}.npy") for s in splits}
        acc = {s: round(float((logits[s].argmax(1) == df.label.to_numpy()).mean()), 4) for s, df in splits.items()}
        record = json.loads((DISTILLED / f"history_{name}.json").read_text())
        old = previous["teachers"].get(name) if same else None
        if teachers is not None and name not in teachers and old and old["teacher_accuracy"] == acc:
            res["teachers"][name] = old
            print(f"  students of the {name} teacher: reused from the earlier run", flush=True)
            continue
        runs = []
        for temperature, alpha in grid:
            run, _ = train_student(logits["train"], temperature, alpha)
            runs.append({"temperature": temperature, "alpha": alpha, **run})
        best = max(range(len(runs)), key=lambda i: (runs[i]["valid_accuracy"], -i))
        res["teachers"][name] = {"teacher": record["teacher"], "teacher_accuracy": acc, "runs": runs,
                                 "best": best, "best_run": runs[best]}
    teacher_enc = BertModel.from_pretrained(minilm_path()).eval()
    student = BertForSequenceClassification.from_pretrained(student_dir, task.num_labels).eval()   # timing only
    b = batches["test"][len(batches["test"]) // 2]
    with torch.no_grad():
        t = quant.interleaved_times({"teacher": lambda: teacher_enc(b["input_ids"], attention_mask=b["attention_mask"]),
                                     "student": lambda: student(b["input_ids"], attention_mask=b["attention_mask"])},
                                    repeat=3 if quick else 15)
    res["teacher_parameters"] = sum(p.numel() for p in teacher_enc.parameters()) + 6 * 385   # + a 6-way linear head
    res["student_parameters"] = sum(p.numel() for p in student.parameters())
    res["parameter_ratio"] = round(res["student_parameters"] / res["teacher_parameters"], 4)
    res["size_ratio"] = round(quant.state_dict_bytes(student) / quant.state_dict_bytes(teacher_enc), 4)
    res["latency_ratio"] = round(t["student"] / t["teacher"], 3)
    return res


def cost_table() -> dict:
    hw = cost.Hardware()
    return {"hardware": hw.__dict__, "num_gpus": 1024, "models": cost.extrapolate(hw, 1024)}


def run(quick: bool = False, device: str = "cpu", grid=GRID) -> dict:
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU; none is visible (torch.cuda.is_available() is False)")
    if device not in ("cpu", "cuda"):
        raise SystemExit(f"--device must be cpu or cuda, got {device!r}")
    start, cpu0 = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    d = gpt_data(quick)
    res = {"quick": quick, "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "machine": platform.machine()}
    res["quantisation_gpt"] = quantisation_gpt(d, quick, device)
    print("quantisation (tiny GPT) done", flush=True)
    res["quantisation_minilm"] = quantisation_minilm(quick, device)
    print("quantisation (MiniLM) done", flush=True)
    res["pruning_gpt"] = pruning_gpt(d, quick)
    print("pruning done", flush=True)
    res["distillation"] = distillation_trec(quick, grid)
    print("distillation done", flush=True)
    res["cost"] = cost_table()
    res["wall_seconds"] = round(time.perf_counter() - start, 1)
    res["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small evaluation slices and few steps (CI)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["distillation"], default=None,
                    help="rerun this section only and update it in place in the existing JSON")
    ap.add_argument("--teachers", default=None,
                    help="with --only distillation: comma-separated teachers to rerun (others reused), e.g. finetuned")
    ap.add_argument("--grid", default=",".join(f"{t:g}:{a:g}" for t, a in GRID),
                    help="distillation (temperature:alpha) pairs tried with each teacher, e.g. '2:0.5,4:0.9'")
    ap.add_argument("--json", default=None, help="default benchmarks/results/efficiency-compression-<device>.json "
                                                 "(quick runs are not written unless --json is given)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = parse_grid(args.grid)
    args_used = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/efficiency_compression.py " + " ".join(args_used)
    path = args.json or (None if args.quick else f"benchmarks/results/efficiency-compression-{args.device}.json")
    if args.only:
        if path is None or not (ROOT / path).exists():
            raise SystemExit(f"--only {args.only} updates an existing result file: run the full benchmark first "
                             f"(or give --json PATH of an existing file); {path} does not exist")
        res = json.loads((ROOT / path).read_text())
        start, cpu0 = time.perf_counter(), time.process_time()
        teachers = args.teachers.split(",") if args.teachers else None
        res["distillation"] = distillation_trec(args.quick, grid, teachers, res.get("distillation"))
        res["distillation"].update(command=command, threads=args.threads,
                                   wall_seconds=round(time.perf_counter() - start, 1),
                                   cpu_seconds=round(time.process_time() - cpu0, 1))
    else:
        res = run(args.quick, args.device, grid)
        res["command"] = command
    if path:
        Path(ROOT / path).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        print("wrote", path)
    q = res["quantisation_gpt"]["routes"]
    for name, r in q.items():
        print(f"{name:<45} ppl {r['perplexity']:8.2f} (x{r['perplexity_ratio']:.3f})  size x{r['size_ratio']}  "
              f"latency x{r['latency_ratio']}")
    d = res["distillation"]
    if d:
        print(f"student, hard labels: test {d['hard_labels']['test_accuracy']:.4f}")
        for name, t in d["teachers"].items():
            b = t["best_run"]
            print(f"student distilled from {name} teacher (test {t['teacher_accuracy']['test']:.4f}): "
                  f"T={b['temperature']}, alpha={b['alpha']} -> valid {b['valid_accuracy']:.4f}, "
                  f"test {b['test_accuracy']:.4f}")
    return res

if __name__ == "__main__":
    main()
