r"""Classification metrics with scikit-learn: accuracy, macro-F1, the confusion matrix, and a plot.

For K classes with per-class precision :math:`P_k` and recall :math:`R_k`,

.. math::
    F_{1,k} = \frac{2 P_k R_k}{P_k + R_k}, \qquad \text{macro-}F_1 = \frac{1}{K}\sum_{k=1}^{K} F_{1,k},

so every class counts equally, however rare: on TREC-6 the 9 ``ABBR`` test questions weigh as much
as the 138 ``DESC`` ones, and a model that never predicts ``ABBR`` loses a sixth of its macro-F1
while losing under 2% accuracy. The confusion matrix :math:`C_{ij}` counts examples of true class i
predicted as j (rows: truth, columns: prediction).

(``evaluate.load("accuracy")`` from the Hugging Face ``evaluate`` package downloads the metric's
script from the Hub the first time, so it cannot run offline; scikit-learn computes the same numbers.)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["classification_metrics", "trainer_compute_metrics", "plot_confusion_matrix", "per_class_f1"]


def classification_metrics(y_true, y_pred, label_names: Sequence[str] | None = None) -> dict:
    """``{"accuracy", "macro_f1", "confusion_matrix" (K, K list), "labels"}`` of integer predictions."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    k = len(label_names) if label_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    labels = list(range(k))
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "labels": list(label_names) if label_names is not None else labels}


def per_class_f1(y_true, y_pred, num_labels: int) -> np.ndarray:
    """F1 of every class (K,), zero for a class never predicted nor present."""
    from sklearn.metrics import f1_score
    return f1_score(y_true, y_pred, labels=list(range(num_labels)), average=None, zero_division=0)


def trainer_compute_metrics(eval_pred) -> dict:
    """``compute_metrics`` for ``transformers.Trainer``: accuracy and macro-F1 from (logits, labels)."""
    logits, labels = eval_pred
    m = classification_metrics(np.asarray(labels), np.asarray(logits).argmax(-1))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def plot_confusion_matrix(cm, label_names: Sequence[str], ax=None, title: str = "", normalize: bool = False):
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    import matplotlib.pyplot as plt
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = shown.max() if shown.size else 1
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > 0.6 * top else "black")
    if title:
        ax.set_title(title)
    return ax
