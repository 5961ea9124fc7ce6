"""Chinese text: segmenters, [UNK] rate, fertility, our BPE on Chinese, the two classifiers."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.challenges import chinese as zh

pytest.importorskip("jieba")

CORPUS = ["我爱北京天安门。", "我爱学习中文。", "北京的天气很好。", "我们一起学习。", "天安门在北京。"] * 4


def test_is_cjk():
    assert zh.is_cjk("中") and zh.is_cjk("㐀") and not zh.is_cjk("a") and not zh.is_cjk("，")


def test_segmenters_on_a_known_sentence():
    s = ["我爱北京天安门"]
    assert zh.segment(s, "chars") == [list("我爱北京天安门")]
    assert zh.segment(s, "jieba") == [["我", "爱", "北京", "天安门"]]
    assert zh.segment(["a b"], "chars") == [["a", "b"]]                 # spaces are not tokens


def test_minilm_wordpiece_unk_rate():
    wp = zh.segment(["我爱北京天安门", "the cat sat"], "wordpiece")
    assert len(wp[0]) == 7                                              # one WordPiece token per character
    assert zh.unk_rate(wp[:1]) == 2 / 7 and zh.unk_rate(wp[1:]) == 0.0
    assert zh.unk_rate([]) == 0.0


def test_fertility_counts():
    texts = ["ab cd", "中文"]
    assert zh.fertility([["a", "b", "c", "d"], ["中", "文"]], texts, "char") == 1.0
    assert zh.fertility([["ab", "c", "d"]], ["ab cd"], "word") == 1.5


def test_chinese_bpe_merges_and_unknown_characters():
    tok = zh.train_chinese_bpe(CORPUS, vocab_size=60, min_frequency=2)
    pieces = tok.tokenize("我爱北京天安门。")
    assert "".join(pieces) == "我爱北京天安门。" and len(pieces) < 8          # merges shorten the sequence
    assert zh.fertility([pieces], ["我爱北京天安门。"]) < 1.0
    assert tok.tokenize("猫") == ["[UNK]"]                               # a character never seen in training
    assert "[PAD]" in tok.vocab


def test_english_byte_bpe_spends_three_tokens_per_chinese_character():
    en = zh.english_bpe()
    toks = zh.segment(["我爱北京"], "bpe", en)
    assert len(toks[0]) == 12                                           # 4 characters x 3 UTF-8 bytes, no merges
    assert len(en.tokenize(" the")) == 1                               # GPT-2 style: the space is part of the word


def test_char_ngram_logreg_separates_a_toy_task():
    pos = ["很好很喜欢", "非常好用", "喜欢这本书", "质量很好"] * 5
    neg = ["很差不喜欢", "非常难用", "讨厌这本书", "质量很差"] * 5
    out = zh.char_ngram_logreg(pos + neg, [1] * 20 + [0] * 20, ["很好", "很差"], [1, 0])
    assert out["accuracy"] == 1.0 and out["features"] > 10


def test_bag_of_tokens_learns_a_toy_task():
    pos = ["很好很喜欢", "非常好用", "喜欢这本书", "质量很好"] * 10
    neg = ["很差不喜欢", "非常难用", "讨厌这本书", "质量很差"] * 10
    tok = zh.train_chinese_bpe(pos + neg, vocab_size=40)
    cfg = zh.BagOfTokensConfig(vocab_size=len(tok), pad_token_id=tok.vocab["[PAD]"], epochs=15, lr=0.05,
                               batch_size=16, hidden_size=16)
    out = zh.train_bag_of_tokens(tok, pos + neg, [1] * 40 + [0] * 40, ["质量很好", "质量很差"], [1, 0], cfg, log=None)
    assert out["accuracy"] == 1.0
    assert out["history"][-1]["train_loss"] < out["history"][0]["train_loss"]


def test_review_splits_are_disjoint_and_stratified():
    tr, va, te = zh.review_splits(seed=0)
    assert not set(tr["text"]) & set(te["text"])
    assert abs(tr["label"].mean() - te["label"].mean()) < 0.01
    assert tr["text"].str.len().max() <= 200


@pytest.mark.parametrize("call, exc, words", [
    (lambda: zh.segment("我爱", "chars"), TypeError, "wrap it"),
    (lambda: zh.segment(["我爱"], "words"), ValueError, "how must be one of"),
    (lambda: zh.segment(["我爱"], "bpe"), ValueError, "needs tokenizer="),
    (lambda: zh.fertility([["a"]], ["a", "b"]), ValueError, "pass the same texts"),
    (lambda: zh.fertility([["a"]], ["a"], "sentence"), ValueError, "unit must be"),
    (lambda: zh.fertility([[]], [""]), ValueError, "no units"),
    (lambda: zh.segment([1], "chars"), TypeError, "texts must be strings"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_fertility_of_real_hsk_sample():
    from course_lib import data
    h = data.load_hsk_sentences().iloc[:200]
    texts = h["chinese"].tolist()
    jb = zh.segment(texts, "jieba")
    f = zh.fertility(jb, texts)
    assert 0.4 < f < 0.9                                                # a jieba word is 1-2.5 characters
    assert np.isclose(zh.fertility(zh.segment(texts, "chars"), texts), 1.0)
