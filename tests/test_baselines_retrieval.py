"""Chapter 1 BM25 and the QA set: equal to rank_bm25, hand-computed ranks, every answer in its article."""
import numpy as np
import pytest

from course_lib.baselines.retrieval import (BM25, QA_SET, bbc_passages, evaluate_qa, rank_of_first_relevant,
                                            retrieval_metrics, tokenize)

DOCS = ["the cat sat on the mat", "the dog chased the cat", "a bird sang", "cats and dogs and cats",
        "the the the the", "mat mat mat mat mat mat mat"]


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (1.2, 0.0), (2.0, 1.0)])
def test_bm25_equals_rank_bm25(k1, b):
    from rank_bm25 import BM25Okapi
    corpus = [d.split() for d in DOCS]
    ours, ref = BM25(corpus, k1=k1, b=b), BM25Okapi(corpus, k1=k1, b=b)
    for q in (["cat"], ["the", "cat"], ["mat", "mat"], ["unknown"], ["the"], ["bird", "dogs", "cats"]):
        np.testing.assert_allclose(ours.get_scores(q), ref.get_scores(q), rtol=1e-12, atol=1e-12)


def test_bm25_single_term_by_hand():
    corpus = [["a", "b"], ["a"], ["c", "c", "c", "d"]]
    s = BM25(corpus, k1=1.5, b=0.75).get_scores(["c"])
    idf = np.log((3 - 1 + 0.5) / (1 + 0.5))
    avgdl = 7 / 3
    expected = idf * 3 * 2.5 / (3 + 1.5 * (1 - 0.75 + 0.75 * 4 / avgdl))
    assert s[2] == pytest.approx(expected) and s[0] == s[1] == 0


def test_ranks_and_metrics():
    assert rank_of_first_relevant([0.1, 0.9, 0.5], [True, False, True]) == 2
    assert rank_of_first_relevant([1.0, 1.0], [False, True]) == 2          # ties: lower index first
    assert rank_of_first_relevant([1.0, 2.0], [False, False]) is None
    m = retrieval_metrics([1, 2, None, 10], ks=(1, 5))
    assert m == {"acc@1": 0.25, "acc@5": 0.5, "mrr": pytest.approx((1 + 0.5 + 0 + 0.1) / 4)}


def test_tokenize_keeps_numbers_and_money():
    assert tokenize("Shares rose 13% to £600 for the full-back.") == ["shares", "rose", "13%", "£600", "full-back"]


def test_qa_set_answers_occur_in_their_articles():
    from course_lib.data import load_bbc_news
    df = load_bbc_news()
    text = dict(zip(df["file"], df["text"]))
    assert len(QA_SET) == 30 and len({q.file for q in QA_SET}) == 30
    for item in QA_SET:
        assert item.answer in text[item.file], item
    passages, files = bbc_passages(df[df["file"].isin([q.file for q in QA_SET[:5]])])
    r = evaluate_qa(BM25([tokenize(p) for p in passages]), passages, files, QA_SET[:5])
    assert r["acc@5"] == 1.0 and len(r["ranks"]) == 5


def test_bad_input():
    with pytest.raises(ValueError, match="non-empty list"):
        BM25([])
    with pytest.raises(TypeError, match="tokenize it first"):
        BM25(["the cat"])
    with pytest.raises(ValueError, match="every passage is empty"):
        BM25([[], []])
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        BM25([["a"]], b=2)
    with pytest.raises(TypeError, match="list of tokens"):
        BM25([["a"]]).get_scores("a")
    with pytest.raises(ValueError, match="same shape"):
        rank_of_first_relevant([1, 2], [True])
    with pytest.raises(ValueError, match="no ranks"):
        retrieval_metrics([])
    with pytest.raises(TypeError, match="must be a str"):
        tokenize(None)
