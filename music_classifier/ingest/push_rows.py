"""The rows `sheet push` writes back to the class: one per live track, with what the tool knows about it.

Columns (:data:`PUSH_HEADER`): the track id (what ``labels set TRACK`` takes), song, the students who
proposed it, the sheet's coarse genre, the effective genre and the decision behind it, the latest
model's predicted genre and its probability, the top musicnn tags, and the latest audit's score.

Everything is read in a few set-based queries and the model is loaded once and applied to every
track's stored features in one batch: a push of a 100,000-track library must not load a model or run a
query per track. Nothing is written to the database (no ``predictions`` rows: a push is a report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, select, text

PUSH_HEADER = ("track", "song", "student", "sheet genre", "effective genre", "decision", "predicted genre",
               "confidence", "top tags", "audit score")
TOP_TAGS = 3  # enough to say what the network hears; a sheet cell is not a taggram
_CHUNK = 5000  # bounded IN lists (SQLite's variable limit, PostgreSQL's plan size)

Cell = str | int | float


@dataclass(frozen=True)
class PushRow:
    track_id: int
    song: str
    student: str
    sheet_genre: str
    effective_genre: str
    decision: str
    predicted_genre: str
    confidence: float | None
    top_tags: str
    audit_score: float | None

    def cells(self) -> list[Cell]:
        """The row as spreadsheet cells, in :data:`PUSH_HEADER` order ("" for a missing value)."""
        return [self.track_id, self.song, self.student, self.sheet_genre, self.effective_genre, self.decision,
                self.predicted_genre, "" if self.confidence is None else self.confidence, self.top_tags,
                "" if self.audit_score is None else self.audit_score]


@dataclass
class PushTable:
    rows: list[PushRow]
    model_id: int | None  # the model whose predictions fill "predicted genre" (None: no model registered)
    audit_id: int | None  # the audit whose scores fill "audit score"

    def cells(self) -> list[list[Cell]]:
        """Header row + one row per track."""
        return [list(PUSH_HEADER)] + [r.cells() for r in self.rows]


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _by_track(conn: Connection, sql: str, ids: list[int]) -> list[Any]:
    stmt = text(sql).bindparams(bindparam("ids", expanding=True))
    return [row for chunk in _chunks(ids) for row in conn.execute(stmt, {"ids": chunk})]


def _tracks(conn: Connection) -> list[tuple[int, str]]:
    """(id, song) of every live track: the sheet's tracks in sheet-row order first, then the others by id."""
    rows = conn.execute(text(
        "SELECT t.id, t.song, MIN(p.sheet_row) AS first_row FROM tracks t "
        "LEFT JOIN proposals p ON p.track_id = t.id WHERE t.removed_at IS NULL GROUP BY t.id, t.song")).all()
    rows.sort(key=lambda r: (r.first_row is None, r.first_row or 0, r.id))
    return [(int(r.id), str(r.song)) for r in rows]


def _students(conn: Connection, ids: list[int]) -> dict[int, str]:
    out: dict[int, list[str]] = {}
    for tid, name in _by_track(conn, "SELECT p.track_id, s.name FROM proposals p JOIN students s ON "
                                     "s.id = p.student_id WHERE p.track_id IN :ids ORDER BY s.name", ids):
        out.setdefault(int(tid), []).append(str(name))
    return {t: ", ".join(names) for t, names in out.items()}


def _sheet_genres(conn: Connection) -> dict[int, str]:
    """Track id -> the sheet's coarse genre (display name)."""
    rows = conn.execute(text("SELECT tg.track_id, g.display_name FROM track_genres tg JOIN genres g "
                             "ON g.id = tg.genre_id WHERE tg.rank = 0"))
    return {int(t): str(name) for t, name in rows}


def _decisions(conn: Connection) -> dict[int, tuple[str, str]]:
    """Track id -> (effective genre, decision): the ``track_effective_genres`` view (the standing label
    decision, else the sheet's coarse genre) and what the decision did ("relabelled", "kept", or "")."""
    words = {"set": "relabelled", "keep": "kept"}
    rows = conn.execute(text("SELECT track_id, genre, decision FROM track_effective_genres"))
    return {int(tid): (genre, words.get(decision or "", decision or "")) for tid, genre, decision in rows}


def _top_tags(conn: Connection, ids: list[int]) -> dict[int, str]:
    from music_classifier.db.tags import stored_top_tags

    return {t: ", ".join(tag for tag, _ in tags) for t, tags in stored_top_tags(conn, ids, k=TOP_TAGS).items()}


def latest_audit_scores(conn: Connection) -> tuple[int | None, dict[int, float]]:
    """(audit id, track id -> its score in the newest audit): the dispute score the audit ranks by."""
    audit_id = conn.execute(text("SELECT MAX(id) FROM label_audits")).scalar()
    if audit_id is None:
        return None, {}
    rows = conn.execute(text("SELECT track_id, dispute_score FROM label_issues WHERE audit_id = :a"),
                        {"a": int(audit_id)})
    return int(audit_id), {int(t): float(s) for t, s in rows}


def push_model_id(conn: Connection) -> int | None:
    """The newest final model, else the newest model; None when the registry is empty."""
    from music_classifier.db.tables import models
    from music_classifier.models.registry import model_basis

    newest = None
    # Core select, not text(): the JSON column is decoded on SQLite too.
    for model_id, params in conn.execute(select(models.c.id, models.c.params).order_by(models.c.id.desc())):
        params = params if isinstance(params, dict) else {}
        if model_basis({"params": params}) == "final":
            return int(model_id)
        newest = int(model_id) if newest is None else newest
    return newest


def batch_predictions(conn: Connection, model_id: int, ids: list[int], *,
                      settings: Any = None) -> dict[int, tuple[str, float]]:
    """Track id -> (predicted genre, its probability) for every track in ``ids`` with the model's stored
    features; the model is loaded once (with the registry's checks) and applied to all of them."""
    from music_classifier.models.load_data import load_track_features
    from music_classifier.models.registry import load_model
    from music_classifier.models.train import track_probabilities

    pipeline, row = load_model(conn, model_id, settings=settings)
    definition = row["dataset_snapshot"]["definition"]
    classes = [str(c) for c in pipeline.classes_]
    out: dict[int, tuple[str, float]] = {}
    for chunk in _chunks(ids):
        X, tids, _ = load_track_features(conn, definition, list(row["feature_names"]), chunk)
        if not len(tids):
            continue
        uniq, proba = track_probabilities(pipeline, X, tids)
        best = proba.argmax(axis=1)
        for t, b, p in zip(uniq.tolist(), best.tolist(), proba, strict=True):
            out[int(t)] = (classes[b], float(np.round(p[b], 3)))
    return out


def push_rows(conn: Connection, *, model_id: int | None = None, settings: Any = None) -> PushTable:
    """One :class:`PushRow` per live track (see the module docstring); ``model_id`` overrides the
    newest final (else newest) model."""
    tracks = _tracks(conn)
    ids = [t for t, _ in tracks]
    model_id = push_model_id(conn) if model_id is None else int(model_id)
    predicted = batch_predictions(conn, model_id, ids, settings=settings) if model_id is not None and ids else {}
    audit_id, scores = latest_audit_scores(conn)
    students = _students(conn, ids)
    sheet = _sheet_genres(conn)
    decisions = _decisions(conn)
    tags = _top_tags(conn, ids)
    rows = []
    for tid, song in tracks:
        effective, decision = decisions.get(tid, (sheet.get(tid, ""), ""))
        genre, confidence = predicted.get(tid, ("", None))
        score = scores.get(tid)
        rows.append(PushRow(track_id=tid, song=song, student=students.get(tid, ""), sheet_genre=sheet.get(tid, ""),
                            effective_genre=effective, decision=decision, predicted_genre=genre,
                            confidence=confidence, top_tags=tags.get(tid, ""),
                            audit_score=None if score is None else round(score, 3)))
    return PushTable(rows=rows, model_id=model_id, audit_id=audit_id)
