"""Repeated cross-validation for class-sized data, and the summary every small-data figure is given as.

One split of a small set is noise: with 7 tracks a genre, a held-out quarter holds one or two tracks
of each, and held-out accuracy swings by ±0.1 between seeds. When the smallest genre has fewer than
:data:`SMALL_DATA_GROUPS` groups (tracks, or artists/playlists when grouped), training and
comparison estimate accuracy by repeated stratified K-fold instead, and report mean ± SD with a 95%
interval (:class:`CvSummary`) and a 95% lower bound that never overclaims: the smaller of the
corrected t bound and the Wilson bound on the pooled out-of-fold predictions of the n tracks (when
every fold scores the same, the folds' spread cannot be estimated and the t interval would have zero
width, so the Wilson interval is reported instead).

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
    ``sd / sqrt(k r)`` is too small; the variance is inflated by ``n_test / n_train``. When the
    folds' spread cannot be estimated (every fold scores the same, or a single fold), that interval
    has zero width; ``low``/``high`` is then the Wilson interval of the pooled out-of-fold accuracy
    on ``n`` tracks (``method`` says which). ``lower_bound`` is always the smaller of the two lower
    bounds (t and Wilson), the figure to quote with ``n``.
    """

    mean: float
    sd: float
    low: float
    high: float
    n_folds: int
    n_repeats: int
    scores: list[float] = field(default_factory=list)
    n: int = 0  # tracks the pooled out-of-fold predictions are on (0: unknown, no binomial bound)
    pooled: float = float("nan")  # out-of-fold accuracy pooled over every fold's predictions
    wilson_low: float = float("nan")
    wilson_high: float = float("nan")
    method: str = "corrected t"  # of low/high: "corrected t" or "Wilson"

    @property
    def lower_bound(self) -> float:
        """The smaller of the corrected t and the Wilson 95% lower bounds."""
        return self.low if np.isnan(self.wilson_low) else min(self.low, self.wilson_low)

    @property
    def lower_bound_method(self) -> str:
        return "Wilson" if not np.isnan(self.wilson_low) and self.wilson_low <= self.low else "corrected t"

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high, "n_folds": self.n_folds,
                "n_repeats": self.n_repeats, "scores": list(self.scores), "n": self.n,
                "pooled": None if np.isnan(self.pooled) else self.pooled,
                "wilson_low": None if np.isnan(self.wilson_low) else self.wilson_low,
                "wilson_high": None if np.isnan(self.wilson_high) else self.wilson_high, "method": self.method,
                "lower_bound": self.lower_bound, "lower_bound_method": self.lower_bound_method}

    def text(self) -> str:
        return estimate_text(self.as_dict())


def estimate_text(est: dict[str, Any]) -> str:
    """One line for a stored estimate (:meth:`CvSummary.as_dict`; rows stored before the lower bound
    lack it and are shown as they were)."""
    head = (f"{est['mean']:.3f} ± {est['sd']:.3f} (95% interval {est['low']:.3f}-{est['high']:.3f}"
            f"{', Wilson' if est.get('method') == 'Wilson' else ''}")
    if est.get("lower_bound") is None or not est.get("n"):
        return f"{head}; {est['n_repeats']}x{est['n_folds']}-fold CV)"
    return (f"{head}), 95% lower bound {est['lower_bound']:.3f} (n={est['n']}, {est['lower_bound_method']}; "
            f"{est['n_repeats']}x{est['n_folds']}-fold CV)")


def wilson_interval(p: float, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` trials (``p * n`` need not be whole:
    a pooled accuracy over repeats is an average of whole counts)."""
    from scipy import stats

    if n <= 0:
        raise InputError("a binomial interval needs at least one trial")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    denom = 1.0 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z / denom * float(np.sqrt(max(p * (1 - p), 0.0) / n + z**2 / (4 * n**2)))
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(scores: Sequence[float], *, n_splits: int, n_repeats: int,
              test_fraction: float | None = None, n: int | None = None,
              fold_sizes: Sequence[int] | None = None) -> CvSummary:
    """Mean, sample SD and the corrected 95% interval of fold ``scores`` (clipped to [0, 1]).

    ``n``: the number of tracks the folds' test parts cover (each repeat tests every track once);
    with it, the Wilson interval of the pooled out-of-fold accuracy (fold scores weighted by
    ``fold_sizes``, the test rows of each fold) is computed too, and replaces the t interval when the
    folds' spread cannot be estimated (see :class:`CvSummary`). The binomial is taken on ``n``, not on
    ``n * n_repeats``: repeats predict the same tracks again and add no independent trials.
    """
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
    low, high, method = max(0.0, mean - half), min(1.0, mean + half), "corrected t"
    pooled = w_low = w_high = float("nan")
    if n:
        weights = np.ones_like(values) if fold_sizes is None else np.asarray(list(fold_sizes), dtype=float)
        pooled = float(np.sum(values * weights) / np.sum(weights))
        w_low, w_high = wilson_interval(pooled, int(n))
        if values.size < 2 or np.ptp(values) == 0:  # no spread to estimate: the t interval has zero width
            low, high, method = w_low, w_high, "Wilson"
    return CvSummary(mean=mean, sd=sd, low=low, high=high, n_folds=int(n_splits), n_repeats=int(n_repeats),
                     scores=[float(v) for v in values], n=int(n or 0), pooled=pooled, wilson_low=w_low,
                     wilson_high=w_high, method=method)


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
