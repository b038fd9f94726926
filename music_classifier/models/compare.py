"""Nested cross-validation: outer StratifiedKFold (or StratifiedGroupKFold when grouped) — repeated and
sized to the smallest genre on small data (:mod:`.cv`) — an inner GridSearchCV per outer training
part; mean ± SD and a 95% interval of the outer-fold accuracies per model.

One model never takes the others down: grids are adapted to each fold (:mod:`.adapt`), and a model
that still cannot be fitted is reported as skipped with a one-line reason.

A winner is named only where the best mean leads the runner-up by more than 2 SD, taking the larger
of the two models' SDs (sample SD over the outer folds) — otherwise the difference is fold noise.
A one-candidate grid has nothing to choose, so it is fitted directly (plain CV, no inner search).
Segment datasets are scored per track (soft voting) on the outer folds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.models.adapt import ModelCannotFit, adapt_grid
from music_classifier.models.grids import MODEL_KINDS, Grid, check_grid_params, n_candidates, resolve_grid
from music_classifier.models.load_data import DatasetFrame, load_dataset
from music_classifier.models.parallel import FitCounter, delayed, run_parallel, thread_limit
from music_classifier.models.pipelines import classifier_param_names, make_pipeline
from music_classifier.models.splits import GROUP_BY, cv_splitter
from music_classifier.models.train import (
    OnDrift,
    Progress,
    build_search,
    estimation_splits,
    fit_error,
    fit_groups,
    score_tracks,
)

WINNER_SDS = 2.0


@dataclass
class ModelScores:
    kind: str
    fold_accuracy: list[float]
    fold_macro_f1: list[float]
    fold_best_params: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None  # why this model could not be fitted on this data
    adaptations: list[str] = field(default_factory=list)
    n_splits: int = 0
    n_repeats: int = 1
    n_tracks: int = 0  # tracks the outer folds test (for the binomial lower bound)
    fold_sizes: list[int] = field(default_factory=list)  # test tracks of each outer fold

    @property
    def summary(self) -> Any:
        """mean, SD, 95% interval and lower bound (:class:`.cv.CvSummary`), or None for a skipped model."""
        from music_classifier.models.cv import summarize

        if self.skipped or not self.fold_accuracy:
            return None
        sizes = self.fold_sizes if len(self.fold_sizes) == len(self.fold_accuracy) else None
        return summarize(self.fold_accuracy, n_splits=self.n_splits or len(self.fold_accuracy),
                         n_repeats=self.n_repeats, n=self.n_tracks or None, fold_sizes=sizes)

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracy))

    @property
    def sd(self) -> float:
        return float(np.std(self.fold_accuracy, ddof=1)) if len(self.fold_accuracy) > 1 else 0.0

    @property
    def macro_f1_mean(self) -> float:
        return float(np.mean(self.fold_macro_f1))


@dataclass
class CompareResult:
    dataset: str
    group_by: str
    outer_cv: int
    inner_cv: int
    seed: int
    n_tracks: int
    n_rows: int
    splitter: str
    scores: list[ModelScores]
    winner: str | None
    reason: str
    fold_test_track_ids: list[list[int]] = field(default_factory=list)  # the outer folds, for audit
    n_repeats: int = 1
    protocol: str = ""

    @property
    def skipped(self) -> dict[str, str]:
        return {s.kind: s.skipped for s in self.scores if s.skipped}


def pick_winner(scores: list[ModelScores]) -> tuple[str | None, str]:
    scores = [s for s in scores if not s.skipped]
    if len(scores) < 2:
        return None, "one model: nothing to compare"
    ranked = sorted(scores, key=lambda s: -s.mean)
    best, second = ranked[0], ranked[1]
    lead, margin = best.mean - second.mean, WINNER_SDS * max(best.sd, second.sd)
    if lead > margin:
        return best.kind, f"{best.kind} leads {second.kind} by {lead:.3f} > {WINNER_SDS:g} SD ({margin:.3f})"
    return None, f"no winner: {best.kind} leads {second.kind} by {lead:.3f} <= {WINNER_SDS:g} SD ({margin:.3f})"


def compare_models(conn: Connection, dataset: str, *, kinds: list[str] | None = None,
                   grid: str | Path | None = None, cv: int = 5, inner_cv: int = 3, group_by: str | None = None,
                   seed: int = 0, class_weight: str | None = None, n_jobs: int = 1, repeats: int = 5,
                   progress: Progress | None = None, on_drift: OnDrift | None = None) -> CompareResult:
    from music_classifier.models.datasets import dataset_drift

    kinds = list(kinds or MODEL_KINDS)
    bad = [k for k in kinds if k not in MODEL_KINDS]
    if bad or not kinds:
        raise InputError(f"--models {','.join(kinds)!r}: choose from {', '.join(MODEL_KINDS)}")
    if group_by not in (None, *GROUP_BY):
        raise InputError(f"--group-by {group_by!r}: choose {', '.join(GROUP_BY)}")
    if inner_cv < 2:
        raise InputError(f"--inner-cv {inner_cv}: need at least 2 folds")
    if cv < 2:
        raise InputError(f"--cv {cv}: need at least 2 folds")
    grids = {k: resolve_grid(grid, k) for k in kinds}
    for k, g in grids.items():
        check_grid_params(g, classifier_param_names(k), f"grid for {k}")
        make_pipeline(k, seed=seed, class_weight=class_weight)  # validates class weight for every model first
    frame = load_dataset(conn, dataset, group_by=group_by)
    if on_drift is not None:  # before any fit
        on_drift(dataset_drift(conn, dataset, live_counts=frame.live_counts()))
    folds, protocol, n_splits, n_repeats = estimation_splits(frame.y, frame.groups, cv=cv, repeats=repeats,
                                                             seed=seed)

    fits_per_fold = {k: 1 if n_candidates(g) == 1 else n_candidates(g) * inner_cv + 1 for k, g in grids.items()}
    total = len(folds) * sum(fits_per_fold.values())
    done = [0]

    def on_fit() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    # One task per (outer fold, model), spread over the worker processes; each task's inner search runs
    # on one core, so the processes never oversubscribe the machine. A task that cannot fit returns its
    # reason instead of raising: that model is skipped, the others are reported.
    tasks = [(fold, kind) for fold in range(len(folds)) for kind in kinds]
    with FitCounter(on_fit, n_jobs) as counter, thread_limit(n_jobs):
        fit_fold = delayed(_fit_outer_fold)
        results = run_parallel(n_jobs, (
            fit_fold(frame, folds[fold][0], folds[fold][1], kind, grids[kind], dataset=dataset, inner_cv=inner_cv,
                     seed=seed, class_weight=class_weight, on_fit=counter.tick)
            for fold, kind in tasks))
    n_tracks = int(len(np.unique(frame.track_ids)))
    sizes = [len(np.unique(frame.track_ids[test])) for _, test in folds]
    scores = {k: ModelScores(k, [], [], n_splits=n_splits, n_repeats=n_repeats, n_tracks=n_tracks,
                             fold_sizes=list(sizes)) for k in kinds}
    for (_, kind), outcome in zip(tasks, results, strict=True):
        result = scores[kind]
        if result.skipped:
            continue
        if "error" in outcome:
            result.skipped = outcome["error"]
            result.fold_accuracy, result.fold_macro_f1, result.fold_best_params = [], [], []
            continue
        result.adaptations = sorted(set(result.adaptations) | set(outcome["notes"]))
        result.fold_accuracy.append(outcome["metrics"]["accuracy"])
        result.fold_macro_f1.append(outcome["metrics"]["macro_f1"])
        result.fold_best_params.append({str(k): v for k, v in outcome["best"].items()})
    ordered = list(scores.values())
    winner, reason = pick_winner(ordered)
    return CompareResult(dataset=dataset, group_by=group_by or "track", outer_cv=n_splits, inner_cv=inner_cv,
                         seed=seed, n_tracks=int(len(np.unique(frame.track_ids))), n_rows=int(len(frame.y)),
                         splitter=re.sub(r"^\d+x", "", protocol.split("(")[0]), scores=ordered, winner=winner,
                         reason=reason, n_repeats=n_repeats, protocol=protocol,
                         fold_test_track_ids=[sorted({int(t) for t in frame.track_ids[test]}) for _, test in folds])


def _fit_outer_fold(frame: DatasetFrame, train_rows: np.ndarray, test_rows: np.ndarray, kind: str, grid: Grid, *,
                    dataset: str, inner_cv: int, seed: int, class_weight: str | None,
                    on_fit: Callable[[], None]) -> dict[str, Any]:
    """Fit ``kind`` on one outer training part and score it on the outer test part.

    Returns {"metrics", "best", "notes"}, or {"error": one-line reason} when the model cannot be fitted.
    """
    try:
        model, best, notes = _fit_fold(kind, grid, frame, train_rows, inner_cv=inner_cv, seed=seed,
                                       class_weight=class_weight, on_fit=on_fit)
        metrics, _ = score_tracks(model, frame, test_rows)
    except Exception as exc:  # noqa: BLE001 - one model's failure is reported; the others go on
        return {"error": str(fit_error(kind, dataset, exc))}
    return {"metrics": metrics, "best": best, "notes": notes}


def _fit_fold(kind: str, grid: Grid, frame: DatasetFrame, train_rows: np.ndarray, *, inner_cv: int, seed: int,
              class_weight: str | None, on_fit: Callable[[], None]) -> tuple[Any, dict[str, Any], list[str]]:
    """(fitted model, chosen params, adaptation notes) for one outer training part (inner search on one core)."""
    from music_classifier.models.cv import smallest_genre

    X, y, groups = frame.X[train_rows], frame.y[train_rows], frame.groups[train_rows]
    if n_candidates(grid) == 1:
        grid, notes = adapt_grid(kind, grid, [y])
        best = {k: v[0] for k, v in grid[0].items()}
        model = make_pipeline(kind, seed=seed, class_weight=class_weight, n_rows=len(y))
        model.set_params(**{f"clf__{k}": v for k, v in best.items()})
        model.fit(X, y)
        on_fit()
        return model, best, notes
    genre, fewest = smallest_genre(y, groups)
    folds = min(inner_cv, fewest)
    if folds < 2:
        raise ModelCannotFit(f"{kind}: genre {genre!r} has {fewest} track(s) in an outer training part; "
                             "the inner grid search needs 2")
    inner = cv_splitter(groups, folds, seed)
    splits = list(inner.split(X, y, fit_groups(inner, groups)))
    grid, notes = adapt_grid(kind, grid, [y[a] for a, _ in splits] + [y])
    if folds < inner_cv:
        notes = [*notes, f"inner grid search uses {folds} folds (genre {genre!r} has {fewest} tracks in a part)"]
    search = build_search(kind, grid, seed=seed, class_weight=class_weight, splitter=splits, on_fit=on_fit, n_jobs=1,
                          n_rows=len(y))
    search.fit(X, y)
    on_fit()
    return search.best_estimator_, search.best_params_, notes
