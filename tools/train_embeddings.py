"""Train the chapter-2 word vectors on the whole WikiText-2 train split (checkpoints/embeddings).

Usage (from the repository root; checkpoints/embeddings/README.md records the time it took):

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python tools/train_embeddings.py --threads 2 \
        --out checkpoints/embeddings

Trains, on the same sentences (17.5k paragraphs, 1.6M in-vocabulary tokens) and with the settings of
``benchmarks/embeddings.py`` (gensim's names: vector_size 100, window 5, negative 5, min_count 5,
sample 1e-3, 5 epochs, seed 1):

- our skip-gram (``train_word2vec``, chunks of 64 centres, 64 shared negatives) and gensim's ``Word2Vec``;
- our FastText (``train_fasttext``, min_n 3, max_n 6, 200,000 buckets, chunks of 32) and gensim's ``FastText``;
- our GloVe (``train_glove_torch``, ``GloVeConfig`` defaults: 50 dimensions, window 15, x_max 10, 15 epochs).

Stores every matrix as float16 ``.npy`` (half the bytes; the scores below are computed from the
stored float16 values, so loading them reproduces the scores exactly), one shared ``vocab.tsv``,
our skip-gram's output vectors of the ``--context-top`` most frequent words (notebook 2.2 checks
Levy & Goldberg's PMI result with them), GloVe's $w$ and $\\tilde w$ separately (notebook 2.3 scores
$w$, $\\tilde w$ and $w + \\tilde w$), ``history.json`` (settings, times, scores), ``checksums.json``
and ``README.md``. FastText's n-gram buckets are not stored (they would add 40 MB).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data import load_wikitext2  # noqa: E402
from course_lib.embeddings import FastTextConfig, GloVeConfig, Vocab, Word2VecConfig, WordVectors, wikitext_sentences  # noqa: E402,E501
from course_lib.embeddings.evaluate import standard_scores  # noqa: E402
from course_lib.embeddings.fasttext import train_fasttext  # noqa: E402
from course_lib.embeddings.glove import train_glove_torch  # noqa: E402
from course_lib.embeddings.word2vec_torch import train_word2vec  # noqa: E402
from course_lib.transformer.checkpoint import write_checksums, write_readme  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="checkpoints/embeddings")
    p.add_argument("--threads", type=int, default=2, help="torch threads and gensim workers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=5, help="Word2Vec / FastText epochs (GloVe: its config's 15)")
    p.add_argument("--context-top", type=int, default=2000,
                   help="store our skip-gram's output vectors of this many most frequent words")
    p.add_argument("--max-lines", type=int, default=None, help="first paragraphs only (a quick test run)")
    return p.parse_args(argv)


def half(x: np.ndarray) -> np.ndarray:
    """float16 copy; refuses values float16 cannot hold (|x| > 65504)."""
    if not np.isfinite(x).all() or np.abs(x).max() > 6e4:
        raise ValueError("vectors are not finite or too large for float16")
    return np.asarray(x, dtype=np.float16)


def gensim_train(cls, sentences, cfg):
    model = cls(**asdict(cfg))
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=cfg.epochs)
    return model, time.perf_counter() - start


def main(argv=None) -> int:
    from gensim.models import FastText, Word2Vec
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python tools/train_embeddings.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    sentences = wikitext_sentences(load_wikitext2("train"), max_lines=args.max_lines)
    cfg = Word2VecConfig(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=args.epochs,
                         workers=args.threads, seed=args.seed)
    fcfg = FastTextConfig(**asdict(cfg), min_n=3, max_n=6, bucket=200_000)
    gcfg = GloVeConfig(vector_size=50, min_count=5, seed=args.seed)
    vocab = Vocab.build(sentences, cfg.min_count)
    n_words = int(vocab.counts.sum())
    print(f"{len(sentences)} paragraphs, {n_words} in-vocabulary tokens, {len(vocab)} words", flush=True)
    arrays, seconds = {}, {}

    wv = train_word2vec(sentences, cfg, batch_size=2048, vocab=vocab, chunk_len=64, shared_negatives=64,
                        loss_every=10)
    arrays["word2vec.npy"], seconds["word2vec"] = half(wv.vectors), wv.seconds
    arrays["word2vec_context_top.npy"] = half(wv.context_vectors[:args.context_top])
    model, seconds["gensim_word2vec"] = gensim_train(Word2Vec, sentences, cfg)
    if list(model.wv.index_to_key) != vocab.index_to_key:
        raise RuntimeError("gensim's Word2Vec vocabulary differs from ours; one vocab.tsv cannot serve both")
    arrays["gensim_word2vec.npy"] = half(model.wv.vectors)
    print(f"word2vec: ours {seconds['word2vec']:.0f} s, gensim {seconds['gensim_word2vec']:.0f} s", flush=True)

    ftv = train_fasttext(sentences, fcfg, batch_size=512, vocab=vocab, chunk_len=32, shared_negatives=64,
                         loss_every=10)
    arrays["fasttext.npy"], seconds["fasttext"] = half(ftv.vectors), ftv.seconds
    model, seconds["gensim_fasttext"] = gensim_train(FastText, sentences, fcfg)
    if list(model.wv.index_to_key) != vocab.index_to_key:
        raise RuntimeError("gensim's FastText vocabulary differs from ours")
    arrays["gensim_fasttext.npy"] = half(model.wv.vectors)
    print(f"fasttext: ours {seconds['fasttext']:.0f} s, gensim {seconds['gensim_fasttext']:.0f} s", flush=True)

    gv = train_glove_torch(sentences, gcfg, batch_size=8192, vocab=vocab)
    arrays["glove_word.npy"] = half(gv.vectors - gv.context_vectors)          # w = (w + w~) - w~
    arrays["glove_context.npy"] = half(gv.context_vectors)
    seconds["glove"] = gv.seconds
    print(f"glove: ours {seconds['glove']:.0f} s", flush=True)

    # scores of the vectors exactly as stored (float16), so that loading reproduces them
    f32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    sets = {"word2vec": f32["word2vec.npy"], "gensim_word2vec": f32["gensim_word2vec.npy"],
            "fasttext": f32["fasttext.npy"], "gensim_fasttext": f32["gensim_fasttext.npy"],
            "glove": f32["glove_word.npy"] + f32["glove_context.npy"], "glove_word": f32["glove_word.npy"],
            "glove_context": f32["glove_context.npy"]}
    scores = {name: standard_scores(WordVectors(vocab.index_to_key, m)) for name, m in sets.items()}
    for name, s in scores.items():
        print(f"{name:16s} WordSim-353 {s['wordsim353']:.4f}  SimLex-999 {s['simlex999']:.4f}  "
              f"analogies {s['analogy']:.2%} (semantic {s['semantic']:.2%}, syntactic {s['syntactic']:.2%})")

    for name, arr in arrays.items():
        np.save(out / name, arr, allow_pickle=False)
    (out / "vocab.tsv").write_text("".join(f"{w}\t{c}\n" for w, c in zip(vocab.index_to_key, vocab.counts)),
                                   encoding="utf-8")
    total = time.perf_counter() - t0
    history = {"command": command, "date": datetime.date.today().isoformat(),
               "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
               "load_average": round(os.getloadavg()[0], 2), "total_seconds": round(total, 1),
               "corpus": {"paragraphs": len(sentences), "tokens": n_words, "vocab": len(vocab)},
               "word2vec_config": asdict(cfg), "fasttext_config": asdict(fcfg), "glove_config": asdict(gcfg),
               "context_top": args.context_top, "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
               "scores": scores}
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    sums = write_checksums(out)
    rows = [f"| `{n}` | {s['wordsim353']:.4f} | {s['simlex999']:.4f} | {s['analogy']:.2%} | "
            f"{s['semantic']:.2%} | {s['syntactic']:.2%} |" for n, s in scores.items()]
    times = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    write_readme(out, [
        "# embeddings: Word2Vec, FastText and GloVe trained on WikiText-2 (ours and gensim's)", "",
        "Trained by `tools/train_embeddings.py` (chapter 2; loaded by `course_lib.embeddings.shipped.load_shipped`) with",
        "", "```bash", f"OMP_NUM_THREADS={args.threads} OMP_WAIT_POLICY=PASSIVE {command}", "```", "",
        f"- date: {history['date']}; machine: {history['machine']} (a shared 2-core CPU, load average "
        f"{history['load_average']} at the end)",
        f"- corpus: WikiText-2 train, {len(sentences)} paragraphs, {n_words:,} in-vocabulary tokens, "
        f"{len(vocab):,} words (min_count 5), one shared `vocab.tsv`",
        f"- Word2Vec and FastText: skip-gram, vector_size 100, window 5, negative 5, sample 1e-3, "
        f"{cfg.epochs} epochs, seed {cfg.seed}; FastText min_n 3, max_n 6, bucket 200,000 (buckets not stored)",
        f"- GloVe: `GloVeConfig` defaults (50 dimensions, window {gcfg.window}, x_max {gcfg.x_max:g}, "
        f"{gcfg.epochs} epochs), $w$ and $\\tilde w$ stored apart",
        f"- storage: float16 `.npy` (no vocabulary cap); our skip-gram's output vectors for the "
        f"{args.context_top} most frequent words",
        f"- time: {total / 60:.1f} min in total; training {times}", "",
        "## Scores of the stored (float16) vectors", "",
        "WordSim-353 and SimLex-999: Spearman rho; analogies: Google set, 3CosAdd, gensim's conventions.", "",
        "| vectors | WordSim-353 | SimLex-999 | analogies | semantic | syntactic |", "|---|---|---|---|---|---|",
        *rows, ""], sums)
    print(f"wrote {out} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
