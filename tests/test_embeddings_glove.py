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


@pytest.fixture(scope="module")
def corpus():
    sents = wikitext_sentences(load_wikitext2("valid"), max_lines=300)
    return sents, Vocab.build(sents, 3)


def test_numpy_and_torch_trainers_agree(corpus, device):
    sents, vocab = corpus
    cfg = GloVeConfig(vector_size=10, epochs=2, window=5)
    a = glove.train_glove_numpy(sents, cfg, batch_size=1024, vocab=vocab)
    b = glove.train_glove_torch(sents, cfg, batch_size=1024, vocab=vocab, device=device)
    np.testing.assert_allclose(a.vectors, b.vectors, atol=2e-5)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)


def test_glove_loss_falls(corpus):
    sents, vocab = corpus
    wv = glove.train_glove_torch(sents, GloVeConfig(vector_size=16, epochs=15, window=5), vocab=vocab)
    assert wv.losses[-1] < 0.5 * wv.losses[0]                   # weighted squared error halves
    assert wv.vectors.shape == (len(vocab), 16)
