"""Embeddings benchmark: our PyTorch Word2Vec / FastText / GloVe vs gensim and the official GloVe.

Run:  .venv/bin/python benchmarks/embeddings.py            # full WikiText-2 train, 5 epochs (minutes)
      .venv/bin/python benchmarks/embeddings.py --seeds 1 2 3   # mean quality over three seeds
      .venv/bin/python benchmarks/embeddings.py --corpus rt     # Rotten Tomatoes snippets (short sentences)
      .venv/bin/python benchmarks/embeddings.py --quick    # CI smoke run: 800 paragraphs, 1 epoch

Two corpora: ``wikitext`` (WikiText-2 train, 17.5k paragraphs of about 90 in-vocabulary tokens,
1.6M tokens) and ``rt`` (the 12.8k Rotten Tomatoes review snippets, about 17 tokens each,
222k tokens), where windows are cut short by sentence ends far more often.

Every comparison uses the same sentences, the same hyper-parameters (gensim's names:
vector_size 100, window 5, negative 5, min_count 5, sample 1e-3, 5 epochs) and the
same process; torch uses ``--threads`` CPU threads and gensim ``workers=--threads``.
Speed is corpus words (in-vocabulary tokens x epochs) per second of training, vocabulary
building excluded for both; "ratio" = ours / gensim, so > 1 means ours is faster.
Quality is scored by our evaluation (equal to gensim's, see tests/test_embeddings_evaluate.py):
Spearman rho on WordSim-353 and 3CosAdd accuracy on the Google analogies; "rel" is
ours / reference - 1.

``OMP_WAIT_POLICY=PASSIVE`` is set before torch is imported: on a shared machine, idle
OpenMP threads that spin instead of sleeping made small torch kernels 10x slower.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib.data import gensim_test_file, load_glove_6b_50d, load_rotten_tomatoes, load_wikitext2  # noqa: E402
from course_lib.embeddings import (FastTextConfig, GloVeConfig, Vocab, Word2VecConfig,  # noqa: E402
                                   WordVectors, tokenize, wikitext_sentences)
from course_lib.embeddings.evaluate import evaluate_word_analogies, evaluate_word_pairs  # noqa: E402
from course_lib.embeddings.fasttext import train_fasttext  # noqa: E402
from course_lib.embeddings.glove import train_glove_torch  # noqa: E402
from course_lib.embeddings.word2vec_torch import train_word2vec  # noqa: E402
from course_lib.utils import write_json  # noqa: E402


def quality(wv: WordVectors) -> dict:
    pairs = evaluate_word_pairs(wv, gensim_test_file("wordsim353.tsv"))
    acc, _ = evaluate_word_analogies(wv, gensim_test_file("questions-words.txt"))
    return {"wordsim353": pairs["spearman"], "analogy": acc}


def load_corpus(name: str, quick: bool) -> list[list[str]]:
    """Token lists of one corpus: WikiText-2 paragraphs or Rotten Tomatoes snippets (800 / 3000 in quick mode)."""
    if name == "wikitext":
        return wikitext_sentences(load_wikitext2("train"), max_lines=800 if quick else None)
    texts = load_rotten_tomatoes()["text"]
    sentences = [s for s in (tokenize(t) for t in texts) if s]
    return sentences[:3000] if quick else sentences


def gensim_vectors(model) -> WordVectors:
    return WordVectors(list(model.wv.index_to_key), model.wv.vectors)


def timed_gensim(cls, sentences, cfg):
    model = cls(**asdict(cfg))
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=cfg.epochs)
    return model, time.perf_counter() - start


def line(name, ours, ref, ref_name, unit="", rel=True):
    if not ref:
        r = "rel n/a (reference is 0)"
    else:
        r = f"rel {ours / ref - 1:+.1%}" if rel else f"ratio {ours / ref:.2f}"
    print(f"{name:<44} ours {ours:10.4g}{unit}   {ref_name} {ref:10.4g}{unit}   {r}")


def compare(label: str, seeds, run_gensim, run_ours, n_words: int, epochs: int) -> dict:
    """Train both libraries once per seed; speed from the summed times, quality as the mean."""
    runs = []
    for seed in seeds:
        ref, ref_s = run_gensim(seed)
        ours = run_ours(seed)
        run = {"seed": seed, "seconds": {"ours": ours.seconds, "gensim": ref_s},
               "ours": quality(ours), "gensim": quality(gensim_vectors(ref))}
        runs.append(run)
        if len(seeds) > 1:
            print(f"  {label} seed {seed}: ratio {ref_s / ours.seconds:.2f}; WordSim-353 ours "
                  f"{run['ours']['wordsim353']:.4f} gensim {run['gensim']['wordsim353']:.4f}; analogies ours "
                  f"{run['ours']['analogy']:.2%} gensim {run['gensim']['analogy']:.2%}")
    total = {k: sum(r["seconds"][k] for r in runs) for k in ("ours", "gensim")}
    speed = {k: n_words * epochs * len(runs) / total[k] for k in total}
    mean = {who: {m: float(np.mean([r[who][m] for r in runs])) for m in ("wordsim353", "analogy")}
            for who in ("ours", "gensim")}
    tag = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
    line(f"{label} words/s{tag}", speed["ours"], speed["gensim"], "gensim", rel=False)
    line(f"{label} WordSim-353 Spearman{tag}", mean["ours"]["wordsim353"], mean["gensim"]["wordsim353"], "gensim")
    line(f"{label} analogy accuracy{tag}", mean["ours"]["analogy"], mean["gensim"]["analogy"], "gensim")
    return {"runs": runs, "speed": speed, "seconds": total, **mean}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small slice, 1 epoch (CI)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip", nargs="*", default=[], choices=["word2vec", "fasttext", "glove"])
    p.add_argument("--corpus", default="wikitext", choices=["wikitext", "rt"],
                   help="wikitext: WikiText-2 train paragraphs; rt: Rotten Tomatoes review snippets (short)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1],
                   help="one run of each library per seed; quality is averaged (analogy accuracy on "
                        "1.6M tokens varies by about +-10%% from seed to seed)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    from gensim.models import FastText, Word2Vec

    torch.set_num_threads(args.threads)
    sentences = load_corpus(args.corpus, args.quick)
    epochs = 1 if args.quick else 5
    cfg = Word2VecConfig(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3,
                         epochs=epochs, workers=args.threads, seed=args.seeds[0])
    vocab = Vocab.build(sentences, cfg.min_count)
    n_words = int(vocab.counts.sum())
    print(f"corpus {args.corpus}: {len(sentences)} sentences, {n_words} in-vocabulary tokens, {len(vocab)} words; "
          f"{epochs} epochs, torch threads {args.threads} vs gensim workers {args.threads}, device {args.device}")
    report = {"corpus": args.corpus, "sentences": len(sentences), "words": n_words, "vocab": len(vocab), "epochs": epochs, "threads": args.threads,
              "device": args.device, "seeds": args.seeds, "load_average": os.getloadavg()[0]}

    if "word2vec" not in args.skip:
        with_seed = lambda seed: replace(cfg, seed=seed)  # noqa: E731
        # 32 chunks of 64 centre words per step (about 12,000 pairs), 64 shared negatives per chunk
        report["word2vec"] = compare(
            "skip-gram", args.seeds, lambda seed: timed_gensim(Word2Vec, sentences, with_seed(seed)),
            lambda seed: train_word2vec(sentences, with_seed(seed), batch_size=2048, vocab=vocab,
                                        device=args.device, chunk_len=64, shared_negatives=64, loss_every=10),
            n_words, epochs)

    if "fasttext" not in args.skip:
        fcfg = FastTextConfig(**asdict(cfg), min_n=3, max_n=6, bucket=20_000 if args.quick else 200_000)
        with_seed = lambda seed: replace(fcfg, seed=seed)  # noqa: E731
        # smaller batches than skip-gram: an n-gram row shared by many words of one batch sums
        # all their (stale) updates; 2048 centres per step diverged, 512 and 1024 did not
        report["fasttext"] = compare(
            "FastText", args.seeds, lambda seed: timed_gensim(FastText, sentences, with_seed(seed)),
            lambda seed: train_fasttext(sentences, with_seed(seed), batch_size=512, vocab=vocab,
                                        device=args.device, chunk_len=32, shared_negatives=64, loss_every=10),
            n_words, epochs)

    if "glove" not in args.skip:
        # GloVeConfig's defaults: the reference code's small-corpus settings (window 15, x_max 10, 15 epochs)
        gcfg = GloVeConfig(vector_size=50, min_count=5, seed=args.seeds[0], **({"epochs": 3} if args.quick else {}))
        ours = train_glove_torch(sentences, gcfg, batch_size=8192, vocab=vocab, device=args.device)
        vectors, words = load_glove_6b_50d()
        official = WordVectors(words, np.asarray(vectors))
        q_ours, q_ref = quality(ours), quality(official)
        print(f"GloVe (ours: {ours.seconds:.0f} s, {len(ours)} words; official: 6B tokens, {len(official)} words)")
        line("GloVe-50d WordSim-353 Spearman", q_ours["wordsim353"], q_ref["wordsim353"], "6B-50d")
        line("GloVe-50d analogy accuracy", q_ours["analogy"], q_ref["analogy"], "6B-50d")
        report["glove"] = {"seconds": ours.seconds, "ours": q_ours, "official": q_ref}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
