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
    with pytest.raises(TypeError, match="takes a str"):
        tok.tokenize(None)


SPECIAL_TEXTS = ["a[SEP]b", "[MASK]", "[CLS]", "[PAD]", "[UNK]", "x [MASK] y", "[mask] [Mask]", "[SEP][SEP]",
                 "[[SEP]]", "[CLS]hello[SEP]world[PAD][PAD]", "don't [MASK]!", "[SE P] [SEP", "北[MASK]京",
                 " [UNK] ", "naïve[SEP]café"]


@pytest.mark.parametrize("text", SPECIAL_TEXTS)
def test_special_tokens_in_the_text_stay_single_tokens(tokenizers, text):
    ours, hf = tokenizers
    ids = ours.encode(text)
    assert ids == hf(text)["input_ids"]
    assert ours.tokenize(text) == hf.tokenize(text)
    assert ours.decode(ids, skip_special_tokens=False) == hf.decode(ids, skip_special_tokens=False)
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=True)


def test_special_token_examples(tokenizers):
    ours, _ = tokenizers
    assert ours.tokenize("a[SEP]b") == ["a", "[SEP]", "b"]
    assert ours.tokenize("[mask]") == ["[", "mask", "]"]                # case-sensitive, like HF
    assert ours.encode("[MASK]", add_special_tokens=False) == [ours.vocab["[MASK]"]] == [103]


@pytest.mark.parametrize("text", ["\u0378", "a\u0378b", "x \u0378 y", "\U000e0080", "\U0003ffff z", "\u2fff",
                                  "\ue000", "\U000f0000", "\u200b\u00ad\u2060", "\U000110cd",
                                  "\u0890 \u166d \u1734 \U0002b820 \U0002b920"])
def test_unassigned_and_version_dependent_code_points(tokenizers, text):
    """Unassigned code points are kept (-> [UNK]); private use / format characters are dropped."""
    ours, hf = tokenizers
    assert ours.encode(text) == hf(text)["input_ids"]
    if "\u0378" in text:
        assert "[UNK]" in ours.tokenize(text)


def _random_unicode_text(r):
    pools = [
        "abcdefghijklmnopqrstuvwxyz" * 3 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "       \t\n\r\u00a0\u2003\u3000\u2028\x0b\x85",
        ".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|",
        "áéíóúàèìòùâêîôûäëïöüçñßøåæœÁÉÍÓÚÇÑŠŽĞİıŁ",
        "\u0300\u0301\u0302\u0303\u0308\u0327\u0340\u0344\u0345\u0670",        # combining marks
        "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΣΩάέήίόύώϊ",
        "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЁЖ",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي،؟\u064b\u064f\u0650",
        "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशसह\u093f\u0940\u094d\u0902",
        "กขคงจฉชซญดตถทนบปผพฟภมยรลวศษสหอฮ\u0e31\u0e34\u0e35\u0e47",
        "的一是不了人我在有他这为之大来以个中上们北京東京欢迎你",
        "あいうえおかきくけこアイウエオカキクケコ、。「」ー",
        "가나다라마바사아자차카타파하한국어",
        "😀😂🤖🎉👍🏽❤️✓☃★☆♥♪€£¥©®™°±×÷½²³",
        "\x00\x01\x07\x1b\x7f\x9f\u200b\u200c\u200d\u200e\ufeff\ufffd\u00ad\u2060\ue000\uf8ff",
        "ＡＢＣａｂｃ１２３！？ﬁﬂǄǅǆ",
    ]
    specials = ["[SEP]", "[CLS]", "[MASK]", "[PAD]", "[UNK]", "[mask]", "[SEP"]
    parts = []
    for _ in range(r.randint(0, 12)):
        k = r.random()
        if k < 0.08:
            parts.append(r.choice(specials))
        elif k < 0.15:                                    # any code point at all (not a surrogate)
            cp = r.choice([r.randrange(0x80, 0x3400), r.randrange(0x10000, 0x110000)])
            parts.append(chr(cp if not 0xD800 <= cp <= 0xDFFF else 0x378))
        else:
            pool = r.choice(pools)
            parts.append("".join(r.choice(pool) for _ in range(r.randint(1, 8))))
    return r.choice(["", " "]).join(parts)


def test_random_unicode_strings_give_the_same_ids_as_minilm(tokenizers):
    import random
    ours, hf = tokenizers
    r = random.Random(0)
    texts = [_random_unicode_text(r) for _ in range(3000)]
    theirs = hf(texts)["input_ids"]
    mismatches = [(t, ours.tokenize(t), hf.convert_ids_to_tokens(i)) for t, i in zip(texts, theirs)
                  if ours.encode(t) != i]
    assert not mismatches, mismatches[:3]
    assert sum("[UNK]" in ours.tokenize(t) for t in texts) > 100          # unknown characters did occur
    assert sum(ours.vocab["[SEP]"] in ids[1:-1] for ids in theirs) > 50    # so did special tokens


def test_unicode_tables_agree_with_tokenizers_on_sampled_code_points():
    """Spot check of the stored tables (the full check of all 1.1M code points takes ~30 s)."""
    import random
    import unicodedata
    from tokenizers import normalizers, pre_tokenizers
    from course_lib.tokenization.wordpiece import _is_control, is_punctuation
    from course_lib.tokenization.unicode_tables import MARKS, in_table
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    split = pre_tokenizers.BertPreTokenizer()
    r = random.Random(1)
    cps = [r.randrange(0x110000) for _ in range(4000)] + list(range(0x300, 0x380)) + list(range(0x2000, 0x2070))
    for cp in cps:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        assert _is_control(ch) == (clean.normalize_str(f"x{ch}y") == "xy"), hex(cp)
        assert is_punctuation(ch) == (len(split.pre_tokenize_str(f"x{ch}y")) == 3), hex(cp)
        if unicodedata.normalize("NFD", ch) == ch:
            assert in_table(ch, MARKS) == (strip.normalize_str(f"x{ch}y") == "xy"), hex(cp)
