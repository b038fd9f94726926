"""Evaluate a registered model on another dataset, over the genres both share.

The seed's cross-dataset question: trained on Spotify playlist tracks, tested on the class's own
tracks. Tracks whose genre the model does not know are dropped; predictions are restricted to the
shared genres (probabilities renormalised over them), so the task is exactly the shared-genre
classification. The genres dropped on either side are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.models.load_data import load_dataset
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


def evaluate_model(conn: Connection, model_id: int, dataset: str, *, settings: Any = None,
                   n_jobs: int = 1) -> EvaluationResult:
    pipeline, row = load_model(conn, model_id, settings=settings)
    predict_with_jobs(pipeline, n_jobs)
    model_segments = bool((row["dataset_snapshot"].get("definition") or {}).get("segments"))
    frame = load_dataset(conn, dataset, feature_names=list(row["feature_names"]))
    if frame.is_segments != model_segments:
        kind = "segment" if model_segments else "whole-track"
        raise InputError(f"model {model_id} was trained on {kind} features; dataset {dataset!r} is not "
                         f"(evaluate on a dataset created {'with' if model_segments else 'without'} --segments)")
    classes = [str(c) for c in pipeline.classes_]
    data_genres = sorted(set(frame.y.tolist()))
    shared = [g for g in classes if g in set(data_genres)]
    dropped_model = [g for g in classes if g not in set(data_genres)]
    keep = np.isin(frame.y, shared)
    dropped_data: dict[str, int] = {}
    for g in data_genres:
        if g not in set(classes):
            dropped_data[g] = int(len(np.unique(frame.track_ids[frame.y == g])))
    if not shared:
        raise InputError(f"model {model_id} ({', '.join(classes)}) shares no genre with dataset {dataset!r} "
                         f"({', '.join(data_genres)})")
    rows = np.flatnonzero(keep)
    uniq, proba = track_probabilities(pipeline, frame.X[rows], frame.track_ids[rows])
    cols = [classes.index(g) for g in shared]
    proba = proba[:, cols]
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    pred = np.array(shared, dtype=object)[proba.argmax(axis=1)]
    true = track_labels(frame.track_ids[rows], frame.y[rows], uniq)
    metrics = classification_metrics(y_true=true, y_pred=pred, labels=shared)
    return EvaluationResult(model_id=int(model_id), dataset=dataset, shared_genres=shared,
                            dropped_model_genres=dropped_model, dropped_dataset_genres=dropped_data,
                            n_tracks=int(len(uniq)), metrics=metrics)
