"""NER on WNUT-16 with MiniLM: full fine-tuning (and LoRA) against a gazetteer baseline, entity-level seqeval scores.

Run (one thread, in the background; minutes on a CPU):
    .venv/bin/python benchmarks/ner.py --json benchmarks/results/ner-wnut16-cpu.json
    .venv/bin/python benchmarks/ner.py --lora --json benchmarks/results/lora-ner-wnut16-cpu.json
    .venv/bin/python benchmarks/ner.py --quick            # smoke run (seconds), exercised by the unit tests

Split: WNUT-16 ships here as one file of 2,394 tweets (the shared task's training set) with no split
marked, so ``split_sentences(seed=0)`` holds out a fixed 20% (479 tweets) as the test set; 10% of the
rest (seed 1) monitors training. Labels sit on the first WordPiece of each word (``word_ids()``),
predictions are read back from the first pieces, and the model after the last epoch is scored with
seqeval (entity level, CoNLL rules). The gazetteer baseline memorises the training entities.
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
from course_lib import data  # noqa: E402
from course_lib.finetuning import loop  # noqa: E402
from course_lib.finetuning.lora import LoraConfig, apply_lora, parameter_counts  # noqa: E402
from course_lib.finetuning.ner import (BertForTokenClassification, GazetteerBaseline, encode_ner,  # noqa: E402
                                       label_list, ner_scores, predict_tags, split_sentences)


def tags(sentences):
    return [[t for _, t in s] for s in sentences]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--lr", type=float, default=None, help="default 2e-4 (full) or 1e-3 (--lora)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--lora", action="store_true", help="LoRA (r, alpha below; query/value) instead of full")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="smoke run: 16 tweets, 2 steps")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    lr = args.lr or (1e-3 if args.lora else 2e-4)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sentences = data.load_wnut16()
    names = label_list(sentences)
    train, test = split_sentences(sentences, test_fraction=0.2, seed=0)
    train, valid = split_sentences(train, test_fraction=0.1, seed=1)
    if args.quick:
        train, valid, test = train[:16], valid[:8], test[:16]
        args.max_steps, args.max_len, args.batch_size = 2, 32, 8
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data.minilm_path())
    torch.manual_seed(args.seed)
    model = BertForTokenClassification.from_pretrained(data.minilm_path(), num_labels=len(names))
    if args.lora:
        apply_lora(model, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.1,
                                     modules_to_save=("classifier",)))
    model.to(device)
    enc = {name: encode_ner(ss, tok, names, max_length=args.max_len, model=model,
                            batch_size=args.batch_size if name == "train" else 2 * args.batch_size)
           for name, ss in (("train", train), ("valid", valid), ("test", test))}
    trainable, total = parameter_counts(model)
    print(f"WNUT-16: {len(train)} train / {len(valid)} valid / {len(test)} test tweets, {len(names)} tags; "
          f"{'LoRA' if args.lora else 'full'}: {trainable:,} of {total:,} parameters trainable, lr {lr:g}", flush=True)
    hist = loop.fit(model, enc["train"], enc["valid"], epochs=args.epochs, lr=lr, seed=args.seed,
                    max_steps=args.max_steps, progress="epoch")
    pred = predict_tags(model, enc["test"], names, sentence_lengths=[len(s) for s in test])
    scores = ner_scores(tags(test), pred)
    gaz = GazetteerBaseline().fit(train)
    base = ner_scores(tags(test), gaz.predict(test))
    per_type = {k: {m: round(float(v[m]), 4) for m in ("precision", "recall", "f1-score", "support")}
                for k, v in scores["report"].items()}                # numpy numbers -> JSON floats
    report = {"dataset": "wnut16", "method": "lora" if args.lora else "full", "sizes":
              {"train": len(train), "valid": len(valid), "test": len(test),
               "test_entities": sum(t.startswith("B-") for s in tags(test) for t in s)},
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "lr": lr,
              "command": "python benchmarks/ner.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": {"platform": platform.platform(), "device": str(device), "threads": args.threads,
                          "torch": torch.__version__},
              "trainable_parameters": trainable, "total_parameters": total,
              "test": {k: float(scores[k]) for k in ("precision", "recall", "f1")}, "test_per_type": per_type,
              "gazetteer_test": {k: float(base[k]) for k in ("precision", "recall", "f1")},
              "train_seconds": hist.train_seconds, "steps": len(hist.step),
              "valid_token_accuracy": hist.eval_accuracy,
              "published": {"wnut16_best_f1": 52.41, "source": "Strauss et al. (2016), official WNUT-16 test set"}}
    print(f"test entity-level P {scores['precision']:.3f} R {scores['recall']:.3f} F1 {scores['f1']:.3f}; "
          f"gazetteer P {base['precision']:.3f} R {base['recall']:.3f} F1 {base['f1']:.3f}; "
          f"train {hist.train_seconds:.0f} s", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
