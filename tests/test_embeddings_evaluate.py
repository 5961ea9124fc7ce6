"""Our evaluation reproduces gensim's evaluate_word_pairs / evaluate_word_analogies."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from course_lib.data import gensim_test_file, load_glove_6b_50d
from course_lib.embeddings import WordVectors
from course_lib.embeddings.evaluate import evaluate_word_analogies, evaluate_word_pairs, spearman


@pytest.fixture(scope="module")
def glove():
    vectors, words = load_glove_6b_50d()
    wv = WordVectors(words[:20000], np.asarray(vectors[:20000]))
    return wv, wv.to_keyedvectors()


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200).astype(float), rng.normal(size=200)
    assert abs(spearman(a, b) - stats.spearmanr(a, b)[0]) < 1e-12


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_word_pairs_equal_gensim(glove, name):
    wv, kv = glove
    ours = evaluate_word_pairs(wv, gensim_test_file(name))
    pearson, (rho, _), oov = kv.evaluate_word_pairs(str(gensim_test_file(name)))
    assert abs(ours["spearman"] - rho) < 1e-6 and abs(ours["pearson"] - pearson[0]) < 1e-6
    assert abs(ours["oov_ratio"] - oov) < 1e-9
    assert 0.2 < ours["spearman"] < 0.8                         # real signal in GloVe


def test_word_pairs_restrict_vocab_equal_gensim(glove):
    wv, kv = glove
    ours = evaluate_word_pairs(wv, gensim_test_file("wordsim353.tsv"), restrict_vocab=3000)
    _, (rho, _), oov = kv.evaluate_word_pairs(str(gensim_test_file("wordsim353.tsv")), restrict_vocab=3000)
    assert abs(ours["spearman"] - rho) < 1e-6 and abs(ours["oov_ratio"] - oov) < 1e-9 and oov > 20


def test_analogies_equal_gensim(glove):
    wv, kv = glove
    path = gensim_test_file("questions-words.txt")
    score, sections = evaluate_word_analogies(wv, path, restrict_vocab=3000)
    g_score, g_sections = kv.evaluate_word_analogies(str(path), restrict_vocab=3000)
    assert abs(score - g_score) < 1e-6 and score > 0.4
    assert [s["section"] for s in sections] == [s["section"] for s in g_sections]
    assert [(s["correct"], s["incorrect"]) for s in sections] == \
        [(len(s["correct"]), len(s["incorrect"])) for s in g_sections]


def test_case_handling_most_frequent_variant_wins(tmp_path):
    # "Paris" (row 0) and "paris" (row 1): upper-cased lookups must use row 0, as gensim does
    wv = WordVectors(["Paris", "paris", "france"], np.array([[1, 0], [0, 1], [1, 0.1]], dtype=np.float32))
    kv = wv.to_keyedvectors()
    path = tmp_path / "pairs.tsv"
    path.write_text("paris\tfrance\t9\nparis\tparis\t10\nfrance\tfrance\t1\nParis\tfrance\t5\n")
    ours = evaluate_word_pairs(wv, path)
    _, (rho, _), _ = kv.evaluate_word_pairs(str(path))
    assert abs(ours["spearman"] - rho) < 1e-9 and ours["n_pairs"] == 4


def test_errors(tmp_path):
    wv = WordVectors(["a", "b"], np.eye(2, dtype=np.float32))
    p = tmp_path / "x.tsv"
    p.write_text("zz\tyy\t1.0\n")
    with pytest.raises(ValueError, match="no pair"):
        evaluate_word_pairs(wv, p)
    q = tmp_path / "q.txt"
    q.write_text("a b a b\n")
    with pytest.raises(ValueError, match="section"):
        evaluate_word_analogies(wv, q)
    with pytest.raises(ValueError, match=r"\(V, D\)"):
        WordVectors(["a"], np.zeros((2, 3)))


def test_semantic_syntactic_split():
    from course_lib.embeddings.evaluate import semantic_syntactic
    sections = [{"section": "capital-world", "correct": 3, "incorrect": 1},
                {"section": "gram1-adjective-to-adverb", "correct": 1, "incorrect": 3},
                {"section": "Total accuracy", "correct": 4, "incorrect": 4}]
    assert semantic_syntactic(sections) == {"semantic": 0.75, "syntactic": 0.25}
    assert np.isnan(semantic_syntactic(sections[:1])["syntactic"])
    with pytest.raises(TypeError, match="evaluate_word_analogies"):
        semantic_syntactic([("capital-world", 3)])
