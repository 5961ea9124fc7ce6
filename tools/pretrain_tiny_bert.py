"""Pre-train the tiny BERT shipped in checkpoints/tiny_bert (chapter 5, notebook 02_pretraining_tiny_bert).

Usage (from the repository root; see checkpoints/tiny_bert/README.md for the time it took):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python tools/pretrain_tiny_bert.py --steps 3000 --warmup 100 --eval-every 500 \
        --threads 1 --out checkpoints/tiny_bert

Steps: split WikiText-2 (train) into articles and sentences, tokenise with MiniLM's WordPiece
vocabulary (30,522 tokens), pack sentences into segments, build 50/50 next-sentence pairs
(``[CLS] A [SEP] B [SEP]`` with token types), mask 15 % of the tokens 80/10/10 afresh for every batch,
and train ``BertForPreTraining`` on MLM + NSP with chapter 4's loop (AdamW, warm-up + cosine,
clipping). Masked-token and NSP accuracy are measured on fixed, pre-masked pairs of the *valid*
split: the first 1,024 during training, the first ``--final-eval-pairs`` (4,096) at the end.

The weights are stored in float16 (``--dtype float16``, the default): the 30,522 x D embedding table
is most of the model, and half precision halves the file (D=128: ~8.8 MB instead of ~17.6 MB). The
numbers in history.json and the README are measured *after* the round trip to float16, i.e. on
exactly the weights that ship. ``load_model`` converts them back to float32.
The CPU time (``time.process_time``) is recorded next to the wall time: on a machine shared with
other jobs, wall time overstates what the run costs on an idle core.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import load_wikitext2, minilm_path                                       # noqa: E402
from course_lib.pretraining import nsp, pretrain                                               # noqa: E402
from course_lib.pretraining.heads import BertForPreTraining                                    # noqa: E402
from course_lib.transformer.bert import BertConfig                                             # noqa: E402
from course_lib.transformer.checkpoint import save_model, write_checksums, write_readme        # noqa: E402
from course_lib.transformer.training import TrainConfig, train                                 # noqa: E402
from course_lib.utils import set_seed                                                          # noqa: E402

PROBES = ["the city is located in the [MASK] of the country .",
          "he was born in [MASK] and moved to london in 1990 .",
          "the song was released as the album 's first [MASK] .",
          "the battle took place during the second world [MASK] ."]
EVAL_PAIRS = 1024      # valid pairs evaluated during training


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=500, help="optimiser steps")
    p.add_argument("--out", default="checkpoints/tiny_bert", help="output folder")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=512)
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--final-eval-pairs", type=int, default=4096, help="valid pairs of the final evaluation")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="storage precision")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def make_examples(split: str, tokenizer, max_seq_length: int, seed: int) -> pretrain.PairExamples:
    docs = nsp.split_documents(load_wikitext2(split))
    ids = pretrain.tokenize_documents(docs, tokenizer)
    return pretrain.build_nsp_examples(ids, max_seq_length=max_seq_length, cls_token_id=tokenizer.cls_token_id,
                                       sep_token_id=tokenizer.sep_token_id, rng=np.random.default_rng(seed))


def probe(model, tokenizer) -> dict[str, list]:
    return {text: pretrain.fill_mask(model, tokenizer, text, top_k=5)[0] for text in PROBES}


def main(argv=None) -> int:
    from transformers import AutoTokenizer
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "python tools/pretrain_tiny_bert.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t_start, c_start = time.perf_counter(), time.process_time()
    set_seed(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    train_ex = make_examples("train", tokenizer, args.max_seq_length, args.seed)
    valid_ex = make_examples("valid", tokenizer, args.max_seq_length, args.seed + 1)
    n_train_tokens = sum(map(len, train_ex.input_ids))
    print(f"pairs: train {len(train_ex):,} ({n_train_tokens:,} tokens), valid {len(valid_ex):,}; "
          f"{time.perf_counter() - t_start:.0f} s", flush=True)

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden_size, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=args.intermediate_size,
                        max_position_embeddings=args.max_seq_length, pad_token_id=tokenizer.pad_token_id)
    set_seed(args.seed)
    model = BertForPreTraining(config)
    print(f"BertForPreTraining: {model.num_parameters():,} parameters", flush=True)
    before = probe(model, tokenizer)

    batches = pretrain.MaskedPairBatches(train_ex, args.batch_size, tokenizer, seed=args.seed)
    valid_slice = pretrain.fixed_validation_batches(valid_ex, 64, tokenizer, limit=EVAL_PAIRS)
    metrics: list[dict] = []

    def eval_fn(m) -> float:
        metrics.append(pretrain.evaluate_pretraining(m, valid_slice))
        return metrics[-1]["mlm_loss"] + metrics[-1]["nsp_loss"]

    cfg = TrainConfig(max_steps=args.steps, per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                      weight_decay=args.weight_decay, adam_beta2=0.98, warmup_steps=args.warmup,
                      logging_steps=50, eval_steps=args.eval_every, seed=args.seed)
    t_train, c_train = time.perf_counter(), time.process_time()

    def log(line: str) -> None:
        extra = ""
        if metrics and "val loss" in line:
            extra = f" | mlm acc {metrics[-1]['mlm_accuracy']:.3f} | nsp acc {metrics[-1]['nsp_accuracy']:.3f}"
        print(f"{line}{extra} | {time.perf_counter() - t_train:.0f} s", flush=True)

    history = train(model, cfg, batches, loss_fn=pretrain.pretraining_loss, eval_fn=eval_fn, log=log)
    cpu_train = time.process_time() - c_train

    # the shipped weights: round trip through the storage dtype, then measure on the whole valid split
    shipped = copy.deepcopy(model)
    if args.dtype == "float16":
        shipped.half()
        model.load_state_dict({k: v.float() for k, v in shipped.state_dict().items()})
    final = pretrain.evaluate_pretraining(model, pretrain.fixed_validation_batches(valid_ex, 64, tokenizer,
                                                                                   limit=args.final_eval_pairs))
    final["pairs"] = min(args.final_eval_pairs, len(valid_ex))
    slice_final = pretrain.evaluate_pretraining(model, valid_slice)
    after = probe(model, tokenizer)
    print(f"valid ({final['pairs']:,} pairs, {final['masked_tokens']:,} masked tokens): "
          f"masked-token accuracy {final['mlm_accuracy']:.4f}, NSP accuracy {final['nsp_accuracy']:.4f}", flush=True)
    for text in PROBES:
        print(f"{text}\n  before: {[t for t, _ in before[text]]}\n  after:  {[t for t, _ in after[text]]}")

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    save_model(shipped, out, "bert_pretraining")
    seconds = time.perf_counter() - t_start
    record = {"history": history.to_dict(), "eval_metrics": metrics, "train_config": asdict(cfg), "command": command,
              "date": datetime.date.today().isoformat(), "total_seconds": round(seconds, 1),
              "train_seconds": round(history.train_seconds, 1), "train_cpu_seconds": round(cpu_train, 1),
              "total_cpu_seconds": round(time.process_time() - c_start, 1), "threads": args.threads,
              "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
              "storage_dtype": args.dtype, "max_seq_length": args.max_seq_length,
              "train_pairs": len(train_ex), "train_tokens": n_train_tokens, "valid_pairs": len(valid_ex),
              "eval_slice_pairs": EVAL_PAIRS, "eval_slice_final": slice_final, "valid_final": final,
              "num_parameters": model.num_parameters(), "fill_mask_before": before, "fill_mask_after": after,
              "tokenizer": "MiniLM WordPiece (course_lib.data.minilm_path())"}
    (out / "history.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    write_model_card(out, record, config, sums)
    print(f"wrote {out} in {seconds:.0f} s ({record['total_cpu_seconds']:.0f} s of CPU time)", flush=True)
    return 0


def write_model_card(out: Path, r: dict, config: BertConfig, sums: dict) -> None:
    first, last = r["eval_metrics"][0], r["eval_metrics"][-1]
    lines = [
        f"# {out.name}: a tiny BERT pre-trained on WikiText-2 (masked LM + next-sentence prediction)",
        "",
        "Trained by `tools/pretrain_tiny_bert.py` (chapter 5, notebook `02_pretraining_tiny_bert.ipynb`) with",
        "",
        "```bash",
        f"OMP_NUM_THREADS={r['threads']} MKL_NUM_THREADS={r['threads']} {r['command']}",
        "```",
        "",
        f"- date: {r['date']}; machine: {r['machine']} (a 2-core CPU shared with other jobs)",
        f"- time: {r['total_seconds'] / 60:.1f} min wall in total, of which {r['train_seconds'] / 60:.1f} min of "
        f"training; CPU time of the training {r['train_cpu_seconds'] / 60:.1f} min (what one idle core needs, "
        "roughly)",
        f"- data: {r['train_pairs']:,} sentence-pair sequences ({r['train_tokens']:,} tokens) of at most "
        f"{r['max_seq_length']} tokens; {r['train_config']['max_steps']} steps of "
        f"{r['train_config']['per_device_train_batch_size']} pairs",
        f"- model: BertForPreTraining, hidden_size={config.hidden_size}, num_hidden_layers={config.num_hidden_layers}, "
        f"num_attention_heads={config.num_attention_heads}, intermediate_size={config.intermediate_size}, "
        f"vocab_size={config.vocab_size} (MiniLM's WordPiece; tokenizer files are those of "
        f"`course_lib.data.minilm_path()`, not copied here), {r['num_parameters']:,} parameters, decoder tied to "
        f"the word embeddings; weights stored as {r['storage_dtype']}",
        f"- **validation (the first {r['valid_final']['pairs']:,} of the {r['valid_pairs']:,} WikiText-2 valid "
        f"pairs, {r['valid_final']['masked_tokens']:,} masked tokens): masked-token accuracy {r['valid_final']['mlm_accuracy']:.4f}, NSP accuracy "
        f"{r['valid_final']['nsp_accuracy']:.4f}** (measured on the stored {r['storage_dtype']} weights)",
        f"- on the first {r['eval_slice_pairs']} valid pairs (what the notebook re-computes): masked-token "
        f"accuracy {first['mlm_accuracy']:.4f} -> {r['eval_slice_final']['mlm_accuracy']:.4f}, NSP accuracy "
        f"{first['nsp_accuracy']:.4f} -> {r['eval_slice_final']['nsp_accuracy']:.4f} (before -> after training; "
        f"in float32 at the last step: {last['mlm_accuracy']:.4f}, {last['nsp_accuracy']:.4f})",
    ]
    probes = ["## Fill-mask, top 5 after training", ""]
    for text, guesses in r["fill_mask_after"].items():
        probes.append(f"- `{text}`: " + ", ".join(f"{t} ({p:.2f})" for t, p in guesses))
    write_readme(out, lines, sums, after=probes + [""])


if __name__ == "__main__":
    raise SystemExit(main())
