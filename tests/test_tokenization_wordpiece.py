"""WordPiece from scratch with MiniLM's vocab.txt vs the real MiniLM tokenizer (transformers)."""
from __future__ import annotations

import pytest

from course_lib.data import load_trec, minilm_path
from course_lib.tokenization.reference import load_minilm_tokenizer
from course_lib.tokenization.wordpiece import WordPieceConfig, WordPieceTokenizer, basic_tokenize, is_cjk

TRICKY = [
    "Héllo, naïve café — Zürich résumé",          # accents are stripped
    "北京欢迎你! 東京",                              # CJK: one token per ideograph
    "\u00a0tab\there\x0bvt\u2028ls\x85nel",          # exotic whitespace and control characters
    "ΣΊΣΥΦΟΣ ΟΔΟΣ", "İstanbul ß ﬁ Ǆ ẞ",             # casing corner cases
    "emoji 😀 ☃ ✓",                                  # characters outside the vocabulary
    "x" * 120, "a" + "b" * 101,                      # longer than max_input_chars_per_word
    "don't $5+3^2=14 <tag> under_score",            # ASCII symbols are punctuation for BERT
    "unaffable tokenisation xqzjwv",                 # rare words -> several pieces
    "\x00null\ufffdrep\u200bzw", "𠀀 𪜀 ๑ ½ ²", "Ａｂｃ full-width", "e\u0301 decomposed", "",
]


@pytest.fixture(scope="module")
def tokenizers():
    return WordPieceTokenizer.from_pretrained(minilm_path()), load_minilm_tokenizer()


def test_same_ids_as_minilm_on_500_trec_questions(tokenizers):
    ours, hf = tokenizers
    questions = list(load_trec("test").text)
    assert len(questions) == 500
    ids_ours = [ours.encode(q) for q in questions]
    ids_hf = hf(questions)["input_ids"]
    assert ids_ours == ids_hf
    assert sum(t.startswith("##") for q in questions for t in ours.tokenize(q)) > 20   # real subwords occur


@pytest.mark.parametrize("text", TRICKY)
def test_same_ids_and_decoding_on_tricky_text(tokenizers, text):
    ours, hf = tokenizers
    ids = ours.encode(text)
    assert ids == hf(text)["input_ids"]
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=True)
    assert ours.decode(ids, skip_special_tokens=False) == hf.decode(ids, skip_special_tokens=False)


def test_worked_examples(tokenizers):
    ours, _ = tokenizers
    assert ours.tokenize("Tokenisation is unaffable") == ["token", "##isation", "is", "una", "##ffa", "##ble"]
    assert ours.tokenize("naïve 北京") == ["naive", "北", "京"]
    assert ours.tokenize("x" * 101) == ["[UNK]"] and ours.tokenize("☃") == ["[UNK]"]
    ids = ours.encode("hello")
    assert ids[0] == ours.vocab["[CLS]"] == 101 and ids[-1] == ours.vocab["[SEP]"] == 102
    assert ours.encode("hello", add_special_tokens=False) == ids[1:-1]


def test_basic_tokenizer_steps():
    assert basic_tokenize("Don't STOP—now!") == ["don", "'", "t", "stop", "—", "now", "!"]
    assert basic_tokenize("Café", WordPieceConfig(do_lower_case=False)) == ["Café"]
    assert basic_tokenize("Café", WordPieceConfig(do_lower_case=True, strip_accents=False)) == ["café"]
    assert is_cjk("中") and not is_cjk("の") and not is_cjk("a")


def test_greedy_longest_match_with_a_toy_vocabulary():
    vocab = {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "un", "una", "##ff", "##ffa", "##able",
                                         "##ble", "##a", "##b", "##l", "##e"])}
    tok = WordPieceTokenizer(vocab)
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]    # longest piece first at each step
    assert tok.tokenize("unx") == ["[UNK]"]                          # one hopeless piece -> whole word


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        WordPieceTokenizer({"a": 0})
    tok = WordPieceTokenizer.from_pretrained(minilm_path())
    with pytest.raises(ValueError, match="unknown token ids"):
        tok.decode([10 ** 6])
    with pytest.raises(ValueError, match="takes a str"):
        tok.tokenize(None)
