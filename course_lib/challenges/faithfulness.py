r"""Every attribution method on one text, at the level of words, and the deletion test that grades them.

Gradient methods score WordPiece tokens; perturbation methods score the distinct words LIME
splits out (:class:`~.perturbation.TextFeatures`). :func:`explain_words` puts all of them on
LIME's words (a token's score goes to the word holding its first character, summed over the
word's occurrences), so that one deletion test can rank them all:

.. math:: \mathrm{drop}(k) = p_y(x) - p_y(x \setminus \text{top-}k\text{ words}),

where :math:`y` is the class predicted for the full text. A faithful method's top words are the
ones the model actually relies on, so its drop should exceed that of deleting :math:`k` random words.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from . import attribution as A
from . import perturbation as P

__all__ = ["predict_proba", "explain_words", "spearman", "GRADIENT_METHODS"]

GRADIENT_METHODS = ("ig", "grad_x_input", "saliency")


def predict_proba(model: A.MiniLMProbe, tokenizer, batch_size: int = 128):
    """``f(list of texts) -> (N, K)`` NumPy probabilities (empty texts allowed: [CLS] [SEP] only)."""
    def f(texts: Sequence[str]) -> np.ndarray:
        out = []
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[s:s + batch_size]), padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
            with torch.no_grad():
                out.append(model.prob(enc["input_ids"], enc["attention_mask"]).numpy())
        return np.concatenate(out) if out else np.zeros((0, model.config.num_labels))
    return f


def spearman(a, b) -> float:
    """Spearman rank correlation of two score vectors (ties get average ranks)."""
    from scipy.stats import spearmanr
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two 1-D score vectors of the same length >= 2, got {a.shape} and {b.shape}")
    return float(spearmanr(a, b).statistic)


def explain_words(model: A.MiniLMProbe, tokenizer, text: str, lime_samples: int = 500, shap_samples: int | None = None,
                  n_steps: int = 50, seed: int = 0, methods: Sequence[str] = ("ig", "grad_x_input", "saliency",
                                                                               "lime", "kernel_shap")) -> dict:
    """Word scores for the predicted class from each method, and what is needed to test them.

    Returns ``{"features", "target", "p", "value_fn", "scores": {method: (M,)}, "seconds": {method: s}}``.
    ``kernel_shap`` enumerates all coalitions when ``shap_samples`` is None (use for M <= ~12 words).
    """
    feats = P.TextFeatures(text)
    if len(feats) == 0:
        raise ValueError(f"text {text!r} has no words to explain")
    f = predict_proba(model, tokenizer)
    p_full = f([text])[0]
    target = int(np.argmax(p_full))
    value_fn = P.text_value_fn(feats, f, target)
    enc = A.encode(tokenizer, text)
    offsets = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=64)["offset_mapping"]
    scores, seconds = {}, {}
    for m in methods:
        t0 = time.perf_counter()
        if m in GRADIENT_METHODS:
            tok_scores = A.token_attributions(model, enc, m, target=target, n_steps=n_steps)
            scores[m] = P.feature_scores_from_tokens(feats, offsets, tok_scores)
        elif m == "lime":
            scores[m] = P.explain_lime(feats, value_fn, P.LimeConfig(num_samples=lime_samples, random_state=seed))[
                "weights"]
        elif m == "kernel_shap":
            scores[m] = P.kernel_shap(value_fn, len(feats), nsamples=shap_samples, random_state=seed)["phi"]
        else:
            raise ValueError(f"unknown method {m!r}; choose from {GRADIENT_METHODS + ('lime', 'kernel_shap')}")
        seconds[m] = time.perf_counter() - t0
    return {"features": feats, "target": target, "p": float(p_full[target]), "value_fn": value_fn,
            "scores": scores, "seconds": seconds, "tokens": enc["tokens"]}
