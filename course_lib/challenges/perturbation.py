r"""Perturbation explanations from scratch: LIME for text, exact Shapley values, KernelSHAP, deletion test.

All methods explain a **value function** on word subsets: a binary mask :math:`z \in \{0,1\}^M`
over the :math:`M` distinct words of a text (1 = kept, 0 = removed) maps to the model's
probability of the target class on the text with the removed words deleted.

**LIME** (Ribeiro et al., 2016), as ``lime.lime_text.LimeTextExplainer``: draw ``num_samples - 1``
masks (for each, a number of words :math:`s \sim U\{1..M\}` to remove, then which ones), weight
each by the kernel :math:`\pi(z) = \sqrt{\exp(-d(z)^2 / w^2)}` of its cosine distance
:math:`d = 100\,(1 - \cos(z, \mathbf 1))` to the full text, and fit a weighted ridge regression
:math:`\min_{\beta, b} \sum_i \pi_i (f(z_i) - b - \beta^\top z_i)^2 + \lambda \lVert\beta\rVert^2`.

**Shapley values** (Shapley, 1953; Lundberg and Lee, 2017):

.. math:: \phi_j = \sum_{S \subseteq N \setminus \{j\}} \frac{|S|!\,(M - |S| - 1)!}{M!}
          \big(v(S \cup \{j\}) - v(S)\big) ,

computed exactly by enumeration (:math:`2^M` evaluations), or by **KernelSHAP**: the weighted
least squares fit of :math:`v(z) \approx \phi_0 + \sum_j \phi_j z_j` with the Shapley kernel
:math:`\pi(z) = \frac{M - 1}{\binom{M}{|z|}\,|z|\,(M - |z|)}` under the constraints
:math:`\phi_0 = v(\varnothing)` and :math:`\sum_j \phi_j = v(N) - v(\varnothing)`. With all
:math:`2^M - 2` coalitions the fit *is* the Shapley value; with fewer, an estimate.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["TextFeatures", "LimeConfig", "lime_masks", "lime_weights", "explain_lime", "text_value_fn",
           "exact_shapley", "shapley_kernel", "kernel_shap", "deletion_drops", "feature_scores_from_tokens"]


class TextFeatures:
    r"""The distinct words of a text, as LIME's ``IndexedString(bow=True)`` splits them (regex ``\W+``).

    Attributes
    ----------
    words : list of str, the M distinct words in order of first appearance
    pieces : list of str, the text cut into words and separators (``"".join(pieces) == text``)
    spans : list of (feature index, start, end) for every word occurrence (character offsets)
    """

    def __init__(self, text: str, split_expression: str = r"\W+"):
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        splitter = re.compile(r"(%s)|$" % split_expression)
        self.text, self.pieces = text, [s for s in splitter.split(text) if s]
        self.words, self._piece_feature, self.spans = [], [], []
        index: dict[str, int] = {}
        start = 0
        for piece in self.pieces:
            if splitter.match(piece):                                   # a separator: never a feature
                self._piece_feature.append(None)
            else:
                j = index.setdefault(piece, len(index))
                if j == len(self.words):
                    self.words.append(piece)
                self._piece_feature.append(j)
                self.spans.append((j, start, start + len(piece)))
            start += len(piece)

    def __len__(self) -> int:
        return len(self.words)

    def text_for(self, mask: Sequence[int]) -> str:
        """The text with every occurrence of the words where ``mask == 0`` deleted (separators kept)."""
        mask = np.asarray(mask)
        if mask.shape != (len(self.words),):
            raise ValueError(f"mask must have one entry per distinct word, shape ({len(self.words)},), "
                             f"got {mask.shape}")
        return "".join(p for p, j in zip(self.pieces, self._piece_feature) if j is None or mask[j])


def text_value_fn(features: TextFeatures, predict_proba: Callable, target: int = 1,
                  batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """``v(masks (N, M)) -> (N,)``: ``predict_proba(list of texts)[:, target]`` on the masked texts."""
    def value(masks):
        masks = np.atleast_2d(np.asarray(masks))
        texts = [features.text_for(m) for m in masks]
        out = [np.asarray(predict_proba(texts[s:s + batch_size]))[:, target] for s in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros(0)
    return value


@dataclass
class LimeConfig:
    """Named as ``LimeTextExplainer(kernel_width=..., random_state=...)`` and ``explain_instance(num_samples=...)``."""
    num_samples: int = 5000
    kernel_width: float = 25.0
    alpha: float = 1.0                    # lime's Ridge(alpha=1)
    random_state: int = 0


def lime_masks(num_words: int, num_samples: int, random_state: int | np.random.RandomState = 0) -> np.ndarray:
    """LIME's neighbourhood, draw for draw as ``LimeTextExplainer`` makes it (same NumPy ``RandomState`` calls).

    Row 0 is the full text; row i removes ``s_i ~ randint(1, M + 1)`` words chosen without replacement.
    Returns a float (num_samples, M) array of 0/1.
    """
    if not isinstance(num_words, int) or num_words < 1:
        raise ValueError(f"num_words must be an int >= 1 (the text needs at least one word), got {num_words!r}")
    if not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an int >= 2 (the text itself plus perturbations), got {num_samples!r}")
    rs = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    sizes = rs.randint(1, num_words + 1, num_samples - 1)
    data = np.ones((num_samples, num_words))
    for i, size in enumerate(sizes, start=1):
        data[i, rs.choice(range(num_words), size, replace=False)] = 0
    return data


def lime_weights(masks: np.ndarray, values: np.ndarray, kernel_width: float = 25.0,
                 alpha: float = 1.0) -> tuple[np.ndarray, float]:
    r"""Weighted ridge fit of ``values`` on ``masks`` with LIME's kernel; returns (coefficients (M,), intercept).

    Closed form: centre by the weighted means, then
    :math:`\beta = (Z_c^\top \Pi Z_c + \lambda I)^{-1} Z_c^\top \Pi y_c` and :math:`b = \bar y - \beta^\top \bar z`
    (the intercept is not penalised, as in scikit-learn's ``Ridge``).
    """
    Z, y = np.asarray(masks, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if Z.ndim != 2 or y.shape != (Z.shape[0],):
        raise ValueError(f"masks must be (N, M) and values (N,), got {Z.shape} and {y.shape}")
    norms = np.linalg.norm(Z, axis=1) * np.linalg.norm(Z[0])
    cos = np.divide(Z @ Z[0], norms, out=np.zeros(len(Z)), where=norms > 0)       # cos(z, z_0); 0 for an empty mask
    d = np.clip(1.0 - cos, 0.0, 2.0) * 100                                       # cosine distance x 100
    pi = np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))                           # sqrt(exp(-d^2 / w^2))
    zbar, ybar = pi @ Z / pi.sum(), pi @ y / pi.sum()                             # weighted means
    Zc, yc = Z - zbar, y - ybar
    A = Zc.T @ (pi[:, None] * Zc) + alpha * np.eye(Z.shape[1])                    # Zc^T Pi Zc + lambda I
    beta = np.linalg.solve(A, Zc.T @ (pi * yc))
    return beta, float(ybar - zbar @ beta)


def explain_lime(features: TextFeatures, value_fn: Callable, config: LimeConfig | None = None) -> dict:
    """LIME word weights for one text: ``{"words", "weights", "intercept", "masks", "values"}``."""
    cfg = config or LimeConfig()
    if len(features) == 0:
        raise ValueError("the text has no words to explain (LIME needs at least one)")
    masks = lime_masks(len(features), cfg.num_samples, cfg.random_state)
    values = np.asarray(value_fn(masks), dtype=np.float64)
    beta, b = lime_weights(masks, values, cfg.kernel_width, cfg.alpha)
    return {"words": list(features.words), "weights": beta, "intercept": b, "masks": masks, "values": values}


def _check_m(num_features: int, limit: int = 20) -> int:
    if not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
    if num_features > limit:
        raise ValueError(f"num_features={num_features} needs 2^{num_features} evaluations; enumerate at most "
                         f"{limit} features (group words, or use kernel_shap with nsamples)")
    return num_features


def exact_shapley(value_fn: Callable, num_features: int) -> tuple[np.ndarray, float]:
    """Shapley values by enumerating all 2^M coalitions; returns (phi (M,), v(empty set))."""
    M = _check_m(num_features)
    masks = np.array(list(itertools.product([0, 1], repeat=M)), dtype=np.float64)   # (2^M, M)
    v = np.asarray(value_fn(masks), dtype=np.float64)
    code = {tuple(m.astype(int)): k for k, m in enumerate(masks)}
    phi = np.zeros(M)
    for k, m in enumerate(masks):
        s = int(m.sum())
        for j in np.flatnonzero(m == 0):
            with_j = m.copy()
            with_j[j] = 1
            w = math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M)    # |S|!(M-|S|-1)!/M!
            phi[j] += w * (v[code[tuple(with_j.astype(int))]] - v[k])                # marginal contribution
    return phi, float(v[0])


def shapley_kernel(M: int, s: np.ndarray) -> np.ndarray:
    r"""The Shapley kernel :math:`(M-1) / (\binom{M}{s}\, s\, (M-s))` for coalition sizes ``0 < s < M``."""
    s = np.asarray(s)
    return (M - 1) / (np.array([math.comb(M, int(k)) for k in s.ravel()]).reshape(s.shape) * s * (M - s))


def kernel_shap(value_fn: Callable, num_features: int, nsamples: int | None = None,
                random_state: int = 0) -> dict:
    """KernelSHAP: the constrained weighted least-squares fit (see the module docstring).

    ``nsamples=None`` or ``>= 2^M - 2`` enumerates every coalition with its kernel weight (exact);
    otherwise coalitions are drawn with sizes ``P(s) ~ (M-1)/(s(M-s))`` and weighted equally.
    Returns ``{"phi" (M,), "phi0", "fx", "masks", "exact"}``.
    """
    M = _check_m(num_features, limit=30)
    v_end = np.asarray(value_fn(np.stack([np.zeros(M), np.ones(M)])), dtype=np.float64)
    phi0, fx = float(v_end[0]), float(v_end[1])                         # v(empty), v(all)
    if M == 1:
        return {"phi": np.array([fx - phi0]), "phi0": phi0, "fx": fx, "masks": np.ones((1, 1)), "exact": True}
    exact = nsamples is None or nsamples >= 2 ** M - 2
    if exact:
        Z = np.array([m for m in itertools.product([0, 1], repeat=M) if 0 < sum(m) < M], dtype=np.float64)
        w = shapley_kernel(M, Z.sum(1))
    else:
        if not isinstance(nsamples, int) or nsamples < 2:
            raise ValueError(f"nsamples must be an int >= 2 (or None for exact enumeration), got {nsamples!r}")
        rng = np.random.default_rng(random_state)
        sizes = np.arange(1, M)
        p = (M - 1) / (sizes * (M - sizes))
        Z = np.zeros((nsamples, M))
        for i, s in enumerate(rng.choice(sizes, size=nsamples, p=p / p.sum())):
            Z[i, rng.choice(M, size=s, replace=False)] = 1
        w = np.ones(nsamples)
    y = np.asarray(value_fn(Z), dtype=np.float64) - phi0
    # eliminate phi_M with sum(phi) = fx - phi0:  y - z_M (fx - phi0) = sum_{j<M} phi_j (z_j - z_M)
    X = Z[:, :-1] - Z[:, -1:]
    t = y - Z[:, -1] * (fx - phi0)
    beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], t * np.sqrt(w), rcond=None)[0]
    phi = np.append(beta, (fx - phi0) - beta.sum())
    return {"phi": phi, "phi0": phi0, "fx": fx, "masks": Z, "exact": exact}


def feature_scores_from_tokens(features: TextFeatures, offsets: Sequence[tuple[int, int]],
                               token_scores: Sequence[float]) -> np.ndarray:
    """Sum token scores into LIME's words: a token belongs to the word occurrence holding its first character.

    ``offsets`` are a fast tokenizer's ``offset_mapping`` (``(0, 0)`` for special tokens, ignored).
    """
    if len(offsets) != len(token_scores):
        raise ValueError(f"offsets ({len(offsets)}) and token_scores ({len(token_scores)}) must have one entry "
                         "per token of the same encoding")
    out = np.zeros(len(features))
    for (a, b), s in zip(offsets, token_scores):
        if a == b:
            continue
        for j, start, end in features.spans:
            if start <= a < end:
                out[j] += s
                break
    return out


def deletion_drops(value_fn: Callable, num_features: int, scores: np.ndarray | None, ks: Sequence[int],
                   random_orders: int = 0, random_state: int = 0) -> np.ndarray:
    r"""Faithfulness by deletion: :math:`v(N) - v(N \setminus \text{top-}k)` for each ``k``.

    ``scores`` (M,) rank the M = ``num_features`` words (highest first, i.e. most in favour of the
    target class). With ``scores=None``, the drop is averaged over ``random_orders`` random rankings
    (the baseline every method must beat). Returns an array (len(ks),).
    """
    M = int(num_features)
    ks = [int(k) for k in ks]
    if scores is not None and len(scores) != M:
        raise ValueError(f"scores has {len(scores)} entries but num_features={M}; give one score per word")
    if scores is None and random_orders < 1:
        raise ValueError("scores=None means random deletion: pass random_orders >= 1")
    if any(k < 0 or k > M for k in ks):
        raise ValueError(f"every k must be in 0..{M} (the number of words), got {ks}")
    rng = np.random.default_rng(random_state)
    orders = ([np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")] if scores is not None
              else [rng.permutation(M) for _ in range(random_orders)])
    masks = []
    for order in orders:
        for k in ks:
            m = np.ones(M)
            m[order[:k]] = 0                                            # delete the k highest-scored words
            masks.append(m)
    v = np.asarray(value_fn(np.vstack([np.ones((1, M)), np.array(masks)])), dtype=np.float64)
    return v[0] - v[1:].reshape(len(orders), len(ks)).mean(0)          # v(N) - v(N minus top-k)
