"""Nested cross-validation: outer StratifiedKFold (or StratifiedGroupKFold when grouped), an inner
GridSearchCV per outer training part; mean ± SD of the outer-fold accuracies per model.

A winner is named only where the best mean leads the runner-up by more than 2 SD, taking the larger
of the two models' SDs (sample SD over the outer folds) — otherwise the difference is fold noise.
A one-candidate grid has nothing to choose, so it is fitted directly (plain CV, no inner search).
Segment datasets are scored per track (soft voting) on the outer folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.models.grids import MODEL_KINDS, Grid, check_grid_params, n_candidates, resolve_grid
from music_classifier.models.load_data import DatasetFrame, load_dataset
from music_classifier.models.parallel import FitCounter, delayed, run_parallel, thread_limit
from music_classifier.models.pipelines import classifier_param_names, make_pipeline
from music_classifier.models.splits import GROUP_BY, check_enough, cv_splitter
from music_classifier.models.train import Progress, build_search, fit_groups, score_tracks

WINNER_SDS = 2.0


@dataclass
class ModelScores:
    kind: str
    fold_accuracy: list[float]
    fold_macro_f1: list[float]
    fold_best_params: list[dict[str, Any]] = field(default_factory=list)

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


def pick_winner(scores: list[ModelScores]) -> tuple[str | None, str]:
    if len(scores) < 2:
        return None, "one model: nothing to compare"
    ranked = sorted(scores, key=lambda s: -s.mean)
    best, second = ranked[0], ranked[1]
    lead, margin = best.mean - second.mean, WINNER_SDS * max(best.sd, second.sd)
    if lead > margin:
        return best.kind, f"{best.kind} leads {second.kind} by {lead:.3f} > {WINNER_SDS:g} SD ({margin:.3f})"
    return None, f"no winner: {best.kind} leads {second.kind} by {lead:.3f} <= {WINNER_SDS:g} SD ({margin:.3f})"


def _fit_outer_fold(frame: DatasetFrame, train_rows: np.ndarray, test_rows: np.ndarray, kind: str, g: Grid, *,
                    inner_cv: int, seed: int, class_weight: str | None,
                    on_fit: Callable[[], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``kind`` on one outer training part (inner grid search unless the grid has one candidate) and
    score it on the outer test part: (track-level metrics, chosen params)."""
    if n_candidates(g) == 1:
        best = {k: v[0] for k, v in g[0].items()}
        check_grid_params(g, classifier_param_names(kind), f"grid for {kind}")
        model = make_pipeline(kind, seed=seed, class_weight=class_weight)
        model.set_params(**{f"clf__{k}": v for k, v in best.items()})
        model.fit(frame.X[train_rows], frame.y[train_rows])
        on_fit()
    else:
        inner = cv_splitter(frame.groups[train_rows], inner_cv, seed)
        search = build_search(kind, g, seed=seed, class_weight=class_weight, splitter=inner, on_fit=on_fit, n_jobs=1)
        search.fit(frame.X[train_rows], frame.y[train_rows], groups=fit_groups(inner, frame.groups[train_rows]))
        on_fit()
        model, best = search.best_estimator_, search.best_params_
    metrics, _ = score_tracks(model, frame, test_rows)
    return metrics, best


def compare_models(conn: Connection, dataset: str, *, kinds: list[str] | None = None,
                   grid: str | Path | None = None, cv: int = 5, inner_cv: int = 3, group_by: str | None = None,
                   seed: int = 0, class_weight: str | None = None, n_jobs: int = 1,
                   progress: Progress | None = None) -> CompareResult:
    kinds = list(kinds or MODEL_KINDS)
    bad = [k for k in kinds if k not in MODEL_KINDS]
    if bad or not kinds:
        raise InputError(f"--models {','.join(kinds)!r}: choose from {', '.join(MODEL_KINDS)}")
    if group_by not in (None, *GROUP_BY):
        raise InputError(f"--group-by {group_by!r}: choose {', '.join(GROUP_BY)}")
    if inner_cv < 2:
        raise InputError(f"--inner-cv {inner_cv}: need at least 2 folds")
    grids = {k: resolve_grid(grid, k) for k in kinds}
    frame = load_dataset(conn, dataset, group_by=group_by)
    check_enough(frame.y, frame.groups, cv, f"--cv {cv}")
    outer = cv_splitter(frame.groups, cv, seed)
    folds = list(outer.split(frame.X, frame.y, fit_groups(outer, frame.groups)))

    fits_per_fold = {k: 1 if n_candidates(g) == 1 else n_candidates(g) * inner_cv + 1 for k, g in grids.items()}
    total = cv * sum(fits_per_fold.values())
    done = [0]

    def on_fit() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    # One task per (outer fold, model), spread over the worker processes; each task's inner search runs
    # on one core, so the processes never oversubscribe the machine.
    tasks = [(fold, kind) for fold in range(len(folds)) for kind in kinds]
    with FitCounter(on_fit, n_jobs) as counter, thread_limit(n_jobs):
        fit_fold = delayed(_fit_outer_fold)
        results = run_parallel(n_jobs, (
            fit_fold(frame, folds[fold][0], folds[fold][1], kind, grids[kind], inner_cv=inner_cv, seed=seed,
                     class_weight=class_weight, on_fit=counter.tick)
            for fold, kind in tasks))
    scores = {k: ModelScores(k, [], []) for k in kinds}
    for (_, kind), (metrics, best) in zip(tasks, results, strict=True):
        scores[kind].fold_accuracy.append(metrics["accuracy"])
        scores[kind].fold_macro_f1.append(metrics["macro_f1"])
        scores[kind].fold_best_params.append({str(k): v for k, v in best.items()})
    ordered = list(scores.values())
    winner, reason = pick_winner(ordered)
    return CompareResult(dataset=dataset, group_by=group_by or "track", outer_cv=cv, inner_cv=inner_cv, seed=seed,
                         n_tracks=int(len(np.unique(frame.track_ids))), n_rows=int(len(frame.y)),
                         splitter=type(outer).__name__, scores=ordered, winner=winner, reason=reason,
                         fold_test_track_ids=[sorted({int(t) for t in frame.track_ids[test]}) for _, test in folds])
