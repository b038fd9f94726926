"""Stratified, grouped splits. Rows of one group (a track's segments, an artist, a playlist) never
straddle training and test: random segment splits are why published 3 s GTZAN figures are inflated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from music_classifier.errors import InputError

GROUP_BY = ("track", "artist", "playlist")


def _all_unique(groups: np.ndarray) -> bool:
    return len(np.unique(groups)) == len(groups)


def cv_splitter(groups: np.ndarray, n_splits: int, seed: int) -> Any:
    """StratifiedKFold(shuffle, seed) when each row is its own group (the plain protocol), else
    StratifiedGroupKFold(shuffle, seed)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if n_splits < 2:
        raise InputError(f"--cv {n_splits}: need at least 2 folds")
    if _all_unique(groups):
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def check_enough(y: np.ndarray, groups: np.ndarray, n_splits: int, what: str) -> None:
    """Every genre needs at least ``n_splits`` groups, or a fold has no example of it."""
    for genre in np.unique(y):
        n = len(np.unique(groups[y == genre]))
        if n < n_splits:
            raise InputError(f"{what}: genre {genre!r} has only {n} group(s), fewer than the {n_splits} folds")


def holdout_split(y: np.ndarray, groups: np.ndarray, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx): stratified by genre, no group on both sides.

    With one row per group this is StratifiedShuffleSplit; otherwise one fold of
    StratifiedGroupKFold with round(1/test_size) folds (so the test share is approximate).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    if not 0.0 < test_size < 1.0:
        raise InputError(f"--test-size {test_size}: must be between 0 and 1")
    if _all_unique(groups):
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(splitter.split(np.zeros(len(y)), y))
    else:
        n_splits = max(2, round(1.0 / test_size))
        check_enough(y, groups, n_splits, f"--test-size {test_size}")
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train, test = next(splitter.split(np.zeros(len(y)), y, groups))
    return np.sort(train), np.sort(test)
