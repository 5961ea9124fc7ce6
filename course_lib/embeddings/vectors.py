"""A trained set of word vectors: words, a (V, D) matrix, and training records."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import check_int


@dataclass
class WordVectors:
    """Word vectors in gensim's layout (row ``i`` is word ``index_to_key[i]``).

    Attributes
    ----------
    index_to_key : list of str
        Words, most frequent first.
    vectors : ndarray of float32, shape (V, D)
    counts : ndarray, shape (V,), optional
        Corpus counts (used to sort, and copied into KeyedVectors).
    losses : list of float
        Mean loss per example, one entry per logged step.
    seconds : float
        Training wall time.
    words : int
        Corpus tokens processed (raw, before sub-sampling, summed over epochs).
    context_vectors : ndarray of float32, shape (V, D), optional
        The second set of vectors a model trains: Word2Vec's output vectors $u_w$, GloVe's
        context vectors $\tilde w_j$ (for GloVe, ``vectors`` is $w + \tilde w$). None when not kept.
    """

    index_to_key: list[str]
    vectors: np.ndarray
    counts: np.ndarray | None = None
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    words: int = 0
    context_vectors: np.ndarray | None = None

    def __post_init__(self):
        if isinstance(self.index_to_key, str) or not all(isinstance(w, str) for w in self.index_to_key):
            raise TypeError("index_to_key must be a list of words (str)")
        try:
            self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise TypeError(f"vectors must be a (V, D) array of numbers: {err}") from None
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.index_to_key):
            raise ValueError(f"vectors must be (V, D) with V = {len(self.index_to_key)} words, "
                             f"got {self.vectors.shape}")
        if self.context_vectors is not None:
            self.context_vectors = np.ascontiguousarray(self.context_vectors, dtype=np.float32)
            if self.context_vectors.shape != self.vectors.shape:
                raise ValueError(f"context_vectors must have the shape of vectors {self.vectors.shape}, "
                                 f"got {self.context_vectors.shape}")
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> np.ndarray:
        if word not in self.key_to_index:
            raise KeyError(f"word {word!r} is not in the vocabulary of {len(self)} words")
        return self.vectors[self.key_to_index[word]]

    @property
    def words_per_sec(self) -> float:
        return self.words / self.seconds if self.seconds else float("nan")

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1, shape (V, D) (zero rows stay zero)."""
        n = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return self.vectors / np.where(n == 0, 1, n)

    def most_similar(self, word: str, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` words of highest cosine similarity to ``word`` (itself excluded)."""
        check_int("topn", topn, minimum=1)
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        self[word]                                              # KeyError with a message if unknown
        unit = self.unit_vectors()
        sims = unit @ unit[self.key_to_index[word]]
        order = np.argsort(-sims, kind="stable")
        return [(self.index_to_key[i], float(sims[i])) for i in order[:topn + 1]
                if self.index_to_key[i] != word][:topn]

    def to_keyedvectors(self):
        """The same vectors as a gensim ``KeyedVectors`` (for gensim's evaluation)."""
        from gensim.models import KeyedVectors
        kv = KeyedVectors(self.vectors.shape[1])
        kv.add_vectors(self.index_to_key, self.vectors)
        return kv
