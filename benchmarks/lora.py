"""LoRA against full fine-tuning of MiniLM on TREC-6: test accuracy, trainable parameters, memory and time per step.

Run (one thread; the full run trains two models for minutes each on a CPU, start it in the background):
    .venv/bin/python benchmarks/lora.py --targets query key value dense --json benchmarks/results/lora-trec-cpu.json
    .venv/bin/python benchmarks/lora.py --only lora --json lora-only.json   # LoRA alone, then add the
    .venv/bin/python benchmarks/lora.py --combine lora-only.json \\          # identical full run recorded
        --full-json benchmarks/results/finetune-trec-ours-pretrained.json \\ # by benchmarks/finetune.py
        --json benchmarks/results/lora-trec-cpu.json
    .venv/bin/python benchmarks/lora.py --quick            # smoke run (seconds), exercised by the unit tests
    .venv/bin/python benchmarks/lora.py --device cuda

Data and the full fine-tuning recipe are those of ``benchmarks/finetune.py`` (TREC-6 standard split,
10% of the training set held out for validation with seed 0, max length 64, batch 32, 4 epochs, AdamW
with warm-up + linear decay, lr 1e-4); LoRA uses the same batches, epochs and schedule with its own
learning rate (``--lora-lr``, default 1e-3: only the small A, B matrices and the new head move).

Both models are scored after the last epoch on the 500 test questions. The per-step costs are
measured separately on one typical training batch, interleaved (full, LoRA, full, LoRA, ...), best of
``--repeat``:
- time of forward + backward + AdamW step;
- activation memory: bytes autograd saves for the backward pass (``course_lib.finetuning.lora.training_memory``:
  ``saved_tensors_hooks``, each storage once, weights excluded); LoRA saves less because a frozen
  ``nn.Linear`` needs no copy of its input for a weight gradient;
- parameter-side memory: gradients + AdamW's two moments, 3 x 4 bytes per *trainable* parameter;
- on CUDA also ``torch.cuda.max_memory_allocated`` of a step.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib import data  # noqa: E402
from course_lib.finetuning import loop  # noqa: E402
from course_lib.finetuning.classification import BertForSequenceClassification  # noqa: E402
from course_lib.finetuning.data import check_tokenizer, load_task, make_batches, tokenize_texts  # noqa: E402
from course_lib.finetuning.lora import LoraConfig, apply_lora, parameter_counts, training_memory  # noqa: E402
from course_lib.finetuning.metrics import classification_metrics  # noqa: E402
from course_lib.transformer.training import param_groups  # noqa: E402


def step_costs(models: dict, batch: dict, repeat: int, device) -> dict:
    """Best time of one training step per model (interleaved) and its memory figures."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    opts = {name: torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in param_groups(m, 0.01)],
                                    lr=1e-12) for name, m in models.items()}

    def step(name):
        m, opt = models[name], opts[name]
        loss = m(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    best = {name: float("inf") for name in models}
    for name in models:
        step(name), sync()
    for _ in range(repeat):
        for name in models:
            start = time.perf_counter()
            step(name)
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    out = {}
    for name, m in models.items():
        _, total = parameter_counts(m)
        mem = training_memory(m, batch)
        row = {"seconds_per_step": best[name], "activation_MiB": mem["activations"] / 2**20,
               "grad_and_adam_MiB": mem["gradients_and_adam"] / 2**20, "weights_MiB": 4 * total / 2**20}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            step(name), sync()
            row["cuda_peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
        out[name] = row
    return out


def build(kind: str, num_labels: int, args, device):
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification.from_pretrained(data.minilm_path(), num_labels)
    if kind == "lora":
        apply_lora(model, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.lora_dropout,
                                     target_modules=tuple(args.targets), modules_to_save=("classifier",)))
    return model.to(device)


def full_from_finetune_json(path: Path, args: dict) -> dict:
    """The full fine-tuning run recorded by ``benchmarks/finetune.py`` (checked to use our settings)."""
    ft = json.loads(Path(path).read_text())
    same = {"dataset": ft["dataset"] == "trec", "init": ft["init"] == "pretrained", "route": ft["route"] == "ours",
            **{k: ft["args"][k] == args[k] for k in ("epochs", "lr", "batch_size", "max_len", "seed")}}
    if not all(same.values()):
        raise SystemExit(f"{path} was run with other settings: {same}")
    print(f"full (from {Path(path).name}): test accuracy {ft['test']['accuracy']:.4f}", flush=True)
    return {"source": str(path), "trainable_parameters": ft["trainable_parameters"],
            "total_parameters": ft["parameters"], "trainable_percent": 100 * ft["trainable_parameters"] / ft["parameters"],
            "lr": ft["args"]["lr"], "epochs": ft["args"]["epochs"], "test_accuracy": ft["test"]["accuracy"],
            "test_macro_f1": ft["test"]["macro_f1"], "train_seconds": ft["train_seconds"],
            "steps": len(ft["history"]["step"]), "valid_accuracy": ft["history"]["eval_accuracy"]}


def summarise(report: dict) -> None:
    """Accuracy gap, trainable share and time ratio, once both runs are in the report."""
    if len(report["runs"]) < 2:
        return
    f, lo, costs = report["runs"]["full"], report["runs"]["lora"], report["step_costs"]
    gap = 100 * (f["test_accuracy"] - lo["test_accuracy"])
    report["summary"] = {"accuracy_gap_points": gap, "lora_trainable_percent": lo["trainable_percent"],
                         "time_per_step_ratio": costs["lora"]["seconds_per_step"] / costs["full"]["seconds_per_step"]}
    print(f"LoRA vs full: accuracy {100 * lo['test_accuracy']:.1f} vs {100 * f['test_accuracy']:.1f} "
          f"(gap {gap:+.1f} points) with {lo['trainable_percent']:.2f}% trainable parameters; "
          f"time per step ratio {report['summary']['time_per_step_ratio']:.2f}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=4)
    ap.add_argument("--lr", type=float, default=1e-4, help="full fine-tuning learning rate")
    ap.add_argument("--lora-lr", type=float, default=1e-3)
    ap.add_argument("--lora-epochs", type=float, default=None, help="default: --epochs")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.1)
    ap.add_argument("--targets", nargs="+", default=["query", "value"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats of the per-step costs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["full", "lora"], default=None, help="train only one of the two")
    ap.add_argument("--full-json", type=Path, default=None,
                    help="with --only lora: take the full fine-tuning result from this benchmarks/finetune.py "
                         "JSON (same data, split, max length, batches, schedule and seed)")
    ap.add_argument("--combine", type=Path, default=None,
                    help="no training: add --full-json's run to this earlier '--only lora' JSON and summarise")
    ap.add_argument("--quick", action="store_true", help="smoke run: 16 examples, 1 step each")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.combine:
        if not args.full_json:
            raise SystemExit("--combine needs --full-json")
        report = json.loads(args.combine.read_text())
        report["runs"]["full"] = full_from_finetune_json(args.full_json, report["args"])
        report["combined_with"] = "python benchmarks/lora.py " + " ".join(sys.argv[1:] if argv is None else argv)
        summarise(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return report
    if args.quick:
        args.train_limit, args.max_steps, args.batch_size, args.max_len, args.repeat = 16, 1, 8, 24, 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = load_task("trec", seed=args.seed)
    if args.train_limit:
        task.train = task.train.iloc[:args.train_limit]
        task.valid, task.test = (task.valid.iloc[:16], task.test.iloc[:16]) if args.quick else (task.valid, task.test)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data.minilm_path())
    batches = {name: make_batches(tokenize_texts(tok, list(df.text), args.max_len), df.label.to_numpy(),
                                  batch_size=args.batch_size if name == "train" else 2 * args.batch_size,
                                  pad_token_id=tok.pad_token_id)
               for name, df in (("train", task.train), ("valid", task.valid), ("test", task.test))}
    batches = {k: [{n: t.to(device) for n, t in b.items()} for b in v] for k, v in batches.items()}
    report = {"dataset": "trec", "sizes": task.sizes(), "args": {k: str(v) if isinstance(v, Path) else v
                                                                  for k, v in vars(args).items()},
              "command": "python benchmarks/lora.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": {"platform": platform.platform(), "device": str(device), "threads": args.threads,
                          "torch": torch.__version__}, "runs": {}}
    kinds = [args.only] if args.only else ["full", "lora"]
    for kind in kinds:
        model = build(kind, task.num_labels, args, device)
        check_tokenizer(tok, model)
        trainable, total = parameter_counts(model)
        lr = args.lr if kind == "full" else args.lora_lr
        epochs = args.epochs if kind == "full" else (args.lora_epochs or args.epochs)
        print(f"== {kind}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%), "
              f"lr {lr:g}, {epochs:g} epochs", flush=True)
        hist = loop.fit(model, batches["train"], batches["valid"], epochs=epochs, lr=lr, seed=args.seed,
                        max_steps=args.max_steps, progress="epoch")
        res = loop.evaluate(model, batches["test"])
        test = classification_metrics(res["labels"], res["predictions"], task.label_names)
        report["runs"][kind] = {"trainable_parameters": trainable, "total_parameters": total,
                                "trainable_percent": 100 * trainable / total, "lr": lr, "epochs": epochs,
                                "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                                "train_seconds": hist.train_seconds, "steps": len(hist.step),
                                "valid_accuracy": hist.eval_accuracy}
        print(f"{kind}: test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  "
              f"train {hist.train_seconds:.0f} s", flush=True)
        del model
    if args.full_json and "full" not in report["runs"]:
        report["runs"]["full"] = full_from_finetune_json(args.full_json, vars(args))
    # per-step costs on one typical batch (the median length), both models fresh
    train = batches["train"]
    batch = {k: v for k, v in sorted(train, key=lambda b: b["input_ids"].shape[1])[len(train) // 2].items()
             if k != "index"}
    costs = step_costs({k: build(k, task.num_labels, args, device).train() for k in ("full", "lora")},
                       batch, args.repeat, device)
    report["step_costs"] = {"batch_shape": list(batch["input_ids"].shape), **costs}
    for k, c in costs.items():
        print(f"{k:4s} step on a {tuple(batch['input_ids'].shape)} batch: {1000 * c['seconds_per_step']:.0f} ms, "
              f"saved activations {c['activation_MiB']:.1f} MiB, grads + AdamW {c['grad_and_adam_MiB']:.1f} MiB"
              + (f", CUDA peak {c['cuda_peak_MiB']:.0f} MiB" if "cuda_peak_MiB" in c else ""))
    summarise(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
