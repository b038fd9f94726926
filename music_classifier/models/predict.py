"""Predict with a registered model: stored tracks (features read from the feature views by name) or
new audio files (librosa features extracted on the fly). Every prediction is stored in ``predictions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert

from music_classifier.db.tables import predictions
from music_classifier.errors import InputError
from music_classifier.models.load_data import load_track_features
from music_classifier.models.registry import load_model
from music_classifier.models.train import track_probabilities


@dataclass
class Prediction:
    genre: str
    probabilities: dict[str, float]  # genre -> probability, most likely first
    track_id: int | None = None
    file_path: str | None = None


def _store(conn: Connection, model_id: int, preds: list[Prediction]) -> None:
    if preds:
        conn.execute(insert(predictions), [
            {"model_id": model_id, "track_id": p.track_id, "file_path": p.file_path, "genre": p.genre,
             "probabilities": p.probabilities} for p in preds])


def _make(classes: list[str], proba: np.ndarray) -> tuple[str, dict[str, float]]:
    order = np.argsort(-proba, kind="stable")
    return classes[int(order[0])], {classes[int(i)]: round(float(proba[i]), 6) for i in order}


def predict_tracks(conn: Connection, model_id: int, track_ids: list[int], *, settings: Any = None) -> list[Prediction]:
    pipeline, row = load_model(conn, model_id, settings=settings)
    definition = row["dataset_snapshot"]["definition"]
    X, tids, _ = load_track_features(conn, definition, list(row["feature_names"]), track_ids)
    missing = sorted(set(track_ids) - set(tids.tolist()))
    if missing:
        views = "librosa segment" if definition.get("segments") else definition["features"]
        raise InputError(f"track(s) {', '.join(map(str, missing[:10]))}: no {views} features stored "
                         "(extract them first, or the track id does not exist)")
    classes = [str(c) for c in pipeline.classes_]
    uniq, proba = track_probabilities(pipeline, X, tids)
    preds = []
    for t, p in zip(uniq.tolist(), proba, strict=True):
        genre, probs = _make(classes, p)
        preds.append(Prediction(genre=genre, probabilities=probs, track_id=int(t)))
    _store(conn, int(model_id), preds)
    return preds


def predict_files(conn: Connection, model_id: int, paths: list[Path], *, settings: Any = None) -> list[Prediction]:
    """Extract librosa features from each file (segments for a segment model) and predict."""
    from music_classifier.features.audio_io import load_audio
    from music_classifier.features.librosa_extractor import extract_librosa_features, extract_segment_features

    pipeline, row = load_model(conn, model_id, settings=settings)
    definition = row["dataset_snapshot"]["definition"]
    if definition["features"] != "librosa":
        raise InputError(f"model {model_id} uses {definition['features']} features; audio files can only be "
                         "predicted with a model trained on librosa features")
    names = list(row["feature_names"])
    classes = [str(c) for c in pipeline.classes_]
    preds = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        y, sr = load_audio(path)
        if definition.get("segments"):
            dicts = [feats for _, _, feats in extract_segment_features(y=y, sr=sr)]
        else:
            dicts = [extract_librosa_features(y=y, sr=sr)]
        # By name, in the model's order: never by the extractor's dict order.
        X = np.array([[float(d.get(n, np.nan)) for n in names] for d in dicts], dtype=np.float64)
        _, proba = track_probabilities(pipeline, X, np.zeros(len(X), dtype=np.int64))
        genre, probs = _make(classes, proba[0])
        preds.append(Prediction(genre=genre, probabilities=probs, file_path=str(path.resolve())))
    _store(conn, int(model_id), preds)
    return preds
