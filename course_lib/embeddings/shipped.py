"""Word vectors trained on the whole WikiText-2 train split, shipped in ``checkpoints/embeddings``.

A notebook may train for about a minute, far too little for word vectors: on 370,000 tokens
WordSim-353 scores stay near zero. ``tools/train_embeddings.py`` trains, on the full corpus
(1.6M in-vocabulary tokens) and with the benchmark's settings, our Word2Vec, GloVe and FastText
and gensim's Word2Vec and FastText, and stores their vectors here (float16, one shared
vocabulary of 19,870 words, most frequent first):

=====================  ==========================================================
``vocab.tsv``          word and corpus count, one per line, in row order
``word2vec.npy``       our skip-gram (PyTorch, chunks), (V, 100)
``word2vec_context_top.npy``  its output vectors $u_w$ of the most frequent words (for PMI)
``gensim_word2vec.npy``       gensim's skip-gram, same settings
``fasttext.npy``       our FastText word vectors (own row and n-gram rows averaged), (V, 100)
``gensim_fasttext.npy``       gensim's FastText, same settings
``glove_word.npy``     our GloVe word vectors $w$, (V, 50)
``glove_context.npy``  our GloVe context vectors $\\tilde w$, (V, 50)
``history.json``       settings, training times, and the scores of every set of vectors
=====================  ==========================================================

The n-gram buckets of FastText are not shipped (200,000 x 100 numbers), so shipped FastText
vectors cover the vocabulary only. Every file is checked against ``checksums.json`` before it
is read, with the checkpoint code of the course (:mod:`course_lib.transformer.checkpoint`):
an altered file raises :class:`~course_lib.data.ChecksumError`, a missing one ``FileNotFoundError``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .vectors import WordVectors

FOLDER = "embeddings"
SHIPPED = ("word2vec", "gensim_word2vec", "fasttext", "gensim_fasttext", "glove", "glove_word", "glove_context")
_FILES = {"word2vec": ["word2vec.npy"], "gensim_word2vec": ["gensim_word2vec.npy"],
          "fasttext": ["fasttext.npy"], "gensim_fasttext": ["gensim_fasttext.npy"],
          "glove": ["glove_word.npy", "glove_context.npy"], "glove_word": ["glove_word.npy"],
          "glove_context": ["glove_context.npy"]}


def shipped_folder() -> Path:
    """``<repo>/checkpoints/embeddings`` (``FileNotFoundError`` naming the command that makes it)."""
    # the checksum helpers live with chapter 4's checkpoints; imported here, when vectors are loaded
    from ..transformer.checkpoint import checkpoint_path
    return checkpoint_path(FOLDER)


def _verified(names: list[str], verify: bool) -> Path:
    from ..transformer.checkpoint import verify_files
    folder = shipped_folder()
    if verify:
        verify_files(folder, names)                     # ChecksumError / FileNotFoundError naming the file
    for name in names:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"checkpoint file {folder.name}/{name} is missing; retrain with "
                                    "`python tools/train_embeddings.py` (see checkpoints/embeddings/README.md)")
    return folder


def _array(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / name, allow_pickle=False).astype(np.float32)     # stored float16


def shipped_vocab(verify: bool = True) -> tuple[list[str], np.ndarray]:
    """The shared vocabulary: words (most frequent first) and their corpus counts."""
    folder = _verified(["vocab.tsv"], verify)
    words, counts = [], []
    for line in (folder / "vocab.tsv").read_text(encoding="utf-8").splitlines():
        word, count = line.split("\t")
        words.append(word)
        counts.append(int(count))
    return words, np.array(counts, dtype=np.int64)


def load_shipped(name: str, verify: bool = True) -> WordVectors:
    """One set of shipped vectors as :class:`WordVectors` (float32, rows in vocabulary order).

    Parameters
    ----------
    name : str
        One of ``SHIPPED``: ``"word2vec"``, ``"gensim_word2vec"``, ``"fasttext"``,
        ``"gensim_fasttext"``, ``"glove"`` ($w + \\tilde w$, with $\\tilde w$ as
        ``context_vectors``), ``"glove_word"`` ($w$ only) or ``"glove_context"`` ($\\tilde w$ only).
    verify : bool
        Check the SHA-256 of the files read (default).
    """
    if not isinstance(name, str) or name not in SHIPPED:
        raise ValueError(f"no shipped vectors called {name!r}; choose one of {list(SHIPPED)}")
    words, counts = shipped_vocab(verify)
    folder = _verified(_FILES[name], verify)
    if name == "glove":
        w, w_ctx = _array(folder, "glove_word.npy"), _array(folder, "glove_context.npy")
        return WordVectors(words, w + w_ctx, counts=counts, context_vectors=w_ctx)   # w + w~, as the paper
    return WordVectors(words, _array(folder, _FILES[name][0]), counts=counts)


def shipped_output_vectors(verify: bool = True) -> np.ndarray:
    """Our skip-gram's output vectors $u_w$ of the most frequent words, (N, 100) float32 (rows = vocab order)."""
    return _array(_verified(["word2vec_context_top.npy"], verify), "word2vec_context_top.npy")


def shipped_history(verify: bool = True) -> dict:
    """``history.json``: the command, settings, training times and stored scores."""
    folder = _verified(["history.json"], verify)
    return json.loads((folder / "history.json").read_text(encoding="utf-8"))
