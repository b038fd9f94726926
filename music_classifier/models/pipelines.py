"""Pipeline factories: imputation and scaling live INSIDE the Pipeline, so cross-validation fits them
on training folds only, and a stored model carries its own preprocessing. random_state is always set.
"""

from __future__ import annotations

from typing import Any

from music_classifier.errors import InputError
from music_classifier.models.grids import MODEL_KINDS

CLASS_WEIGHTS = (None, "balanced")

# The classes a fitted pipeline holds, as skops records them (``module.Class``). The model loader
# trusts exactly these, plus numpy arrays/dtypes and plain containers (models.registry); a new
# kind, classifier or wrapper adds its classes here, in this one place. tests/test_registry.py
# trains every kind and round-trips it through the loader, so a class missing here fails there.
PIPELINE_CLASSES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
)
FITTED_CLASSES: dict[str, tuple[str, ...]] = {
    "rf": ("sklearn.ensemble._forest.RandomForestClassifier", "sklearn.tree._classes.DecisionTreeClassifier",
           "sklearn.tree._tree.Tree"),
    "logreg": ("sklearn.linear_model._logistic.LogisticRegression",),
    "svm": ("sklearn.calibration.CalibratedClassifierCV", "sklearn.calibration._CalibratedClassifier",
            "sklearn.calibration._SigmoidCalibration", "sklearn.svm._classes.SVC"),
    "hgb": ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
            "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "sklearn.preprocessing._label.LabelEncoder",
            "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss._loss.CyHalfBinomialLoss",
            "sklearn._loss.link.LogitLink", "sklearn._loss.loss.HalfMultinomialLoss",
            "sklearn._loss._loss.CyHalfMultinomialLoss", "sklearn._loss.link.MultinomialLogit",
            "sklearn._loss.link.Interval", "numpy.random._generator.Generator", "numpy.random.PCG64"),
    # kd-tree by default; a --grid may pick a ball tree or another Minkowski metric
    "knn": ("sklearn.neighbors._classification.KNeighborsClassifier", "sklearn.neighbors._kd_tree.KDTree",
            "sklearn.neighbors._ball_tree.BallTree", "sklearn.metrics._dist_metrics.EuclideanDistance64",
            "sklearn.metrics._dist_metrics.ManhattanDistance64", "sklearn.metrics._dist_metrics.MinkowskiDistance64",
            "sklearn.metrics._dist_metrics.ChebyshevDistance64"),
}


def model_file_classes() -> frozenset[str]:
    """Every estimator/transformer class a model file of any kind may hold."""
    return frozenset(PIPELINE_CLASSES).union(*FITTED_CLASSES.values())


HGB_MAX_BINS = 255  # HistGradientBoostingClassifier's default, and the most it allows


def hgb_max_bins(n_rows: int | None) -> int:
    """``max_bins`` for a HistGradientBoosting fitted on ``n_rows`` rows: the same trees, far less work.

    A feature with at most ``max_bins`` distinct values is binned at the midpoints of its distinct
    values whatever ``max_bins`` is, and ``n_rows`` rows hold at most ``n_rows`` distinct values, so
    ``min(255, n_rows)`` bins give the bins, splits and probabilities of the default 255. But every
    tree node allocates and scans a histogram of n_features x (max_bins + 1): on a class-sized set
    (30 rows, 533 features, 6 genres x 100 iterations of small trees) that was most of ``compare``'s time.
    """
    if n_rows is None:
        return HGB_MAX_BINS
    return int(min(HGB_MAX_BINS, max(2, n_rows)))


def make_classifier(kind: str, *, seed: int, class_weight: str | None = None, n_rows: int | None = None) -> Any:
    """The classifier of ``kind``; ``n_rows``, the most rows it will be fitted on, only sizes hgb's bins
    (:func:`hgb_max_bins`, results unchanged)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if class_weight not in CLASS_WEIGHTS:
        raise InputError(f"--class-weight {class_weight!r}: only 'balanced' is supported")
    if kind == "rf":
        return RandomForestClassifier(n_estimators=300, random_state=seed, class_weight=class_weight, n_jobs=1)
    if kind == "logreg":
        return LogisticRegression(max_iter=3000, random_state=seed, class_weight=class_weight)
    if kind == "svm":
        # Soft voting and confidences need predict_proba; SVC(probability=True) is deprecated since
        # scikit-learn 1.9 in favour of this (grid parameters: estimator__C, estimator__gamma).
        from sklearn.calibration import CalibratedClassifierCV

        return CalibratedClassifierCV(SVC(random_state=seed, class_weight=class_weight), ensemble=False)
    if kind == "hgb":
        return HistGradientBoostingClassifier(random_state=seed, class_weight=class_weight,
                                              max_bins=hgb_max_bins(n_rows))
    if kind == "knn":
        if class_weight:
            raise InputError("--class-weight: k-nearest neighbours has no class weights")
        return KNeighborsClassifier()
    raise InputError(f"--model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")


def make_pipeline(kind: str, *, seed: int, class_weight: str | None = None, n_rows: int | None = None) -> Any:
    """median imputation -> standard scaling -> classifier (step names: impute, scale, clf); ``n_rows``:
    the most rows it will be fitted on (see :func:`make_classifier`)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        # keep_empty_features: a column that is all-missing in a fold must not shift the others.
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("clf", make_classifier(kind, seed=seed, class_weight=class_weight, n_rows=n_rows)),
    ])


def classifier_param_names(kind: str) -> set[str]:
    return set(make_classifier(kind, seed=0).get_params(deep=True))
