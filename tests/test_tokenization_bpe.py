"""BPE from scratch vs Hugging Face ``tokenizers``: same merges, same segmentation, same decoding."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from course_lib.data import load_wikitext2
from course_lib.tokenization import (BPEConfig, BPETokenizer, byte_level_alphabet, byte_level_split,
                                     merge_word, whitespace_split)
from course_lib.tokenization.reference import (hf_merges, merge_agreement, sequence_agreement,
                                               to_hf_tokenizer, train_hf_bpe)

ROOT = Path(__file__).resolve().parents[1]
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
    with pytest.raises(TypeError, match="iterable of texts"):
        BPETokenizer().train("one long string")
    with pytest.raises(ValueError, match="pre_tokenizer"):
        BPETokenizer(BPEConfig(pre_tokenizer="sentencepiece"))
    with pytest.raises(ValueError, match="unk_token"):
        BPETokenizer(BPEConfig(vocab_size=10, unk_token="[UNK]")).train(["ab ab"])
    tok = BPETokenizer(BPEConfig(vocab_size=10)).train(["ab ab"])
    with pytest.raises(ValueError, match="unknown token ids"):
        tok.decode([999])
    with pytest.raises(TypeError, match="takes a str"):
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


# ---------------------------------------------------------------- fast encoding (merge queue)
def _textbook_bpe(symbols, ranks):
    """The O(n^2) loop the queue replaces: merge the lowest-rank pair (leftmost on ties), rescan."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pair_ranks = [ranks.get(p, float("inf")) for p in zip(symbols, symbols[1:])]
        best = min(range(len(pair_ranks)), key=pair_ranks.__getitem__)
        if pair_ranks[best] == float("inf"):
            break
        symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols


@pytest.fixture(scope="module")
def tiny_alphabet_bpe():
    """Many merges over a 3-letter alphabet: long words hold many overlapping candidate pairs."""
    r = random.Random(7)
    texts = [" ".join("".join(r.choice("aab c") for _ in range(r.randint(5, 40))).split()) for _ in range(400)]
    cfg = BPEConfig(vocab_size=200, special_tokens=["[UNK]"], unk_token="[UNK]")
    return BPETokenizer(cfg).train(texts), train_hf_bpe(texts, cfg)


@pytest.mark.parametrize("seed", range(5))
def test_random_strings_encode_like_tokenizers(tiny_alphabet_bpe, seed):
    ours, hf = tiny_alphabet_bpe
    assert ours.merges == hf_merges(hf) and len(ours.merges) > 150
    r = random.Random(seed)
    texts = ["".join(r.choice("abcz") for _ in range(r.randint(0, 60))) for _ in range(300)]     # short words
    texts += ["".join(r.choice("aabc") for _ in range(r.randint(1000, 5000))) for _ in range(4)]  # unspaced
    texts += ["ab" * 3000, "a" * 4001, "abc" * 1500 + "z" + "cba" * 1500]                          # repetitive
    assert [ours.encode(t) for t in texts] == [e.ids for e in hf.encode_batch(texts)]
    for t in texts[:100]:                       # the queue gives the textbook segmentation
        if t:
            assert ours.bpe(t) == _textbook_bpe([c if c in ours.vocab else "[UNK]" for c in t], ours.ranks)


@pytest.fixture(scope="module")
def shipped():
    from course_lib.transformer.lm_data import load_tokenizer
    return load_tokenizer(ROOT / "checkpoints" / "tiny_gpt")


def _unspaced(kind: str, n: int, seed: int = 0) -> str:
    import base64
    r = random.Random(seed)
    if kind == "base64":
        return base64.b64encode(r.randbytes(n))[:n].decode()
    if kind == "url":
        return ("https://example.org/" + "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789-_/.%?=&")
                                                  for _ in range(n)))[:n]
    if kind == "minified":
        return ("function(a,b){return a.map(function(c){return c*b+1;});};var x=" * (n // 60 + 1))[:n]
    return "".join(r.choice("etaoinshrdlu") for _ in range(n))            # one long "word" of letters


def test_long_unspaced_strings_like_tokenizers(shipped):
    hf = to_hf_tokenizer(shipped)
    texts = [_unspaced(kind, 20_000, seed) for seed in range(2) for kind in ("base64", "url", "minified", "letters")]
    r = random.Random(5)                              # and random mixed-script text around special tokens
    pool = list("abcxyz ABC  0123.,;'\n\téüß北京東京😀🤖\u0301\u200b") + ["<|endoftext|>", "'s", "'ll", "  "]
    texts += ["".join(r.choice(pool) for _ in range(r.randint(0, 80))) for _ in range(500)]
    assert [shipped.encode(t) for t in texts] == [e.ids for e in hf.encode_batch(texts)]
    assert all(shipped.decode(shipped.encode(t), skip_special_tokens=False) == t for t in texts)


@pytest.mark.parametrize("kind", ["base64", "url", "minified", "letters"])
def test_100kb_without_spaces_encodes_in_well_under_a_second(shipped, kind):
    import time
    text = _unspaced(kind, 100_000)
    shipped._cache.clear()
    start = time.process_time()                 # CPU time: not inflated by other jobs on the machine
    ids = shipped.encode(text)
    cpu = time.process_time() - start
    assert cpu < 1.0, f"{kind}: {cpu:.2f} s of CPU for 100 kB"
    assert len(ids) > 10_000 and shipped.decode(ids) == text


def test_encoding_time_grows_like_n_log_n_not_n_squared(shipped):
    import time
    cpu = {}
    for n in (25_000, 100_000):
        text = _unspaced("letters", n, seed=3)
        start = time.process_time()
        shipped.encode(text)
        cpu[n] = time.process_time() - start
    assert cpu[100_000] / cpu[25_000] < 8        # quadratic would be 16, linear 4


def test_word_cache_is_bounded(shipped):
    from course_lib.tokenization.bpe_tokenizer import CACHE_MAX_WORD, CACHE_SIZE
    tok = shipped.truncated(len(shipped.merges))
    tok.encode(" ".join(f"w{i}" for i in range(CACHE_SIZE + 500)))        # more distinct words than fit
    assert len(tok._cache) == CACHE_SIZE
    tok.encode("x" * (CACHE_MAX_WORD + 1))
    assert "x" * (CACHE_MAX_WORD + 1) not in tok._cache
    assert tok.encode("hello world") == shipped.encode("hello world")


SHIPPED_IDS = {   # encodings of the shipped tiny GPT tokenizer before the merge queue replaced the rescan loop
    "The tiny GPT reads WikiText-2 .": [52, 258, 257, 3880, 377, 48, 52, 1890, 83, 374, 1027, 73, 52, 69, 1128, 13, 18,
                                        272],
    "Zürich's 北京 😀 <|endoftext|> end": [58, 128, 121, 82, 431, 7, 83, 221, 162, 235, 246, 161, 119, 106, 221, 173,
                                           254, 247, 223, 221, 0, 788],
    "  two  spaces\n": [221, 568, 221, 467, 1760, 199],
}


def test_shipped_tiny_gpt_tokenizer_encodes_exactly_as_before(shipped):
    import hashlib
    import json
    for text, ids in SHIPPED_IDS.items():
        assert shipped.encode(text) == ids
    valid = load_wikitext2("valid").splitlines()[:2000]
    ids = [shipped.encode(v) for v in valid]
    assert sum(map(len, ids)) == 165717
    assert hashlib.sha256(json.dumps(ids).encode()).hexdigest() == \
        "dcde4d227c5335aa0e58c3c7a9e3ef16aaca5314c7b904966abac99251cd15ef"


# ---------------------------------------------------------------- byte-level parity details
def test_byte_level_default_alphabet_round_trips():
    """Without initial_alphabet a byte-level BPE still holds all 256 byte symbols (as tokenizers' ByteLevelBPE)."""
    cfg = BPEConfig(vocab_size=300, pre_tokenizer="byte_level")
    tok = BPETokenizer(cfg).train(["the the"])
    assert cfg.alphabet() == byte_level_alphabet() and len(tok) == 256 + len(tok.merges)
    for text in ["the hat", "Zürich 北京 😀", "\x00\t\n", ""]:
        assert tok.decode(tok.encode(text)) == text
    hf = train_hf_bpe(["the the"], cfg)
    assert tok.vocab == hf.get_vocab() and tok.encode("the hat") == hf.encode("the hat").ids
    explicit = BPETokenizer(BPEConfig(vocab_size=300, pre_tokenizer="byte_level", initial_alphabet=[]))
    assert len(explicit.train(["the the"])) < 10                      # an explicit [] is respected


@pytest.mark.parametrize("add_prefix_space", [True, False])
def test_prefix_space_and_special_tokens_like_tokenizers(add_prefix_space, wikitext):
    train, _ = wikitext
    cfg = BPEConfig(vocab_size=600, min_frequency=2, special_tokens=["<|endoftext|>", "<pad>"],
                    pre_tokenizer="byte_level", add_prefix_space=add_prefix_space)
    ours, hf = BPETokenizer(cfg).train(train[:800] + [""]), train_hf_bpe(train[:800] + [""], cfg)
    assert ours.merges == hf_merges(hf) and ours.vocab == hf.get_vocab()
    eot = "<|endoftext|>"
    texts = ["", " ", "  ", eot, eot + eot, f"a{eot}b", f"a {eot} b", f"{eot} hi", f"hi{eot}", f"{eot}<pad>{eot}",
             f"The cat{eot}The dog", f" leading{eot}  two", "<|endoftext", f"x{eot}", "\n" + eot + "\n"]
    for text in texts:
        assert ours.tokenize(text) == hf.encode(text).tokens, text
        ids = ours.encode(text)
        assert ours.decode(ids, skip_special_tokens=False) == hf.decode(ids, skip_special_tokens=False)
        assert ours.decode(ids) == hf.decode(ids)
    assert ours.encode("") == [] and len(ours.encode(eot + eot)) == 2
