"""Repeated CV for class-sized data: folds sized to the smallest genre, partitions per repeat, groups kept
whole, reproducible, and a summary whose interval is the corrected (wider) one."""

from __future__ import annotations

import numpy as np
import pytest

from music_classifier.errors import InputError
from music_classifier.models.cv import is_small, small_data_cv, smallest_genre, summarize


def _labels(sizes: dict[str, int]) -> np.ndarray:
    return np.array([g for g, n in sizes.items() for _ in range(n)], dtype=object)


def test_folds_sized_to_smallest_genre_and_each_repeat_a_partition():
    y = _labels({"rock": 8, "jazz": 3, "pop": 6})
    splitter = small_data_cv(y, random_state=0)
    assert splitter.n_splits == 3 and splitter.n_repeats == 5 and not splitter.grouped
    assert splitter.get_n_splits() == 15 and len(list(splitter.split(np.zeros(len(y)), y))) == 15
    for folds in splitter.repeats(np.zeros(len(y)), y):
        tests = np.concatenate([t for _, t in folds])
        assert sorted(tests.tolist()) == list(range(len(y)))  # every row tested exactly once per repeat
        for train, test in folds:
            assert set(y[test]) == {"rock", "jazz", "pop"} and not set(train) & set(test)
    first = [t.tolist() for _, t in small_data_cv(y, random_state=0).split(np.zeros(len(y)), y)]
    again = [t.tolist() for _, t in small_data_cv(y, random_state=0).split(np.zeros(len(y)), y)]
    other = [t.tolist() for _, t in small_data_cv(y, random_state=1).split(np.zeros(len(y)), y)]
    assert first == again and first != other
    assert first[:3] != first[3:6]  # repeats reshuffle


def test_grouped_rows_never_straddle_and_too_small_genre_is_named():
    y = _labels({"rock": 12, "jazz": 12})
    groups = np.repeat(np.arange(8), 3)  # 4 tracks a genre, 3 segments each
    splitter = small_data_cv(y, groups, random_state=0, n_repeats=2)
    assert splitter.grouped and splitter.n_splits == 4 and smallest_genre(y, groups) == ("jazz", 4)
    for train, test in splitter.split(np.zeros(len(y)), y, groups):
        assert set(groups[train]).isdisjoint(groups[test])
    with pytest.raises(InputError, match="'jazz' has only 1"):
        small_data_cv(_labels({"rock": 5, "jazz": 1}), random_state=0)
    assert is_small(_labels({"a": 29, "b": 40})) and not is_small(_labels({"a": 30, "b": 40}))


def test_summary_interval_is_corrected_and_usable_by_grid_search():
    s = summarize([0.6, 0.7, 0.8, 0.7, 0.7], n_splits=5, n_repeats=1)
    assert s.mean == pytest.approx(0.7) and s.sd == pytest.approx(np.std([0.6, 0.7, 0.8, 0.7, 0.7], ddof=1))
    naive = 2.776 * s.sd / np.sqrt(5)
    assert s.high - s.mean > naive and s.low < 0.7 < s.high  # wider than the plain standard error
    assert summarize([1.0] * 4, n_splits=2, n_repeats=2).high == 1.0
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(0)
    y = _labels({"a": 7, "b": 7, "c": 5})
    X = rng.normal(size=(len(y), 3)) + (y == "a")[:, None] * 3
    search = GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=small_data_cv(y, random_state=0)).fit(X, y)
    assert len([k for k in search.cv_results_ if k.startswith("split") and k.endswith("_test_score")]) == 25


def test_all_equal_folds_report_the_wilson_interval_and_a_lower_bound_below_one():
    """Issue 16.5: every fold at 1.0 gave '1.000 ± 0.000 (1.000-1.000)'; the t interval has zero width."""
    from scipy.stats import binomtest

    s = summarize([1.0] * 15, n_splits=3, n_repeats=5, n=27, fold_sizes=[9] * 15)
    wilson = binomtest(27, 27).proportion_ci(confidence_level=0.95, method="wilson")
    assert s.method == "Wilson" and s.low == pytest.approx(wilson.low) and s.high == pytest.approx(wilson.high)
    assert s.lower_bound < 1.0 and s.lower_bound == pytest.approx(wilson.low) and s.lower_bound_method == "Wilson"
    assert "95% lower bound 0.875 (n=27, Wilson" in s.text() and "1.000-1.000" not in s.text()
    # with a spread, the t interval stays and the lower bound is the smaller of the two
    spread = summarize([0.8, 0.9, 1.0, 0.9, 0.9], n_splits=5, n_repeats=1, n=20, fold_sizes=[4] * 5)
    pooled = binomtest(18, 20).proportion_ci(confidence_level=0.95, method="wilson")
    assert spread.method == "corrected t" and spread.pooled == pytest.approx(0.9)
    assert spread.wilson_low == pytest.approx(pooled.low)
    assert spread.lower_bound == pytest.approx(min(spread.low, pooled.low))
    # the pooled accuracy weights folds by their test size
    assert summarize([1.0, 0.5], n_splits=2, n_repeats=1, n=4, fold_sizes=[3, 1]).pooled == pytest.approx(0.875)
