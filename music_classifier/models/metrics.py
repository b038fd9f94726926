"""The one function that computes classification metrics. Everything that reports a figure calls it.

The seed's notebooks called ``classification_report(y_pred, y_true)``: with the arguments swapped,
precision and recall are exchanged. Here the arguments are keyword-only so that cannot happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def classification_metrics(*, y_true: Sequence[Any], y_pred: Sequence[Any],
                           labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-genre precision/recall/F1/support, confusion matrix.

    ``labels`` fixes the genre order (default: sorted union of true and predicted labels). The
    confusion matrix has one row per TRUE genre and one column per PREDICTED genre, in ``labels`` order.
    Macro F1 averages over ``labels``. All values are plain Python numbers (JSON-ready).
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray([str(v) for v in y_true])
    y_pred = np.asarray([str(v) for v in y_pred])
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("no labels to score")
    order = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=order, zero_division=0)
    # Balanced accuracy = mean recall over the genres present in y_true (sklearn's definition).
    present = [i for i, s in enumerate(support) if s > 0]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean(recall[present])) if present else 0.0,
        "macro_f1": float(np.mean(f1)) if len(order) else 0.0,
        "per_genre": {
            g: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for g, p, r, f, s in zip(order, precision, recall, f1, support, strict=True)
        },
        "confusion": {
            "labels": order,
            "matrix": confusion_matrix(y_true, y_pred, labels=order).astype(int).tolist(),
        },
    }
