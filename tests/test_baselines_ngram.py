"""Chapter 1 n-gram language model: probabilities sum to 1, hand-computed values, bad input."""
import math

import numpy as np
import pytest

from course_lib.baselines.ngram import NGramConfig, NGramLM, SpellingModel, lines_to_sentences

TOY = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"], [], ["the", "cat", "ran", "away"]]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_distribution_sums_to_one(order, smoothing):
    lm = NGramLM(NGramConfig(order=order, smoothing=smoothing, min_count=1, k=0.5)).fit(TOY)
    for ctx in ([], ["the"], ["the", "cat"], ["unseen", "words"], ["cat", "ran", "away"]):
        p = lm.next_word_distribution(ctx)
        assert p[0] == 0.0 and (p[1:] > 0).all()
        assert abs(p.sum() - 1) < 1e-12


def test_add_k_bigram_by_hand():
    lm = NGramLM(NGramConfig(order=2, smoothing="add_k", k=1.0, min_count=1)).fit(TOY)
    V = len(lm.vocab) - 1                          # predicted words: all but <s>
    # c(the cat) = 2, c(the .) = 3  ->  (2 + 1) / (3 + V)
    p = lm.next_word_distribution(["the"])[lm.index["cat"]]
    assert p == pytest.approx(3 / (3 + V))


def test_kneser_ney_bigram_by_hand():
    lm = NGramLM(NGramConfig(order=2, discount=0.5, min_count=1)).fit(TOY)
    V = len(lm.vocab) - 1
    # unigram continuation counts: number of distinct left neighbours of each word
    # cat: {the, a} = 2; total distinct bigram types = 16; types with count > 0 = 9 words ... computed below
    bigrams = {(s[i - 1] if i else "<s>", w) for s in TOY for i, w in enumerate(s + ["</s>"])}
    cont_cat = len({a for a, b in bigrams if b == "cat"})
    n_types = len({b for _, b in bigrams})
    p1_cat = max(cont_cat - 0.5, 0) / len(bigrams) + 0.5 * n_types / len(bigrams) / V
    # c(the cat) = 2, c(the .) = 3, N1+(the .) = 2 (cat, dog)
    expected = (2 - 0.5) / 3 + 0.5 * 2 / 3 * p1_cat
    assert lm.next_word_distribution(["the"])[lm.index["cat"]] == pytest.approx(expected)
    assert lm.D == {2: 0.5, 1: 0.5}


def test_estimated_discount_and_perplexity_ordering():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    train = [list(rng.choice(words, size=8)) for _ in range(300)]
    lm = NGramLM(NGramConfig(order=3)).fit(train)
    n = lm.counts[3]
    n1, n2 = (n == 1).sum(), (n == 2).sum()
    assert lm.D[3] == pytest.approx(n1 / (n1 + 2 * n2))
    uni = NGramLM(NGramConfig(order=1)).fit(train)
    # on random words a unigram model is about as good as it gets; perplexity near the 30-word vocabulary
    assert 25 < uni.perplexity(train[:50]) < 40


def test_open_vocabulary_scoring():
    lm = NGramLM(NGramConfig(order=2, min_count=2)).fit(TOY)      # "dog", "a", "away" ... become <unk>
    assert "dog" not in lm.index and lm.spelling is not None
    test = [["the", "zebra", "sat"]]
    closed = lm.token_logprobs(test).sum()
    assert lm.total_logprob(test) == pytest.approx(closed + lm.spelling.logprob("zebra"))
    assert lm.word_perplexity(test) == pytest.approx(math.exp(-lm.total_logprob(test) / 3))


def test_spelling_model_is_a_distribution_over_short_strings():
    sp = SpellingModel(["ab", "b"])
    # sum over all strings of length <= 6 over the seen alphabet approaches the mass of that alphabet
    alphabet = ["a", "b"]
    total, frontier = 0.0, [""]
    for _ in range(7):
        total += sum(math.exp(sp.logprob(s)) for s in frontier)
        frontier = [s + c for s in frontier for c in alphabet]
    assert 0 < total < 1
    assert sp.logprob("z") < sp.logprob("a")


def test_lines_to_sentences():
    assert lines_to_sentences(" = A = \n \nx y\n") == [["=", "A", "="], [], ["x", "y"]]


def test_bad_input():
    with pytest.raises(ValueError, match="smoothing must be"):
        NGramLM(NGramConfig(smoothing="witten_bell"))
    with pytest.raises(ValueError, match="discount must be in"):
        NGramLM(NGramConfig(discount=1.5))
    with pytest.raises(ValueError, match="order must be >= 1"):
        NGramLM(NGramConfig(order=0))
    with pytest.raises(TypeError, match="not a str"):
        NGramLM().fit("the cat sat")
    with pytest.raises(ValueError, match="no sentences"):
        NGramLM().fit([])
    with pytest.raises(ValueError, match="no words"):
        NGramLM().fit([[], []])
    with pytest.raises(RuntimeError, match="call fit"):
        NGramLM().perplexity(TOY)
    with pytest.raises(TypeError, match="list of str words"):
        NGramLM(NGramConfig(min_count=1)).fit([[1, 2]])
    lm = NGramLM(NGramConfig(min_count=1)).fit(TOY)
    with pytest.raises(ValueError, match="min_count >= 2"):
        lm.total_logprob([["zebra"]])
    with pytest.raises(TypeError, match="list of words"):
        lm.next_word_distribution("the cat")


def test_with_smoothing_equals_a_fresh_fit():
    kn = NGramLM(NGramConfig(order=3, min_count=1)).fit(TOY)
    fresh = NGramLM(NGramConfig(order=3, smoothing="add_k", k=0.3, min_count=1)).fit(TOY)
    swapped = kn.with_smoothing("add_k", k=0.3)
    for ctx in ([], ["the"], ["a", "cat"]):
        np.testing.assert_allclose(swapped.next_word_distribution(ctx), fresh.next_word_distribution(ctx))
    fixed = kn.with_smoothing("kneser_ney", discount=0.5)
    assert set(fixed.D.values()) == {0.5} and kn.D != fixed.D          # the original is untouched
    with pytest.raises(ValueError, match="k must be > 0"):
        kn.with_smoothing("add_k", k=0)
    with pytest.raises(RuntimeError, match="call fit"):
        NGramLM().with_smoothing("add_k")
