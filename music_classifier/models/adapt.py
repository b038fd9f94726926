"""Fit a model to the data it gets: grids are data, so values a fold cannot support are filtered here.

Two models have limits that class-sized data reaches:

* ``svm`` is an SVC inside CalibratedClassifierCV, whose internal stratified K-fold (5 by default)
  needs every genre at least K times in each training part. The calibration CV is lowered to the
  smallest genre's count in the smallest training part (at least 2; below that the model is skipped).
* ``knn`` needs ``n_neighbors <= n_samples`` in every training part: larger grid values are dropped;
  if none remains, k becomes the smallest training part's size.
* ``hgb``'s default ``min_samples_leaf=20`` leaves no split at all when a genre has a handful of
  tracks (it then predicts one genre for everything): unless the grid sets it, a leaf is allowed to be
  as small as the smallest genre in a training part.

:func:`adapt_grid` returns the adapted grid and one note per change (stored with the model and
printed), or raises :class:`ModelCannotFit` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from music_classifier.errors import InputError
from music_classifier.models.grids import Grid

CALIBRATION_CV = 5  # CalibratedClassifierCV's default
HGB_MIN_LEAF = 20  # HistGradientBoostingClassifier's default min_samples_leaf


class ModelCannotFit(InputError):
    """This model cannot be fitted on this data (the reason is the message)."""


def _min_genre_rows(train_labels: Sequence[np.ndarray]) -> int:
    return min(int(np.unique(np.asarray(y), return_counts=True)[1].min()) for y in train_labels)


def adapt_grid(kind: str, grid: Grid, train_labels: Sequence[np.ndarray]) -> tuple[Grid, list[str]]:
    """``grid`` adapted to the training parts whose genre labels are ``train_labels`` (every fit's)."""
    if not train_labels:
        return grid, []
    if kind == "svm":
        return _adapt_svm(grid, _min_genre_rows(train_labels))
    if kind == "knn":
        return _adapt_knn(grid, min(len(y) for y in train_labels))
    if kind == "hgb":
        return _adapt_hgb(grid, _min_genre_rows(train_labels))
    return grid, []


def _adapt_hgb(grid: Grid, smallest: int) -> tuple[Grid, list[str]]:
    if smallest >= HGB_MIN_LEAF or all("min_samples_leaf" in e for e in grid):
        return grid, []
    leaf = max(1, smallest)
    out = [e if "min_samples_leaf" in e else {**e, "min_samples_leaf": [leaf]} for e in grid]
    return out, [f"hgb: min_samples_leaf {leaf} instead of {HGB_MIN_LEAF} (the smallest genre has {smallest} rows "
                 "in a training part)"]


def _adapt_svm(grid: Grid, smallest: int) -> tuple[Grid, list[str]]:
    if smallest < 2:
        raise ModelCannotFit(f"svm: a genre has only {smallest} training row in a fold; "
                             "its probability calibration needs at least 2")
    limit = min(CALIBRATION_CV, smallest)
    out: Grid = []
    notes: list[str] = []
    for entry in grid:
        entry = dict(entry)
        if "cv" not in entry and limit >= CALIBRATION_CV:
            out.append(entry)
            continue
        asked = [v for v in entry.get("cv", [CALIBRATION_CV]) if isinstance(v, int)]
        kept = [v for v in asked if 2 <= v <= limit]
        if len(kept) < len(asked) or "cv" not in entry:
            entry["cv"] = kept or [limit]
            if limit < CALIBRATION_CV or len(kept) < len(asked):
                notes.append(f"svm: probability calibration uses {entry['cv'][-1]}-fold CV (the smallest genre "
                             f"has {smallest} rows in a training part)")
        out.append(entry)
    return out, sorted(set(notes))


def _adapt_knn(grid: Grid, smallest_part: int) -> tuple[Grid, list[str]]:
    out: Grid = []
    notes: list[str] = []
    for entry in grid:
        entry = dict(entry)
        asked: list[Any] = list(entry.get("n_neighbors", [5]))  # KNeighborsClassifier's default k is 5
        kept = [k for k in asked if isinstance(k, int) and k <= smallest_part]
        if len(kept) < len(asked):
            dropped = [k for k in asked if k not in kept]
            entry["n_neighbors"] = kept or [smallest_part]
            notes.append(f"knn: n_neighbors {', '.join(map(str, dropped))} exceed the smallest training part "
                         f"({smallest_part} rows); using {', '.join(map(str, entry['n_neighbors']))}")
        out.append(entry)
    return out, notes
