"""The shipped full-corpus vectors (checkpoints/embeddings): checksums, shapes, stored scores reproduced."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from course_lib.data import ChecksumError
from course_lib.embeddings import shipped
from course_lib.embeddings.evaluate import standard_scores
from course_lib.transformer import checkpoint


def test_every_file_matches_its_checksum():
    sums = checkpoint.verify_checkpoint(shipped.shipped_folder())
    names = {"vocab.tsv", "history.json", "word2vec.npy", "word2vec_context_top.npy", "gensim_word2vec.npy",
             "fasttext.npy", "gensim_fasttext.npy", "glove_word.npy", "glove_context.npy"}
    assert set(sums) == names
    size = sum((shipped.shipped_folder() / n).stat().st_size for n in names)
    assert size < 21e6                                           # the budget: about 20 MB


def test_shapes_and_vocabulary():
    words, counts = shipped.shipped_vocab()
    history = shipped.shipped_history()
    assert len(words) == history["corpus"]["vocab"] == len(set(words))
    assert int(counts.sum()) == history["corpus"]["tokens"]
    assert (np.diff(counts) <= 0).all() and words[0] == "the"    # most frequent first
    for name, dim in [("word2vec", 100), ("gensim_fasttext", 100), ("glove", 50)]:
        wv = shipped.load_shipped(name)
        assert wv.vectors.shape == (len(words), dim) and wv.vectors.dtype == np.float32
        assert np.isfinite(wv.vectors).all()
    g = shipped.load_shipped("glove")
    w = shipped.load_shipped("glove_word")
    np.testing.assert_array_equal(g.vectors, w.vectors + g.context_vectors)   # w + w~
    top = shipped.shipped_output_vectors()
    assert top.shape == (history["context_top"], 100)


@pytest.mark.parametrize("name", ["word2vec", "gensim_word2vec", "fasttext", "glove", "glove_context"])
def test_stored_scores_are_reproduced(name):
    stored = shipped.shipped_history()["scores"][name]
    got = standard_scores(shipped.load_shipped(name))
    for key in ("wordsim353", "simlex999", "analogy", "semantic", "syntactic"):
        assert got[key] == pytest.approx(stored[key], abs=1e-9), key


def test_full_corpus_vectors_beat_chance():
    scores = shipped.shipped_history()["scores"]
    # the benchmark's means over 3 seeds: word2vec rho 0.38, FastText analogies 45%
    for name in ("word2vec", "gensim_word2vec", "fasttext", "gensim_fasttext", "glove"):
        assert scores[name]["wordsim353"] > 0.2, name
    assert scores["fasttext"]["syntactic"] > 3 * scores["word2vec"]["syntactic"]   # subwords win on syntax


@pytest.fixture()
def copied(tmp_path, monkeypatch):
    """A copy of the folder under a temporary checkpoints/ root (the real files are never touched)."""
    src = shipped.shipped_folder()
    dst = tmp_path / shipped.FOLDER
    dst.mkdir()
    for name in ("checksums.json", "vocab.tsv", "glove_word.npy", "glove_context.npy", "history.json"):
        shutil.copy(src / name, dst / name)
    monkeypatch.setattr(checkpoint, "CHECKPOINTS", tmp_path)
    return dst


def test_altered_file_is_refused(copied):
    assert shipped.load_shipped("glove").vectors.shape[1] == 50          # the copy loads
    arr = np.load(copied / "glove_context.npy")
    arr[0, 0] += 1
    np.save(copied / "glove_context.npy", arr)
    with pytest.raises(ChecksumError, match="glove_context.npy was altered"):
        shipped.load_shipped("glove")
    shipped.load_shipped("glove_word")                                   # the untouched file still loads
    assert shipped.load_shipped("glove", verify=False).vectors.shape[1] == 50


def test_missing_file_is_named(copied):
    (copied / "glove_word.npy").unlink()
    with pytest.raises(FileNotFoundError, match="glove_word.npy is missing"):
        shipped.load_shipped("glove")
    with pytest.raises(FileNotFoundError, match="glove_word.npy is missing"):
        shipped.load_shipped("glove", verify=False)
    (copied / "checksums.json").unlink()
    with pytest.raises(FileNotFoundError, match="checksums.json is missing"):
        shipped.load_shipped("glove_context")


def test_unknown_name():
    with pytest.raises(ValueError, match="choose one of"):
        shipped.load_shipped("word2vec_big")
    with pytest.raises(ValueError, match="choose one of"):
        shipped.load_shipped(3)
