"""Train the tiny GPT shipped in checkpoints/tiny_gpt (chapter 4, notebook 04_training_tiny_gpt).

Usage (from the repository root, about 17 minutes on one core of a shared 2-core CPU):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python tools/train_tiny_gpt.py --steps 1200 --threads 1 \
        --out checkpoints/tiny_gpt

One thread on purpose: on a 2-core machine shared with other jobs, two OpenMP threads that wait
for each other ran about three times slower than one.

Steps (Source A §3.2): train our byte-level BPE on the WikiText-2 train split, encode train and
valid, cut them into blocks, train ``GPT2LMHeadModel`` with ``course_lib.transformer.training``
(AdamW, warm-up + cosine, clipping), evaluate on the whole valid split, sample text, and write
model.safetensors + config.json + vocab.json/merges.txt/bpe_config.json + history.json +
checksums.json + README.md into ``--out``. Nothing is cached anywhere else.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import load_wikitext2                                                  # noqa: E402
from course_lib.transformer import decoding                                                  # noqa: E402
from course_lib.transformer.checkpoint import save_model, write_checksums, write_readme                   # noqa: E402
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel                           # noqa: E402
from course_lib.transformer.lm_data import (BlockBatches, encode_corpus, eval_batches, make_blocks,  # noqa: E402
                                            save_tokenizer, train_lm_tokenizer, unigram_cross_entropy)
from course_lib.transformer.training import TrainConfig, evaluate, train                     # noqa: E402
from course_lib.utils import set_seed                                                         # noqa: E402

PROMPTS = ["The history of the", "In 1998 , the band", " = = Early life = = \n"]
EVAL_SLICE_BLOCKS = 128       # the notebook re-computes the loss on the first 128 valid blocks


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1200, help="optimiser steps")
    p.add_argument("--out", default="checkpoints/tiny_gpt", help="output folder")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--block-size", type=int, default=128, help="context length = n_positions")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "python tools/train_tiny_gpt.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t_start = time.perf_counter()
    set_seed(args.seed)

    # steps 1-2: text -> BPE tokens -> blocks of input and label sequences
    train_text, valid_text = load_wikitext2("train"), load_wikitext2("valid")
    tok = train_lm_tokenizer(train_text.splitlines(), args.vocab_size)
    train_ids, valid_ids = encode_corpus(tok, train_text), encode_corpus(tok, valid_text)
    train_blocks, valid_blocks = make_blocks(train_ids, args.block_size), make_blocks(valid_ids, args.block_size)
    print(f"BPE: {len(tok)} tokens; train {len(train_ids):,} tokens ({len(train_blocks)} blocks), "
          f"valid {len(valid_ids):,} tokens ({len(valid_blocks)} blocks); "
          f"{time.perf_counter() - t_start:.0f} s", flush=True)

    # steps 2-6: the model (embeddings, attention, positions, LayerNorm, output layer)
    config = GPT2Config(vocab_size=len(tok), n_positions=args.block_size, n_embd=args.n_embd,
                        n_layer=args.n_layer, n_head=args.n_head, resid_pdrop=args.dropout,
                        embd_pdrop=args.dropout, attn_pdrop=args.dropout, bos_token_id=0, eos_token_id=0)
    set_seed(args.seed)
    model = GPT2LMHeadModel(config)
    print(f"GPT-2: {model.num_parameters(non_embedding=False):,} parameters", flush=True)

    # steps 7-8: loss and optimisation
    cfg = TrainConfig(max_steps=args.steps, per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                      weight_decay=args.weight_decay, warmup_steps=args.warmup, logging_steps=50,
                      eval_steps=args.eval_every, seed=args.seed)
    batches = BlockBatches(train_blocks, args.batch_size, seed=args.seed)
    slice_batches = eval_batches(valid_blocks[:EVAL_SLICE_BLOCKS], 32)
    t_train = time.perf_counter()
    history = train(model, cfg, batches, eval_fn=lambda m: evaluate(m, slice_batches),
                    log=lambda line: print(f"{line} | {time.perf_counter() - t_train:.0f} s", flush=True))

    # evaluation on the whole valid split, and the unigram baseline
    slice_loss = evaluate(model, slice_batches)
    valid_loss = evaluate(model, eval_batches(valid_blocks, 32))
    unigram = unigram_cross_entropy(train_ids, valid_blocks[:, 1:].reshape(-1), len(tok))
    n_tokens = valid_blocks[:, 1:].numel()
    word_ppl = math.exp(valid_loss * len(valid_ids) / len(valid_text.split()))   # exp(NLL per word)
    print(f"valid loss {valid_loss:.4f} (perplexity {math.exp(valid_loss):.2f}); unigram {unigram:.4f} "
          f"(perplexity {math.exp(unigram):.1f})", flush=True)

    # step 9: inference, sampling with a fixed seed
    samples = []
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([tok.encode(prompt)])
        g = torch.Generator().manual_seed(args.seed + i)
        seq = decoding.generate(model, ids, max_new_tokens=60, do_sample=True, temperature=0.8, top_k=50,
                                generator=g)
        samples.append(tok.decode(seq[0].tolist()))
    for s in samples:
        print("---\n" + s)

    # write the checkpoint
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    save_model(model, out, "gpt2")
    save_tokenizer(tok, out)
    seconds = time.perf_counter() - t_start
    record = {"history": history.to_dict(), "train_config": asdict(cfg), "command": command,
              "date": datetime.date.today().isoformat(), "total_seconds": round(seconds, 1),
              "train_seconds": round(history.train_seconds, 1), "threads": args.threads,
              "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
              "eval_slice_blocks": EVAL_SLICE_BLOCKS, "eval_slice_loss": slice_loss,
              "valid_loss": valid_loss, "valid_perplexity": math.exp(valid_loss),
              "valid_word_perplexity": word_ppl, "unigram_loss": unigram,
              "valid_tokens": n_tokens, "train_tokens": len(train_ids), "samples": samples}
    (out / "history.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    write_model_card(out, record, config, sums)
    print(f"wrote {out} in {seconds:.0f} s", flush=True)
    return 0


def write_model_card(out: Path, r: dict, config: GPT2Config, sums: dict) -> None:
    lines = [
        f"# {out.name}: a tiny GPT-2 trained on WikiText-2",
        "",
        "Trained by `tools/train_tiny_gpt.py` (chapter 4, notebook `04_training_tiny_gpt.ipynb`) with",
        "",
        "```bash",
        f"OMP_NUM_THREADS={r['threads']} MKL_NUM_THREADS={r['threads']} {r['command']}",
        "```",
        "",
        f"- date: {r['date']}; machine: {r['machine']} (a shared 2-core CPU)",
        f"- time: {r['total_seconds'] / 60:.1f} min in total, of which {r['train_seconds'] / 60:.1f} min of "
        f"training ({r['train_config']['max_steps']} steps of {r['train_config']['per_device_train_batch_size']} "
        f"x {config.n_positions} tokens)",
        f"- model: GPT2LMHeadModel, n_embd={config.n_embd}, n_layer={config.n_layer}, n_head={config.n_head}, "
        f"n_positions={config.n_positions}, vocab_size={config.vocab_size} (byte-level BPE trained on the "
        "train split)",
        f"- **validation (whole WikiText-2 valid split, {r['valid_tokens']:,} tokens): loss "
        f"{r['valid_loss']:.4f} nats/token, perplexity {r['valid_perplexity']:.2f}** "
        f"(per word: {r['valid_word_perplexity']:.1f}); unigram baseline perplexity "
        f"{math.exp(r['unigram_loss']):.1f}",
        f"- loss on the first {r['eval_slice_blocks']} valid blocks (what the notebook re-computes): "
        f"{r['eval_slice_loss']:.4f}",
    ]
    samples = ["## Samples (temperature 0.8, top-k 50, seeded)", "", *[f"```\n{s}\n```\n" for s in r["samples"]]]
    write_readme(out, lines, sums, after=samples)


if __name__ == "__main__":
    raise SystemExit(main())
