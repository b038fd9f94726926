"""Training: grouped held-out split (or every track, for a final model), GridSearchCV over a grid kept
as data with (repeated, on small data) CV whose best candidate's fold scores are the headline
estimate, and a registry row whose every figure is read from the fitted objects (never pasted).

Segment datasets train on segment rows; a track is predicted by SOFT VOTING (mean of predict_proba
over its segments), and test metrics are computed per track.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.models.grids import (
    Grid,
    check_grid_params,
    n_candidates,
    pipeline_grid,
    resolve_grid,
)
from music_classifier.models.load_data import DatasetFrame, load_dataset
from music_classifier.models.metrics import classification_metrics
from music_classifier.models.parallel import FitCounter, fit_with_jobs, predict_with_jobs, thread_limit
from music_classifier.models.pipelines import classifier_param_names, make_pipeline
from music_classifier.models.same_audio import joined_note
from music_classifier.models.splits import GROUP_BY, check_enough, cv_splitter, holdout_split

Progress = Callable[[int, int], None]  # (fits done, fits in all)
OnDrift = Callable[[Any], None]  # called with the dataset's DatasetDrift once it is read, before any fit
PERMUTATION_MAX_ROWS = 2000  # permutation importance on at most this many held-out rows (cost)
PERMUTATION_REPEATS = 3


@dataclass
class TrainOptions:
    kind: str = "rf"
    grid: str | Path | None = None  # None/"default" or a JSON file
    cv: int = 5
    test_size: float = 0.25
    class_weight: str | None = None
    group_by: str | None = None  # track (default) | artist | playlist
    seed: int = 0
    n_jobs: int = 1  # worker processes for the grid search's fits (the CLI's --jobs; all cores by default)
    repeats: int = 5  # repeats of the K-fold estimate when the smallest genre is small (cv.SMALL_DATA_GROUPS)
    final: bool = False  # fit on every track (no held-out part) after the CV estimate


@dataclass
class TrainResult:
    model_id: int
    kind: str
    dataset: str
    best_params: dict[str, Any]
    cv_score: float
    test_metrics: dict[str, Any]
    n_train_tracks: int
    n_test_tracks: int
    file_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class CountingScorer:
    """Accuracy scorer that reports each scored fit: GridSearchCV calls it once per (candidate, fold)."""

    def __init__(self, on_fit: Callable[[], None] | None = None) -> None:
        self.on_fit = on_fit

    def __call__(self, estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
        score = float(np.mean(estimator.predict(X) == y))
        if self.on_fit is not None:
            self.on_fit()
        return score


_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_safe(value: Any) -> Any:
    """NumPy scalars/arrays and tuples -> plain JSON types (params read from a search object)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(type(v) in _PLAIN for v in value):  # the long lists (track ids, probabilities) need no walk
            return list(value)
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def track_probabilities(pipeline: Any, X: np.ndarray, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique track ids, mean predict_proba over each track's rows): soft voting; one row = itself."""
    proba = pipeline.predict_proba(X)
    uniq, inverse = np.unique(track_ids, return_inverse=True)
    sums = np.zeros((len(uniq), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    return uniq, sums / np.bincount(inverse)[:, None]


def track_labels(track_ids: np.ndarray, values: np.ndarray, uniq: np.ndarray) -> np.ndarray:
    """The value of each track in ``uniq`` (first row of the track)."""
    first = {}
    for t, v in zip(track_ids.tolist(), values.tolist(), strict=True):
        first.setdefault(t, v)
    return np.array([first[t] for t in uniq.tolist()], dtype=object)


def score_tracks(pipeline: Any, frame: DatasetFrame, rows: np.ndarray,
                 labels: list[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Track-level metrics and per-track predictions for ``rows`` of ``frame``."""
    classes = [str(c) for c in pipeline.classes_]
    uniq, proba = track_probabilities(pipeline, frame.X[rows], frame.track_ids[rows])
    pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
    true = track_labels(frame.track_ids[rows], frame.y[rows], uniq)
    metrics = classification_metrics(y_true=true, y_pred=pred, labels=labels or classes)
    artists = track_labels(frame.track_ids[rows], frame.artists[rows], uniq)
    titles = track_labels(frame.track_ids[rows], frame.titles[rows], uniq)
    predictions = [
        {"track_id": int(t), "artist": a, "title": ti, "true": tr, "pred": p,
         "confidence": float(pr.max()), "proba": [round(float(x), 6) for x in pr]}
        for t, a, ti, tr, p, pr in zip(uniq, artists, titles, true, pred, proba, strict=True)
    ]
    return metrics, predictions


def feature_importances(pipeline: Any, kind: str, frame: DatasetFrame, test_rows: np.ndarray,
                        seed: int) -> dict[str, Any] | None:
    """RF: impurity importances of the fitted forest; others: permutation importance on held-out rows."""
    if kind == "rf":
        values = pipeline.named_steps["clf"].feature_importances_
        return {"method": "impurity", "names": frame.feature_names, "values": [float(v) for v in values]}
    from sklearn.inspection import permutation_importance

    rows = test_rows
    if len(rows) > PERMUTATION_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, PERMUTATION_MAX_ROWS, replace=False))
    result = permutation_importance(pipeline, frame.X[rows], frame.y[rows], n_repeats=PERMUTATION_REPEATS,
                                    random_state=seed, scoring="accuracy")
    return {"method": "permutation", "names": frame.feature_names, "n_rows": int(len(rows)),
            "values": [float(v) for v in result.importances_mean]}


def fit_groups(splitter: Any, groups: np.ndarray) -> np.ndarray | None:
    """Groups for a grouped splitter; None for StratifiedKFold (which would warn that it ignores them)."""
    return None if type(splitter).__name__ == "StratifiedKFold" else groups


def build_search(kind: str, grid: Grid, *, seed: int, class_weight: str | None, splitter: Any,
                 on_fit: Callable[[], None] | None, n_jobs: int, refit: bool = True,
                 n_rows: int | None = None) -> Any:
    """GridSearchCV over ``grid``; ``n_rows``: the most rows any of its fits gets (sizes hgb's bins)."""
    from sklearn.model_selection import GridSearchCV

    check_grid_params(grid, classifier_param_names(kind), f"grid for {kind}")
    return GridSearchCV(make_pipeline(kind, seed=seed, class_weight=class_weight, n_rows=n_rows), pipeline_grid(grid),
                        cv=splitter, scoring=CountingScorer(on_fit), refit=refit, n_jobs=n_jobs, error_score="raise")


def _check_options(opts: TrainOptions) -> None:
    if opts.group_by not in (None, *GROUP_BY):
        raise InputError(f"--group-by {opts.group_by!r}: choose {', '.join(GROUP_BY)}")
    if opts.cv < 2:
        raise InputError(f"--cv {opts.cv}: need at least 2 folds")
    if opts.repeats < 1:
        raise InputError(f"--repeats {opts.repeats}: must be at least 1")


def estimation_splits(y: np.ndarray, groups: np.ndarray, *, cv: int, repeats: int,
                      seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, int, int]:
    """(splits, protocol, n_splits, n_repeats) for estimating accuracy on (y, groups).

    Small data (smallest genre under SMALL_DATA_GROUPS groups): repeated stratified (grouped) K-fold
    with folds sized to the smallest genre; otherwise the plain K-fold (every genre needs ``cv`` groups).
    """
    from music_classifier.models.cv import is_small, small_data_cv

    X = np.zeros(len(y))
    if is_small(y, groups) and repeats > 1:
        splitter = small_data_cv(y, groups, random_state=seed, n_splits=cv, n_repeats=repeats)
        return (list(splitter.split(X, y, groups if splitter.grouped else None)), repr(splitter),
                splitter.n_splits, splitter.n_repeats)
    check_enough(y, groups, cv, f"--cv {cv}")
    splitter = cv_splitter(groups, cv, seed)
    splits = list(splitter.split(X, y, fit_groups(splitter, groups)))
    return splits, f"{type(splitter).__name__}({cv}, shuffle, random_state={seed})", cv, 1


def fit_error(kind: str, dataset: str, exc: Exception) -> InputError:
    """A library's fit error as one line naming the model (never a traceback)."""
    from music_classifier.models.adapt import ModelCannotFit

    if isinstance(exc, InputError):
        return exc if isinstance(exc, ModelCannotFit) else ModelCannotFit(str(exc))
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelCannotFit(f"{kind} cannot be fitted on dataset {dataset!r}: {first}")


def train_model(conn: Connection, dataset: str, opts: TrainOptions, *, models_path: Path,
                progress: Progress | None = None, on_drift: OnDrift | None = None) -> TrainResult:
    """Train on ``dataset`` and register the model (row + skops file) in the caller's transaction.

    Held-out mode (default): a grouped, stratified held-out split; the grid is searched on the rest
    with (repeated, on small data) CV, whose best candidate's fold scores are the headline estimate;
    the held-out split is scored once and reported as such. ``final``: the same search on every
    track, and the refit on every track is the registered (final) model; there is no held-out part.
    """
    from sklearn.base import clone

    from music_classifier.models.adapt import adapt_grid
    from music_classifier.models.cv import summarize
    from music_classifier.models.datasets import dataset_drift, member_snapshot
    from music_classifier.models.registry import library_versions, store_model

    _check_options(opts)
    grid = resolve_grid(opts.grid, opts.kind)
    check_grid_params(grid, classifier_param_names(opts.kind), f"grid for {opts.kind}")
    make_pipeline(opts.kind, seed=opts.seed, class_weight=opts.class_weight)  # validates kind/class weight
    frame = load_dataset(conn, dataset, group_by=opts.group_by)
    if on_drift is not None:
        on_drift(dataset_drift(conn, dataset, live_counts=frame.live_counts()))
    if len(np.unique(frame.y)) < 2:
        raise InputError(f"dataset {dataset!r} has a single genre; nothing to classify")
    if opts.final:
        train_rows, test_rows = np.arange(len(frame.y)), np.arange(0)
    else:
        # Segment datasets are always split by track at least: artist/playlist groups contain whole tracks.
        train_rows, test_rows = holdout_split(frame.y, frame.groups, test_size=opts.test_size, seed=opts.seed)
    y_train, g_train = frame.y[train_rows], frame.groups[train_rows]
    splits, protocol, n_splits, n_repeats = estimation_splits(y_train, g_train, cv=opts.cv, repeats=opts.repeats,
                                                              seed=opts.seed)
    grid, adaptations = adapt_grid(opts.kind, grid, [y_train[a] for a, _ in splits] + [y_train])
    if frame.joined:
        adaptations = [*adaptations, joined_note(frame.joined)]

    total = n_candidates(grid) * len(splits) + 1
    done = [0]

    def on_fit() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    with FitCounter(on_fit, opts.n_jobs) as counter, thread_limit(opts.n_jobs):
        search = build_search(opts.kind, grid, seed=opts.seed, class_weight=opts.class_weight, splitter=splits,
                              on_fit=counter.tick, n_jobs=opts.n_jobs, refit=False, n_rows=len(y_train))
        try:
            search.fit(frame.X[train_rows], y_train)
            # The refit on the whole training part runs here rather than inside GridSearchCV, so that a forest
            # grows its trees on every core the search had (GridSearchCV's refit would use one).
            pipeline = fit_with_jobs(clone(search.estimator).set_params(**search.best_params_),
                                     frame.X[train_rows], y_train, opts.n_jobs)
        except (ValueError, IndexError) as exc:
            raise fit_error(opts.kind, dataset, exc) from None
    on_fit()  # the refit on the whole training part
    best = int(search.best_index_)
    estimate = summarize([float(search.cv_results_[f"split{i}_test_score"][best]) for i in range(len(splits))],
                         n_splits=n_splits, n_repeats=n_repeats, n=len(np.unique(frame.track_ids[train_rows])),
                         fold_sizes=[len(test) for _, test in splits])

    metrics: dict[str, Any] | None = None
    if len(test_rows):
        predict_with_jobs(pipeline, opts.n_jobs)  # the held-out rows are scored on every core too
        metrics, predictions = score_tracks(pipeline, frame, test_rows)
        predict_with_jobs(pipeline, 1)  # stored with one job, like the refit
        metrics["classes"] = [str(c) for c in pipeline.classes_]
        metrics["predictions"] = predictions
        metrics["level"] = "track (soft vote over segments)" if frame.is_segments else "track"
        metrics["split"] = "single held-out split"
    importances = feature_importances(pipeline, opts.kind, frame, test_rows if len(test_rows) else train_rows,
                                      opts.seed)
    if importances and not len(test_rows) and importances["method"] == "permutation":
        importances["method"] = "permutation (training rows: a final model has no held-out part)"

    cv_candidates = [
        {"params": json_safe(p), "mean": float(m), "std": float(s)}
        for p, m, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                           search.cv_results_["std_test_score"], strict=True)
    ]
    n_train_tracks = len(np.unique(frame.track_ids[train_rows]))
    n_test_tracks = len(np.unique(frame.track_ids[test_rows]))
    params = {**asdict(opts), "grid": grid, "grid_source": str(opts.grid or "default"),
              "group_by": opts.group_by or "track", "segments": frame.is_segments, "cv_scoring": "accuracy",
              "cv_level": "segment" if frame.is_segments else "track",
              "model_basis": "final" if opts.final else "held-out split",
              "cv_protocol": protocol, "classes": [str(c) for c in pipeline.classes_],
              "estimate": estimate.as_dict(), "adaptations": adaptations,
              "n_train_rows": int(len(train_rows)), "n_test_rows": int(len(test_rows)),
              "n_train_tracks": int(n_train_tracks), "n_test_tracks": int(n_test_tracks),
              "train_track_ids": sorted(int(t) for t in np.unique(frame.track_ids[train_rows])),
              "test_track_ids": sorted(int(t) for t in np.unique(frame.track_ids[test_rows])),
              "cv_candidates": cv_candidates}
    params["grid"] = json_safe(params["grid"])
    row = {
        "dataset_id": frame.dataset_id, "dataset_name": dataset,
        "dataset_snapshot": {"definition": frame.definition, "members": member_snapshot(conn, frame.dataset_id)},
        "kind": opts.kind, "params": json_safe(params),
        "best_params": json_safe(search.best_params_),
        "cv_score": float(search.best_score_),
        "test_metrics": json_safe(metrics) if metrics else None, "feature_names": list(frame.feature_names),
        "feature_importances": json_safe(importances), "versions": library_versions(),
    }
    model_id = store_model(conn, pipeline, row, models_path=models_path)
    return TrainResult(model_id=model_id, kind=opts.kind, dataset=dataset, best_params=row["best_params"],
                       cv_score=row["cv_score"], test_metrics=row["test_metrics"] or {},
                       n_train_tracks=n_train_tracks, n_test_tracks=n_test_tracks,
                       extra={"estimate": estimate, "protocol": protocol, "adaptations": adaptations,
                              "final": opts.final, "n_rows_fitted": int(len(train_rows))})
