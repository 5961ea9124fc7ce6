"""Chapter 2 data pipeline: vocabulary, sub-sampling and negative table equal gensim's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import Word2Vec

from course_lib.data import load_wikitext2
from course_lib.embeddings import Vocab, tokenize, wikitext_sentences
from course_lib.embeddings.pairs import cbow_windows, skipgram_pairs, window_chunks
from course_lib.embeddings.word2vec_torch import window_mask


@pytest.fixture(scope="module")
def sentences():
    return wikitext_sentences(load_wikitext2("valid"), max_lines=600)


def test_tokenize_and_sentences():
    assert tokenize("The Cat's 2 hats, e.g.") == ["the", "cat", "s", "hats", "e", "g"]
    sents = wikitext_sentences(" = Heading = \n\n A b . \n C d\n", max_lines=None)
    assert sents == [["a", "b"], ["c", "d"]]


def test_vocab_matches_gensim(sentences):
    vocab = Vocab.build(sentences, min_count=3)
    model = Word2Vec(vector_size=8, min_count=3, sample=1e-3, ns_exponent=0.75, workers=1)
    model.build_vocab(sentences)
    assert vocab.index_to_key == model.wv.index_to_key       # same words, same order
    counts = np.array([model.wv.get_vecattr(w, "count") for w in vocab.index_to_key])
    np.testing.assert_array_equal(vocab.counts, counts)
    sample_int = np.array([model.wv.get_vecattr(w, "sample_int") for w in vocab.index_to_key])
    np.testing.assert_array_equal(vocab.sample_int(1e-3), sample_int)   # gensim's formula exactly
    np.testing.assert_array_equal(vocab.cum_table(0.75), model.cum_table)
    assert (vocab.keep_probs(1e-3) < 1).sum() > 10 and vocab.keep_probs(0).min() == 1.0


def test_vocab_errors():
    with pytest.raises(ValueError, match="min_count"):
        Vocab.build([["a"]], min_count=0)
    with pytest.raises(ValueError, match="lower min_count"):
        Vocab.build([["a"]], min_count=5)


def test_noise_distribution_matches_table():
    vocab = Vocab(["a", "b", "c"], np.array([100, 10, 1]))
    p = vocab.noise_probs(0.75)
    np.testing.assert_allclose(p, np.array([100, 10, 1]) ** 0.75 / (100**0.75 + 10**0.75 + 1))
    rng = np.random.default_rng(0)
    cum = vocab.cum_table(0.75)
    draws = np.searchsorted(cum, rng.integers(0, cum[-1], 200_000))
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 200_000, p, atol=0.005)


def test_skipgram_pairs_reduced_window():
    ids = np.arange(20)
    sent = np.repeat([0, 1], 10)                                # two sentences of 10 tokens
    rng = np.random.default_rng(0)
    c, o = skipgram_pairs(ids, sent, window=3, rng=rng)
    dist = np.abs(c - o)
    assert dist.min() >= 1 and dist.max() <= 3
    assert not np.any((c < 10) != (o < 10))                     # never across sentences
    # reduced window: E[#pairs per centre] < full window; distance 1 more frequent than 3
    big_c, big_o = skipgram_pairs(np.arange(100_000), np.zeros(100_000, int), 5, rng)
    d = np.abs(big_c - big_o)
    assert abs(len(d) / 100_000 - 6.0) < 0.05                   # 2 * E[b] = 2 * 3
    frac = np.bincount(d)[1:] / len(d)
    np.testing.assert_allclose(frac, np.array([5, 4, 3, 2, 1]) / 15, atol=0.01)
    with pytest.raises(ValueError, match="same shape"):
        skipgram_pairs(ids, sent[:5], 3, rng)


def test_cbow_windows_agree_with_pairs():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, 300)
    sent = np.repeat(np.arange(6), 50)
    centers, ctx = cbow_windows(ids, sent, 4, np.random.default_rng(7))
    c, o = skipgram_pairs(ids, sent, 4, np.random.default_rng(7))   # same reduced windows
    assert (ctx >= 0).sum() == len(c)
    assert ctx.shape == (len(centers), 8) and (ctx >= 0).any(1).all()


@pytest.mark.parametrize("chunk_len", [1, 7, 64])
def test_window_chunks_hold_exactly_the_skipgram_pairs(chunk_len):
    rng = np.random.default_rng(3)
    n = 500
    ids = np.arange(n)                                          # position = id: pairs are comparable
    sent = np.cumsum(rng.random(n) < 0.05)                      # sentences of random length
    c, o = skipgram_pairs(ids, sent, 5, np.random.default_rng(11))
    tokens, sents, windows = window_chunks(ids, sent, 5, chunk_len, np.random.default_rng(11))
    assert tokens.shape == (-(-n // chunk_len), chunk_len + 10) and tokens.dtype == np.int32
    mask = window_mask(torch.from_numpy(sents), torch.from_numpy(windows)).numpy()   # (C, L, L+2W)
    k, i, j = np.nonzero(mask)
    got = sorted(zip(tokens[k, 5 + i].tolist(), tokens[k, j].tolist()))
    assert got == sorted(zip(c.tolist(), o.tolist()))           # the same pairs, each exactly once
    with pytest.raises(ValueError, match="same shape"):
        window_chunks(ids, sent[:5], 5, chunk_len, rng)
    with pytest.raises(ValueError, match="sents must be"):
        window_mask(torch.from_numpy(sents[:, :-1]), torch.from_numpy(windows))
