"""Make the distillation teachers' logits on TREC-6 (checkpoints/distilled; chapter 6, notebook 05).

Usage (from the repository root; checkpoints/distilled/README.md records the time each took):

    OMP_NUM_THREADS=2 python tools/make_distillation_teacher.py --teacher finetuned --threads 2
    OMP_NUM_THREADS=1 python tools/make_distillation_teacher.py --teacher frozen --threads 1

Two teachers, both built on the offline all-MiniLM-L6-v2 weights (our ``BertModel``, 22.7 M parameters):

- ``finetuned``: every weight of MiniLM fine-tuned on TREC-6 with chapter 5's recipe, exactly as
  ``benchmarks/finetune.py --dataset trec --route ours --init pretrained --epochs 4 --lr 1e-4`` does it
  (``BertForSequenceClassification`` + ``course_lib.finetuning.loop.fit``: batch 32, max length 64,
  AdamW with weight decay 0.01, 10 % warm-up then linear decay, seed 0; test accuracy 96.6 % in
  chapter 5). About ten minutes of CPU. Files: ``teacher_logits_{train,valid,test}.npy``.
- ``frozen``: the *frozen* encoder with a multinomial logistic-regression head on its mean-pooled
  last hidden states (a cheap, weaker teacher; under a minute of CPU). Files:
  ``teacher_frozen_logits_{train,valid,test}.npy`` and ``teacher_head.npy`` ((6, 385): weights
  then bias; chapter 6's quantisation benchmark reuses this head on the quantised encoder).

Logits are float32 (N, 6), rows in the order of the split's DataFrame from ``trec_splits(seed=0)``.
Each run writes ``history_<teacher>.json`` and then refreshes the folder's ``checksums.json`` and
``README.md`` from every ``history_*.json`` present, so the two teachers can be remade separately.
A student needs only the logits, so the folder ships them instead of a copy of the encoder.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import minilm_path                                                        # noqa: E402
from course_lib.efficiency.distillation import mean_pooled_features                            # noqa: E402
from course_lib.finetuning import loop                                                         # noqa: E402
from course_lib.finetuning.classification import (BertForSequenceClassification,              # noqa: E402
                                                  freeze_lower_layers)
from course_lib.finetuning.data import check_tokenizer, make_batches, tokenize_texts, trec_splits  # noqa: E402
from course_lib.transformer.bert import BertModel                                              # noqa: E402
from course_lib.transformer.checkpoint import write_checksums, write_readme                    # noqa: E402
from course_lib.utils import set_seed                                                          # noqa: E402

PREFIX = {"finetuned": "teacher", "frozen": "teacher_frozen"}      # file prefix of each teacher's logits
HEAD = "teacher_head.npy"                                            # the frozen teacher's logistic head
SPLITS = ("train", "valid", "test")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", choices=sorted(PREFIX), default="finetuned")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--C", type=float, default=10.0, help="frozen teacher: inverse L2 strength of the head")
    p.add_argument("--epochs", type=float, default=4, help="finetuned teacher: chapter 5's recipe")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="smoke runs only")
    p.add_argument("--save-model", default=None, help="finetuned teacher: also save its state dict here")
    p.add_argument("--out", default="checkpoints/distilled")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def frozen_teacher(args, task, tok) -> tuple[dict, dict, np.ndarray]:
    """Logistic regression on the frozen encoder's mean-pooled states: (logits per split, info, head)."""
    from sklearn.linear_model import LogisticRegression
    encoder = BertModel.from_pretrained(minilm_path()).eval()
    feats = {}
    for split, df in zip(SPLITS, (task.train, task.valid, task.test)):
        batches = make_batches(tokenize_texts(tok, list(df.text), args.max_length), df.label.to_numpy(), batch_size=64)
        feats[split] = mean_pooled_features(encoder, batches).numpy()
        print(f"{split}: {feats[split].shape} features", flush=True)
    clf = LogisticRegression(C=args.C, max_iter=2000).fit(feats["train"], task.train.label.to_numpy())
    logits = {s: clf.decision_function(feats[s]).astype(np.float32) for s in SPLITS}       # (N, 6)
    head = np.concatenate([clf.coef_, clf.intercept_[:, None]], 1).astype(np.float32)      # (6, 385)
    info = {"teacher": "frozen MiniLM (all-MiniLM-L6-v2) + logistic regression on mean-pooled states",
            "teacher_parameters": sum(p.numel() for p in encoder.parameters()) + head.size}
    return logits, info, head


def finetuned_teacher(args, task, tok) -> tuple[dict, dict, None]:
    """Chapter 5's full fine-tuning of MiniLM (as benchmarks/finetune.py --route ours): logits per split."""
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification.from_pretrained(minilm_path(), task.num_labels)
    check_tokenizer(tok, model)
    freeze_lower_layers(model, 0)
    batches = {s: make_batches(tokenize_texts(tok, list(df.text), args.max_length), df.label.to_numpy(),
                               batch_size=args.batch_size if s == "train" else 2 * args.batch_size,
                               pad_token_id=tok.pad_token_id)
               for s, df in zip(SPLITS, (task.train, task.valid, task.test))}
    hist = loop.fit(model, batches["train"], batches["valid"], epochs=args.epochs, lr=args.lr,
                    warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, seed=args.seed,
                    max_steps=args.max_steps, progress="epoch")
    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
    logits = {}
    for s in SPLITS:
        parts = loop.predict_logits(model, batches[s])                                     # [(B, 6)]
        index = torch.cat([b["index"] for b in batches[s]])                                # (N,) original rows
        out = torch.empty(len(index), task.num_labels)
        out[index] = torch.cat(parts)                                                      # DataFrame row order
        logits[s] = out.numpy().astype(np.float32)
    info = {"teacher": "MiniLM (all-MiniLM-L6-v2) fine-tuned on TREC-6 with chapter 5's recipe",
            "teacher_parameters": sum(p.numel() for p in model.parameters()),
            "fit_history": hist.to_dict(), "train_seconds": round(hist.train_seconds, 1)}
    return logits, info, None


def refresh_folder(out: Path) -> dict[str, str]:
    """Rewrite ``checksums.json`` and ``README.md`` from every ``history_<teacher>.json`` in ``out``."""
    lines = ["# Distillation teachers: logits on TREC-6", "",
             "Rows follow `course_lib.finetuning.data.trec_splits(seed=0)` (train, valid, test); "
             "float32 (N, 6) logits. Each teacher's command below wrote its files to the folder given by "
             "`--out`, from which they were copied here; `--out checkpoints/distilled` (the default) "
             "writes them here directly.", ""]
    for teacher in ("finetuned", "frozen"):
        path = out / f"history_{teacher}.json"
        if not path.exists():
            continue
        h = json.loads(path.read_text(encoding="utf-8"))
        acc = h["accuracy"]
        lines += [f"## Teacher `{teacher}`: `{PREFIX[teacher]}_logits_{{train,valid,test}}.npy`", "",
                  f"- made by: `{h['command']}` on {h['date']} ({h['wall_seconds']:.0f} s wall, "
                  f"{h['cpu_seconds']:.0f} s CPU, torch threads: {h['args']['threads']})",
                  f"- teacher: {h['teacher']}, {h['teacher_parameters']:,} parameters",
                  f"- accuracy: train {acc['train']:.3f}, valid {acc['valid']:.3f}, test {acc['test']:.3f}"]
        if teacher == "frozen":
            lines.append(f"- `{HEAD}`: (6, 385) = logistic-regression weights (6, 384) and bias "
                         "(6, 1) on MiniLM's mean-pooled last hidden states")
        lines.append("")
    sums = write_checksums(out)
    write_readme(out, lines, sums)
    return sums


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    start, cpu0 = time.perf_counter(), time.process_time()
    from transformers import AutoTokenizer
    task = trec_splits(seed=0)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    make = finetuned_teacher if args.teacher == "finetuned" else frozen_teacher
    logits, info, head = make(args, task, tok)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = PREFIX[args.teacher]
    if head is not None:
        np.save(out / HEAD, head)
    acc = {}
    for split, df in zip(SPLITS, (task.train, task.valid, task.test)):
        np.save(out / f"{prefix}_logits_{split}.npy", logits[split])
        acc[split] = float((logits[split].argmax(1) == df.label.to_numpy()).mean())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    command = "python tools/make_distillation_teacher.py " + " ".join(argv if argv is not None else sys.argv[1:])
    history = {**info, "accuracy": acc, "label_names": task.label_names, "sizes": task.sizes(), "args": vars(args),
               "command": command, "date": datetime.date.today().isoformat(), "wall_seconds": round(wall, 1),
               "cpu_seconds": round(cpu, 1), "torch": torch.__version__, "machine": platform.machine()}
    (out / f"history_{args.teacher}.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    refresh_folder(out)
    print(json.dumps({k: history[k] for k in ("teacher", "accuracy", "wall_seconds", "cpu_seconds")}), flush=True)
    return history


if __name__ == "__main__":
    main()
