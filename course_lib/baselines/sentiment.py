r"""Sentiment without a neural network: a hand-written lexicon, and bag-of-words naive Bayes.

**Lexicon.** Count positive minus negative words (``LEXICON``, a few dozen words a film reviewer
uses), flipping the sign of a word that follows a negator ("not funny") within three words. A
review with no lexicon word gets the majority class. It needs no training data, and it fails on
everything the list does not know, on irony, and on "the best thing about it is the popcorn".

**Multinomial naive Bayes** (bag of words). With word counts :math:`x_w` of a text,

.. math::
    \hat y = \arg\max_c \Big[\log P(c) + \sum_w x_w \log \theta_{cw}\Big], \qquad
    \theta_{cw} = \frac{N_{cw} + \alpha}{\sum_{w'} N_{cw'} + \alpha |V|}

where :math:`N_{cw}` counts word :math:`w` in the training texts of class :math:`c` (add-:math:`\alpha`
smoothing). Word order is ignored. :class:`NaiveBayes` equals scikit-learn's ``MultinomialNB``.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["LEXICON", "NEGATORS", "lexicon_score", "lexicon_predict", "NaiveBayes"]

LEXICON: dict[str, int] = {w: +1 for w in (
    "good great best excellent wonderful brilliant funny fun enjoyable entertaining beautiful beautifully "
    "moving touching charming delightful smart clever witty engaging fresh superb masterpiece gripping "
    "compelling powerful love loved lovely terrific satisfying remarkable solid strong rich memorable "
    "impressive effective perfect hilarious thoughtful refreshing intelligent").split()}
LEXICON.update({w: -1 for w in (
    "bad worst boring dull awful terrible poor mess stupid silly tedious predictable lame waste flat "
    "weak pointless disappointing disappointment unfunny bland tiresome ridiculous clumsy forgettable "
    "mediocre annoying lifeless shallow contrived failure fails fail cliched dumb ugly painful overlong "
    "incoherent").split()})
NEGATORS = frozenset({"not", "no", "never", "n't", "nothing", "hardly", "isn't", "doesn't", "don't", "wasn't",
                      "without", "neither", "nor"})
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|n't")


def lexicon_score(text: str, lexicon: dict[str, int] | None = None) -> int:
    """Sum of the polarities of the lexicon words in ``text``; a negator flips the next three words."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lexicon = LEXICON if lexicon is None else lexicon
    score, flip = 0, 0
    for tok in _TOKEN.findall(text.lower()):
        if tok in NEGATORS:
            flip = 3
            continue
        if tok in lexicon:
            score += -lexicon[tok] if flip else lexicon[tok]
        flip = max(flip - 1, 0)
    return score


def lexicon_predict(texts, default: int = 1, lexicon: dict[str, int] | None = None) -> np.ndarray:
    """1 (positive) when the score is > 0, 0 when < 0, ``default`` (the majority class) at 0."""
    if isinstance(texts, str):
        raise TypeError("lexicon_predict takes a list of texts; use lexicon_score for one text")
    if default not in (0, 1):
        raise ValueError(f"default must be 0 or 1, got {default!r}")
    s = np.array([lexicon_score(t, lexicon) for t in texts])
    return np.where(s > 0, 1, np.where(s < 0, 0, default))


class NaiveBayes:
    """Multinomial naive Bayes on word counts, from scratch (``alpha`` as scikit-learn's ``MultinomialNB``).

    ``fit(X, y)`` takes a (N, |V|) count matrix (dense or scipy sparse) and integer labels.
    """

    def __init__(self, alpha: float = 1.0):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (add-alpha smoothing), got {alpha}")
        self.alpha = alpha

    def fit(self, X, y) -> "NaiveBayes":
        y = np.asarray(y)
        if X.shape[0] != len(y) or len(y) == 0:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels; give one label per text")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("y holds a single class; naive Bayes needs examples of at least two classes")
        counts = np.vstack([np.asarray(X[y == c].sum(0)).ravel() for c in self.classes_])   # N_cw (C, |V|)
        smoothed = counts + self.alpha
        self.feature_log_prob_ = np.log(smoothed / smoothed.sum(1, keepdims=True))          # log theta_cw
        self.class_log_prior_ = np.log(np.array([(y == c).mean() for c in self.classes_]))  # log P(c)
        return self

    def joint_log_likelihood(self, X) -> np.ndarray:
        """log P(c) + sum_w x_w log theta_cw, (N, C)."""
        if not hasattr(self, "classes_"):
            raise RuntimeError("call fit(X, y) first")
        if X.shape[1] != self.feature_log_prob_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns, the model {self.feature_log_prob_.shape[1]}: "
                             "use the vectorizer fitted on the training texts")
        return np.asarray(X @ self.feature_log_prob_.T) + self.class_log_prior_

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.joint_log_likelihood(X).argmax(1)]
