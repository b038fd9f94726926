"""Browsing the library page by page: the tracks list with its filters, and one track's facts.

Used by the local page (``music-classifier serve``); plain functions over a connection, no web types.
Paging is by keyset on ``tracks.id`` (the primary key): a page is "the next N ids after the last one
shown" (or before the first one, going back), so page 1,000 of a 100,000-track library costs what
page 1 does, where OFFSET would read and discard every row before it. Every filter is an EXISTS on an
indexed key: the primary keys of ``track_genres`` (track, rank) and ``dataset_members`` (dataset,
track), the unique keys of ``proposals`` (student, track) and ``extractions`` (track first).

The search (a part of the artist or the title, any case) is ``lower(column) LIKE lower('%text%')``.
On PostgreSQL that is exactly the expression of the trigram indexes of migration 0008
(``gin (lower(artist) gin_trgm_ops)``, the same for the title), so a rare text reads a few index
pages instead of every track; without ``pg_trgm`` (see docs/sql.md) the same query still answers, by a
scan. A text of 1-2 characters holds no trigram, so "contains" would read every track whenever few
match; such a text matches the START of the artist or the title instead (``lower(column) LIKE
lower('ab%')``: "u2", "ac" for "AC/DC"), which the B-tree indexes of migration 0010
(``lower(artist) text_pattern_ops``, the same for the title) serve as a range scan, with or without
``pg_trgm``. The page says so under the box. On SQLite, whose ``lower()`` folds only ASCII, the same
expression compiles to a Python ``str.lower`` registered on the connection, so "é" finds "É" on both
databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, and_, exists, func, literal, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from music_classifier.db.tables import (
    dataset_members,
    datasets,
    extractions,
    genres,
    proposals,
    students,
    track_genres,
    tracks,
)

#: The state filter's values, as the page names them.
TRACK_STATES = ("no-audio", "waiting", "extracted", "failed")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_SEARCH = 200
#: A search of at most this many characters matches the start of the artist or the title, not any part.
SHORT_SEARCH = 2


@dataclass(frozen=True)
class TrackFilter:
    genre: str | None = None  # genres.name (the normalised key) of the coarse genre
    effective: str | None = None  # genres.name of the effective genre (a standing decision, else the sheet's)
    student: str | None = None  # students.name
    dataset: str | None = None  # datasets.name
    state: str | None = None  # one of TRACK_STATES
    search: str | None = None  # a part of the artist or the title (1-2 characters: its start), any case

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class TrackRow:
    id: int
    artist: str
    title: str
    genre: str | None
    has_audio: bool
    state: str


@dataclass
class TrackPage:
    rows: list[TrackRow]
    after: int | None  # the keyset of the next page (None: this is the last)
    before: int | None  # the keyset of the previous page (None: this is the first)


def _state_conditions() -> dict[str, Any]:
    def extraction(status: str):  # noqa: ANN202
        return exists().where(and_(extractions.c.track_id == tracks.c.id, extractions.c.status == status))

    done, failed = extraction("done"), extraction("failed")
    return {
        "no-audio": tracks.c.audio_path.is_(None),
        "extracted": done,
        "failed": and_(not_(done), failed),
        "waiting": and_(tracks.c.audio_path.is_not(None), not_(done), not_(failed)),
    }


def _where(flt: TrackFilter) -> list[Any]:
    conds: list[Any] = [tracks.c.removed_at.is_(None)]
    if flt.genre:
        conds.append(exists().where(and_(
            track_genres.c.track_id == tracks.c.id, track_genres.c.rank == 0,
            track_genres.c.genre_id == select(genres.c.id).where(genres.c.name == flt.genre).scalar_subquery())))
    if flt.effective:
        from music_classifier.ingest.label_decisions import effective_genre_clause

        conds.append(effective_genre_clause(
            tracks.c.id, select(genres.c.id).where(genres.c.name == flt.effective).scalar_subquery()))
    if flt.student:
        conds.append(exists().where(and_(
            proposals.c.track_id == tracks.c.id,
            proposals.c.student_id == select(students.c.id).where(students.c.name == flt.student).scalar_subquery())))
    if flt.dataset:
        conds.append(exists().where(and_(
            dataset_members.c.track_id == tracks.c.id,
            dataset_members.c.dataset_id == select(datasets.c.id).where(
                datasets.c.name == flt.dataset).scalar_subquery())))
    if flt.state:
        conditions = _state_conditions()
        if flt.state not in conditions:
            raise ValueError(f"unknown state {flt.state!r}")
        conds.append(conditions[flt.state])
    needle = _search_text(flt.search)
    if needle:
        # LIKE metacharacters typed by the user are matched literally.
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # A short text is matched at the start (see the module's docstring: no trigram, a prefix index).
        pattern = literal(("" if is_short_search(needle) else "%") + escaped + "%", String)
        conds.append(or_(search_fold(tracks.c.artist).like(search_fold(pattern), escape="\\"),
                         search_fold(tracks.c.title).like(search_fold(pattern), escape="\\")))
    return conds


def is_short_search(search: str | None) -> bool:
    """Whether the tracks search matches ``search`` at the start of the artist or the title (a text of
    1 to SHORT_SEARCH characters) rather than anywhere in them."""
    return 0 < len(_search_text(search)) <= SHORT_SEARCH


def _search_text(search: str | None) -> str:
    """The searched text as the query uses it: at most MAX_SEARCH characters, without NUL (which no
    stored text holds and PostgreSQL refuses in a parameter)."""
    return (search or "")[:MAX_SEARCH].replace("\x00", "")


class search_fold(FunctionElement):  # noqa: N801 (a SQL function, named as SQLAlchemy's func.* are)
    """``lower(x)`` as the search compares it: PostgreSQL's own ``lower()``, which is also what the
    trigram indexes hold; on SQLite :data:`SQLITE_FOLD`, Python's ``str.lower`` (SQLite's ``lower()``
    leaves every non-ASCII letter as it is)."""

    type = String()
    inherit_cache = True


SQLITE_FOLD = "mc_search_lower"


@compiles(search_fold)
def _fold(element: search_fold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(search_fold, "sqlite")
def _fold_sqlite(element: search_fold, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


def _sqlite_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _prepare_search(conn: Connection, flt: TrackFilter) -> None:
    """What a search needs from the connection before its query runs."""
    if not _search_text(flt.search):
        return
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.create_function(SQLITE_FOLD, 1, _sqlite_lower, deterministic=True)
    elif conn.dialect.name == "postgresql" and (conn.dialect.server_version_info or (0,)) >= (12,):
        # psycopg prepares a statement it has run 5 times, and PostgreSQL may then plan it once for any
        # pattern (a "generic plan"): walking the primary key and testing every track, 40x slower for a
        # rare text than the trigram index, which is only chosen when the planner sees the pattern.
        # This transaction's searches are planned for their own text. (SET LOCAL ends with it; the
        # setting exists from PostgreSQL 12.)
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def list_tracks(conn: Connection, flt: TrackFilter = TrackFilter(), *, after: int | None = None,
                before: int | None = None, limit: int = DEFAULT_PAGE_SIZE) -> TrackPage:
    """One page of live tracks matching ``flt``, by id: the first page, the one ``after`` an id, or
    the one ``before`` an id."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    _prepare_search(conn, flt)
    conds = _where(flt)
    backwards = before is not None and after is None
    if after is not None:
        conds.append(tracks.c.id > int(after))
    elif backwards:
        conds.append(tracks.c.id < int(before))
    order = tracks.c.id.desc() if backwards else tracks.c.id
    page = select(tracks.c.id).where(*conds).order_by(order).limit(limit + 1).subquery()
    done = exists().where(and_(extractions.c.track_id == tracks.c.id, extractions.c.status == "done"))
    failed = exists().where(and_(extractions.c.track_id == tracks.c.id, extractions.c.status == "failed"))
    stmt = (select(tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.audio_path, genres.c.display_name,
                   done.label("done"), failed.label("failed"))
            .join(page, page.c.id == tracks.c.id)
            .outerjoin(track_genres, and_(track_genres.c.track_id == tracks.c.id, track_genres.c.rank == 0))
            .outerjoin(genres, genres.c.id == track_genres.c.genre_id)
            .order_by(order))
    found = conn.execute(stmt).all()
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    rows = [TrackRow(id=int(r.id), artist=r.artist, title=r.title, genre=r.display_name,
                     has_audio=r.audio_path is not None, state=_state_of(r)) for r in found]
    if not rows:
        return TrackPage(rows, None, None)
    first, last = rows[0].id, rows[-1].id
    if backwards:
        return TrackPage(rows, after=last, before=first if more else None)
    has_before = after is not None and conn.execute(
        select(tracks.c.id).where(*_where(flt), tracks.c.id < first).limit(1)).first() is not None
    return TrackPage(rows, after=last if more else None, before=first if has_before else None)


def _state_of(row: Any) -> str:
    if row.done:
        return "extracted"
    if row.failed:
        return "failed"
    return "no-audio" if row.audio_path is None else "waiting"


def filter_choices(conn: Connection) -> dict[str, list[tuple[str, str]]]:
    """(value, label) pairs for the tracks page's filter menus."""
    return {
        "genre": [(r.name, r.display_name) for r in conn.execute(
            select(genres.c.name, genres.c.display_name).order_by(genres.c.display_name))],
        "effective": [(r.name, r.display_name) for r in conn.execute(
            select(genres.c.name, genres.c.display_name).order_by(genres.c.display_name))],
        "student": [(r.name, r.name) for r in conn.execute(select(students.c.name).order_by(students.c.name))],
        "dataset": [(r.name, r.name) for r in conn.execute(select(datasets.c.name).order_by(datasets.c.name))],
        "state": [(s, s.replace("-", " ")) for s in TRACK_STATES],
    }


def genre_names(conn: Connection) -> list[str]:
    """Every genre's display name, by name: the "relabel to" menus."""
    return list(conn.execute(select(genres.c.display_name).order_by(genres.c.display_name)).scalars())


@dataclass
class TrackFacts:
    id: int
    artist: str
    title: str
    source: str
    audio_path: str | None
    duration_s: float | None
    removed: bool
    genres: list[tuple[int, str]] = field(default_factory=list)  # (rank, display name): 0 = coarse
    proposers: list[tuple[str, int]] = field(default_factory=list)  # (student, sheet row)
    extractions: list[tuple[str, str]] = field(default_factory=list)  # (extractor, status)


def track_facts(conn: Connection, track_id: int) -> TrackFacts | None:
    """What the sheet and the library say about one track; None when there is no such track."""
    row = conn.execute(select(tracks).where(tracks.c.id == int(track_id))).mappings().first()
    if row is None:
        return None
    facts = TrackFacts(id=int(row["id"]), artist=row["artist"], title=row["title"], source=row["source"],
                       audio_path=row["audio_path"], duration_s=row["duration_s"],
                       removed=row["removed_at"] is not None)
    facts.genres = [(int(r.rank), r.display_name) for r in conn.execute(
        select(track_genres.c.rank, genres.c.display_name).join(genres, genres.c.id == track_genres.c.genre_id)
        .where(track_genres.c.track_id == facts.id).order_by(track_genres.c.rank))]
    facts.proposers = [(r.name, int(r.sheet_row)) for r in conn.execute(
        select(students.c.name, proposals.c.sheet_row).join(students, students.c.id == proposals.c.student_id)
        .where(proposals.c.track_id == facts.id).order_by(students.c.name))]
    facts.extractions = [(r.extractor, r.status) for r in conn.execute(
        select(extractions.c.extractor, extractions.c.status).where(extractions.c.track_id == facts.id)
        .order_by(extractions.c.id))]
    return facts


def audio_path_of(conn: Connection, track_id: int) -> str | None:
    """The stored library path of a live track's audio (relative to the root), or None."""
    return conn.execute(select(tracks.c.audio_path).where(
        tracks.c.id == int(track_id), tracks.c.removed_at.is_(None))).scalar()


#: The audit queue shows at most this many suspects at a time (a pass through a class is far shorter).
MAX_SUSPECTS = 100
#: ... and counts the unsettled ones up to this many ("more than 1,000 still to settle").
MAX_SUSPECT_COUNT = 1_000


@dataclass
class AuditQueue:
    audit_id: int
    dataset: str
    kind: str
    created_at: Any
    n_tracks: int
    n_suspects: int  # unsettled, in all (at most MAX_SUSPECT_COUNT), of which ``rows`` are the first MAX_SUSPECTS
    rows: list[Any]  # models.audit.AuditRow, in the audit's stored rank order
    more_suspects: bool = False  # more than n_suspects (= MAX_SUSPECT_COUNT) are unsettled


def audit_queue(conn: Connection, *, limit: int = MAX_SUSPECTS) -> AuditQueue | None:
    """The newest stored audit's suspects (flagged, or heard as another genre: ``AuditResult.disputed``)
    that nobody has settled yet (no standing label decision: ``settled_track_ids``), in its stored rank
    order, the first ``limit`` of them; None before any audit. Reads only those rows, not the whole
    audit (``latest_audit`` reads every audited track)."""
    from music_classifier.db.tables import label_audits, label_issues
    from music_classifier.models.audit import AuditRow, students_of

    run = conn.execute(select(label_audits).order_by(label_audits.c.id.desc()).limit(1)).mappings().first()
    if run is None:
        return None
    from music_classifier.ingest.label_decisions import settled_clause

    suspect = and_(label_issues.c.audit_id == run["id"],
                   or_(label_issues.c.flagged, label_issues.c.heard_genre != label_issues.c.sheet_genre),
                   not_(settled_clause(label_issues.c.track_id)))
    # Counted up to MAX_SUSPECT_COUNT + 1, in rank order: that walks the partial index
    # ix_label_issues_suspects (migration 0008), whose predicate is the flagged-or-heard-otherwise test
    # above, written the same way (or the database cannot prove the index applies), and stops there.
    # Unordered, PostgreSQL misjudges the share of suspects (a comparison of two columns) and reads the
    # whole audit; uncapped, an audit of 100,000 tracks with most disputed would be read on every view.
    capped = select(label_issues.c.track_id).where(suspect).order_by(label_issues.c.rank) \
        .limit(MAX_SUSPECT_COUNT + 1).subquery()
    n_suspects = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    # The first suspects by rank first, then their tracks by primary key: joining before the LIMIT
    # makes PostgreSQL hash-join every suspect with every track (5x slower on 100,000 tracks).
    first = select(label_issues).where(suspect).order_by(label_issues.c.rank).limit(max(1, int(limit))).subquery()
    found = conn.execute(
        select(first, tracks.c.artist, tracks.c.title).join(tracks, tracks.c.id == first.c.track_id)
        .order_by(first.c.rank)).mappings().all()
    names = students_of(conn, [int(r["track_id"]) for r in found])
    rows = [AuditRow(rank=int(r["rank"]), track_id=int(r["track_id"]), artist=r["artist"], title=r["title"],
                     students=names.get(int(r["track_id"]), []), sheet_genre=r["sheet_genre"],
                     heard_genre=r["heard_genre"], sheet_probability=float(r["sheet_probability"]),
                     heard_probability=float(r["heard_probability"]), flagged=bool(r["flagged"]),
                     dispute_score=float(r["dispute_score"])) for r in found]
    return AuditQueue(audit_id=int(run["id"]), dataset=run["dataset_name"], kind=run["model_kind"],
                      created_at=run["created_at"], n_tracks=int(run["n_tracks"]),
                      n_suspects=min(n_suspects, MAX_SUSPECT_COUNT), more_suspects=n_suspects > MAX_SUSPECT_COUNT,
                      rows=rows)
