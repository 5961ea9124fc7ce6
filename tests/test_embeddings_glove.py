"""GloVe: co-occurrence counts, the loss and its gradients, NumPy == PyTorch, training."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from course_lib.data import load_wikitext2
from course_lib.embeddings import GloVeConfig, Vocab, wikitext_sentences
from course_lib.embeddings import glove


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cooccurrence_matches_loop(rng):
    sents = [list(rng.integers(0, 7, n)) for n in (12, 5, 1, 9)]
    ids = np.concatenate(sents).astype(np.int64)
    sent = np.repeat(np.arange(4), [12, 5, 1, 9])
    rows, cols, vals = glove.cooccurrence(ids, sent, 7, window=3)
    ref = defaultdict(float)
    for s in sents:
        for i in range(len(s)):
            for j in range(max(0, i - 3), min(len(s), i + 4)):
                if i != j:
                    ref[(s[i], s[j])] += 1.0 / abs(i - j)
    got = {(int(r), int(c)): v for r, c, v in zip(rows, cols, vals)}
    assert got.keys() == ref.keys()
    assert rows.dtype == cols.dtype == np.int64 and np.all(np.diff(rows * 7 + cols) > 0)  # sorted, unique
    assert all(abs(got[k] - ref[k]) < 1e-12 for k in ref)
    with pytest.raises(ValueError, match="window"):
        glove.cooccurrence(ids, sent, 7, window=0)


def test_weighting():
    np.testing.assert_allclose(glove.weighting(np.array([1.0, 50.0, 100.0, 500.0])),
                               [0.01**0.75, 0.5**0.75, 1.0, 1.0])


def test_hand_gradients_match_autograd(rng):
    V, D, n = 9, 4, 30
    w, wc = rng.normal(size=(V, D)), rng.normal(size=(V, D))
    b, bc = rng.normal(size=V), rng.normal(size=V)
    i, j = rng.integers(0, V, n), rng.integers(0, V, n)
    x = rng.uniform(0.5, 200, n)
    params = [torch.tensor(p, requires_grad=True) for p in (w, wc, b, bc)]
    tw, twc, tb, tbc = params
    err = (tw[i] * twc[j]).sum(1) + tb[i] + tbc[j] - torch.tensor(np.log(x))
    J = (torch.tensor(glove.weighting(x)) * err**2).sum()
    (0.5 * J).backward()
    assert abs(J.item() - glove.glove_loss(w, wc, b, bc, i, j, x)) < 1e-9
    e = glove.weighting(x) * err.detach().numpy()                # e = f(X) * err
    hand = [np.zeros_like(w), np.zeros_like(wc), np.zeros_like(b), np.zeros_like(bc)]
    np.add.at(hand[0], i, e[:, None] * wc[j])
    np.add.at(hand[1], j, e[:, None] * w[i])
    np.add.at(hand[2], i, e)
    np.add.at(hand[3], j, e)
    for h, p in zip(hand, params):
        np.testing.assert_allclose(h, p.grad.numpy(), atol=1e-10)


def _batch(rng, V=9, D=4, n=40, dtype=np.float64):
    """Small random parameters and a batch of n entries over V words (rows repeat)."""
    params = [rng.normal(size=(V, D)), rng.normal(size=(V, D)), rng.normal(size=V), rng.normal(size=V)]
    i, j = rng.integers(0, V, n), rng.integers(0, V, n)
    x = rng.uniform(0.2, 30, n)
    return [p.astype(dtype) for p in params], i, j, x


def _step(name, params, hist, i, j, x, lr, x_max=10.0):
    """Run glove_step_numpy or glove_step_torch; return NumPy copies of the new parameters."""
    logx, fx = np.log(x), glove.weighting(x, x_max)
    if name == "numpy":
        glove.glove_step_numpy(params, hist, i, j, logx, fx, lr)
        return params
    t = [torch.from_numpy(p) for p in params]
    th = [torch.from_numpy(h) for h in hist]
    glove.glove_step_torch(t, th, torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(logx),
                           torch.from_numpy(fx), lr)
    return [p.numpy() for p in t]


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_step_is_torch_adagrad_on_the_batch_loss(rng, name):
    # Reference: autograd of J_B / 2, then torch.optim.Adagrad (G starts at 0, eps 1e-10).
    params, _, _, _ = _batch(rng)
    ref = [torch.tensor(p, requires_grad=True) for p in params]
    opt = torch.optim.Adagrad(ref, lr=0.05, eps=glove.EPS, initial_accumulator_value=0.0)
    hist = [np.zeros_like(p) for p in params]
    for _ in range(3):                                            # G carries over between steps
        _, i, j, x = _batch(rng)
        tw, twc, tb, tbc = ref
        err = (tw[i] * twc[j]).sum(1) + tb[i] + tbc[j] - torch.tensor(np.log(x))
        opt.zero_grad()
        (0.5 * (torch.tensor(glove.weighting(x, 10.0)) * err**2).sum()).backward()
        opt.step()
        params = _step(name, params, hist, i, j, x, lr=0.05)
        assert np.bincount(i).max() > 1                           # rows repeat inside the batch
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p, r.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_step_never_exceeds_lr(rng, name):
    # One frequent word (row 0) in 300 entries whose gradients all point the same way:
    # each entry alone would step by ~lr; the batch moves each coordinate by at most lr.
    V, D, n, lr = 50, 8, 300, 0.05
    params = [np.full((V, D), 0.1), np.full((V, D), 0.1), np.zeros(V), np.zeros(V)]
    i, j = np.zeros(n, dtype=np.int64), rng.integers(1, V, n)
    x = rng.uniform(20, 50, n)                                    # log X > w.w~: every e < 0
    hist = [np.zeros_like(p) for p in params]
    before = [p.copy() for p in params]
    after = _step(name, params, hist, i, j, x, lr)
    steps = [np.abs(a - b).max() for a, b in zip(after, before)]
    assert max(steps) <= lr * (1 + 1e-9)
    np.testing.assert_allclose(after[0][0] - before[0][0], lr)    # first step of AdaGrad: lr * sign(-g)
    # later steps shrink: G only grows
    before = [p.copy() for p in after]
    after = _step(name, after, hist, i, j, x, lr)
    assert 0 < np.abs(after[0][0] - before[0][0]).max() < lr


def test_trainers_reject_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        glove.train_glove_numpy([["a", "b"]], GloVeConfig(min_count=1), batch_size=0)


@pytest.fixture(scope="module")
def corpus():
    sents = wikitext_sentences(load_wikitext2("valid"), max_lines=300)
    return sents, Vocab.build(sents, 3)


def test_numpy_and_torch_trainers_agree(corpus, device):
    sents, vocab = corpus
    cfg = GloVeConfig(vector_size=10, epochs=2, window=5)
    a = glove.train_glove_numpy(sents, cfg, batch_size=1024, vocab=vocab)
    b = glove.train_glove_torch(sents, cfg, batch_size=1024, vocab=vocab, device=device)
    assert a.vectors.shape == b.vectors.shape == (len(vocab), 10)
    np.testing.assert_allclose(a.vectors, b.vectors, atol=2e-5)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)
    np.testing.assert_allclose(a.context_vectors, b.context_vectors, atol=2e-5)   # w~ kept: w = vectors - w~
    assert np.abs(a.vectors - a.context_vectors).sum() > 0


LOSS_RATIO = 0.4   # last / first epoch loss was 0.32-0.35 over seeds 1-8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_glove_loss_falls(corpus, seed):
    sents, vocab = corpus
    wv = glove.train_glove_torch(sents, GloVeConfig(vector_size=16, epochs=10, window=5, seed=seed),
                                 vocab=vocab, batch_size=2048)
    assert all(a > b for a, b in zip(wv.losses, wv.losses[1:]))  # falls every epoch
    assert wv.losses[-1] < LOSS_RATIO * wv.losses[0]
