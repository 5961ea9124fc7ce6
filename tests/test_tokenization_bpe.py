"""BPE from scratch vs Hugging Face ``tokenizers``: same merges, same segmentation, same decoding."""
from __future__ import annotations

import random

import pytest

from course_lib.data import load_wikitext2
from course_lib.tokenization import (BPEConfig, BPETokenizer, byte_level_alphabet, byte_level_split,
                                     merge_word, whitespace_split)
from course_lib.tokenization.reference import (hf_merges, merge_agreement, sequence_agreement,
                                               to_hf_tokenizer, train_hf_bpe)

TRAIN_LINES = 4000          # ~0.45 MB of WikiText-2 train
VALID_LINES = 600

CONFIGS = {
    "whitespace": BPEConfig(vocab_size=3000, min_frequency=2, special_tokens=["[UNK]", "[PAD]"],
                            unk_token="[UNK]"),
    "byte_level": BPEConfig(vocab_size=3000, min_frequency=2, special_tokens=["<|endoftext|>"],
                            pre_tokenizer="byte_level", initial_alphabet=byte_level_alphabet()),
}


@pytest.fixture(scope="module")
def wikitext():
    return (load_wikitext2("train").splitlines()[:TRAIN_LINES],
            load_wikitext2("valid").splitlines()[:VALID_LINES])


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def trained(request, wikitext):
    train, _ = wikitext
    cfg = CONFIGS[request.param]
    return BPETokenizer(cfg).train(train), train_hf_bpe(train, cfg)


def test_same_merges_and_vocab_as_tokenizers_on_wikitext2(trained):
    ours, hf = trained
    theirs = hf_merges(hf)
    assert len(ours.merges) > 2000
    assert ours.merges == theirs                      # exact: every merge, in order
    assert merge_agreement(ours.merges, theirs) == 1.0
    assert ours.vocab == hf.get_vocab()               # same ids too
    assert len(ours) == ours.config.vocab_size


def test_same_segmentation_of_held_out_text(trained, wikitext):
    ours, hf = trained
    _, valid = wikitext
    ids_ours = [ours.encode(line) for line in valid]
    ids_hf = [e.ids for e in hf.encode_batch(valid)]
    assert sum(map(len, ids_ours)) > 20000
    assert sequence_agreement(ids_ours, ids_hf) == 1.0
    assert [ours.tokenize(line) for line in valid[:50]] == [e.tokens for e in hf.encode_batch(valid[:50])]


def test_tokenizers_loaded_with_our_merges_segments_like_us(trained, wikitext):
    ours, _ = trained
    _, valid = wikitext
    hf_ours = to_hf_tokenizer(ours)
    assert [e.ids for e in hf_ours.encode_batch(valid[:200])] == [ours.encode(v) for v in valid[:200]]


def test_decode_matches_tokenizers_and_round_trips(trained, wikitext):
    ours, hf = trained
    _, valid = wikitext
    texts = valid[:200] + ["Zürich 北京 naïve — ½ 😀 done ."]
    for text in texts:
        ids = ours.encode(text)
        assert ours.decode(ids) == hf.decode(ids)
        if ours.config.pre_tokenizer == "byte_level":
            assert ours.decode(ids) == text           # bytes cover everything: lossless
        else:
            # spaces are not kept by Whitespace pre-tokenisation; unseen characters are [UNK]
            words = [w if all(c in ours.vocab for c in w) else None for w in whitespace_split(text)]
            if None not in words:
                assert ours.decode(ids).split() == [t for w in words for t in ours.bpe(w)]
                assert "".join(ours.decode(ids).split()) == "".join(text.split())


def test_unknown_characters_and_special_tokens_in_text(trained):
    ours, hf = trained
    text = "[PAD] unseen ☃ snowman <|endoftext|> ok"
    assert ours.encode(text) == hf.encode(text).ids
    if ours.config.unk_token:
        assert ours.vocab["[UNK]"] in ours.encode("☃") and "[PAD]" in ours.tokenize(text)
    else:
        assert "<|endoftext|>" in ours.tokenize(text)


def test_toy_corpus_first_merges():
    # Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3
    texts = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]
    cfg = BPEConfig(vocab_size=20)
    ours = BPETokenizer(cfg).train(texts)
    # (e,s) and (s,t) both occur 9 times: the tie goes to the smaller ids, i.e. ('e','s')
    assert ours.merges[:4] == [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w")]
    assert ours.merges == hf_merges(train_hf_bpe(texts, cfg))
    assert ours.tokenize("lowest newer") == ["low", "est", "new", "e", "r"]


def test_merge_word_is_left_to_right_without_overlap():
    lengths = [1, 1, 2]                      # ids: 0 = 'a', 1 = 'b', 2 = 'aa'
    symbols = [0, 0, 0, 1]                   # a a a b
    changes = merge_word(symbols, 0, 0, 2, lengths)
    assert symbols == [2, 0, 1]              # aa a b, not a aa b
    assert changes == [((0, 0), -1), ((2, 0), +1)]


@pytest.mark.parametrize("seed", range(40))
def test_random_small_corpora_tie_breaking_and_options(seed):
    """Tiny alphabets make many equal counts: the tie-breaking rule is exercised on every merge."""
    r = random.Random(seed)
    alpha = "abcde"[: r.randint(2, 5)]
    texts = [" ".join("".join(r.choice(alpha) for _ in range(r.randint(1, 9))) for _ in range(r.randint(1, 8)))
             for _ in range(r.randint(5, 60))]
    cfg = BPEConfig(vocab_size=r.randint(10, 80), min_frequency=r.choice([0, 2, 3]), special_tokens=["[UNK]"],
                    unk_token="[UNK]", max_token_length=r.choice([None, 3, 5]))
    ours, hf = BPETokenizer(cfg).train(texts), train_hf_bpe(texts, cfg)
    assert ours.merges == hf_merges(hf) and ours.vocab == hf.get_vocab()
    test = [" ".join("".join(r.choice(alpha + "z") for _ in range(r.randint(1, 12))) for _ in range(4))
            for _ in range(10)]
    assert [ours.encode(t) for t in test] == [e.ids for e in hf.encode_batch(test)]


def test_limit_alphabet_and_initial_alphabet():
    texts = ["aaaaa bbbb ccc dd e"] * 3                # distinct character frequencies: no ties
    cfg = BPEConfig(vocab_size=12, limit_alphabet=3, initial_alphabet=["z"], special_tokens=["[UNK]"],
                    unk_token="[UNK]")
    ours, hf = BPETokenizer(cfg).train(texts), train_hf_bpe(texts, cfg)
    assert {t for t in ours.vocab if len(t) == 1} == {"a", "b", "z"}   # z forced, then the 2 most frequent
    assert ours.vocab == hf.get_vocab() and ours.merges == hf_merges(hf)
    assert ours.tokenize("ace") == hf.encode("ace").tokens == ["a", "[UNK]", "[UNK]"]


def test_min_frequency_stops_training():
    texts = ["ab ab ab cd cd ef"]
    ours = BPETokenizer(BPEConfig(vocab_size=100, min_frequency=2)).train(texts)
    assert ours.merges == [("a", "b"), ("c", "d")]          # ('e','f') occurs once
    assert ours.merges == hf_merges(train_hf_bpe(texts, BPEConfig(vocab_size=100, min_frequency=2)))


def test_pre_tokenizers_match_tokenizers_on_unicode(wikitext):
    from tokenizers import pre_tokenizers
    _, valid = wikitext
    texts = valid[:300] + ["नमस्ते दुनिया", "e\u0301te\u0301 ½ ² 3½", "it's  two   spaces\tand\ttabs ", "x_y-z"]
    ws, bl = pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)
    for text in texts:
        assert whitespace_split(text) == [w for w, _ in ws.pre_tokenize_str(text)]
        assert byte_level_split(text) == [w for w, _ in bl.pre_tokenize_str(text)]
    # Python's own `re` would differ on combining marks: the reason we use `regex`
    import re
    assert re.findall(r"\w+|[^\w\s]+", "नमस्ते") != whitespace_split("नमस्ते") == ["नमस्ते"]


def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match="smaller than the special tokens plus the alphabet"):
        BPETokenizer(BPEConfig(vocab_size=3)).train(["abcdef"])
    with pytest.raises(ValueError, match="call train"):
        BPETokenizer().encode("hello")
    with pytest.raises(ValueError, match="iterable of texts"):
        BPETokenizer().train("one long string")
    with pytest.raises(ValueError, match="pre_tokenizer"):
        BPETokenizer(BPEConfig(pre_tokenizer="sentencepiece"))
    with pytest.raises(ValueError, match="unk_token"):
        BPETokenizer(BPEConfig(vocab_size=10, unk_token="[UNK]")).train(["ab ab"])
    tok = BPETokenizer(BPEConfig(vocab_size=10)).train(["ab ab"])
    with pytest.raises(ValueError, match="unknown token ids"):
        tok.decode([999])
    with pytest.raises(ValueError, match="takes a str"):
        tok.encode(["ab"])
    with pytest.raises(ValueError, match="merge_agreement"):
        merge_agreement([], [])


def test_truncated_equals_training_with_a_smaller_vocabulary(wikitext):
    train, valid = wikitext
    cfg = BPEConfig(vocab_size=1500, min_frequency=2, special_tokens=["[UNK]"], unk_token="[UNK]")
    big = BPETokenizer(cfg).train(train[:1500])
    small_cfg = BPEConfig(**{**cfg.__dict__, "vocab_size": 900})
    small, hf_small = BPETokenizer(small_cfg).train(train[:1500]), train_hf_bpe(train[:1500], small_cfg)
    cut = big.truncated(len(small.merges))
    assert cut.merges == small.merges == hf_merges(hf_small) and cut.vocab == small.vocab
    assert [cut.encode(v) for v in valid[:100]] == [e.ids for e in hf_small.encode_batch(valid[:100])]
    with pytest.raises(ValueError, match="n_merges"):
        big.truncated(10 ** 6)


def test_count_pairs_and_training_trace():
    from course_lib.tokenization import count_pairs, count_words
    texts = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]
    cfg = BPEConfig(vocab_size=20)
    pairs = count_pairs(count_words(texts, cfg))
    assert pairs[("e", "s")] == 9 and pairs[("w", "e")] == 8 and pairs[("l", "o")] == 7
    trace = []
    tok = BPETokenizer(cfg).train(texts, trace=trace)
    assert [(a, b) for a, b, _ in trace] == tok.merges
    assert [n for _, _, n in trace][:5] == [9, 9, 7, 7, 6]      # counts never increase here
