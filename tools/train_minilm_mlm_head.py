"""Train an MLM head for the frozen MiniLM encoder (checkpoints/minilm_mlm_head; chapter 5, notebook 02).

Usage (from the repository root; checkpoints/minilm_mlm_head/README.md records the time it took):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python tools/train_minilm_mlm_head.py --sentences 1200 --steps 300 \
        --threads 1 --out checkpoints/minilm_mlm_head

MiniLM ships without ``cls.predictions``. The encoder (and the decoder, tied to its word embeddings)
stays frozen; WikiText-2 train sentences are masked once (15 %, 80/10/10), encoded once, and the head's
transform + output bias (~180 k parameters) are trained with Adam on the cached hidden states of the
masked positions. Masked-token accuracy is measured on masked WikiText-2 *valid* sentences before
(random head) and after training. Writes model.safetensors (the head's tensors only, float32),
config.json, history.json, checksums.json and README.md into ``--out``.
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
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import load_wikitext2, minilm_path                                       # noqa: E402
from course_lib.pretraining import minilm_head, nsp, pretrain                                  # noqa: E402
from course_lib.transformer.checkpoint import write_checksums, write_readme                    # noqa: E402
from course_lib.utils import set_seed                                                          # noqa: E402

PROBES = ["The capital of France is [MASK].", "He was born in 1950 and [MASK] in 2010.",
          "The song was released as the album's first [MASK].", "The battle took place during the Second World [MASK]."]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=1200, help="train sentences to mask and encode")
    p.add_argument("--valid-sentences", type=int, default=300)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=256, help="masked positions per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--out", default="checkpoints/minilm_mlm_head")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def sample_sentences(split: str, n: int, seed: int) -> list[str]:
    sents = [s for doc in nsp.split_documents(load_wikitext2(split)) for s in doc if len(s.split()) >= 6]
    idx = np.random.default_rng(seed).choice(len(sents), size=min(n, len(sents)), replace=False)
    return [sents[i] for i in sorted(idx)]


def main(argv=None) -> int:
    from transformers import AutoTokenizer
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "python tools/train_minilm_mlm_head.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t0, c0 = time.perf_counter(), time.process_time()
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = minilm_head.minilm_for_masked_lm(head=None, seed=args.seed)
    trainable = minilm_head.freeze_encoder(model)
    train_s = sample_sentences("train", args.sentences, args.seed)
    valid_s = sample_sentences("valid", args.valid_sentences, args.seed + 1)
    x_tr, y_tr = minilm_head.collect_masked_features(model, tokenizer, train_s, max_length=args.max_length,
                                                     seed=args.seed)
    x_va, y_va = minilm_head.collect_masked_features(model, tokenizer, valid_s, max_length=args.max_length,
                                                     seed=args.seed + 1)
    print(f"{trainable:,} trainable parameters; masked positions: train {len(y_tr):,}, valid {len(y_va):,}; "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    before_acc = minilm_head.head_accuracy(model, x_va, y_va)
    before = {t: pretrain.fill_mask(model, tokenizer, t)[0] for t in PROBES}
    losses = minilm_head.train_head(model, x_tr, y_tr, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                    seed=args.seed, log_every=50)
    after_acc = minilm_head.head_accuracy(model, x_va, y_va)
    train_acc = minilm_head.head_accuracy(model, x_tr, y_tr)
    after = {t: pretrain.fill_mask(model, tokenizer, t)[0] for t in PROBES}
    print(f"valid masked-token accuracy: random head {before_acc:.4f} -> trained head {after_acc:.4f} "
          f"(train {train_acc:.4f})", flush=True)
    for t in PROBES:
        print(f"{t}\n  before: {[w for w, _ in before[t]]}\n  after:  {[w for w, _ in after[t]]}")

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    save_file(minilm_head.head_state_dict(model), out / "model.safetensors")
    config = {"model_type": "bert_mlm_head", "encoder": "all-MiniLM-L6-v2 (course_lib.data.minilm_path())",
              "tensors": sorted(minilm_head.head_state_dict(model)), "hidden_size": model.config.hidden_size,
              "vocab_size": model.config.vocab_size, "hidden_act": model.config.hidden_act,
              "layer_norm_eps": model.config.layer_norm_eps}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - t0
    record = {"command": command, "date": datetime.date.today().isoformat(), "total_seconds": round(seconds, 1),
              "total_cpu_seconds": round(time.process_time() - c0, 1), "threads": args.threads,
              "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
              "args": vars(args), "trainable_parameters": trainable, "train_positions": len(y_tr),
              "valid_positions": len(y_va), "loss": losses, "valid_accuracy_random_head": before_acc,
              "valid_accuracy_trained_head": after_acc, "train_accuracy_trained_head": train_acc,
              "fill_mask_before": before, "fill_mask_after": after}
    (out / "history.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    lines = [f"# {out.name}: an MLM head for the frozen MiniLM encoder", "",
             "Trained by `tools/train_minilm_mlm_head.py` (chapter 5, notebook `02_pretraining_tiny_bert.ipynb`) with",
             "", "```bash", f"OMP_NUM_THREADS={args.threads} MKL_NUM_THREADS={args.threads} {command}", "```", "",
             f"- date: {record['date']}; machine: {record['machine']} (a 2-core CPU shared with other jobs)",
             f"- time: {seconds / 60:.1f} min wall, {record['total_cpu_seconds'] / 60:.1f} min of CPU time",
             f"- holds only the head's tensors ({trainable:,} parameters): `cls.predictions.transform.*` and "
             "`cls.predictions.bias`; the decoder is tied to MiniLM's word embeddings and the encoder is "
             "MiniLM's, both frozen. Load with `course_lib.pretraining.minilm_head.minilm_for_masked_lm('shipped')`.",
             f"- data: {len(train_s)} WikiText-2 train sentences masked once ({len(y_tr):,} masked positions); "
             f"{args.steps} Adam steps of {args.batch_size} positions, lr {args.lr}",
             f"- **masked-token accuracy on {len(y_va):,} masked positions of {len(valid_s)} WikiText-2 valid "
             f"sentences: random head {before_acc:.4f}, trained head {after_acc:.4f}**"]
    probes = ["## Fill-mask, top 5 after training", ""] + [
        f"- `{t}`: " + ", ".join(f"{w} ({p:.2f})" for w, p in g) for t, g in after.items()]
    write_readme(out, lines, sums, after=probes + [""])
    print(f"wrote {out} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
