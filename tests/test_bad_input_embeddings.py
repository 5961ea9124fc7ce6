"""Bad input to course_lib.embeddings fails at our API with a clear message, and training fails
loudly (never returns NaN vectors); diverged vectors get no evaluation score."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from course_lib.embeddings import FastTextConfig, GloVeConfig, Vocab, Word2VecConfig, WordVectors, tokenize
from course_lib.embeddings import evaluate as ev
from course_lib.embeddings import fasttext as ft
from course_lib.embeddings import glove, pairs
from course_lib.embeddings import word2vec_numpy as w2v_np
from course_lib.embeddings import word2vec_torch as w2v


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    return [[words[j] for j in rng.integers(0, 40, size=8)] for _ in range(150)]


SMALL = dict(vector_size=8, window=2, min_count=1, epochs=1, sample=0.0, negative=2)


def _trainers():
    """(name, train(sentences, cfg, **kw), config class) for every trainer."""
    return [
        ("numpy", lambda s, c, **kw: w2v_np.train_skipgram(s, c, **kw), Word2VecConfig),
        ("torch pairs", lambda s, c, **kw: w2v.train_word2vec(s, c, loss_every=10, **kw), Word2VecConfig),
        ("torch cbow", lambda s, c, **kw: w2v.train_word2vec(s, replace(c, sg=0), loss_every=10, **kw),
         Word2VecConfig),
        ("torch chunks", lambda s, c, **kw: w2v.train_word2vec(s, c, loss_every=10, chunk_len=8,
                                                               **{"batch_size": 64, **kw}), Word2VecConfig),
        ("fasttext exact", lambda s, c, **kw: ft.train_fasttext(s, c, loss_every=10, **kw), FastTextConfig),
        ("fasttext chunks", lambda s, c, **kw: ft.train_fasttext(s, c, loss_every=10, chunk_len=8,
                                                                 **{"batch_size": 64, **kw}), FastTextConfig),
    ]


def _config(cls, **kw):
    extra = {"bucket": 1000} if cls is FastTextConfig else {}
    return cls(**{**SMALL, **extra, **kw})


TRAINERS = _trainers()
IDS = [t[0] for t in TRAINERS]


# ----------------------------------------------------------------------------- sentences

@pytest.mark.parametrize("name, train, cls", TRAINERS, ids=IDS)
def test_a_list_of_strings_is_refused_not_read_as_characters(name, train, cls, one_torch_thread):
    with pytest.raises(TypeError, match="is a string.*characters.*list of token lists.*tokenize"):
        train(["the cat sat on the mat", "a dog"], _config(cls))


@pytest.mark.parametrize("bad, words", [
    ("the cat sat", "must be a list of token lists"),
    ((s for s in [["a", "b"]]), "must be a list of token lists.*list\\(...\\)"),
    ([["a", 1, 2.0]], "tokens must be strings.*float, int"),
    ([["a"], 7], "sentence 1 is a int"),
])
def test_sentence_containers(bad, words):
    with pytest.raises(TypeError, match=words):
        Vocab.build(bad, min_count=1)


def test_empty_corpus_and_vocabulary_errors():
    with pytest.raises(ValueError, match="holds no tokens"):
        Vocab.build([], min_count=1)
    with pytest.raises(ValueError, match="holds no tokens"):
        Vocab.build([[], []], min_count=1)
    with pytest.raises(TypeError, match="min_count must be an integer"):
        Vocab.build([["a"]], min_count=2.5)
    with pytest.raises(TypeError, match="tokenize takes one string"):
        tokenize(None)
    with pytest.raises(TypeError, match="vocab must be a course_lib.embeddings.Vocab"):
        w2v.train_word2vec([["a", "b"]], Word2VecConfig(min_count=1), vocab={"a": 0})
    with pytest.raises(ValueError, match="counts must have one entry per word"):
        Vocab(["a", "b"], np.array([3]))


# ----------------------------------------------------------------------------- hyper-parameters

@pytest.mark.parametrize("name, train, cls", TRAINERS, ids=IDS)
@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_must_be_positive(name, train, cls, batch_size, corpus):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        train(corpus, _config(cls), batch_size=batch_size)


@pytest.mark.parametrize("field, value, error, words", [
    ("alpha", -0.01, ValueError, "alpha must be > 0"),
    ("alpha", 0.0, ValueError, "alpha must be > 0"),
    ("alpha", float("nan"), ValueError, "alpha must be a finite number"),
    ("alpha", float("inf"), ValueError, "alpha must be a finite number"),
    ("min_alpha", 0.5, ValueError, "min_alpha .* must not exceed alpha"),
    ("min_alpha", -1e-4, ValueError, "min_alpha must be >= 0"),
    ("sample", float("nan"), ValueError, "sample must be a finite number"),
    ("sample", -1e-3, ValueError, "sample must be >= 0"),
    ("vector_size", 0, ValueError, "vector_size must be >= 1"),
    ("vector_size", 10.5, TypeError, "vector_size must be an integer"),
    ("window", 0, ValueError, "window must be >= 1"),
    ("epochs", -1, ValueError, "epochs must be >= 1"),
    ("negative", 0, ValueError, "use negative >= 1"),
    ("ns_exponent", float("nan"), ValueError, "ns_exponent must be a finite number"),
    ("sg", 2, ValueError, "sg must be 1"),
    ("cbow_mean", 3, ValueError, "cbow_mean must be 1"),
    ("seed", -1, ValueError, "seed must be >= 0"),
])
def test_word2vec_config_fields(field, value, error, words):
    with pytest.raises(error, match=words):
        Word2VecConfig(**{field: value})
    with pytest.raises(error, match=words):
        FastTextConfig(**{field: value})


@pytest.mark.parametrize("field, value, error, words", [
    ("min_n", 0, ValueError, "1 <= min_n <= max_n"), ("max_n", 2, ValueError, "1 <= min_n <= max_n"),
    ("bucket", 0, ValueError, "bucket must be >= 1"), ("min_n", 3.0, TypeError, "min_n must be an integer")])
def test_fasttext_config_fields(field, value, error, words):
    with pytest.raises(error, match=words):
        FastTextConfig(**{field: value})


@pytest.mark.parametrize("field, value, error, words", [
    ("vector_size", -5, ValueError, "vector_size must be >= 1"),
    ("vector_size", 0, ValueError, "vector_size must be >= 1"),
    ("epochs", 0, ValueError, "epochs must be >= 1"),
    ("window", 0, ValueError, "window must be >= 1"),
    ("x_max", 0.0, ValueError, "x_max must be > 0"),
    ("alpha", float("nan"), ValueError, "alpha must be a finite number"),
    ("learning_rate", -0.05, ValueError, "learning_rate must be > 0"),
    ("learning_rate", float("inf"), ValueError, "learning_rate must be a finite number"),
    ("min_count", "5", TypeError, "min_count must be an integer"),
])
def test_glove_config_fields(field, value, error, words):
    with pytest.raises(error, match=words):
        GloVeConfig(**{field: value})


@pytest.mark.parametrize("name, train, cls", TRAINERS, ids=IDS)
@pytest.mark.parametrize("field, value, words", [
    ("window", 0, "window must be >= 1"), ("alpha", float("nan"), "alpha must be a finite number"),
    ("alpha", -1.0, "alpha must be > 0"), ("vector_size", 0, "vector_size must be >= 1")])
def test_fields_changed_after_construction_are_checked_at_train_time(name, train, cls, field, value, words,
                                                                      corpus, one_torch_thread):
    cfg = _config(cls)
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=words):
        train(corpus, cfg)


@pytest.mark.parametrize("train", [glove.train_glove_numpy, glove.train_glove_torch])
def test_glove_trainers_check_config_and_batch(train, corpus):
    cfg = GloVeConfig(vector_size=4, window=2, min_count=1, epochs=1)
    cfg.window = 0
    with pytest.raises(ValueError, match="window must be >= 1"):
        train(corpus, cfg)
    cfg = GloVeConfig(vector_size=4, window=2, min_count=1, epochs=1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        train(corpus, cfg, batch_size=0)
    with pytest.raises(TypeError, match="cfg must be a GloVeConfig"):
        train(corpus, Word2VecConfig())
    with pytest.raises(ValueError, match="nothing to fit"):
        train([["a"], ["b"]], cfg)                                  # no two words share a sentence


@pytest.mark.parametrize("kw, words", [({"loss_every": 0}, "loss_every must be >= 1"),
                                       ({"log_every": -1}, "log_every must be >= 0"),
                                       ({"shared_negatives": 0}, "shared_negatives must be >= 1"),
                                       ({"chunk_len": -2}, "chunk_len must be >= 0")])
def test_loop_knobs(kw, words, corpus):
    with pytest.raises(ValueError, match=words):
        w2v.train_word2vec(corpus, _config(Word2VecConfig), **kw)
    with pytest.raises(ValueError, match=words):
        ft.train_fasttext(corpus, _config(FastTextConfig), **kw)


def test_trainers_check_the_config_type(corpus):
    with pytest.raises(TypeError, match="cfg must be a FastTextConfig"):
        ft.train_fasttext(corpus, _config(Word2VecConfig))
    with pytest.raises(TypeError, match="cfg must be a Word2VecConfig"):
        w2v.train_word2vec(corpus, {"vector_size": 8})


# ----------------------------------------------------------------------------- loud failure

@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("name, train, cls", TRAINERS, ids=IDS)
def test_a_diverging_run_stops_with_a_clear_error(name, train, cls, corpus, one_torch_thread):
    """A far too large learning rate must stop training, never return NaN/inf vectors. With
    loss_every=10 a recorded loss may miss it; the end-of-epoch check on the vectors does not."""
    cfg = _config(cls, alpha=1e30, min_alpha=1e30, epochs=2)
    with pytest.raises(FloatingPointError, match=r"diverged.*(lower alpha|lower batch_size)"):
        train(corpus, cfg, batch_size=64)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("train", [glove.train_glove_numpy, glove.train_glove_torch])
def test_a_diverging_glove_run_stops_with_a_clear_error(train, corpus):
    cfg = GloVeConfig(vector_size=4, window=2, min_count=1, epochs=2, learning_rate=1e30)
    with pytest.raises(FloatingPointError, match="diverged in epoch 0.*lower learning_rate"):
        train(corpus, cfg, batch_size=64)


def test_diverged_vectors_get_no_score(tmp_path):
    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("a\tb\t1.0\nb\tc\t2.0\na\tc\t3.0\n")
    analogies = tmp_path / "q.txt"
    analogies.write_text(": s\na b c d\n")
    bad = WordVectors(["a", "b", "c", "d"], np.full((4, 3), np.nan))
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        result = ev.evaluate_word_pairs(bad, pairs_file)
    assert np.isnan(result["spearman"]) and np.isnan(result["pearson"])
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        score, _ = ev.evaluate_word_analogies(bad, analogies)
    assert np.isnan(score)
    good = WordVectors(["a", "b", "c", "d"], np.random.default_rng(0).normal(size=(4, 3)))
    assert np.isfinite(ev.evaluate_word_pairs(good, pairs_file)["spearman"])
    with pytest.raises(TypeError, match="wv must be a WordVectors"):
        ev.evaluate_word_pairs(good.vectors, pairs_file)
    with pytest.raises(ValueError, match="restrict_vocab must be >= 1"):
        ev.evaluate_word_analogies(good, analogies, restrict_vocab=0)


# ----------------------------------------------------------------------------- building blocks

def test_pairs_and_batches_check_ids_and_windows():
    rng = np.random.default_rng(0)
    ids, sent = np.array([0, 1, 2, 3]), np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="window must be >= 1"):
        pairs.skipgram_pairs(ids, sent, 0, rng)
    with pytest.raises(ValueError, match="window must be >= 1"):
        pairs.cbow_windows(ids, sent, 0, rng)
    with pytest.raises(ValueError, match=r"ids must hold ids in 0..V-1.*-1"):
        pairs.skipgram_pairs(np.array([0, -1]), np.zeros(2, np.int64), 2, rng)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        pairs.reduced_windows(3, 2, 0)
    w_in, w_out = w2v_np.init_vectors(5, 4, rng)
    with pytest.raises(ValueError, match=r"negatives must hold ids in 0..4.*to 7"):
        w2v_np.sgns_batch(w_in, w_out, np.array([0, 1]), np.array([2, 3]), np.array([[1, 7], [0, 1]]))
    with pytest.raises(ValueError, match="vocab_size must be >= 1"):
        w2v_np.init_vectors(0, 4, rng)
    with pytest.raises(ValueError, match="sample must be a finite number"):
        Vocab(["a"], np.array([3])).keep_probs(float("nan"))


def test_fasttext_helpers_check_their_input():
    with pytest.raises(TypeError, match="word must be a str"):
        ft.compute_ngrams(123, 3, 6)
    with pytest.raises(ValueError, match="1 <= min_n <= max_n"):
        ft.compute_ngrams_bytes("where", 4, 3)
    with pytest.raises(TypeError, match="ft_hash takes bytes.*encode"):
        ft.ft_hash("abc")
    with pytest.raises(ValueError, match="bucket must be >= 1"):
        ft.ngram_buckets("where", 3, 6, 0)
    with pytest.raises(TypeError, match="words must be a non-empty list of str"):
        ft.subword_table("where", FastTextConfig())


def test_word_vectors_check_their_input():
    wv = WordVectors(["a", "b"], np.eye(2))
    with pytest.raises(KeyError, match="'zzz' is not in the vocabulary"):
        wv.most_similar("zzz")
    with pytest.raises(ValueError, match="topn must be >= 1"):
        wv.most_similar("a", topn=0)
    with pytest.raises(ValueError, match=r"\(V, D\)"):
        WordVectors(["a"], np.eye(2))
    with pytest.raises(TypeError, match="index_to_key must be a list of words"):
        WordVectors("ab", np.eye(2))


def test_torch_steps_still_train_after_the_checks(corpus, one_torch_thread):
    """The checks change no number: the same seed gives the same vectors twice, all finite."""
    cfg = _config(Word2VecConfig, epochs=2)
    a = w2v.train_word2vec(corpus, cfg, batch_size=64)
    b = w2v.train_word2vec(corpus, cfg, batch_size=64)
    assert np.isfinite(a.vectors).all()
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("name, train, cls", TRAINERS, ids=IDS)
def test_a_corpus_with_nothing_to_train_on(name, train, cls, corpus):
    vocab = Vocab.build(corpus, min_count=1)
    with pytest.raises(ValueError, match="none of the tokens of sentences is in the vocabulary"):
        train([["unknown", "words"]], _config(cls), vocab=vocab)
    with pytest.raises(ValueError, match="no sentence holds two in-vocabulary words"):
        train([["w1"], ["w2"], ["w3"]], _config(cls))
