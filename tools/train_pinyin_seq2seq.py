"""Train the encoder-decoder shipped in checkpoints/pinyin_seq2seq (chapter 4, notebook 05_seq2seq).

Usage (from the repository root, about 10 minutes on one core of a shared 2-core CPU):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python tools/train_pinyin_seq2seq.py --steps 4000 --threads 1 \
        --out checkpoints/pinyin_seq2seq

Task: Chinese characters -> numbered pinyin (course_lib.transformer.pinyin). Training data: the
HSK training sentences (repeated ``--hsk-repeat`` times) plus the CC-CEDICT words written with
HSK characters; the HSK validation split is monitored, the HSK test split evaluated at the end,
against the most-frequent-reading baseline given the same data. Writes model.safetensors +
config.json + vocab.json + history.json + checksums.json + README.md into ``--out``.
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

from course_lib.transformer import pinyin                                                   # noqa: E402
from course_lib.transformer.checkpoint import save_model, write_checksums, write_readme                  # noqa: E402
from course_lib.transformer.seq2seq import Seq2SeqConfig, Seq2SeqTransformer                # noqa: E402
from course_lib.transformer.training import TrainConfig, evaluate, seq2seq_loss, train      # noqa: E402
from course_lib.utils import set_seed                                                        # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--out", default="checkpoints/pinyin_seq2seq")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2, help="encoder layers = decoder layers")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--hsk-repeat", type=int, default=5, help="copies of the HSK training sentences")
    p.add_argument("--no-cedict", action="store_true", help="train on the HSK sentences only")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "python tools/train_pinyin_seq2seq.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t_start = time.perf_counter()

    pairs = pinyin.load_pinyin_pairs()
    train_pairs, valid_pairs, test_pairs = pinyin.split_pairs(pairs, seed=0)
    charset = {c for chars, _ in pairs for c in chars}               # the HSK character inventory
    words = [] if args.no_cedict else pinyin.load_cedict_pairs(charset)
    data = words + train_pairs * args.hsk_repeat
    vocab = pinyin.Vocab.build(data)
    print(f"{len(train_pairs)} HSK train sentences x {args.hsk_repeat} + {len(words)} CEDICT words; "
          f"vocabulary {len(vocab)}", flush=True)

    config = Seq2SeqConfig(vocab_size=len(vocab), d_model=args.d_model, encoder_layers=args.layers,
                           decoder_layers=args.layers, encoder_attention_heads=args.heads,
                           encoder_ffn_dim=4 * args.d_model, dropout=args.dropout, normalize_before=True)
    set_seed(args.seed)
    model = Seq2SeqTransformer(config)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}", flush=True)
    cfg = TrainConfig(max_steps=args.steps, per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                      weight_decay=0.01, adam_beta2=0.98, warmup_steps=args.warmup, logging_steps=50,
                      eval_steps=args.eval_every, seed=args.seed)
    valid = pinyin.pair_batches(pinyin.encode_pairs(valid_pairs, vocab), 256)
    t_train = time.perf_counter()
    history = train(model, cfg, pinyin.PairBatches(pinyin.encode_pairs(data, vocab), args.batch_size, seed=args.seed),
                    loss_fn=seq2seq_loss, eval_fn=lambda m: evaluate(m, valid, seq2seq_loss),
                    log=lambda line: print(f"{line} | {time.perf_counter() - t_train:.0f} s", flush=True))

    refs = [t for _, t in test_pairs]
    preds = pinyin.translate(model, [c for c, _ in test_pairs], vocab)
    base = pinyin.MostFrequentReading(train_pairs, fallback=words)
    base_preds = [base.predict(c) for c, _ in test_pairs]
    metrics = {
        "model": {"exact_match": pinyin.exact_match(preds, refs), "token_accuracy": pinyin.token_accuracy(preds, refs),
                  "by_kind": pinyin.accuracy_by_kind(preds, test_pairs, base.counts)},
        "baseline": {"exact_match": pinyin.exact_match(base_preds, refs),
                     "token_accuracy": pinyin.token_accuracy(base_preds, refs),
                     "by_kind": pinyin.accuracy_by_kind(base_preds, test_pairs, base.counts)},
    }
    print(json.dumps(metrics, indent=1), flush=True)

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    save_model(model, out, "seq2seq")
    (out / "vocab.json").write_text(json.dumps(vocab.itos, ensure_ascii=False, indent=0), encoding="utf-8")
    seconds = time.perf_counter() - t_start
    record = {"history": history.to_dict(), "train_config": asdict(cfg), "command": command,
              "date": datetime.date.today().isoformat(), "total_seconds": round(seconds, 1),
              "train_seconds": round(history.train_seconds, 1), "threads": args.threads,
              "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
              "data": {"hsk_train": len(train_pairs), "hsk_repeat": args.hsk_repeat, "cedict_words": len(words),
                       "hsk_valid": len(valid_pairs), "hsk_test": len(test_pairs)},
              "test": metrics}
    (out / "history.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    write_model_card(out, record, config, sums)
    print(f"wrote {out} in {seconds:.0f} s", flush=True)
    return 0


def write_model_card(out: Path, r: dict, config: Seq2SeqConfig, sums: dict) -> None:
    m, b, d = r["test"]["model"], r["test"]["baseline"], r["data"]
    kinds = "; ".join(f"{k}: model {m['by_kind'][k][1]:.1%} vs baseline {b['by_kind'][k][1]:.1%} "
                      f"({m['by_kind'][k][0]} characters)" for k in m["by_kind"])
    lines = [
        f"# {out.name}: Chinese characters -> numbered pinyin, a small encoder-decoder Transformer",
        "",
        "Trained by `tools/train_pinyin_seq2seq.py` (chapter 4, notebook `05_seq2seq.ipynb`) with",
        "",
        "```bash",
        f"OMP_NUM_THREADS={r['threads']} MKL_NUM_THREADS={r['threads']} {r['command']}",
        "```",
        "",
        f"- date: {r['date']}; machine: {r['machine']} (a shared 2-core CPU)",
        f"- time: {r['total_seconds'] / 60:.1f} min in total, of which {r['train_seconds'] / 60:.1f} min of "
        f"training ({r['train_config']['max_steps']} steps of "
        f"{r['train_config']['per_device_train_batch_size']} pairs)",
        f"- data: {d['hsk_train']} HSK training sentences x {d['hsk_repeat']} + {d['cedict_words']} CC-CEDICT words "
        f"written with HSK characters; HSK validation {d['hsk_valid']}, test {d['hsk_test']} sentences",
        f"- model: Seq2SeqTransformer, d_model={config.d_model}, {config.encoder_layers}+{config.decoder_layers} "
        f"layers, {config.encoder_attention_heads} heads, pre-LN, vocabulary {config.vocab_size}",
        f"- **HSK test: exact match {m['exact_match']:.1%}, syllable accuracy {m['token_accuracy']:.2%}** "
        f"(most-frequent-reading baseline given the same data: {b['exact_match']:.1%}, {b['token_accuracy']:.2%})",
        f"- by kind of character: {kinds}",
    ]
    write_readme(out, lines, sums)


if __name__ == "__main__":
    raise SystemExit(main())
