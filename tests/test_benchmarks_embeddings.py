"""The embeddings benchmark runs in quick mode and reports consistent numbers."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_embeddings_benchmark_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_emb", ROOT / "benchmarks" / "embeddings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(["--quick", "--threads", "1", "--skip", "glove"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "skip-gram words/s" in out and "FastText analogy accuracy" in out
    assert report["vocab"] > 1500
    for name in ("word2vec", "fasttext"):
        r = report[name]
        assert r["speed"]["ours"] > 0 and r["speed"]["gensim"] > 0
        # one epoch on ~70k tokens: the scores are only checked to be well-formed
        assert -1 < r["ours"]["wordsim353"] < 1 and 0 <= r["ours"]["analogy"] <= 1


def test_embeddings_benchmark_quick_on_short_sentences(capsys):
    spec = importlib.util.spec_from_file_location("bench_emb_rt", ROOT / "benchmarks" / "embeddings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(["--quick", "--corpus", "rt", "--threads", "1", "--skip", "glove", "word2vec"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "corpus rt: 3000 sentences" in out and "FastText analogy accuracy" in out
    assert report["corpus"] == "rt" and report["sentences"] == 3000 and "word2vec" not in report
    r = report["fasttext"]
    assert r["speed"]["ours"] > 0 and r["speed"]["gensim"] > 0
    assert -1 < r["ours"]["wordsim353"] < 1 and 0 <= r["ours"]["analogy"] <= 1
