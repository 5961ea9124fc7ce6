"""Bad input to the tokenisers fails at our API with the right exception and words that say what to do.

Valid but degenerate input (empty text, no ids) has a defined result, tested here too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.data import minilm_path
from course_lib.tokenization import (BPEConfig, BPETokenizer, apply_merges, byte_level_decode, byte_level_split, count_pairs,
                                     count_words, merge_word, pre_tokenize, train_bpe, whitespace_split)
from course_lib.tokenization.reference import (hf_bpe, load_minilm_tokenizer, merge_agreement, sequence_agreement,
                                               to_hf_tokenizer, train_hf_bpe)
from course_lib.tokenization.wordpiece import (WordPieceConfig, WordPieceTokenizer, basic_tokenize, is_cjk,
                                               is_punctuation)

TEXTS = ["low lower lowest newer wider the hat"] * 5


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer(BPEConfig(vocab_size=60, special_tokens=["[UNK]"], unk_token="[UNK]")).train(TEXTS)


@pytest.fixture(scope="module")
def byte_bpe():
    return BPETokenizer(BPEConfig(vocab_size=300, pre_tokenizer="byte_level",
                                  special_tokens=["<|endoftext|>"])).train(TEXTS)


@pytest.fixture(scope="module")
def wp():
    return WordPieceTokenizer.from_pretrained(minilm_path())


# ---------------------------------------------------------------- BPE configuration
@pytest.mark.parametrize("kwargs, exc, words", [
    ({"vocab_size": 0}, ValueError, "vocab_size must be >= 1"),
    ({"vocab_size": -5}, ValueError, "vocab_size must be >= 1"),
    ({"vocab_size": 100.0}, TypeError, "vocab_size must be an int"),
    ({"vocab_size": "100"}, TypeError, "vocab_size must be an int"),
    ({"vocab_size": True}, TypeError, "vocab_size must be an int"),
    ({"min_frequency": -1}, ValueError, "min_frequency must be >= 0"),
    ({"min_frequency": 1.5}, TypeError, "min_frequency must be an int"),
    ({"special_tokens": "[UNK]"}, TypeError, r"special_tokens must be a list of str.*\['\[UNK\]'\]"),
    ({"special_tokens": [1]}, TypeError, r"special_tokens\[0\] must be a str"),
    ({"special_tokens": [""]}, ValueError, "non-empty"),
    ({"limit_alphabet": -1}, ValueError, "limit_alphabet must be >= 0"),
    ({"initial_alphabet": "abc"}, TypeError, "initial_alphabet must be a list of str"),
    ({"initial_alphabet": ["ab"]}, ValueError, "single characters.*list"),
    ({"max_token_length": 0}, ValueError, "max_token_length must be >= 1"),
    ({"unk_token": ""}, ValueError, "unk_token must be a non-empty string"),
    ({"unk_token": 0}, TypeError, "unk_token must be a str or None"),
    ({"pre_tokenizer": "sentencepiece"}, ValueError, "'whitespace' or 'byte_level'"),
    ({"add_prefix_space": "yes"}, TypeError, "add_prefix_space must be True or False"),
])
def test_bpe_config_rejects_bad_settings(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        BPEConfig(**kwargs)


def test_bpe_config_changed_after_creation_is_checked_again():
    cfg = BPEConfig(vocab_size=50)
    cfg.vocab_size = 0
    with pytest.raises(ValueError, match="vocab_size must be >= 1"):
        BPETokenizer(cfg)
    with pytest.raises(TypeError, match="takes a BPEConfig"):
        BPETokenizer({"vocab_size": 50})


# ---------------------------------------------------------------- BPE training
@pytest.mark.parametrize("texts, exc, words", [
    (None, TypeError, "iterable of str"),
    (5, TypeError, "iterable of str"),
    ("one text", TypeError, r"not one str; wrap a single text in a list"),
    (b"bytes", TypeError, "not one bytes"),
    ({"a": 1}, TypeError, "iterable of str"),
    ([1, 2], TypeError, "item 0 is int; convert it with str"),
    (["ok", None], TypeError, "item 1 is NoneType"),
    ([], ValueError, "no words.*pass at least one non-empty text"),
    (["", "   ", "\n"], ValueError, "no words"),
])
def test_bpe_train_rejects_bad_texts(texts, exc, words):
    tok = BPETokenizer(BPEConfig(vocab_size=50))
    with pytest.raises(exc, match=words):
        tok.train(texts)
    with pytest.raises(ValueError, match="call train"):               # nothing half-trained is left behind
        tok.encode("low")


def test_bpe_train_takes_a_generator_and_checks_trace():
    tok = BPETokenizer(BPEConfig(vocab_size=50)).train(t for t in TEXTS)
    assert len(tok.merges) > 5
    with pytest.raises(TypeError, match="trace must be a list"):
        BPETokenizer(BPEConfig(vocab_size=50)).train(TEXTS, trace="yes")


def test_low_level_training_functions_check_their_input():
    cfg = BPEConfig(vocab_size=50)
    with pytest.raises(TypeError, match="iterable of str"):
        count_words(None, cfg)
    with pytest.raises(TypeError, match="takes a BPEConfig"):
        count_words(TEXTS, None)
    with pytest.raises(TypeError, match=r"mapping \{word: count\}"):
        count_pairs(["low", "lower"])
    with pytest.raises(ValueError, match="counts must be >= 1.*drop that word"):
        count_pairs({"low": 0})
    with pytest.raises(TypeError, match="counts must be int"):
        train_bpe({"low": 1.5}, cfg)
    with pytest.raises(TypeError, match="words must be str"):
        train_bpe({("l", "o"): 2}, cfg)
    with pytest.raises(TypeError, match="takes a BPEConfig"):
        train_bpe({"low": 2}, "vocab_size=50")
    with pytest.raises(TypeError, match="takes a list"):
        merge_word((0, 1), 0, 1, 2, [1, 1, 2])
    with pytest.raises(TypeError, match=r"list of token ids.*\[vocab\[ch\] for ch in word\]"):
        apply_merges("abc", {})
    with pytest.raises(ValueError, match="position 1 must be >= 0"):
        apply_merges([0, -1], {})
    with pytest.raises(TypeError, match="merges as a dict"):
        apply_merges([0, 1], [((0, 1), (0, 2))])
    assert apply_merges([0, 1, 0, 1], {(0, 1): (0, 2), (2, 2): (1, 3)}) == [3] and apply_merges([], {}) == []


# ---------------------------------------------------------------- BPE loading
def test_bpe_loading_checks_vocab_and_merges():
    vocab = {"a": 0, "b": 1, "ab": 2}
    with pytest.raises(ValueError, match="uses 'c', which is not in the vocabulary"):
        BPETokenizer(vocab=vocab, merges=[("a", "b"), ("ab", "c")])
    with pytest.raises(TypeError, match=r"merges\[0\] must be a \(left, right\) pair"):
        BPETokenizer(vocab=vocab, merges=["a b"])
    with pytest.raises(ValueError, match="merges= without vocab="):
        BPETokenizer(merges=[("a", "b")])
    with pytest.raises(ValueError, match="same id"):
        BPETokenizer(vocab={"a": 0, "b": 0})
    with pytest.raises(ValueError, match="must be >= 0"):
        BPETokenizer(vocab={"a": -1})
    with pytest.raises(ValueError, match="non-empty dict"):
        BPETokenizer(vocab={})
    with pytest.raises(TypeError, match="non-empty dict"):
        BPETokenizer(vocab=[("a", 0)])
    with pytest.raises(ValueError, match="special token '<s>' is not in the vocabulary"):
        BPETokenizer(BPEConfig(special_tokens=["<s>"]), vocab=vocab, merges=[("a", "b")])
    tok = BPETokenizer(vocab=vocab, merges=[("a", "b")])
    assert tok.tokenize("abba") == ["ab", "b", "a"]


# ---------------------------------------------------------------- BPE encode / decode
@pytest.mark.parametrize("text", [None, 5, b"low", ["low"], ("low",)])
def test_bpe_encode_rejects_non_text(bpe, text):
    for fn in (bpe.encode, bpe.tokenize, bpe.bpe):
        with pytest.raises(TypeError, match="takes a str"):
            fn(text)


def test_bpe_empty_text_gives_no_tokens(bpe, byte_bpe):
    for tok in (bpe, byte_bpe):
        assert tok.encode("") == [] and tok.tokenize("") == [] and tok.decode([]) == ""
    assert bpe.encode("   ") == [] and byte_bpe.decode(byte_bpe.encode("   ")) == "   "


def test_byte_level_rejects_lone_surrogates(byte_bpe):
    with pytest.raises(ValueError, match="U\\+D800, a lone surrogate.*encode\\('utf-8', 'replace'\\)"):
        byte_bpe.encode("ok \ud800 no")


@pytest.mark.parametrize("make", [torch.tensor, np.array, list, tuple,
                                  lambda ids: [np.int64(i) for i in ids],
                                  lambda ids: list(torch.tensor(ids)),          # 0-d tensors
                                  lambda ids: torch.tensor(ids, dtype=torch.int32),
                                  lambda ids: np.array(ids, dtype=np.uint16)])
def test_decode_accepts_integer_lists_arrays_and_tensors(bpe, byte_bpe, wp, make):
    for tok, text in ((bpe, "lowest newer"), (byte_bpe, "the hat lowest"), (wp, "the hat")):
        ids = tok.encode(text)
        assert tok.decode(make(ids)) == tok.decode(ids)
    assert byte_bpe.decode(make(byte_bpe.encode("the hat"))) == "the hat"


@pytest.mark.parametrize("ids, exc, words", [
    (torch.tensor([1.0, 2.0]), TypeError, r"integer token ids.*dtype torch.float32.*\.long\(\)"),
    (np.array([1.0, 2.0]), TypeError, r"dtype float64.*astype\(int\)"),
    (torch.tensor([True, False]), TypeError, "dtype torch.bool"),
    ([1.5, 2], TypeError, "float 1.5 at position 0"),
    ([1, True], TypeError, "bool True at position 1"),
    (["3"], TypeError, "str '3' at position 0"),
    ("3 4", TypeError, "sequence of int token ids"),
    (None, TypeError, "sequence of int token ids"),
    (7, TypeError, "sequence of int token ids"),
    ([[1, 2], [3]], TypeError, "decode each row of a batch separately"),
    (torch.tensor([[1, 2], [3, 4]]), ValueError, r"1-D sequence.*shape \(2, 2\).*each row"),
    (torch.tensor(3), ValueError, "1-D sequence"),
    ([-1], ValueError, r"unknown token ids \[-1\]"),
    ([10 ** 9], ValueError, r"unknown token ids \[1000000000\]"),
    (torch.tensor([10 ** 9]), ValueError, "unknown token ids"),
    (bytearray(b"\x01\x02"), TypeError, "sequence of int token ids"),
    ({1: "a"}, TypeError, "sequence of int token ids"),
    (np.array(["1", "2"]), TypeError, r"integer token ids.*astype\(int\)"),
])
def test_decode_rejects_bad_ids(bpe, byte_bpe, wp, ids, exc, words):
    for tok in (bpe, byte_bpe, wp):
        with pytest.raises(exc, match=words):
            tok.decode(ids)


def test_decode_of_nothing_is_empty_text(bpe, byte_bpe, wp):
    for tok in (bpe, byte_bpe, wp):
        for empty in ([], (), np.array([], dtype=np.int64), torch.tensor([]), torch.zeros(0, dtype=torch.long)):
            assert tok.decode(empty) == ""


def test_decode_flags_and_truncated_check_types(bpe, wp):
    for tok in (bpe, wp):
        with pytest.raises(TypeError, match="skip_special_tokens must be True or False"):
            tok.decode([1], skip_special_tokens="no")
    with pytest.raises(TypeError, match="n_merges must be an int"):
        bpe.truncated(2.5)
    with pytest.raises(ValueError, match=r"n_merges must be in \[0, "):
        bpe.truncated(-1)


# ---------------------------------------------------------------- pre-tokenizers
def test_pre_tokenizers_check_their_input():
    for fn in (whitespace_split, byte_level_split, pre_tokenize):
        with pytest.raises(TypeError, match="takes a str"):
            fn(None)
        assert fn("") == []
    assert byte_level_split("", add_prefix_space=True) == [] and byte_level_split("a", True) == ["Ġa"]
    with pytest.raises(TypeError, match="add_prefix_space must be True or False"):
        byte_level_split("x", add_prefix_space="yes")
    with pytest.raises(ValueError, match="pre_tokenizer must be one of"):
        pre_tokenize("x", "sentencepiece")
    with pytest.raises(TypeError, match="list of token strings"):
        byte_level_decode("Ġhello")
    with pytest.raises(TypeError, match="to decode ids use BPETokenizer.decode"):
        byte_level_decode([1, 2])
    assert byte_level_decode([]) == ""


# ---------------------------------------------------------------- WordPiece
@pytest.mark.parametrize("kwargs, exc, words", [
    ({"do_lower_case": "yes"}, TypeError, "do_lower_case must be True or False"),
    ({"strip_accents": 1}, TypeError, "strip_accents"),
    ({"unk_token": ""}, ValueError, "unk_token must be a non-empty string"),
    ({"sep_token": None}, TypeError, "sep_token must be a str"),
    ({"max_input_chars_per_word": 0}, ValueError, "max_input_chars_per_word must be >= 1"),
    ({"max_input_chars_per_word": 10.0}, TypeError, "max_input_chars_per_word must be an int"),
])
def test_wordpiece_config_rejects_bad_settings(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        WordPieceConfig(**kwargs)


def test_wordpiece_construction_checks(tmp_path):
    with pytest.raises(TypeError, match="non-empty dict.*from_pretrained"):
        WordPieceTokenizer(["[UNK]", "[CLS]", "[SEP]"])
    with pytest.raises(ValueError, match="non-empty dict"):
        WordPieceTokenizer({})
    with pytest.raises(ValueError, match="must be >= 0"):
        WordPieceTokenizer({"[UNK]": -1, "[CLS]": 1, "[SEP]": 2})
    with pytest.raises(ValueError, match="same id"):
        WordPieceTokenizer({"[UNK]": 0, "[CLS]": 0, "[SEP]": 2})
    with pytest.raises(TypeError, match="config must be a WordPieceConfig"):
        WordPieceTokenizer({"[UNK]": 0, "[CLS]": 1, "[SEP]": 2}, config={"do_lower_case": True})
    with pytest.raises(TypeError, match="folder or file path"):
        WordPieceTokenizer.from_pretrained(None)
    (tmp_path / "vocab.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no tokens; a vocab.txt has one token per line"):
        WordPieceTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("text", [None, 5, b"hello", ["hello"]])
def test_wordpiece_rejects_non_text(wp, text):
    for fn in (wp.encode, wp.tokenize, wp.wordpiece, basic_tokenize):
        with pytest.raises(TypeError, match="takes a str"):
            fn(text)


def test_wordpiece_other_checks_and_empty_text(wp):
    hf = load_minilm_tokenizer()
    assert wp.encode("") == hf("")["input_ids"] == [101, 102]
    assert wp.tokenize("") == [] and wp.wordpiece("") == [] and wp.decode([]) == "" and basic_tokenize("") == []
    assert wp.encode("", add_special_tokens=False) == []
    with pytest.raises(TypeError, match="add_special_tokens must be True or False"):
        wp.encode("x", add_special_tokens=1)
    with pytest.raises(TypeError, match="takes a WordPieceConfig"):
        basic_tokenize("x", {"do_lower_case": False})
    with pytest.raises(ValueError, match="lone surrogate.*clean it first"):
        wp.encode("broken \udc80 text")
    for fn in (is_cjk, is_punctuation):
        with pytest.raises(ValueError, match="one character.*loop over the characters"):
            fn("ab")
        with pytest.raises(ValueError, match="one character"):
            fn("")
        with pytest.raises(TypeError, match="one character"):
            fn(65)


# ---------------------------------------------------------------- reference helpers
def test_reference_helpers_check_their_input(bpe):
    with pytest.raises(TypeError, match="takes a BPEConfig"):
        hf_bpe("whitespace")
    with pytest.raises(TypeError, match="not one str"):
        train_hf_bpe("one text", BPEConfig(vocab_size=50))
    with pytest.raises(TypeError, match="trained BPETokenizer"):
        to_hf_tokenizer("tokenizer")
    with pytest.raises(ValueError, match="merge_agreement needs n > 0"):
        merge_agreement([], [])
    with pytest.raises(ValueError, match="merge_agreement needs n > 0"):
        merge_agreement([("a", "b")], [("a", "b")], n=-1)
    with pytest.raises(TypeError, match="takes two merge lists, got NoneType"):
        merge_agreement(None, [("a", "b")])
    with pytest.raises(TypeError, match="n to be an int"):
        merge_agreement([("a", "b")], [("a", "b")], n=0.5)
    with pytest.raises(TypeError, match="lists of token sequences, got int"):
        sequence_agreement(3, [[1]])
    with pytest.raises(ValueError, match="equally long, non-empty"):
        sequence_agreement([[1]], [])
    assert to_hf_tokenizer(bpe).encode("lowest").ids == bpe.encode("lowest")
