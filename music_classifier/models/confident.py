"""Confident learning: which given labels do out-of-fold probabilities dispute?

The method of Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels" (JAIR 2021), as the ``cleanlab`` package's ``find_label_issues(filter_by="confident_learning")``
applies it, written here over numpy (cleanlab would pull in a large dependency tree for ~30 lines):

1. per-class thresholds: ``t_j`` = the mean out-of-fold probability of class ``j`` over the examples
   labelled ``j`` (how sure the model is, on average, of a class it should recognise);
2. the confident joint ``C[i, j]`` counts examples labelled ``i`` whose probability of class ``j``
   reaches ``t_j``; an example above several thresholds counts once, for the class it is most
   probable in among them; below every threshold it is not counted;
3. label issues are the examples in an off-diagonal cell (labelled ``i``, confidently ``j != i``);
4. ranking by label quality, one score for every example whether step 3 flags it or not: the
   normalized margin, ``(p_given - max_{k != given} p_k + 1) / 2`` in [0, 1], lower = the audio
   disputes the label more (cleanlab's ``get_label_quality_scores(method="normalized_margin")``;
   compared with self-confidence and confidence-weighted entropy by Kuan & Mueller, "Model-agnostic
   label quality scoring to detect real-world label errors", ICML DataPerf workshop 2022). Unlike
   self-confidence alone it also weighs how strongly another genre claims the example. The flag does
   not move an example up or down: a flagged-first order put correctly labelled tracks at
   self-confidence 0.07-0.30 above mislabels at 0.017 that no genre's threshold claimed.

All arrays: ``labels`` int class indices, shape (n,); ``proba`` rows summing to 1, shape (n, k).
"""

from __future__ import annotations

import numpy as np

from music_classifier.errors import InputError


def _check(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or labels.shape != (proba.shape[0],):
        raise InputError(f"confident learning: labels of shape {labels.shape} do not match probabilities "
                         f"of shape {proba.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= proba.shape[1]):
        raise InputError("confident learning: a label index is outside the probability columns")
    if not np.isfinite(proba).all():
        raise InputError("confident learning: probabilities hold missing or infinite values")
    return labels, proba


def per_class_thresholds(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """``t_j``: mean probability of class j over examples labelled j, shape (k,). A class without
    examples gets threshold 1.0 + eps (nothing is confidently that class)."""
    labels, proba = _check(labels, proba)
    k = proba.shape[1]
    out = np.full(k, 1.0 + 1e-9)
    for j in range(k):
        mine = labels == j
        if mine.any():
            out[j] = proba[mine, j].mean()
    return out


def confident_classes(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per example, the class it confidently belongs to (-1 when no probability reaches its
    threshold), shape (n,)."""
    labels, proba = _check(labels, proba)
    thresholds = per_class_thresholds(labels, proba)
    above = proba >= thresholds[None, :]
    masked = np.where(above, proba, -np.inf)
    best = masked.argmax(axis=1)
    return np.where(above.any(axis=1), best, -1)


def confident_joint(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """``C[i, j]``: examples labelled i that are confidently j, shape (k, k)."""
    labels, proba = _check(labels, proba)
    conf = confident_classes(labels, proba)
    k = proba.shape[1]
    joint = np.zeros((k, k), dtype=np.int64)
    counted = conf >= 0
    np.add.at(joint, (labels[counted], conf[counted]), 1)
    return joint


def find_label_issues(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Boolean mask, shape (n,): the example sits off the diagonal of the confident joint."""
    labels, proba = _check(labels, proba)
    conf = confident_classes(labels, proba)
    return (conf >= 0) & (conf != labels)


def self_confidence(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Label quality: the probability of the given label, shape (n,)."""
    labels, proba = _check(labels, proba)
    return proba[np.arange(len(labels)), labels]


def normalized_margin(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Label quality: ``(p_given - largest other p + 1) / 2``, shape (n,), in [0, 1] (0.5 = the given
    label ties with another class; one class only: the self-confidence)."""
    labels, proba = _check(labels, proba)
    quality = self_confidence(labels, proba)
    if proba.shape[1] < 2:
        return quality
    others = proba.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return (quality - others.max(axis=1) + 1.0) / 2.0


def rank_label_issues(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Example indices, most disputed first: ascending :func:`normalized_margin` (so the dispute score
    ``1 - normalized margin`` never rises down the list), ties by the lower self-confidence, then by
    index. The confident-learning flag (:func:`find_label_issues`) is not a key."""
    labels, proba = _check(labels, proba)
    return np.lexsort((np.arange(len(labels)), self_confidence(labels, proba), normalized_margin(labels, proba)))
