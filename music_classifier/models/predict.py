"""Predict with a registered model: stored tracks (features by name as the feature views hold them, read from
the value tables) or new audio files (their audio features extracted on the fly). Every prediction is stored in
``predictions``.
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
    in_training: bool = False  # the model was fitted on this track: its answer is no test of the model


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
        views = definition["features"] + (" segment" if definition.get("segments") else "")
        raise InputError(f"track(s) {', '.join(map(str, missing[:10]))}: no {views} features stored "
                         "(extract them first, or the track id does not exist)")
    classes = [str(c) for c in pipeline.classes_]
    uniq, proba = track_probabilities(pipeline, X, tids)
    fitted_on = {int(t) for t in (row.get("params") or {}).get("train_track_ids") or []}
    preds = []
    for t, p in zip(uniq.tolist(), proba, strict=True):
        genre, probs = _make(classes, p)
        preds.append(Prediction(genre=genre, probabilities=probs, track_id=int(t), in_training=int(t) in fitted_on))
    _store(conn, int(model_id), preds)
    return preds


def file_feature_rows(path: Path, definition: dict[str, Any]) -> list[dict[str, float]]:
    """The feature rows a model trained on ``definition`` sees for one audio file: one row (a segment
    model: one per segment every feature set has), features named as in the dataset view."""
    from music_classifier.db.views import column_prefix, feature_sets, source_views
    from music_classifier.features.audio_io import load_audio
    from music_classifier.jobs.audio_extract import extract_audio
    from music_classifier.jobs.enqueue import DEFAULT_SEGMENT_S

    segments = bool(definition.get("segments"))
    sets = feature_sets(definition["features"])
    views = source_views(definition["features"], segments)
    y, sr = load_audio(path)
    whole: dict[str, float] = {}
    by_segment: list[dict[int, dict[str, float]]] = []
    for extractor, view in zip(sets, views, strict=True):
        prefix = column_prefix(view, len(views))
        values, segs = extract_audio(extractor, y=y, sr=sr, segment_s=DEFAULT_SEGMENT_S if segments else None,
                                     whole=not segments)
        whole.update({prefix + n: v for n, v in values.items()})
        if segments:
            by_segment.append({i: {prefix + n: v for n, v in seg.items()} for i, _, seg in segs or []})
    if not segments:
        return [whole]
    shared = sorted(set.intersection(*(set(s) for s in by_segment)))
    return [{k: v for s in by_segment for k, v in s[i].items()} for i in shared]


def predict_files(conn: Connection, model_id: int, paths: list[Path], *, settings: Any = None) -> list[Prediction]:
    """Extract the model's audio features (librosa, musicnn; segments for a segment model) from each
    file and predict."""
    from music_classifier.db.views import feature_sets
    from music_classifier.features.registry import AUDIO_EXTRACTORS

    pipeline, row = load_model(conn, model_id, settings=settings)
    definition = row["dataset_snapshot"]["definition"]
    not_audio = [s for s in feature_sets(definition["features"]) if s not in AUDIO_EXTRACTORS]
    if not_audio:
        raise InputError(f"model {model_id} uses {definition['features']} features; audio files can only be "
                         f"predicted with a model trained on audio features ({', '.join(AUDIO_EXTRACTORS)})")
    names = list(row["feature_names"])
    classes = [str(c) for c in pipeline.classes_]
    preds = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        dicts = file_feature_rows(path, definition)
        if not dicts:
            raise InputError(f"{path}: shorter than one segment, nothing to predict with segment model {model_id}")
        # By name, in the model's order: never by the extractor's dict order.
        X = np.array([[float(d.get(n, np.nan)) for n in names] for d in dicts], dtype=np.float64)
        _, proba = track_probabilities(pipeline, X, np.zeros(len(X), dtype=np.int64))
        genre, probs = _make(classes, proba[0])
        preds.append(Prediction(genre=genre, probabilities=probs, file_path=str(path.resolve())))
    _store(conn, int(model_id), preds)
    return preds
