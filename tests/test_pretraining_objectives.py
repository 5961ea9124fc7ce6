"""Next-sentence pairs (token types, 50/50) and T5 span corruption (invariants)."""
from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from course_lib.data import minilm_path
from course_lib.pretraining import nsp, spans

WIKI = """
 = First Article =

 The tower is tall . It was built in 1 @,@ 889 . Many people visit it !
 = = History = =

 Work began in 1887 . The design was 3 @.@ 5 times bigger .

 = Second Article =

 A river flows north . Fish live in it .
 = Third =

 Only one sentence here .
"""


def test_split_documents_reads_articles_and_sentences():
    docs = nsp.split_documents(WIKI)
    assert docs == [["The tower is tall .", "It was built in 1,889 .", "Many people visit it !",
                     "Work began in 1887 .", "The design was 3.5 times bigger ."],
                    ["A river flows north .", "Fish live in it ."]]                       # third: < 2 sentences
    with pytest.raises(TypeError, match="text must be a str"):
        nsp.split_documents(["not", "a", "string"])


def test_nsp_pairs_are_50_50_with_real_next_or_another_document():
    docs = [[f"d{d}s{i}" for i in range(20)] for d in range(30)]
    pairs = nsp.make_nsp_pairs(docs, np.random.default_rng(0))
    assert len(pairs) == 30 * 19
    labels = np.array([p.label for p in pairs])
    assert abs(labels.mean() - 0.5) < 0.05                                 # 570 pairs: std ~0.02
    for p in pairs:
        da, ia = map(int, p.a[1:].split("s"))
        db, ib = map(int, p.b[1:].split("s"))
        if p.label == nsp.IS_NEXT:
            assert (db, ib) == (da, ia + 1)
        else:
            assert db != da                                                # random B from another document
    with pytest.raises(ValueError, match="at least 2 documents"):
        nsp.make_nsp_pairs(docs[:1], np.random.default_rng(0))


@pytest.mark.parametrize("max_length", [None, 12, 9, 8])
def test_encode_pair_equals_the_hugging_face_tokenizer(max_length):
    tok = AutoTokenizer.from_pretrained(minilm_path())
    a, b = "The tower was built in 1889 by Gustave Eiffel.", "It is 330 metres tall."
    expected = tok(a, b, truncation=max_length is not None, max_length=max_length)
    ids, types = nsp.encode_pair(tok(a, add_special_tokens=False)["input_ids"],
                                 tok(b, add_special_tokens=False)["input_ids"], cls_token_id=tok.cls_token_id,
                                 sep_token_id=tok.sep_token_id, max_length=max_length)
    assert ids == expected["input_ids"] and types == expected["token_type_ids"]
    first_sep = ids.index(tok.sep_token_id)
    assert set(types[:first_sep + 1]) == {0} and set(types[first_sep + 1:]) == {1}
    with pytest.raises(ValueError, match="use at least 5"):
        nsp.encode_pair([1], [2], cls_token_id=101, sep_token_id=102, max_length=4)


def test_span_mask_has_the_t5_noise_count_and_mean_span_length():
    rng = np.random.default_rng(0)
    lengths, counts = [], []
    for L in (20, 64, 100, 512):
        for _ in range(200):
            m = spans.random_spans_noise_mask(L, rng)
            counts.append((int(m.sum()), min(max(int(np.round(0.15 * L)), 1), L - 1)))
            assert not m[0]                                                # starts with a kept span
            edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
            lengths.extend(edges[1::2] - edges[::2])
    assert all(got == want for got, want in counts)
    mean = float(np.mean(lengths))
    assert 2.7 < mean < 3.3                                                # mean span length ~3


def test_span_corruption_reconstructs_the_original_with_ordered_sentinels():
    rng = np.random.default_rng(1)
    words = "Thank you for inviting me to your party last week .".split()
    inputs, targets, mask = spans.span_corruption(words, rng, noise_density=0.3, mean_noise_span_length=2)
    n = int((mask & ~np.concatenate([[False], mask[:-1]])).sum())
    sentinels = spans.default_sentinels(n + 1)
    assert [t for t in inputs if t in sentinels] == sentinels[:n]          # <extra_id_0>, <extra_id_1>, ...
    assert [t for t in targets if t in sentinels] == sentinels            # ... and one closing sentinel
    assert spans.reconstruct_from_spans(inputs, targets, sentinels) == words
    assert len(inputs) + len(targets) == len(words) + 2 * n + 1
    for _ in range(50):                                                    # ids, a longer text
        ids = list(range(1000, 1000 + int(rng.integers(2, 300))))
        sent = [32099 - k for k in range(100)]
        i, t, m = spans.span_corruption(ids, rng, sentinels=sent)
        assert spans.reconstruct_from_spans(i, t, sent) == ids
        assert m.sum() == min(max(int(np.round(0.15 * len(ids))), 1), len(ids) - 1)


def test_paper_example_with_a_given_mask():
    words = "Thank you for inviting me to your party last week .".split()
    mask = np.array([w in ("for", "inviting", "last") for w in words])
    inputs, targets, _ = spans.span_corruption(words, None, noise_mask=mask)
    assert " ".join(inputs) == "Thank you <extra_id_0> me to your party <extra_id_1> week ."
    assert " ".join(targets) == "<extra_id_0> for inviting <extra_id_1> last <extra_id_2>"


def test_span_corruption_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        spans.span_corruption(["one"], rng)
    with pytest.raises(ValueError, match="noise_density must be in"):
        spans.random_spans_noise_mask(10, rng, noise_density=1.5)
    with pytest.raises(ValueError, match="sentinel token also occurs in tokens"):
        spans.span_corruption(["a", "<extra_id_0>", "b", "c"], rng)
    with pytest.raises(ValueError, match="need .* sentinels"):
        spans.span_corruption(list(range(100)), rng, sentinels=[-1])
