"""Repeated cross-validation for class-sized data, and the summary every small-data figure is given as.

One split of a small set is noise: with 7 tracks a genre, a held-out quarter holds one or two tracks
of each, and held-out accuracy swings by ±0.1 between seeds. When the smallest genre has fewer than
:data:`SMALL_DATA_GROUPS` groups (tracks, or artists/playlists when grouped), training and
comparison estimate accuracy by repeated stratified K-fold instead, and report mean ± SD with a 95%
interval (:class:`CvSummary`).

This module is the public entry point for anything that needs the same folds as training: e.g. the
label audit (issue 12) takes its out-of-fold probabilities from the repeats of :func:`small_data_cv`
(each repeat is a partition of the rows, so every row is predicted exactly once per repeat).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from music_classifier.errors import InputError

SMALL_DATA_GROUPS = 30  # below this many groups in the smallest genre, one split is too noisy to report alone
DEFAULT_SPLITS = 5
DEFAULT_REPEATS = 5
CONFIDENCE = 0.95


def smallest_genre(y: np.ndarray, groups: np.ndarray | None = None) -> tuple[str, int]:
    """(genre, number of distinct groups) of the genre with the fewest groups (ties: by name)."""
    y = np.asarray(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    counts = sorted((len(np.unique(groups[y == g])), str(g)) for g in np.unique(y))
    if not counts:
        raise InputError("no rows to split")
    n, genre = counts[0]
    return genre, int(n)


def is_small(y: np.ndarray, groups: np.ndarray | None = None, *, threshold: int = SMALL_DATA_GROUPS) -> bool:
    """True when the smallest genre has fewer than ``threshold`` groups: use repeated CV."""
    return smallest_genre(y, groups)[1] < threshold


def _all_unique(groups: np.ndarray) -> bool:
    return len(np.unique(groups)) == len(groups)


class RepeatedSplitter:
    """Repeated stratified K-fold (grouped when rows share groups), a scikit-learn CV splitter.

    ``split`` yields ``n_splits * n_repeats`` (train, test) index pairs, repeat by repeat; each repeat is
    a partition of the rows. Repeat ``r`` shuffles with a seed drawn from ``random_state``, so the
    folds are reproducible. Usable as ``cv=`` of GridSearchCV (it accepts ``groups``).
    """

    def __init__(self, n_splits: int, n_repeats: int, *, random_state: int, grouped: bool) -> None:
        if n_splits < 2:
            raise InputError(f"repeated CV needs at least 2 folds, got {n_splits}")
        if n_repeats < 1:
            raise InputError(f"--repeats {n_repeats}: must be at least 1")
        self.n_splits = int(n_splits)
        self.n_repeats = int(n_repeats)
        self.random_state = int(random_state)
        self.grouped = bool(grouped)

    def __repr__(self) -> str:
        kind = "StratifiedGroupKFold" if self.grouped else "StratifiedKFold"
        return f"{self.n_repeats}x{kind}({self.n_splits}, shuffle, random_state={self.random_state})"

    def _seeds(self) -> list[int]:
        rng = np.random.RandomState(self.random_state)
        return [int(s) for s in rng.randint(0, 2**31 - 1, size=self.n_repeats)]

    def repeats(self, X: Any, y: Any, groups: Any = None) -> Iterator[list[tuple[np.ndarray, np.ndarray]]]:
        """One list of ``n_splits`` (train, test) pairs per repeat (a partition of the rows)."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        for seed in self._seeds():
            if self.grouped:
                if groups is None:
                    raise InputError("grouped repeated CV needs groups")
                kfold = StratifiedGroupKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
                yield list(kfold.split(X, y, groups))
            else:
                kfold = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
                yield list(kfold.split(X, y))

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for folds in self.repeats(X, y, groups):
            yield from folds

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits * self.n_repeats


@dataclass(frozen=True)
class CvSummary:
    """Accuracy (or any score) over the folds of a repeated CV.

    ``low``/``high`` is a 95% interval for the expected score using the corrected resampled t
    (Nadeau & Bengio 2003): the folds share training rows, so the plain standard error
    ``sd / sqrt(k r)`` is too small; the variance is inflated by ``n_test / n_train``.
    """

    mean: float
    sd: float
    low: float
    high: float
    n_folds: int
    n_repeats: int
    scores: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high, "n_folds": self.n_folds,
                "n_repeats": self.n_repeats, "scores": list(self.scores)}

    def text(self) -> str:
        return (f"{self.mean:.3f} ± {self.sd:.3f} (95% interval {self.low:.3f}-{self.high:.3f}; "
                f"{self.n_repeats}x{self.n_folds}-fold CV)")


def summarize(scores: Sequence[float], *, n_splits: int, n_repeats: int,
              test_fraction: float | None = None) -> CvSummary:
    """Mean, sample SD and the corrected 95% interval of fold ``scores`` (clipped to [0, 1])."""
    from scipy import stats

    values = np.asarray(list(scores), dtype=float)
    if values.size == 0:
        raise InputError("no fold scores to summarise")
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    frac = test_fraction if test_fraction is not None else 1.0 / n_splits
    ratio = frac / max(1.0 - frac, 1e-12)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=max(values.size - 1, 1))
                 * np.sqrt((1.0 / values.size + ratio) * sd**2))
    return CvSummary(mean=mean, sd=sd, low=max(0.0, mean - half), high=min(1.0, mean + half),
                     n_folds=int(n_splits), n_repeats=int(n_repeats), scores=[float(v) for v in values])


def small_data_cv(y: np.ndarray, groups: np.ndarray | None = None, *, random_state: int,
                  n_splits: int = DEFAULT_SPLITS, n_repeats: int = DEFAULT_REPEATS) -> RepeatedSplitter:
    """The repeated stratified (grouped) K-fold splitter for ``y``: folds sized to the smallest genre.

    ``n_splits`` is lowered to the number of groups of the smallest genre (every test fold then holds
    each genre); grouped when some rows share a group (segments of a track, an artist). Raises
    InputError naming the genre when it has fewer than 2 groups.

    Summarise the per-fold scores with :func:`summarize` (mean, SD, 95% interval).
    """
    y = np.asarray(y)
    groups_arr = np.arange(len(y)) if groups is None else np.asarray(groups)
    genre, n = smallest_genre(y, groups_arr)
    if n < 2:
        raise InputError(f"genre {genre!r} has only {n} track(s)/group(s): cross-validation needs at least 2")
    return RepeatedSplitter(min(int(n_splits), n), n_repeats, random_state=random_state,
                            grouped=not _all_unique(groups_arr))
