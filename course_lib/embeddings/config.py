"""Typed configurations for the chapter-2 models, with gensim's parameter names.

Because the field names are gensim's own, a like-for-like comparison is one line::

    cfg = Word2VecConfig(vector_size=100, epochs=5)
    ours = train_word2vec(sentences, cfg)
    ref = gensim.models.Word2Vec(sentences, **asdict(cfg))

Fields that gensim does not know (GloVe's ``x_max``, our ``batch_size``) live in
separate configs or are passed as keyword arguments, so ``asdict`` stays valid.

Every config checks its fields when it is built (``__post_init__``) and again when a
trainer starts (:meth:`~Word2VecConfig.validate`), since a field can be changed in
between (``cfg.window = 0``). A bad value raises ``TypeError`` / ``ValueError`` naming it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .checks import check_int, check_number


@dataclass
class Word2VecConfig:
    """Hyper-parameters of Word2Vec (names and defaults as in ``gensim.models.Word2Vec``).

    Parameters
    ----------
    vector_size : int
        Dimension $D$ of the word vectors.
    window : int
        Maximum distance between centre and context word; the effective window of each
        centre word is drawn uniformly from ``1..window`` (the "reduced window").
    min_count : int
        Words seen fewer than ``min_count`` times are dropped from the vocabulary.
    sample : float
        Sub-sampling threshold $t$ for frequent words (0 disables it).
    negative : int
        Number $K$ of negative samples per positive pair.
    ns_exponent : float
        Exponent of the unigram distribution the negatives are drawn from (0.75).
    alpha, min_alpha : float
        Learning rate, decayed linearly from ``alpha`` to ``min_alpha`` over training.
    epochs : int
        Passes over the corpus.
    sg : int
        1 = skip-gram, 0 = CBOW.
    seed : int
        Random seed.
    workers : int
        Threads (gensim) / torch threads are set by the caller.
    hs : int
        Hierarchical softmax; only 0 (negative sampling) is implemented here.
    cbow_mean : int
        CBOW: 1 = mean of the context vectors (gensim's default), 0 = sum.
    """

    vector_size: int = 100
    window: int = 5
    min_count: int = 5
    sample: float = 1e-3
    negative: int = 5
    ns_exponent: float = 0.75
    alpha: float = 0.025
    min_alpha: float = 0.0001
    epochs: int = 5
    sg: int = 1
    seed: int = 1
    workers: int = 2
    hs: int = 0
    cbow_mean: int = 1

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field (types, ranges, finite learning rates); the trainers call it too."""
        for name in ("vector_size", "window", "epochs", "min_count", "workers"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("negative", self.negative)
        check_int("hs", self.hs)
        if self.negative < 1 or self.hs:
            raise ValueError("only negative sampling is implemented: use negative >= 1 and hs=0, "
                             f"got negative={self.negative}, hs={self.hs}")
        if self.sg not in (0, 1) or isinstance(self.sg, bool):
            raise ValueError(f"sg must be 1 (skip-gram) or 0 (CBOW), got {self.sg!r}")
        if self.cbow_mean not in (0, 1) or isinstance(self.cbow_mean, bool):
            raise ValueError(f"cbow_mean must be 1 (mean of the context) or 0 (sum), got {self.cbow_mean!r}")
        check_number("sample", self.sample, minimum=0.0)
        check_number("ns_exponent", self.ns_exponent)
        check_number("alpha", self.alpha, minimum=0.0, strict=True)
        check_number("min_alpha", self.min_alpha, minimum=0.0)
        if self.min_alpha > self.alpha:
            raise ValueError(f"min_alpha ({self.min_alpha}) must not exceed alpha ({self.alpha}): the learning "
                             "rate decays linearly from alpha to min_alpha")


@dataclass
class FastTextConfig(Word2VecConfig):
    """Hyper-parameters of FastText (names as in ``gensim.models.FastText``).

    Adds the character n-gram range ``min_n..max_n`` and the number of hash
    ``bucket`` rows that all n-grams share.
    """

    min_n: int = 3
    max_n: int = 6
    bucket: int = 2_000_000

    def validate(self) -> None:
        super().validate()
        check_int("min_n", self.min_n)
        check_int("max_n", self.max_n)
        if not 1 <= self.min_n <= self.max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got min_n={self.min_n}, max_n={self.max_n}")
        check_int("bucket", self.bucket, minimum=1)


@dataclass
class GloVeConfig:
    """Hyper-parameters of GloVe (names as in the reference C implementation).

    The defaults are those of the reference code's demo for a small corpus (``demo.sh``:
    17M tokens of text8, window 15, ``x_max`` 10, 15 iterations, 50 dimensions, eta 0.05),
    which also suit WikiText-2 (1.6M tokens); the paper's ``x_max`` 100 and window 10 were
    chosen for 6 billion tokens. The batch size is an argument of the trainers.

    Parameters
    ----------
    vector_size : int
        Dimension of the word vectors.
    window : int
        Symmetric context window; a pair at distance $d$ adds $1/d$ to $X_{ij}$. On a small
        corpus a wide window gives every word more (weak) co-occurrences.
    min_count : int
        Vocabulary cut-off.
    x_max, alpha : float
        Weighting $f(x) = \\min(1, (x/x_{max})^\\alpha)$. Below ``x_max``, $f$ only sets the
        scale of the loss, which AdaGrad (starting from $G = 0$) divides out; ``x_max`` decides
        which pairs are capped at weight 1: on WikiText-2 (window 15, 84% of the entries
        below $X_{ij} = 1$) 1.1% of the entries with 10, 0.08% with 100.
    learning_rate : float
        AdaGrad step size $\\eta$: the largest step any coordinate can make.
    epochs : int
        Passes over the non-zero co-occurrence entries.
    seed : int
        Random seed (initial vectors and the order of the entries).
    """

    vector_size: int = 50
    window: int = 15
    min_count: int = 5
    x_max: float = 10.0
    alpha: float = 0.75
    learning_rate: float = 0.05
    epochs: int = 15
    seed: int = 1

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field (types, ranges, finite numbers); the trainers call it too."""
        for name in ("vector_size", "window", "min_count", "epochs"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_number("x_max", self.x_max, minimum=0.0, strict=True)
        check_number("alpha", self.alpha, minimum=0.0)
        check_number("learning_rate", self.learning_rate, minimum=0.0, strict=True)
