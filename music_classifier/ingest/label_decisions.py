"""Label decisions: a teacher settles a track's genre without touching the students' sheet.

``label_decisions`` is append-only. ``set`` files a track under another genre, ``keep`` confirms the
sheet's coarse genre, ``undo`` cancels the newest standing decision of a track (the one before it, if
any, stands again). The effective genre of a live track is its newest standing decision's genre, else
the sheet's coarse genre: the view ``track_effective_genres`` (db/views.py DECISION_VIEWS), which
``dataset create``, ``genres`` and the audit read. ``track_genres`` and ``proposals`` (what the
students wrote) are never changed here, and ``sheet sync`` never writes ``label_decisions``: a sync
that changes the sheet genre of a decided track reports it as a :class:`DecisionConflict`.

Every function takes a connection; the caller owns the transaction. The CLI (`labels …`) and any
other front end call these same functions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, or_, select, text

from music_classifier.csv_safety import neutralise_cell
from music_classifier.db.tables import MAX_TEXT, genres, label_decisions, label_issues, track_genres, tracks
from music_classifier.errors import InputError

CSV_COLUMNS = ("id", "track_id", "artist", "title", "action", "genre_before", "genre", "status", "decided_by",
               "decided_at", "audit_id", "note")
MAX_NOTE = 2000
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Decision:
    """One row of ``label_decisions`` with its track and genre names, and where it stands now."""

    id: int
    track_id: int
    artist: str
    title: str
    action: str  # set | keep | undo
    genre_before: str | None  # the sheet's coarse genre when decided
    genre: str | None  # the genre decided (for an undo: the genre of the decision it cancelled)
    decided_by: str | None
    decided_at: Any
    audit_id: int | None
    note: str | None
    undoes_id: int | None = None
    status: str = ""  # standing | superseded | undone | undo


@dataclass(frozen=True)
class DecisionOutcome:
    """What ``set``/``keep``/``undo`` did: the row written (None when nothing was), and the track's
    effective genre afterwards."""

    track_id: int
    song: str  # "artist - title"
    written: Decision | None
    effective_genre: str | None
    sheet_genre: str | None
    message: str


@dataclass(frozen=True)
class DecisionConflict:
    """A decided track whose sheet genre a sync changed: the decision stands, the sheet disagrees."""

    track_id: int
    song: str
    sheet_before: str | None
    sheet_now: str | None
    decided: str

    def __str__(self) -> str:
        return (f"track {self.track_id} ({self.song}): the sheet now says {self.sheet_now!r} (was "
                f"{self.sheet_before!r}), the label decision {self.decided!r} stands "
                f"(music-classifier labels undo {self.track_id} to follow the sheet)")


def _track(conn: Connection, track: int | str) -> tuple[int, str, str]:
    """(id, artist, title) of a live track given by id; InputError otherwise."""
    raw = str(track).strip()
    if not (raw.isascii() and raw.isdigit()):
        raise InputError(f"track {raw!r}: give a track id (a number; see music-classifier sql "
                         "\"SELECT id, artist, title FROM tracks\")")
    # Ids are 32-bit integers on PostgreSQL; a longer number names no track (and must not reach the driver).
    row = None if int(raw) > MAX_ID else conn.execute(
        select(tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.removed_at)
        .where(tracks.c.id == int(raw))).first()
    if row is None:
        raise InputError(f"no track {int(raw)}")
    if row.removed_at is not None:
        raise InputError(f"track {row.id} ({row.artist} - {row.title}) was removed from the library")
    return int(row.id), str(row.artist), str(row.title)


def _genre_id(conn: Connection, name: str) -> int:
    """The id of an existing genre (or an alias of one); InputError with a near-miss suggestion."""
    from music_classifier.ingest.genres import load_alias_map, near_miss, validate_genre_name
    from music_classifier.ingest.keys import genre_key

    clean = validate_genre_name(name)
    gid = load_alias_map(conn).get(genre_key(clean))
    if gid is None:
        miss = near_miss(conn, clean)
        hint = f" (did you mean {miss.existing!r}?)" if miss is not None else ""
        raise InputError(f"no genre {clean!r}{hint}; a decision files a track under an existing genre")
    return int(gid)


def _genre_name(conn: Connection, gid: int | None) -> str | None:
    if gid is None:
        return None
    return conn.execute(select(genres.c.display_name).where(genres.c.id == gid)).scalar_one_or_none()


def _sheet_genre_id(conn: Connection, track_id: int) -> int | None:
    return conn.execute(select(track_genres.c.genre_id).where(
        track_genres.c.track_id == track_id, track_genres.c.rank == 0)).scalar_one_or_none()


def _standing(conn: Connection, track_ids: Iterable[int] | None = None) -> dict[int, Mapping[str, Any]]:
    """Track id -> its newest standing decision row (a set/keep row no undo cancels)."""
    undo = label_decisions.alias("u")
    undone = select(undo.c.undoes_id).where(undo.c.undoes_id.is_not(None))
    newest = (select(label_decisions.c.track_id, func.max(label_decisions.c.id).label("id"))
              .where(label_decisions.c.action != "undo", label_decisions.c.id.not_in(undone))
              .group_by(label_decisions.c.track_id))
    if track_ids is not None:
        newest = newest.where(label_decisions.c.track_id.in_(list(track_ids)))
    newest = newest.subquery()
    rows = conn.execute(select(label_decisions).join(newest, newest.c.id == label_decisions.c.id)).mappings()
    return {int(r["track_id"]): r for r in rows}


def settled_track_ids(conn: Connection) -> set[int]:
    """Tracks whose genre a person has settled: a standing ``set`` or ``keep`` decision. The audit
    shows them as settled; a review queue leaves them out."""
    return set(_standing(conn))


def settled_genres(conn: Connection) -> dict[int, str]:
    """Settled track id -> the genre its standing decision gives it (display name)."""
    names = dict(conn.execute(select(genres.c.id, genres.c.display_name)).all())
    return {tid: names.get(r["genre_id"], "?") for tid, r in _standing(conn).items()}


def settled_clause(track_id: Any) -> Any:
    """A SQL condition: the track whose id is the column ``track_id`` has a standing decision (what
    :func:`settled_track_ids` lists), as a correlated EXISTS on ``ix_label_decisions_track_id``, so a
    query leaves settled tracks out without reading every decision."""
    x, u = label_decisions.alias("sx"), label_decisions.alias("su")
    return exists().where(x.c.track_id == track_id, x.c.action != "undo",
                          ~exists().where(u.c.undoes_id == x.c.id))


def effective_genre_clause(track_id: Any, genre_id: Any) -> Any:
    """A SQL condition: the effective genre (as ``track_effective_genres`` defines it) of the track in
    column ``track_id`` is ``genre_id``. Written per track rather than through the view, so a paged
    list probes the indexes of the few tracks it reads instead of PostgreSQL building the view."""
    # The standing decision: a set/keep row of the track no undo cancels, with no newer such row.
    d, du, n, nu = (label_decisions.alias(a) for a in ("ed", "edu", "en", "enu"))
    decided = exists().where(
        d.c.track_id == track_id, d.c.genre_id == genre_id, d.c.action != "undo",
        ~exists().where(du.c.undoes_id == d.c.id),
        ~exists().where(n.c.track_id == d.c.track_id, n.c.id > d.c.id, n.c.action != "undo",
                        ~exists().where(nu.c.undoes_id == n.c.id)))
    sheet = and_(~settled_clause(track_id), exists().where(
        track_genres.c.track_id == track_id, track_genres.c.rank == 0, track_genres.c.genre_id == genre_id))
    return or_(decided, sheet)


@dataclass(frozen=True)
class TrackDecision:
    """Where a track's genre stands: its effective and sheet genre and its standing decision (None when
    nobody decided, or the last decision was undone)."""

    track_id: int
    effective_genre: str | None
    sheet_genre: str | None
    standing: Decision | None


def track_decision(conn: Connection, track_id: int) -> TrackDecision:
    """The effective genre of a track (``track_effective_genres``) with its standing decision."""
    row = conn.execute(text("SELECT genre, sheet_genre FROM track_effective_genres WHERE track_id = :t"),
                       {"t": int(track_id)}).first()
    standing = next((d for d in list_decisions(conn, track_id=int(track_id)) if d.status == "standing"), None)
    return TrackDecision(track_id=int(track_id), effective_genre=row[0] if row else None,
                         sheet_genre=row[1] if row else None, standing=standing)


def audit_of(conn: Connection, track_id: int) -> int | None:
    """The newest label audit that lists the track (the audit a decision on it most likely answers)."""
    return conn.execute(select(func.max(label_issues.c.audit_id))
                        .where(label_issues.c.track_id == track_id)).scalar_one_or_none()


def _clean_text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; refused on both databases alike
        raise InputError(f"{what} contains a NUL character")
    if len(value) > limit:
        raise InputError(f"{what} is longer than {limit} characters")
    return value or None


def _append(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(label_decisions).values(**values).returning(label_decisions.c.id)).scalar_one())


def _outcome(conn: Connection, track_id: int, song: str, written_id: int | None, message: str) -> DecisionOutcome:
    written = next((d for d in list_decisions(conn, track_id=track_id) if d.id == written_id), None)
    effective = conn.execute(text("SELECT genre, sheet_genre FROM track_effective_genres WHERE track_id = :t"),
                             {"t": track_id}).first()
    return DecisionOutcome(track_id=track_id, song=song, written=written,
                           effective_genre=effective[0] if effective else None,
                           sheet_genre=effective[1] if effective else None, message=message)


def set_genre(conn: Connection, track: int | str, genre: str, *, decided_by: str | None = None,
              note: str | None = None, audit_id: int | None = None) -> DecisionOutcome:
    """File ``track`` under ``genre`` (an existing genre or an alias of one). Appends a ``set`` row;
    nothing is written when the track's standing decision already says ``genre``. ``audit_id``: the label
    audit the decision answers (default: the newest audit that lists the track, if any)."""
    track_id, artist, title = _track(conn, track)
    song = f"{artist} - {title}"
    gid = _genre_id(conn, genre)
    by, note = _clean_text(decided_by, "--by", MAX_TEXT), _clean_text(note, "--note", MAX_NOTE)
    standing = _standing(conn, [track_id]).get(track_id)
    name = _genre_name(conn, gid)
    if standing is not None and standing["genre_id"] == gid:
        return _outcome(conn, track_id, song, None,
                        f"track {track_id} ({song}) is already decided as {name!r}; nothing written")
    sheet = _sheet_genre_id(conn, track_id)
    new_id = _append(conn, track_id=track_id, action="set", genre_before_id=sheet, genre_id=gid, decided_by=by,
                     audit_id=audit_of(conn, track_id) if audit_id is None else audit_id, note=note)
    before = _genre_name(conn, sheet)
    return _outcome(conn, track_id, song, new_id,
                    f"track {track_id} ({song}): {before or 'no sheet genre'} -> {name} (decision {new_id})")


def keep_genre(conn: Connection, track: int | str, *, decided_by: str | None = None, note: str | None = None,
               audit_id: int | None = None) -> DecisionOutcome:
    """Confirm the sheet's coarse genre of ``track``: a ``keep`` row, so the track counts as settled and a
    later change of the sheet is reported as a conflict. Nothing is written when a standing decision
    already keeps that genre. ``audit_id`` as in :func:`set_genre`."""
    track_id, artist, title = _track(conn, track)
    song = f"{artist} - {title}"
    sheet = _sheet_genre_id(conn, track_id)
    if sheet is None:
        raise InputError(f"track {track_id} ({song}) has no sheet genre to keep; use: music-classifier labels set "
                         f"{track_id} GENRE")
    by, note = _clean_text(decided_by, "--by", MAX_TEXT), _clean_text(note, "--note", MAX_NOTE)
    name = _genre_name(conn, sheet)
    standing = _standing(conn, [track_id]).get(track_id)
    if standing is not None and standing["genre_id"] == sheet:
        return _outcome(conn, track_id, song, None,
                        f"track {track_id} ({song}) is already settled as {name!r}; nothing written")
    new_id = _append(conn, track_id=track_id, action="keep", genre_before_id=sheet, genre_id=sheet, decided_by=by,
                     audit_id=audit_of(conn, track_id) if audit_id is None else audit_id, note=note)
    return _outcome(conn, track_id, song, new_id, f"track {track_id} ({song}): kept {name} (decision {new_id})")


def undo_decision(conn: Connection, track: int | str, *, decided_by: str | None = None,
                  note: str | None = None) -> DecisionOutcome:
    """Cancel ``track``'s newest standing decision by appending an ``undo`` row that names it; the
    decision before it (if any) stands again, else the sheet's genre. InputError when there is none."""
    track_id, artist, title = _track(conn, track)
    song = f"{artist} - {title}"
    standing = _standing(conn, [track_id]).get(track_id)
    if standing is None:
        raise InputError(f"track {track_id} ({song}) has no decision to undo")
    by, note = _clean_text(decided_by, "--by", MAX_TEXT), _clean_text(note, "--note", MAX_NOTE)
    new_id = _append(conn, track_id=track_id, action="undo", genre_before_id=standing["genre_before_id"],
                     genre_id=None, undoes_id=standing["id"], decided_by=by, note=note)
    out = _outcome(conn, track_id, song, new_id, "")
    return DecisionOutcome(**{**out.__dict__, "message": (
        f"track {track_id} ({song}): undid decision {standing['id']} ({standing['action']} "
        f"{_genre_name(conn, standing['genre_id'])}); now {out.effective_genre or 'no genre'}")})


def list_decisions(conn: Connection, *, track_id: int | None = None) -> list[Decision]:
    """Every decision, oldest first, with its status: ``standing`` (the track's effective decision),
    ``superseded`` (a newer standing decision replaced it), ``undone``, or ``undo`` (an undo row)."""
    before, decided, undone = genres.alias("gb"), genres.alias("gd"), label_decisions.alias("x")
    stmt = (select(label_decisions, tracks.c.artist, tracks.c.title, before.c.display_name.label("before_name"),
                   decided.c.display_name.label("genre_name"), undone.c.genre_id.label("undone_genre_id"))
            .join(tracks, tracks.c.id == label_decisions.c.track_id)
            .outerjoin(before, before.c.id == label_decisions.c.genre_before_id)
            .outerjoin(decided, decided.c.id == label_decisions.c.genre_id)
            .outerjoin(undone, undone.c.id == label_decisions.c.undoes_id)
            .order_by(label_decisions.c.id))
    if track_id is not None:
        stmt = stmt.where(label_decisions.c.track_id == track_id)
    rows = conn.execute(stmt).mappings().all()
    undone_ids = {r["undoes_id"] for r in rows if r["undoes_id"] is not None}
    standing_ids = {int(r["id"]) for r in _standing(conn, None if track_id is None else [track_id]).values()}
    names = dict(conn.execute(select(genres.c.id, genres.c.display_name)).all()) if undone_ids else {}
    out = []
    for r in rows:
        if r["action"] == "undo":
            status, genre = "undo", names.get(r["undone_genre_id"])
        else:
            status = ("standing" if r["id"] in standing_ids else "undone" if r["id"] in undone_ids
                      else "superseded")
            genre = r["genre_name"]
        out.append(Decision(id=int(r["id"]), track_id=int(r["track_id"]), artist=str(r["artist"]),
                            title=str(r["title"]), action=str(r["action"]), genre_before=r["before_name"],
                            genre=genre, decided_by=r["decided_by"], decided_at=r["decided_at"],
                            audit_id=r["audit_id"], note=r["note"], undoes_id=r["undoes_id"], status=status))
    return out


def decisions_csv(decisions: list[Decision]) -> str:
    """The decisions as CSV text; user text neutralised for spreadsheets as ``sql --csv`` does."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    safe = neutralise_cell
    for d in decisions:
        writer.writerow([d.id, d.track_id, safe(d.artist), safe(d.title), d.action, safe(d.genre_before or ""),
                         safe(d.genre or ""), d.status, safe(d.decided_by or ""), str(d.decided_at or ""),
                         "" if d.audit_id is None else d.audit_id, safe(d.note or "")])
    return buf.getvalue()


def decision_conflicts(conn: Connection, sheet_changes: Mapping[int, tuple[int | None, int | None]]
                       ) -> list[DecisionConflict]:
    """Of ``sheet_changes`` (track id -> (sheet genre id before, after) of a sync), the decided tracks
    whose new sheet genre differs from their standing decision, by track id. Nothing is written: a
    sync never undoes a decision."""
    if not sheet_changes:
        return []
    ids = list(sheet_changes)
    standing: dict[int, Mapping[str, Any]] = {}
    for start in range(0, len(ids), 5000):
        standing.update(_standing(conn, ids[start:start + 5000]))
    if not standing:
        return []
    names = dict(conn.execute(select(genres.c.id, genres.c.display_name)).all())
    songs = {int(t): f"{a} - {ti}" for t, a, ti in conn.execute(
        select(tracks.c.id, tracks.c.artist, tracks.c.title).where(tracks.c.id.in_(bindparam("ids", expanding=True))),
        {"ids": sorted(standing)})}
    out = []
    for tid in sorted(standing):
        was, now = sheet_changes[tid]
        decided = standing[tid]["genre_id"]
        if now != decided:
            out.append(DecisionConflict(track_id=tid, song=songs.get(tid, ""), sheet_before=names.get(was),
                                        sheet_now=names.get(now), decided=names.get(decided, "?")))
    return out


__all__ = ["Decision", "DecisionConflict", "DecisionOutcome", "TrackDecision", "audit_of", "decision_conflicts",
           "decisions_csv", "effective_genre_clause", "keep_genre", "list_decisions", "set_genre", "settled_clause",
           "settled_genres", "settled_track_ids", "track_decision", "undo_decision"]
