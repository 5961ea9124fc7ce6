"""Chapter 1 extractive summaries and ROUGE: a known pair, equal to rouge-score, PageRank = networkx."""
import numpy as np
import pytest

from course_lib.baselines.summarization import (lead, pagerank, rouge_l, rouge_n, rouge_scores, split_sentences,
                                                textrank)

REF, HYP = "the cat sat on the mat".split(), "the cat on the mat".split()


def test_rouge_on_a_known_pair():
    r1, r2, rl = rouge_n(HYP, REF, 1), rouge_n(HYP, REF, 2), rouge_l(HYP, REF)
    assert (r1["precision"], r1["recall"]) == (1.0, pytest.approx(5 / 6)) and r1["fmeasure"] == pytest.approx(10 / 11)
    assert (r2["precision"], r2["recall"]) == (0.75, 0.6) and r2["fmeasure"] == pytest.approx(2 / 3)
    assert rl["fmeasure"] == pytest.approx(10 / 11)
    assert rouge_n([], REF)["fmeasure"] == 0.0


def test_equal_to_rouge_score_package():
    from rouge_score import tokenize as rs_tokenize
    pairs = [("The cabinet met on Monday to discuss the budget.", "Cabinet discusses budget on Monday"),
             ("Shares in the firm fell sharply after the warning.", "Firm shares fall on profit warning"),
             ("a b c d e f", "f e d c b a")]
    got = rouge_scores([h for h, _ in pairs], [r for _, r in pairs], use_stemmer=False)
    for key, fn in (("rouge1", lambda h, r: rouge_n(h, r, 1)), ("rouge2", lambda h, r: rouge_n(h, r, 2)),
                    ("rougeL", rouge_l)):
        ours = np.mean([fn(rs_tokenize.tokenize(h, None), rs_tokenize.tokenize(r, None))["fmeasure"]
                        for h, r in pairs])
        assert got[key]["fmeasure"] == pytest.approx(ours)


def test_pagerank_equals_networkx():
    import networkx as nx
    rng = np.random.default_rng(0)
    W = rng.random((6, 6)) * (rng.random((6, 6)) > 0.4)
    np.fill_diagonal(W, 0)
    W = W + W.T
    ours = pagerank(W)
    ref = nx.pagerank(nx.from_numpy_array(W), alpha=0.85, tol=1e-14, max_iter=1000, weight="weight")
    np.testing.assert_allclose(ours, [ref[i] for i in range(6)], atol=1e-8)
    assert ours.sum() == pytest.approx(1.0)


def test_sentences_lead_and_textrank():
    text = ("Cats purr. Dogs bark loudly at cats!\nA third line? Yes, 2 more.\n\nCats and dogs and cats.")
    assert split_sentences(text) == ["Cats purr.", "Dogs bark loudly at cats!", "A third line?", "Yes, 2 more.",
                                     "Cats and dogs and cats."]
    assert lead(text, 2) == ["Cats purr.", "Dogs bark loudly at cats!"]
    best = textrank(text, 1)
    assert best == ["Cats and dogs and cats."]          # shares words with most other sentences
    assert textrank("One sentence only.", 3) == ["One sentence only."]


def test_bad_input():
    with pytest.raises(ValueError, match="k must be >= 1"):
        lead("A. B.", 0)
    with pytest.raises(TypeError, match="token lists"):
        rouge_n("a b", "a b")
    with pytest.raises(ValueError, match="one reference per summary"):
        rouge_scores(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="square"):
        pagerank(np.ones((2, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        pagerank(-np.ones((2, 2)))
    with pytest.raises(TypeError, match="must be a str"):
        split_sentences(None)
