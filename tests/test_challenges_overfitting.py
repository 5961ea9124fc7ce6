"""Overfitting: the bag-of-embeddings classifier, augmentation, early stopping and learning curves."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.challenges import overfitting as of


@pytest.fixture
def toy():
    """A 40-word vocabulary in 4 clusters; a text's class is the cluster of most of its words."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8))
    vectors = np.repeat(centres, 10, axis=0) + 0.3 * rng.normal(size=(40, 8))
    vocab = of.Vocabulary([f"w{i}" for i in range(40)], vectors.astype(np.float32))

    def sample(n, seed):
        r = np.random.default_rng(seed)
        y = r.integers(0, 4, n)
        ids = [[2 + 10 * c + int(r.integers(10)) for _ in range(int(r.integers(3, 8)))] for c in y]
        noisy = r.random(n) < 0.25                                           # label noise: something to overfit
        return ids, np.where(noisy, r.integers(0, 4, n), y)
    return vocab, sample(60, 1), sample(200, 2)


def test_tokenize_and_encode():
    assert of.tokenize("What's the Capital of France?") == ["what's", "the", "capital", "of", "france", "?"]
    vocab = of.Vocabulary(["the", "capital"], np.ones((2, 3), np.float32))
    assert vocab.encode(["The capital zzz", "   "]) == [[2, 3, 1], [1]]
    with pytest.raises(TypeError, match="must be a str"):
        of.tokenize(3)


def test_model_averages_only_real_tokens():
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = of.BagOfEmbeddings(vectors, 2, hidden_size=0)
    ids = torch.tensor([[2, 3, 0, 0], [2, 0, 0, 0]])
    h = torch.stack([torch.tensor(vectors[[2, 3]]).mean(0), torch.tensor(vectors[2])])
    torch.testing.assert_close(model(ids), model.classifier(h))
    with pytest.raises(ValueError, match="dropout must be"):
        of.BagOfEmbeddings(vectors, 2, dropout=1.0)


def test_token_dropout_and_synonyms():
    rng = np.random.default_rng(0)
    ids = list(range(2, 30))
    assert of.token_dropout(ids, 0.0, rng) == ids
    kept = [len(of.token_dropout(ids, 0.5, rng)) for _ in range(200)]
    assert 12 < np.mean(kept) < 16 and min(len(of.token_dropout([5], 0.99, rng)) for _ in range(20)) == 1
    table = {5: np.array([7, 8]), 6: np.array([9])}
    assert of.synonym_replace([5, 6, 4], 0.0, table, rng) == [5, 6, 4]
    out = of.synonym_replace([5, 6, 4], 1.0, table, rng)
    assert out[0] in (7, 8) and out[1] == 9 and out[2] == 4
    with pytest.raises(ValueError, match="p must be in"):
        of.token_dropout(ids, 1.0, rng)


def test_synonym_table_matches_brute_force_cosine(toy):
    vocab = toy[0]
    table = of.synonym_table(vocab, topn=3, restrict=[2, 15, 41])
    unit = vocab.vectors / np.maximum(np.linalg.norm(vocab.vectors, axis=1, keepdims=True), 1e-8)
    for i in (2, 15, 41):
        sim = unit[2:] @ unit[i]
        sim[i - 2] = -np.inf
        assert table[i].tolist() == (np.argsort(-sim)[:3] + 2).tolist()
        assert 10 * ((i - 2) // 10) + 2 <= table[i].min() and table[i].max() < 10 * ((i - 2) // 10) + 12


def test_baseline_memorises_and_remedies_change_the_run(toy, one_torch_thread):
    vocab, (tr, ytr), (va, yva) = toy
    before = vocab.vectors.copy()
    base = of.train_classifier(of.TrainConfig(epochs=60, lr=1e-2, batch_size=16), vocab, tr, ytr, va, yva, 4)
    assert base["train_acc"] == 1.0 and base["gap"] > 0.1                   # memorised the label noise
    np.testing.assert_array_equal(vocab.vectors, before)                     # the shared table is not trained in place
    h = base["history"]
    assert len(h["valid_loss"]) == 60 and h["train_loss"][-1] < h["train_loss"][0]
    early = of.train_classifier(of.TrainConfig(epochs=60, lr=1e-2, batch_size=16, early_stopping=True),
                                vocab, tr, ytr, va, yva, 4)
    assert early["epoch"] == int(np.argmin(h["valid_loss"]))                 # same seed: same run until it stops
    assert early["valid_acc"] == h["valid_acc"][early["epoch"]]
    frozen = of.train_classifier(of.remedy_config("frozen embeddings", of.TrainConfig(epochs=3)), vocab, tr, ytr,
                                 va, yva, 4)
    np.testing.assert_allclose(frozen["model"].embeddings.weight.numpy(),
                               vocab.vectors[sorted({0, 1} | {t for r in tr + va for t in r})])


def test_synonym_augmentation_runs_and_needs_a_table(toy, one_torch_thread):
    vocab, (tr, ytr), (va, yva) = toy
    cfg = of.remedy_config("synonyms", of.TrainConfig(epochs=2))
    with pytest.raises(ValueError, match="needs synonyms"):
        of.train_classifier(cfg, vocab, tr, ytr, va, yva, 4)
    table = of.synonym_table(vocab, 3, restrict=[t for r in tr for t in r])
    out = of.train_classifier(cfg, vocab, tr, ytr, va, yva, 4, synonyms=table)
    assert 0 <= out["valid_acc"] <= 1


def test_learning_curve_gap_shrinks_with_data(toy, one_torch_thread):
    vocab, _, (va, yva) = toy
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 400)
    ids = [[2 + 10 * c + int(rng.integers(10)) for _ in range(3)] for c in y]
    y = np.where(rng.random(400) < 0.25, rng.integers(0, 4, 400), y)
    curve = of.learning_curve([20, 400], of.TrainConfig(epochs=30, lr=1e-2), vocab, ids, y, va, yva, 4)
    assert [c["n"] for c in curve] == [20, 400]
    assert curve[0]["gap"] > curve[1]["gap"]
    with pytest.raises(ValueError, match="outside 1..400"):
        of.learning_curve([500], of.TrainConfig(epochs=1), vocab, ids, y, va, yva, 4)


def test_config_and_remedy_errors():
    with pytest.raises(ValueError, match="augment must be"):
        of.TrainConfig(augment="mixup")
    with pytest.raises(ValueError, match="unknown remedy"):
        of.remedy_config("bagging")
    assert of.remedy_config("dropout").dropout == 0.5


def test_patience_stop():
    losses = [1.0, 0.8, 0.7, 0.72, 0.71, 0.69, 0.75, 0.8, 0.9]
    assert of.patience_stop(losses, 2) == (2, 4)
    assert of.patience_stop(losses, 3) == (5, 8)
    assert of.patience_stop(losses, 3, min_delta=0.05) == (2, 5)
    assert of.patience_stop([0.5], 1) == (0, 0)
    with pytest.raises(ValueError, match="patience must be"):
        of.patience_stop(losses, 0)
    with pytest.raises(ValueError, match="diverged"):
        of.patience_stop([1.0, float("nan")], 1)


def test_benchmark_remedy_runs_smoke(one_torch_thread):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "challenges.py"
    spec = importlib.util.spec_from_file_location("bench_challenges", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    vocab, tr, ytr, va, yva = bench.trec_ids()
    assert len(tr) == 4907 and len(va) == 545
    out = bench.remedy_runs(vocab, tr, ytr, va[:100], yva[:100], 50, 0, of.TrainConfig(epochs=2),
                            names=["baseline", "synonyms"])
    assert set(out) == {"baseline", "synonyms"} and len(out["baseline"]["history"]["valid_acc"]) == 2
