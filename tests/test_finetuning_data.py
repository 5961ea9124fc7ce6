"""Chapter 5 data: the TREC-6 and Rotten Tomatoes splits, metrics and the TF-IDF baseline."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.finetuning import baselines, metrics
from course_lib.finetuning.data import TREC_LABELS, load_task


@pytest.fixture(scope="module")
def trec():
    return load_task("trec")


@pytest.fixture(scope="module")
def rt():
    return load_task("rotten_tomatoes")


def test_trec_uses_the_standard_split(trec):
    assert len(trec.train) + len(trec.valid) == 5452 and len(trec.test) == 500
    counts = dict(zip(TREC_LABELS, np.bincount(trec.test.label, minlength=6)))
    assert counts == {"DESC": 138, "ENTY": 94, "ABBR": 9, "HUM": 65, "NUM": 113, "LOC": 81}   # Li and Roth's test set
    assert trec.test.text[0].startswith("How far is it from Denver to Aspen")
    from course_lib import data
    assert sorted(trec.train.text.tolist() + trec.valid.text.tolist()) == sorted(data.load_trec("train").text)
    assert load_task("trec", valid_fraction=0).sizes() == {"train": 5452, "valid": 0, "test": 500}


def test_rotten_tomatoes_split_is_fixed_stratified_and_leak_free(rt):
    assert rt.sizes() == {"train": 10201, "valid": 1276, "test": 1275}
    assert rt.train.text.is_unique
    assert set(rt.train.text).isdisjoint(rt.test.text) and set(rt.valid.text).isdisjoint(rt.test.text)
    shares = [part.label.mean() for part in (rt.train, rt.valid, rt.test)]
    assert max(shares) - min(shares) < 0.002                  # stratified: same share of "fresh"
    again = load_task("rotten_tomatoes", seed=0)
    assert again.test.text.tolist() == rt.test.text.tolist()
    assert load_task("rotten_tomatoes", seed=1).test.text.tolist() != rt.test.text.tolist()
    with pytest.raises(ValueError, match="unknown task 'sst2'"):
        load_task("sst2")


def test_metrics_match_a_hand_computed_example():
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 1]
    m = metrics.classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(5 / 7)
    # F1: a = 2*1*0.75/1.75, b = 2*(2/4)*1/(1.5), c = 0 (never predicted)
    assert m["macro_f1"] == pytest.approx((6 / 7 + 2 / 3 + 0) / 3)
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="equal length"):
        metrics.classification_metrics([0, 1], [0])


def test_trainer_compute_metrics_reads_logits():
    logits = np.array([[2.0, 0.1], [0.2, 1.0], [3.0, 0.0]])
    out = metrics.trainer_compute_metrics((logits, np.array([0, 1, 1])))
    assert out["accuracy"] == pytest.approx(2 / 3)


def test_tfidf_baseline_on_trec(trec):
    res = baselines.tfidf_logreg(trec.train.text, trec.train.label, trec.test.text, trec.test.label,
                                 trec.label_names)
    assert 0.80 <= res["accuracy"] <= 0.93                    # far above the 27.6% majority class, below Kim's CNN
    assert res["macro_f1"] > 0.75
    with pytest.raises(ValueError, match="empty text"):
        baselines.tfidf_logreg(["a b", " "], [0, 1], ["a"], [0])
