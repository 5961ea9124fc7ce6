"""Full fine-tuning runs of chapter 5: sequence classification on TREC-6 and Rotten Tomatoes.

Run (one thread, in the background; each full run takes minutes on a CPU):
    .venv/bin/python benchmarks/finetune.py --dataset trec --route ours --init pretrained \\
        --json benchmarks/results/finetune-trec-ours-pretrained.json
    .venv/bin/python benchmarks/finetune.py --dataset rotten_tomatoes --route hf --init pretrained
    .venv/bin/python benchmarks/finetune.py --dataset trec --init random          # transfer learning
    .venv/bin/python benchmarks/finetune.py --dataset trec --init tiny_bert       # checkpoints/tiny_bert
    .venv/bin/python benchmarks/finetune.py --quick                               # smoke run (seconds)

Routes: ``ours`` = our ``BertForSequenceClassification`` + ``fit`` (plain PyTorch loop); ``hf`` =
``AutoModelForSequenceClassification`` + ``Trainer``. Inits: ``pretrained`` (the offline MiniLM),
``random`` (the same architecture, random weights), ``tiny_bert`` (the tiny BERT pre-trained in
chapter 5, ``checkpoints/tiny_bert``). The model after the last epoch is scored on the test set
(no early stopping, so the validation split only monitors training). Prints the final metrics.
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
from course_lib.finetuning import baselines, loop  # noqa: E402
from course_lib.finetuning.classification import (BertForSequenceClassification, count_parameters,  # noqa: E402
                                                  freeze_lower_layers)
from course_lib.finetuning.data import check_tokenizer, load_task, make_batches, tokenize_texts  # noqa: E402
from course_lib.finetuning.metrics import classification_metrics  # noqa: E402


def model_folder(init: str) -> Path:
    if init in ("pretrained", "random"):
        return data.minilm_path()
    if init == "tiny_bert":
        folder = ROOT / "checkpoints" / "tiny_bert"
        if not (folder / "model.safetensors").exists():
            raise SystemExit(f"{folder} does not exist yet: run tools/pretrain_tiny_bert.py first")
        return folder
    raise SystemExit(f"unknown --init {init!r}")


def tokenizer_for(folder: Path):
    from transformers import AutoTokenizer
    has_own = any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt"))
    return AutoTokenizer.from_pretrained(folder if has_own else data.minilm_path())


def run_ours(args, task, folder: Path) -> dict:
    tok = tokenizer_for(folder)
    if args.init == "random":
        model = BertForSequenceClassification.from_random(folder, task.num_labels, seed=args.seed)
    else:
        torch.manual_seed(args.seed)
        model = BertForSequenceClassification.from_pretrained(folder, task.num_labels)
    check_tokenizer(tok, model)
    trainable = freeze_lower_layers(model, args.frozen_layers)
    pad = tok.pad_token_id
    batches = {name: make_batches(tokenize_texts(tok, list(df.text), args.max_len), df.label.to_numpy(),
                                  batch_size=args.batch_size if name == "train" else 2 * args.batch_size,
                                  pad_token_id=pad)
               for name, df in (("train", task.train), ("valid", task.valid), ("test", task.test)) if len(df)}
    hist = loop.fit(model, batches["train"], batches.get("valid"), epochs=args.epochs, lr=args.lr,
                    warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, seed=args.seed,
                    max_steps=args.max_steps, progress="bar" if args.bar else "epoch")
    res = loop.evaluate(model, batches["test"])
    test = classification_metrics(res["labels"], res["predictions"], task.label_names)
    return {"test": test, "history": hist.to_dict(), "train_seconds": hist.train_seconds,
            "parameters": count_parameters(model), "trainable_parameters": trainable}


def run_hf(args, task, folder: Path) -> dict:
    from course_lib.finetuning.hf_route import train_with_trainer
    if args.init != "pretrained":
        raise SystemExit("--route hf supports --init pretrained only (random/tiny_bert use --route ours)")
    out = train_with_trainer(folder, task.train, task.valid, task.label_names, test_df=task.test,
                             epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_len,
                             warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, seed=args.seed,
                             num_frozen_layers=args.frozen_layers, max_steps=args.max_steps)
    test = {k: v for k, v in out["test"].items() if k != "predictions"}
    return {"test": test, "log_history": out["log_history"], "train_seconds": out["train_seconds"],
            "parameters": sum(p.numel() for p in out["model"].parameters())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["trec", "rotten_tomatoes"], default="trec")
    ap.add_argument("--route", choices=["ours", "hf"], default="ours")
    ap.add_argument("--init", choices=["pretrained", "random", "tiny_bert"], default="pretrained")
    ap.add_argument("--epochs", type=float, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--frozen-layers", type=int, default=0, help="freeze embeddings + this many lower layers")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training examples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bar", action="store_true", help="tqdm progress bar on stderr")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 examples, 4 steps")
    ap.add_argument("--json", type=Path, default=None, help="write the result to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.train_limit, args.max_steps, args.batch_size, args.max_len = 64, 4, 16, 32
    torch.set_num_threads(args.threads)
    task = load_task(args.dataset, seed=args.seed)
    if args.train_limit:
        task.train = task.train.iloc[:args.train_limit]
        if args.quick:
            task.valid, task.test = task.valid.iloc[:64], task.test.iloc[:64]
    folder = model_folder(args.init)
    start, cpu_start = time.perf_counter(), time.process_time()
    res = (run_ours if args.route == "ours" else run_hf)(args, task, folder)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    tfidf = baselines.tfidf_logreg(task.train.text, task.train.label, task.test.text, task.test.label,
                                   task.label_names)
    report = {"dataset": args.dataset, "route": args.route, "init": args.init, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sizes": task.sizes(), "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),      # CPU time of this process: the wall time on an idle machine
        "command": "python benchmarks/finetune.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "threads": args.threads,
                    "torch": torch.__version__},
        "tfidf_logreg_test": {"accuracy": tfidf["accuracy"], "macro_f1": tfidf["macro_f1"]}, **res}
    t = res["test"]
    print(f"{args.dataset} route={args.route} init={args.init}: test accuracy {t['accuracy']:.4f}  "
          f"macro-F1 {t['macro_f1']:.4f}  (TF-IDF+LR {tfidf['accuracy']:.4f})  "
          f"train {res['train_seconds']:.0f} s, wall {wall:.0f} s, CPU {cpu:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
