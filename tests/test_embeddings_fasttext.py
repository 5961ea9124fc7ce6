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
