"""Issue 16 item 6: `compare` on class-sized data. HistGradientBoosting's bins are sized to the rows a fit
gets (at most 255, its default), which gives the same trees with far smaller per-node histograms: every fit
of compare/train/the audit uses the sized bins, and the probabilities are those of the default 255 bins.
(Speed itself is measured in benchmarks/bench_compare_small.py, never here.)"""

from __future__ import annotations

import numpy as np
from models_helpers import fill_separable
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier

from music_classifier.models.compare import compare_models
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.load_data import load_dataset
from music_classifier.models.pipelines import HGB_MAX_BINS, hgb_max_bins, make_pipeline
from music_classifier.models.registry import load_model
from music_classifier.models.train import TrainOptions, train_model

GENRES6 = ["Rock", "Jazz", "Pop", "Metal", "Blues", "Disco"]


def _class_set(conn, name="cls"):
    fill_separable(conn, genres_=GENRES6, per_genre=5, prefix=name)
    create_dataset(conn, name, DatasetDefinition(features="gtzan_csv", top=6, min_per_genre=2))


def _spy_fits(monkeypatch) -> list[tuple[int, int]]:
    """(max_bins, rows) of every HistGradientBoostingClassifier fit in this process."""
    seen: list[tuple[int, int]] = []
    fit = HistGradientBoostingClassifier.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append((int(self.max_bins), int(len(X))))
        return fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    return seen


def test_compare_fits_hgb_with_bins_sized_to_the_outer_training_part(sqlite_engine, monkeypatch):
    with sqlite_engine.begin() as conn:
        _class_set(conn)
    seen = _spy_fits(monkeypatch)
    with sqlite_engine.connect() as conn:
        res = compare_models(conn, "cls", kinds=["hgb"], cv=5, repeats=1, seed=0, n_jobs=1)
    assert not res.skipped and len(res.scores[0].fold_accuracy) == 5
    # 2 candidates x 3 inner folds + the refit, per outer fold; on main every fit had 255 bins for <= 24 rows
    assert len(seen) == 5 * 7
    outer_train = 30 - 30 // 5
    assert all(bins == outer_train and rows <= bins for bins, rows in seen), sorted(set(seen))


def test_train_stores_an_hgb_with_sized_bins_and_the_default_bins_probabilities(sqlite_engine, tmp_path,
                                                                                 monkeypatch):
    with sqlite_engine.begin() as conn:
        _class_set(conn)
        result = train_model(conn, "cls", TrainOptions(kind="hgb", cv=3, repeats=1, test_size=0.3),
                             models_path=tmp_path / "models")
        pipeline, _ = load_model(conn, result.model_id, models_path=tmp_path / "models")
        frame = load_dataset(conn, "cls")
    clf = pipeline.named_steps["clf"]
    assert clf.max_bins == result.n_train_tracks < HGB_MAX_BINS
    # The same pipeline with the default 255 bins, fitted on the same training rows, gives the same trees.
    train_rows = np.flatnonzero(np.isin(frame.track_ids, [p["track_id"] for p in result.test_metrics["predictions"]],
                                        invert=True))
    default = clone(pipeline).set_params(clf__max_bins=HGB_MAX_BINS).fit(frame.X[train_rows], frame.y[train_rows])
    assert len(train_rows) == clf.max_bins
    np.testing.assert_array_equal(default.predict_proba(frame.X), pipeline.predict_proba(frame.X))


def test_sized_bins_keep_binning_and_probabilities_on_noisy_class_sized_data():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(6), 6)
    X = rng.normal(size=(36, 80)) + (np.arange(80) % 6 == y[:, None]) * 0.7
    X[rng.random(X.shape) < 0.05] = np.nan  # the imputer's medians repeat values: still <= rows distinct
    sized = make_pipeline("hgb", seed=0, n_rows=len(y)).set_params(clf__min_samples_leaf=3).fit(X, y)
    default = make_pipeline("hgb", seed=0).set_params(clf__min_samples_leaf=3).fit(X, y)
    assert sized.named_steps["clf"].max_bins == 36 and default.named_steps["clf"].max_bins == HGB_MAX_BINS
    for a, b in zip(sized.named_steps["clf"]._bin_mapper.bin_thresholds_,
                    default.named_steps["clf"]._bin_mapper.bin_thresholds_, strict=True):
        np.testing.assert_array_equal(a, b)
    Xt = rng.normal(size=(20, 80))
    np.testing.assert_array_equal(sized.predict_proba(Xt), default.predict_proba(Xt))
    assert hgb_max_bins(None) == hgb_max_bins(10_000) == HGB_MAX_BINS and hgb_max_bins(1) == 2
