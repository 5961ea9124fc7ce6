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
