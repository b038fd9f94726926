"""Evaluate a registered model on another dataset, over the genres both share.

The seed's cross-dataset question: trained on Spotify playlist tracks, tested on the class's own
tracks. Tracks whose genre the model does not know are dropped; predictions are restricted to the
shared genres (probabilities renormalised over them), so the task is exactly the shared-genre
classification. The genres dropped on either side are listed.

A model is never scored on its own training tracks: they are left out by track id (and counted).
A dataset of another feature set, or with other feature names, is refused, naming the difference:
features computed by different extractors must never be mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.models.load_data import listed, load_dataset
from music_classifier.models.metrics import classification_metrics
from music_classifier.models.parallel import predict_with_jobs
from music_classifier.models.registry import load_model
from music_classifier.models.train import track_labels, track_probabilities


@dataclass
class EvaluationResult:
    model_id: int
    dataset: str
    shared_genres: list[str]
    dropped_model_genres: list[str]  # the model knows them, the dataset has none
    dropped_dataset_genres: dict[str, int]  # genre -> tracks of the dataset the model cannot predict
    n_tracks: int
    metrics: dict[str, Any]
    n_left_out: int = 0  # the dataset's tracks the model was trained on (not scored)


def training_track_ids(row: dict[str, Any]) -> set[int]:
    """Track ids a registered model was fitted on (its snapshot minus its held-out tracks)."""
    params = row.get("params") or {}
    if "train_track_ids" in params:
        return {int(t) for t in params["train_track_ids"]}
    held_out = {int(t) for t in params.get("test_track_ids") or []}
    return {int(t) for t, _ in (row.get("dataset_snapshot") or {}).get("members") or []} - held_out


def check_same_features(model_id: int, row: dict[str, Any], dataset: str, definition: dict[str, Any],
                        names: list[str]) -> None:
    """Refuse a dataset of another feature set or other feature names, naming the difference."""
    model_def = (row.get("dataset_snapshot") or {}).get("definition") or {}
    if model_def.get("features") != definition.get("features"):
        raise InputError(f"model {model_id} was trained on {model_def.get('features')} features, dataset "
                         f"{dataset!r} has {definition.get('features')} features; feature sets are never mixed")
    wanted = list(row["feature_names"])
    missing = [f for f in wanted if f not in set(names)]
    extra = [f for f in names if f not in set(wanted)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {listed(missing)}")
        if extra:
            parts.append(f"has {listed(extra)} the model was not trained on")
        raise InputError(f"dataset {dataset!r} {' and '.join(parts)} (model {model_id}); feature names must match")


def evaluate_model(conn: Connection, model_id: int, dataset: str, *, settings: Any = None,
                   n_jobs: int = 1) -> EvaluationResult:
    pipeline, row = load_model(conn, model_id, settings=settings)
    predict_with_jobs(pipeline, n_jobs)
    model_segments = bool((row["dataset_snapshot"].get("definition") or {}).get("segments"))
    frame = load_dataset(conn, dataset)
    if frame.is_segments != model_segments:
        kind = "segment" if model_segments else "whole-track"
        raise InputError(f"model {model_id} was trained on {kind} features; dataset {dataset!r} is not "
                         f"(evaluate on a dataset created {'with' if model_segments else 'without'} --segments)")
    check_same_features(model_id, row, dataset, frame.definition or {}, frame.feature_names)
    frame = frame.with_features(list(row["feature_names"]))  # the model's column order (the view is read once)
    classes = [str(c) for c in pipeline.classes_]
    data_genres = sorted(set(frame.y.tolist()))
    shared = [g for g in classes if g in set(data_genres)]
    dropped_model = [g for g in classes if g not in set(data_genres)]
    trained_on = training_track_ids(row)
    seen = np.isin(frame.track_ids, list(trained_on))
    n_left_out = int(len(np.unique(frame.track_ids[seen])))
    if seen.all():
        raise InputError(f"model {model_id} was trained on all {n_left_out} tracks of dataset {dataset!r}; "
                         "nothing left to evaluate")
    keep = np.isin(frame.y, shared) & ~seen
    dropped_data: dict[str, int] = {}
    for g in data_genres:
        if g not in set(classes):
            dropped_data[g] = int(len(np.unique(frame.track_ids[(frame.y == g) & ~seen])))
    if not shared:
        raise InputError(f"model {model_id} ({', '.join(classes)}) shares no genre with dataset {dataset!r} "
                         f"({', '.join(data_genres)})")
    rows = np.flatnonzero(keep)
    if not rows.size:
        raise InputError(f"dataset {dataset!r}: every track of the genres shared with model {model_id} was one of "
                         f"its training tracks ({n_left_out} left out); nothing left to evaluate")
    uniq, proba = track_probabilities(pipeline, frame.X[rows], frame.track_ids[rows])
    cols = [classes.index(g) for g in shared]
    proba = proba[:, cols]
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    pred = np.array(shared, dtype=object)[proba.argmax(axis=1)]
    true = track_labels(frame.track_ids[rows], frame.y[rows], uniq)
    metrics = classification_metrics(y_true=true, y_pred=pred, labels=shared)
    return EvaluationResult(model_id=int(model_id), dataset=dataset, shared_genres=shared,
                            dropped_model_genres=dropped_model, dropped_dataset_genres=dropped_data,
                            n_tracks=int(len(uniq)), metrics=metrics, n_left_out=n_left_out)
