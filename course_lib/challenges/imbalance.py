r"""Class imbalance: resampling, class weights, focal loss, threshold tuning, and metrics that see it.

With a positive rate :math:`\pi` (about 13% spam in the SMS collection), the classifier that always
answers "ham" scores accuracy :math:`1 - \pi`, so accuracy hides a useless model. Metrics that do not:

* **macro-F1**, the unweighted mean of the per-class :math:`F_1 = 2PR/(P+R)`;
* **PR-AUC** (average precision), :math:`\mathrm{AP} = \sum_k (R_k - R_{k-1})\,P_k` over the ranked
  scores; a random scorer gets :math:`\pi`, not 0.5 as for ROC-AUC;
* a **calibration** (reliability) curve: in each bin of predicted probability, the fraction that is
  really positive; the expected calibration error is
  :math:`\mathrm{ECE} = \sum_b \frac{n_b}{N}\,|\bar y_b - \bar p_b|`.

The standard remedies, each a few lines here:

* **random oversampling** (repeat minority examples) and **undersampling** (drop majority examples)
  until the classes are balanced in the training set;
* **class weights** in the loss, :math:`w_k = N / (K n_k)` (scikit-learn's ``"balanced"``), so the
  loss is :math:`-\frac1N \sum_i w_{y_i} \log p_{i, y_i}`;
* **focal loss** (Lin et al., 2017), :math:`\mathrm{FL} = -\alpha_{y}\,(1 - p_{y})^{\gamma} \log p_{y}`,
  which scales down the loss of examples already classified well (:math:`p_y \to 1`); at
  :math:`\gamma = 0` it is (weighted) cross-entropy;
* **threshold tuning**: keep the model, and choose the decision threshold that maximises F1 on a
  validation split instead of 0.5.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["focal_loss", "balanced_class_weights", "random_oversample", "random_undersample",
           "average_precision", "calibration_curve", "expected_calibration_error", "tune_threshold",
           "binary_metrics", "LinearConfig", "train_linear", "predict_proba", "METHODS", "run_method",
           "spam_splits"]

METHODS = ("plain", "oversample", "undersample", "class_weight", "focal", "threshold")


# ----------------------------------------------------------------------------- the focal loss

def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0, alpha=None,
               reduction: str = "mean") -> torch.Tensor:
    r"""Multi-class focal loss :math:`-\alpha_{y}(1 - p_{y})^{\gamma}\log p_{y}` (Lin et al., 2017).

    Parameters
    ----------
    logits : (N, K) float tensor
    labels : (N,) int tensor of class ids in ``0..K-1``
    gamma : float >= 0
        Focusing parameter; 0 gives cross-entropy.
    alpha : None, or (K,) sequence/tensor of per-class weights
        None weighs every class 1. With ``reduction="mean"`` the sum is divided by N (not by
        the sum of the weights, as ``F.cross_entropy(weight=...)`` does).
    reduction : "mean", "sum" or "none"
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"logits must be a (N, K) tensor, got {getattr(logits, 'shape', type(logits))}")
    N, K = logits.shape
    if not isinstance(labels, torch.Tensor) or labels.shape != (N,) or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be an int tensor of shape ({N},): one class id per row of logits")
    if N and (int(labels.min()) < 0 or int(labels.max()) >= K):
        raise ValueError(f"labels must lie in 0..{K - 1}, got {int(labels.min())}..{int(labels.max())}")
    if not (isinstance(gamma, (int, float)) and gamma >= 0):
        raise ValueError(f"gamma must be a number >= 0, got {gamma!r}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels[:, None])[:, 0]     # (N,) log p_y
    p = log_p.exp()                                                            # (N,) p_y
    loss = -((1 - p) ** gamma) * log_p                                         # -(1 - p_y)^gamma log p_y
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device)
        if a.shape != (K,):
            raise ValueError(f"alpha must hold one weight per class, shape ({K},), got {tuple(a.shape)}")
        loss = a[labels] * loss                                                # alpha_y * ...
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / max(N, 1)


# ----------------------------------------------------------------------------- resampling and weights

def _check_labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iub":
        raise ValueError(f"labels must be a non-empty 1-D array of class ids, got shape {y.shape}, dtype {y.dtype}")
    return y.astype(np.int64)


def balanced_class_weights(y, num_classes: int | None = None) -> np.ndarray:
    """:math:`w_k = N / (K n_k)`, scikit-learn's ``compute_class_weight("balanced")``; (K,) float."""
    y = _check_labels(y)
    K = int(y.max()) + 1 if num_classes is None else num_classes
    counts = np.bincount(y, minlength=K).astype(float)
    if (counts == 0).any():
        raise ValueError(f"class(es) {np.flatnonzero(counts == 0).tolist()} have no example: a weight would be infinite")
    return len(y) / (K * counts)                                               # N / (K n_k)


def random_oversample(y, seed: int = 0) -> np.ndarray:
    """Indices that repeat minority examples (drawn with replacement) until every class has the
    majority class's count; the original indices are all kept. Returns shuffled int indices."""
    y = _check_labels(y)
    rng = np.random.default_rng(seed)
    target = np.bincount(y).max()
    parts = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        parts += [idx, rng.choice(idx, size=target - len(idx), replace=True)]
    return rng.permutation(np.concatenate(parts))


def random_undersample(y, seed: int = 0) -> np.ndarray:
    """Indices that keep every minority example and a random subset (without replacement) of each
    larger class, down to the minority count. Returns shuffled int indices."""
    y = _check_labels(y)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    target = counts[counts > 0].min()
    parts = [rng.choice(np.flatnonzero(y == c), size=target, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(parts))


# ----------------------------------------------------------------------------- metrics

def _check_scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"y_true and scores must be 1-D of the same length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels (1 = the positive class)")
    if y.sum() == 0:
        raise ValueError("y_true has no positive example: precision-recall is undefined")
    return y.astype(int), s


def average_precision(y_true, scores) -> float:
    r"""PR-AUC as average precision, :math:`\sum_k (R_k - R_{k-1}) P_k` over distinct score thresholds
    (the step-wise sum of scikit-learn's ``average_precision_score``; tied scores form one step)."""
    y, s = _check_scores(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]                      # last index of each tie group
    tp = np.cumsum(y)[last]                                                    # true positives above each threshold
    precision = tp / (last + 1)                                                # P_k = TP_k / (k predicted)
    recall = tp / y.sum()                                                      # R_k = TP_k / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))             # sum (R_k - R_{k-1}) P_k


def calibration_curve(y_true, prob, n_bins: int = 10) -> dict:
    """Reliability diagram data with equal-width bins on [0, 1]: for each non-empty bin the mean
    predicted probability, the observed positive fraction and the count."""
    y, p = np.asarray(y_true), np.asarray(prob, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape or not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true (0/1) and prob must be 1-D of the same length, got {y.shape} and {p.shape}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("prob must be probabilities in [0, 1]; apply a sigmoid/softmax first")
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)                       # bin of each prediction
    counts = np.bincount(b, minlength=n_bins)
    keep = counts > 0
    mean_p = np.bincount(b, weights=p, minlength=n_bins)[keep] / counts[keep]
    frac = np.bincount(b, weights=y, minlength=n_bins)[keep] / counts[keep]
    return {"mean_predicted": mean_p, "fraction_positive": frac, "count": counts[keep]}


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> float:
    """ECE = sum_b n_b / N |fraction positive_b - mean predicted_b| over equal-width bins."""
    c = calibration_curve(y_true, prob, n_bins)
    return float(np.sum(c["count"] / c["count"].sum() * np.abs(c["fraction_positive"] - c["mean_predicted"])))


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """Accuracy, macro-F1, positive-class precision/recall/F1 at ``threshold``, PR-AUC and ECE."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support
    y, p = _check_scores(y_true, prob)
    pred = (p >= threshold).astype(int)
    prec, rec, f1, _ = precision_recall_fscore_support(y, pred, labels=[1], zero_division=0)
    return {"accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
            "precision": float(prec[0]), "recall": float(rec[0]), "f1": float(f1[0]),
            "pr_auc": average_precision(y, p), "ece": expected_calibration_error(y, p),
            "threshold": float(threshold)}


def tune_threshold(y_valid, prob_valid, grid: Sequence[float] | None = None) -> float:
    """The threshold in ``grid`` (default 0.01..0.99) with the best positive-class F1 on the validation
    split (the lowest such threshold on a tie)."""
    y, p = _check_scores(y_valid, prob_valid)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2) if grid is None else np.asarray(grid, dtype=float)
    pred = p[None, :] >= grid[:, None]                                         # (G, N)
    tp = (pred & (y == 1)).sum(1)
    f1 = 2 * tp / np.maximum(pred.sum(1) + y.sum(), 1)                         # F1 = 2TP / (2TP + FP + FN)
    return float(grid[int(np.argmax(f1))])


# ----------------------------------------------------------------------------- a linear classifier

@dataclass
class LinearConfig:
    """A logistic-regression head trained full-batch with Adam (names as in torch.optim)."""
    lr: float = 0.05
    epochs: int = 200
    weight_decay: float = 1e-4
    gamma: float = 2.0          # focal loss's focusing parameter (method "focal")
    seed: int = 0


def train_linear(X: np.ndarray, y, config: LinearConfig | None = None, loss: str = "ce",
                 class_weight: np.ndarray | None = None) -> torch.nn.Linear:
    """Fit ``Linear(D, K)`` on features ``X`` (N, D) with cross-entropy (``loss="ce"``, optional
    ``class_weight``) or focal loss (``loss="focal"``, ``alpha=class_weight``)."""
    cfg = config or LinearConfig()
    y = _check_labels(y)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (N, D) with N = len(y) = {len(y)}, got {X.shape}")
    if loss not in ("ce", "focal"):
        raise ValueError(f"loss must be 'ce' or 'focal', got {loss!r}")
    torch.manual_seed(cfg.seed)
    K = int(y.max()) + 1
    head = torch.nn.Linear(X.shape[1], max(K, 2))
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    w = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
    for _ in range(cfg.epochs):
        logits = head(xt)                                                      # (N, K)
        if loss == "focal":
            value = focal_loss(logits, yt, gamma=cfg.gamma, alpha=w)
        else:
            value = focal_loss(logits, yt, gamma=0.0, alpha=w)                 # (weighted) cross-entropy
        opt.zero_grad()
        value.backward()
        opt.step()
    return head.eval()


@torch.no_grad()
def predict_proba(head: torch.nn.Linear, X: np.ndarray) -> np.ndarray:
    """P(class 1) for each row of ``X``, (N,) float64."""
    return torch.softmax(head(torch.as_tensor(np.asarray(X, dtype=np.float32))), -1)[:, 1].double().numpy()


def run_method(method: str, X_train, y_train, X_valid, y_valid, X_test, y_test,
               config: LinearConfig | None = None) -> dict:
    """Train with one of ``METHODS`` and return test metrics plus the test probabilities.

    ``threshold`` trains like ``plain`` and then picks the threshold on the validation split; every
    other method uses 0.5.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    cfg = config or LinearConfig()
    y_train = _check_labels(y_train)
    idx = np.arange(len(y_train))
    if method == "oversample":
        idx = random_oversample(y_train, cfg.seed)
    elif method == "undersample":
        idx = random_undersample(y_train, cfg.seed)
    weights = balanced_class_weights(y_train, 2) if method in ("class_weight", "focal") else None
    head = train_linear(np.asarray(X_train)[idx], y_train[idx], cfg, "focal" if method == "focal" else "ce", weights)
    threshold = tune_threshold(y_valid, predict_proba(head, X_valid)) if method == "threshold" else 0.5
    prob = predict_proba(head, X_test)
    out = binary_metrics(y_test, prob, threshold)
    out.update(method=method, train_size=int(len(idx)), prob=prob)
    return out


# ----------------------------------------------------------------------------- the data

def spam_splits(spam_fraction: float | None = None, seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> dict:
    """SMS spam as stratified train/valid/test splits of texts and 0/1 labels (1 = spam).

    ``spam_fraction`` (e.g. 0.02) first drops spam messages at random until spam is that fraction
    of the whole collection (the harder imbalance); None keeps all (about 13% spam).
    """
    from .. import data
    from ..finetuning.data import _split_indices
    df = data.load_sms_spam()
    df = df[df["text"].astype(str).str.strip() != ""].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    if spam_fraction is not None:
        if not 0 < spam_fraction < df["spam"].mean():
            raise ValueError(f"spam_fraction must be in (0, {df['spam'].mean():.3f}) (below the natural rate), "
                             f"got {spam_fraction}")
        ham = np.flatnonzero(df["spam"].to_numpy() == 0)
        n_spam = int(round(spam_fraction * len(ham) / (1 - spam_fraction)))  # n / (n + ham) = fraction
        spam = rng.choice(np.flatnonzero(df["spam"].to_numpy() == 1), size=n_spam, replace=False)
        df = df.iloc[np.sort(np.r_[ham, spam])].reset_index(drop=True)
    y = df["spam"].to_numpy().astype(int)
    parts = _split_indices(y, fractions, seed)
    names = ("train", "valid", "test")
    return {name: (df["text"].iloc[p].astype(str).tolist(), y[p]) for name, p in zip(names, parts)}
