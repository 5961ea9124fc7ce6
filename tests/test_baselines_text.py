"""Chapter 1 keywords, sentiment, translation and recorded results: hand-made inputs, bad input."""
import json

import numpy as np
import pytest

from course_lib.baselines.keywords import headline_overlap, tfidf_keywords, topic_keywords
from course_lib.baselines.results import LATER_RESULTS, read_later_results
from course_lib.baselines.sentiment import NaiveBayes, lexicon_predict, lexicon_score
from course_lib.baselines.translation import (DictionaryTranslator, build_dictionary, corpus_scores,
                                              first_gloss)

DOCS = ["apple banana apple cherry", "banana banana durian", "cherry elderberry elderberry elderberry"]


def test_tfidf_keywords_by_hand():
    kws, vec = tfidf_keywords(DOCS, top_k=2)
    # doc 3: elderberry (tf 3, df 1) beats cherry (tf 1, df 2)
    assert kws[2] == ["elderberry", "cherry"]
    assert kws[0][0] == "apple"                          # tf 2, df 1
    tf_only, _ = tfidf_keywords(DOCS, top_k=1, use_idf=False)
    assert tf_only[1] == ["banana"]
    assert headline_overlap(kws, ["apple pie", "no match", "cherry elderberry"], vec.build_analyzer()) == {
        "precision": pytest.approx((0.5 + 0 + 1) / 3), "hit": pytest.approx(2 / 3)}
    topics = topic_keywords(DOCS, ["f", "f", "g"], top_k=1)
    assert topics == {"f": ["banana"], "g": ["elderberry"]}


def test_lexicon_with_negation():
    assert lexicon_score("A great, funny film.") == 2
    assert lexicon_score("It is not funny and never good.") == -2
    assert lexicon_score("Boring. Not bad at all, though: brilliant.") == 1
    assert list(lexicon_predict(["dull", "no words here", "superb"], default=1)) == [0, 1, 1]


def test_naive_bayes_equals_sklearn():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    texts = ["good fun film", "bad dull film", "fun fun good", "dull bad bad", "good plot bad acting", "fun"]
    y = np.array([1, 0, 1, 0, 1, 1])
    X = CountVectorizer().fit_transform(texts)
    ours, ref = NaiveBayes(alpha=0.5).fit(X, y), MultinomialNB(alpha=0.5).fit(X, y)
    np.testing.assert_allclose(ours.feature_log_prob_, ref.feature_log_prob_)
    np.testing.assert_allclose(ours.joint_log_likelihood(X), ref.predict_joint_log_proba(X))
    assert (ours.predict(X) == ref.predict(X)).all()


def test_first_gloss_and_dictionary():
    assert first_gloss(["to eat; to consume", "to absorb"]) == "eat"
    assert first_gloss(["(completed action marker)"]) == ""
    assert first_gloss(["variant of 吃[chi1]", "CL:个[ge4]", "apple"]) == "apple"
    import pandas as pd
    cedict = pd.DataFrame({"simplified": ["我", "北京", "打", "打"], "pinyin": ["wo3", "Bei3 jing1", "da2", "da3"],
                           "english": [["I; me; my"], ["Beijing, capital of China"], ["dozen"],
                                       ["to beat", "to strike"]]})
    d = build_dictionary(cedict)
    assert d == {"我": "I", "北京": "Beijing", "打": "beat"}
    tr = DictionaryTranslator(d)
    assert tr.translate("我打北京。") == "I beat Beijing."
    assert tr.lookup("我我") == ["I", "I"] and tr.lookup("7") == ["7"]


def test_corpus_scores_known_values():
    s = corpus_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert s["bleu"] == pytest.approx(100.0) and s["chrf"] == pytest.approx(100.0)
    s = corpus_scores(["mat the on sat cat the"], ["the cat sat on the mat"])
    assert s["bleu_precisions"][0] == pytest.approx(100.0) and s["bleu"] < 20     # right words, wrong order


def test_read_later_results(tmp_path):
    task, (chapter, what, rel, keys) = next(iter(LATER_RESULTS.items()))
    (tmp_path / rel).parent.mkdir(parents=True)
    record = {}
    cur = record
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
    cur[keys[-1]] = 0.5
    (tmp_path / rel).write_text(json.dumps(record))
    got = read_later_results(tmp_path)
    assert got[task]["score"] == 0.5
    assert all(v["score"] is None for t, v in got.items() if t != task)      # missing files: no score
    real = read_later_results()
    assert all(isinstance(v["score"], float) for v in real.values()), real


def test_bad_input():
    with pytest.raises(TypeError, match="not one str"):
        tfidf_keywords("one document")
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        tfidf_keywords(DOCS, top_k=0)
    with pytest.raises(ValueError, match="one topic per document"):
        topic_keywords(DOCS, ["a"])
    with pytest.raises(TypeError, match="must be a str"):
        lexicon_score(3)
    with pytest.raises(ValueError, match="default must be 0 or 1"):
        lexicon_predict(["x"], default=2)
    with pytest.raises(ValueError, match="single class"):
        NaiveBayes().fit(np.ones((2, 3)), [1, 1])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        NaiveBayes(alpha=0)
    with pytest.raises(ValueError, match="non-empty"):
        DictionaryTranslator({})
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        corpus_scores(["a"], [])
    with pytest.raises(TypeError, match="lists of str"):
        corpus_scores("a", "a")
