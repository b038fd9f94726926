"""Label audit: which sheet genres does the audio dispute, and who proposed those tracks?

Out-of-fold probabilities (:mod:`.oof`, the repeated CV of training) -> confident learning
(:mod:`.confident`) -> one ``label_audits`` row and one ``label_issues`` row per audited track, ranked
(1 = most disputed) by one score, ``dispute_score`` = 1 - the normalized margin of the out-of-fold
probabilities = (1 - P(sheet genre) + P(strongest other genre)) / 2, which never rises down the ranks;
the confident-learning flag is a column beside it, not a sort key. ``label_issues``
joins ``tracks``, ``proposals`` and ``students`` by track id; the views ``student_summary`` and
``student_genres`` read the newest audit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, insert, select, text

from music_classifier.csv_safety import neutralise_cell
from music_classifier.db.tables import label_audits, label_issues
from music_classifier.errors import InputError
from music_classifier.models.oof import DEFAULT_FOLDS, DEFAULT_REPEATS, OutOfFold, Progress
from music_classifier.text_safety import escape_value

CSV_COLUMNS = ("rank", "track_id", "artist", "title", "student", "sheet_genre", "heard_genre", "score", "flagged",
               "settled")
METHOD = ("ranked by normalized margin alone (score = (1 - P(sheet genre) + P(strongest other genre)) / 2, out of "
          "fold); flag = confident learning (off-diagonal confident joint)")
SCORE_HELP = "score = (1 - P(sheet genre) + P(strongest other genre)) / 2, out of fold"


@dataclass
class AuditRow:
    rank: int
    track_id: int
    artist: str
    title: str
    students: list[str]
    sheet_genre: str
    heard_genre: str
    sheet_probability: float
    heard_probability: float
    flagged: bool
    # 1 - normalized margin: 0 = the audio is sure of the sheet genre, 0.5 = it ties with another genre,
    # 1 = sure of another genre. The rank follows it. (Audits stored before issue 18.1: 1 - P(sheet genre).)
    dispute_score: float
    # A person settled the track's genre (a standing label decision): its effective genre, else None.
    settled: str | None = None

    @property
    def student(self) -> str:
        return ", ".join(self.students)


@dataclass
class AuditResult:
    audit_id: int | None
    dataset: str
    kind: str
    n_splits: int
    n_repeats: int
    accuracy: float
    rows: list[AuditRow] = field(default_factory=list)
    created_at: Any = None

    @property
    def flagged(self) -> list[AuditRow]:
        return [r for r in self.rows if r.flagged]

    @property
    def disputed(self) -> list[AuditRow]:
        """Rows the audio disputes, in rank order (highest score first): flagged, or heard as another genre
        out of fold. A track heard as its sheet genre and not flagged is no dispute, whatever its rank."""
        return [r for r in self.rows if r.flagged or r.heard_genre != r.sheet_genre]


def students_of(conn: Connection, track_ids: Sequence[int]) -> dict[int, list[str]]:
    """Track id -> names of the students who proposed it (sorted)."""
    if not track_ids:
        return {}
    stmt = text("SELECT p.track_id, s.name FROM proposals p JOIN students s ON s.id = p.student_id "
                "WHERE p.track_id IN :ids ORDER BY s.name").bindparams(bindparam("ids", expanding=True))
    out: dict[int, list[str]] = {}
    ids = [int(t) for t in track_ids]
    for start in range(0, len(ids), 5000):
        for tid, name in conn.execute(stmt, {"ids": ids[start:start + 5000]}):
            out.setdefault(int(tid), []).append(str(name))
    return out


def mark_settled(conn: Connection, rows: Sequence[AuditRow]) -> None:
    """Set each row's ``settled`` to the track's decided genre when a label decision settled it
    (``labels set``/``keep``; see :func:`~music_classifier.ingest.label_decisions.settled_track_ids`)."""
    from music_classifier.ingest.label_decisions import settled_genres

    decided = settled_genres(conn)
    for r in rows:
        r.settled = decided.get(r.track_id)


def audit_rows(oof: OutOfFold, students: dict[int, list[str]]) -> list[AuditRow]:
    """Every track, most disputed first: by score alone (see :func:`.confident.rank_label_issues`)."""
    from music_classifier.models.confident import (
        confident_classes,
        find_label_issues,
        normalized_margin,
        rank_label_issues,
    )

    labels = oof.label_index
    flagged = find_label_issues(labels, oof.proba)
    # Heard: the out-of-fold prediction; for a flagged track the genre it is confidently (which can differ
    # from the most probable one when that genre's own threshold is not reached).
    heard = np.where(flagged, confident_classes(labels, oof.proba), oof.proba.argmax(axis=1))
    score = 1.0 - normalized_margin(labels, oof.proba)
    rows = []
    for rank, i in enumerate(rank_label_issues(labels, oof.proba), start=1):
        tid = int(oof.track_ids[i])
        rows.append(AuditRow(rank=rank, track_id=tid, artist=str(oof.artists[i]), title=str(oof.titles[i]),
                             students=students.get(tid, []), sheet_genre=str(oof.labels[i]),
                             heard_genre=oof.classes[heard[i]], sheet_probability=float(oof.proba[i, labels[i]]),
                             heard_probability=float(oof.proba[i, heard[i]]), flagged=bool(flagged[i]),
                             dispute_score=float(score[i])))
    return rows


def run_audit(conn: Connection, dataset: str, *, kind: str = "rf", n_splits: int = DEFAULT_FOLDS,
              n_repeats: int = DEFAULT_REPEATS, seed: int = 0, progress: Progress | None = None,
              store: bool = True) -> AuditResult:
    """Audit ``dataset``'s labels; with ``store`` write the run in the caller's transaction."""
    from music_classifier.models.grids import MODEL_KINDS
    from music_classifier.models.load_data import load_dataset
    from music_classifier.models.oof import out_of_fold

    if kind not in MODEL_KINDS:
        raise InputError(f"--model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
    frame = load_dataset(conn, dataset)
    oof = out_of_fold(frame, kind=kind, n_splits=n_splits, n_repeats=n_repeats, seed=seed, progress=progress)
    rows = audit_rows(oof, students_of(conn, oof.track_ids.tolist()))
    mark_settled(conn, rows)
    result = AuditResult(audit_id=None, dataset=dataset, kind=kind, n_splits=oof.n_splits, n_repeats=n_repeats,
                         accuracy=oof.accuracy, rows=rows)
    if store:
        from music_classifier.models.train import json_safe

        params = {"n_splits": oof.n_splits, "n_repeats": n_repeats, "seed": seed, "classifier": oof.params,
                  "method": METHOD, "segments": frame.is_segments}
        result.audit_id = int(conn.execute(insert(label_audits).values(
            dataset_id=frame.dataset_id, dataset_name=dataset, model_kind=kind, params=json_safe(params),
            n_tracks=len(rows), n_flagged=len(result.flagged), accuracy=result.accuracy,
        ).returning(label_audits.c.id)).scalar_one())
        conn.execute(insert(label_issues), [
            {"audit_id": result.audit_id, "track_id": r.track_id, "rank": r.rank, "sheet_genre": r.sheet_genre,
             "heard_genre": r.heard_genre, "sheet_probability": r.sheet_probability,
             "heard_probability": r.heard_probability, "dispute_score": r.dispute_score, "flagged": r.flagged}
            for r in rows])
    return result


def latest_audit(conn: Connection, dataset: str | None = None) -> AuditResult | None:
    """The newest stored audit (of ``dataset`` when given), with its rows; None if there is none."""
    from music_classifier.db.tables import tracks

    stmt = select(label_audits).order_by(label_audits.c.id.desc()).limit(1)
    if dataset is not None:
        stmt = stmt.where(label_audits.c.dataset_name == dataset)
    run = conn.execute(stmt).mappings().first()
    if run is None:
        return None
    params = run["params"] if isinstance(run["params"], dict) else {}
    found = conn.execute(
        select(label_issues, tracks.c.artist, tracks.c.title)
        .join(tracks, tracks.c.id == label_issues.c.track_id)
        # By score first: audits stored before ranking by score alone (flagged first) read in today's order.
        .where(label_issues.c.audit_id == run["id"])
        .order_by(label_issues.c.dispute_score.desc(), label_issues.c.rank)).mappings().all()
    names = students_of(conn, [r["track_id"] for r in found])
    rows = [AuditRow(rank=int(r["rank"]), track_id=int(r["track_id"]), artist=r["artist"], title=r["title"],
                     students=names.get(int(r["track_id"]), []), sheet_genre=r["sheet_genre"],
                     heard_genre=r["heard_genre"], sheet_probability=float(r["sheet_probability"]),
                     heard_probability=float(r["heard_probability"]), flagged=bool(r["flagged"]),
                     dispute_score=float(r["dispute_score"])) for r in found]
    mark_settled(conn, rows)
    return AuditResult(audit_id=int(run["id"]), dataset=run["dataset_name"], kind=run["model_kind"],
                       n_splits=int(params.get("n_splits") or 0), n_repeats=int(params.get("n_repeats") or 0),
                       accuracy=float(run["accuracy"]) if run["accuracy"] is not None else float("nan"),
                       rows=rows, created_at=run["created_at"])


def audit_csv(result: AuditResult, *, only_flagged: bool = False) -> str:
    """The ranked list as CSV text (header + one line per track); user text neutralised for spreadsheets
    and its control characters escaped (text_safety: the CSV is often printed to a terminal)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def safe(value: object) -> object:
        return neutralise_cell(escape_value(value))

    for r in result.rows:
        if only_flagged and not r.flagged:
            continue
        writer.writerow([r.rank, r.track_id, safe(r.artist), safe(r.title), safe(r.student), safe(r.sheet_genre),
                         safe(r.heard_genre), f"{r.dispute_score:.4f}", int(r.flagged), safe(r.settled or "")])
    return buf.getvalue()


NO_STUDENT = "(no student)"


@dataclass
class StudentRow:
    student: str
    proposals: int
    genres: dict[str, int]  # sheet genre -> proposals, most first
    agreed: int  # tracks whose out-of-fold predicted genre is the sheet genre
    mean_confidence: float  # mean out-of-fold confidence (probability of the predicted genre)
    flagged: int

    @property
    def agreement(self) -> float:
        return self.agreed / self.proposals if self.proposals else float("nan")


def student_rows(result: AuditResult) -> list[StudentRow]:
    """Per student (tracks nobody proposed under :data:`NO_STUDENT`), over the audited tracks: how many,
    in which genres, how often the audio agrees with their label, mean confidence, flagged tracks.
    Sorted by agreement, lowest first (whose proposals are hardest), then by name."""
    acc: dict[str, list[AuditRow]] = {}
    for r in result.rows:
        for name in r.students or [NO_STUDENT]:
            acc.setdefault(name, []).append(r)
    out = []
    for name, rows in acc.items():
        genres: dict[str, int] = {}
        for r in rows:
            genres[r.sheet_genre] = genres.get(r.sheet_genre, 0) + 1
        out.append(StudentRow(student=name, proposals=len(rows),
                              genres=dict(sorted(genres.items(), key=lambda kv: (-kv[1], kv[0]))),
                              agreed=sum(r.heard_genre == r.sheet_genre for r in rows),
                              mean_confidence=float(sum(r.heard_probability for r in rows) / len(rows)),
                              flagged=sum(r.flagged for r in rows)))
    out.sort(key=lambda s: (s.agreement, s.student))
    return out
