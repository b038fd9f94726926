"""Pipeline factories: imputation and scaling live INSIDE the Pipeline, so cross-validation fits them
on training folds only, and a stored model carries its own preprocessing. random_state is always set.
"""

from __future__ import annotations

from typing import Any

from music_classifier.errors import InputError
from music_classifier.models.grids import MODEL_KINDS

CLASS_WEIGHTS = (None, "balanced")


def make_classifier(kind: str, *, seed: int, class_weight: str | None = None) -> Any:
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
        return HistGradientBoostingClassifier(random_state=seed, class_weight=class_weight)
    if kind == "knn":
        if class_weight:
            raise InputError("--class-weight: k-nearest neighbours has no class weights")
        return KNeighborsClassifier()
    raise InputError(f"--model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")


def make_pipeline(kind: str, *, seed: int, class_weight: str | None = None) -> Any:
    """median imputation -> standard scaling -> classifier (step names: impute, scale, clf)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        # keep_empty_features: a column that is all-missing in a fold must not shift the others.
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("clf", make_classifier(kind, seed=seed, class_weight=class_weight)),
    ])


def classifier_param_names(kind: str) -> set[str]:
    return set(make_classifier(kind, seed=0).get_params(deep=True))
