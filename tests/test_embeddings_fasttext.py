"""FastText: n-grams and hash buckets equal gensim's for a real vocabulary; OOV vectors; training."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import FastText
from gensim.models.fasttext import compute_ngrams as g_ngrams
from gensim.models.fasttext import ft_ngram_hashes
from gensim.models.fasttext_inner import ft_hash_bytes

from course_lib.data import load_wikitext2
from course_lib.embeddings import FastTextConfig, Vocab, wikitext_sentences
from course_lib.embeddings import fasttext as ft


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_hash_quirk_on_non_ascii():
    for s in ["a", "<where>", "café", "日本", "\x7f\x80"]:
        assert ft.ft_hash(s.encode()) == ft_hash_bytes(s.encode())
    # the signed-char quirk: byte 0xE9 is xor-ed as 0xFFFFFFE9, so plain FNV-1a differs
    plain = (2166136261 ^ 0xE9) * 16777619 & 0xFFFFFFFF
    assert ft.ft_hash(b"\xe9") != plain and ft.ft_hash(b"\xe9") == ft_hash_bytes(b"\xe9")


def test_ngrams_and_buckets_equal_gensim_on_wikitext_vocabulary():
    words = Vocab.build(wikitext_sentences(load_wikitext2("train")), 5).index_to_key
    words += ["naïve", "café", "日本語", "a", "ab"]                  # non-ASCII and very short words
    assert len(words) > 19000
    for w in words:
        assert ft.compute_ngrams(w, 3, 6) == g_ngrams(w, 3, 6)
        assert ft.ngram_buckets(w, 3, 6, 2_000_000) == ft_ngram_hashes(w, 3, 6, 2_000_000), w
    for w in words[::50]:                                        # other settings, incl. min_n = 1
        assert ft.ngram_buckets(w, 1, 4, 1000) == ft_ngram_hashes(w, 1, 4, 1000)


def test_config_errors():
    with pytest.raises(ValueError, match="min_n"):
        FastTextConfig(min_n=4, max_n=3)
    with pytest.raises(ValueError, match="bucket"):
        ft.ngram_buckets("word", 3, 6, 0)


@pytest.fixture(scope="module")
def corpus():
    sents = wikitext_sentences(load_wikitext2("train"), max_lines=800)
    return sents, Vocab.build(sents, 5)


def test_oov_vectors_equal_gensim_formula(corpus):
    sents, _ = corpus
    cfg = FastTextConfig(vector_size=16, epochs=1, bucket=5000, workers=1)
    from dataclasses import asdict
    model = FastText(sents[:200], **asdict(cfg))
    ours = ft.FastTextVectors(model.wv.index_to_key, model.wv.vectors, model.wv.vectors_ngrams, cfg)
    for word in ["unseenword", "gamesmanship", "xyz"]:
        assert word not in ours
        np.testing.assert_allclose(ours.get_vector(word), model.wv[word], atol=1e-6)


def test_subword_table(corpus):
    _, vocab = corpus
    cfg = FastTextConfig(bucket=1000)
    table, lengths = ft.subword_table(vocab.index_to_key[:50], cfg)
    for i, w in enumerate(vocab.index_to_key[:50]):
        row = table[i, :lengths[i]]
        assert row[0] == i and list(row[1:] - 50) == ft.ngram_buckets(w, 3, 6, 1000)


def test_window_step_sends_the_error_to_every_subword_row(rng, device):
    from course_lib.embeddings.word2vec_torch import (sgns_step_windows, window_mask,
                                                      window_negative_sampling_update)
    V, B, D, G, L, W, M = 6, 10, 5, 2, 3, 2, 4                    # 6 words, 10 n-gram buckets
    T = lambda x: torch.tensor(x, device=device)
    table = np.zeros((V, 4), dtype=np.int64)
    lengths = rng.integers(1, 5, V)
    for i in range(V):                                           # own row, then n-gram rows (shared buckets)
        table[i, :lengths[i]] = [i] + list(V + rng.choice(B, lengths[i] - 1, replace=False))
    emb, w_out = rng.normal(size=(V + B, D)), rng.normal(size=(V, D))
    tokens, neg = rng.integers(0, V, (G, L + 2 * W)), rng.integers(0, V, (G, M))
    mask = window_mask(T(np.zeros_like(tokens)), T(rng.integers(1, W + 1, (G, L))))
    e, o = T(emb), T(w_out)
    ft.fasttext_step_windows(e, o, T(table), T(lengths), T(tokens), mask, T(neg), 0.1, negative=5)
    # reference: h = mean of the rows; the output layer as tested in test_embeddings_word2vec;
    # every row of a centre receives that centre's whole gradient
    centres = tokens[:, W:W + L].reshape(-1)
    h = np.stack([emb[table[c, :lengths[c]]].mean(0) for c in centres]).reshape(G, L, D)
    ref_out = T(w_out)
    grad_h, _ = window_negative_sampling_update(ref_out, T(h), T(tokens), mask, T(neg), 0.1, 5)
    ref_emb = emb.copy()
    for c, g in zip(centres, grad_h.reshape(G * L, D).cpu().numpy()):
        ref_emb[table[c, :lengths[c]]] += g
    torch.testing.assert_close(o, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.cpu().numpy(), ref_emb, atol=1e-12)
    # with no n-grams at all, FastText is skip-gram
    e1, o1, e2, o2 = T(emb[:V]), T(w_out), T(emb[:V]), T(w_out)
    l1 = ft.fasttext_step_windows(e1, o1, T(np.arange(V)[:, None]), T(np.ones(V, np.int64)), T(tokens), mask,
                                  T(neg), 0.1, negative=5)
    l2 = sgns_step_windows(e2, o2, T(tokens), mask, T(neg), 0.1, negative=5)
    assert abs(l1 - l2) < 1e-9 * l2
    torch.testing.assert_close(e1, e2, rtol=0, atol=1e-12)


def test_fasttext_training(corpus, device):
    sents, vocab = corpus
    cfg = FastTextConfig(vector_size=24, epochs=2, bucket=20000, seed=2)
    wv = ft.train_fasttext(sents, cfg, batch_size=2048, vocab=vocab, device=device)
    assert np.mean(wv.losses[-10:]) < np.mean(wv.losses[:3]) - 0.8
    assert wv.vectors.shape == (len(vocab), 24) and wv.ngram_vectors.shape == (20000, 24)
    # an unseen inflection shares n-grams with its stem: closer to it than to a random word
    known = wv.unit_vectors()
    oov = wv.get_vector("seasons's")
    oov = oov / np.linalg.norm(oov)
    stem = known[vocab.key_to_index["season"]] @ oov
    others = known[200:400] @ oov
    assert stem > np.quantile(others, 0.95)


def test_fasttext_window_training(corpus, device):
    sents, vocab = corpus
    # calibrated over seeds 0-4: loss 4.16 -> 2.70-2.71
    cfg = FastTextConfig(vector_size=24, epochs=3, bucket=20000, seed=2)
    wv = ft.train_fasttext(sents, cfg, batch_size=1024, vocab=vocab, device=device, chunk_len=32)
    assert abs(np.mean(wv.losses[:3]) - 6 * np.log(2)) < 0.01
    assert np.mean(wv.losses[-10:]) < 2.9
    assert wv.vectors.shape == (len(vocab), 24)
    with pytest.raises(FloatingPointError, match="lower batch_size"):   # far too large a step
        ft.train_fasttext(sents, FastTextConfig(vector_size=24, epochs=1, bucket=20000, alpha=50.0),
                          batch_size=1024, vocab=vocab, chunk_len=32)


def test_rows_start_in_the_range_of_fasttext_and_gensim():
    """Word and n-gram rows start uniform in (-1/D, 1/D) like gensim 4's and fastText's (not
    word2vec's (-0.5/D, 0.5/D)): on a small corpus the narrower start cost 5 analogy points."""
    from course_lib.embeddings.word2vec_numpy import init_vectors
    rng = np.random.default_rng(0)
    sentences = [[f"w{i}" for i in rng.integers(0, 30, size=6)] for _ in range(60)]
    D = 20
    cfg = FastTextConfig(vector_size=D, min_count=1, epochs=1, bucket=5000, sample=0.0, alpha=1e-12, min_alpha=0.0)
    ours = ft.train_fasttext(sentences, cfg, batch_size=256)           # a step of 1e-12: rows stay as drawn
    ref = FastText(vector_size=D, min_count=1, bucket=5000)
    ref.build_vocab(sentences)
    for rows in (ours.ngram_vectors, ref.wv.vectors_ngrams):
        assert 0.99 / D < np.abs(rows).max() <= 1 / D and abs(rows.mean()) < 0.01 / D
    w2v_rows, _ = init_vectors(1000, D, rng)                            # Word2Vec keeps word2vec's range
    assert 0.49 / D < np.abs(w2v_rows).max() <= 0.5 / D
