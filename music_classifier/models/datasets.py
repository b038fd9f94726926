"""Datasets: a stored definition, its membership, and the SQL view ``dataset_<name>``.

Membership gives the same rows on SQLite and PostgreSQL: one SQL pass lists the candidates, Python
counts and samples them (so the feature views are read once):

* candidates: live tracks of the chosen sources that have the features (a row in the feature view,
  which already keeps each track's newest ``done`` extraction) and an effective genre (the view
  ``track_effective_genres``: the track's standing label decision, else the sheet's coarse genre,
  rank 0; subgenres never count); members whose genre came from a decision are recorded in
  ``dataset_member_decisions``. A member's genre is stored (``dataset_members.genre_id``): a decision taken
  later reaches the dataset through ``dataset refresh`` (:mod:`.dataset_refresh`);
* the top-N coarse genres having at least K candidates, ties broken by genre name. The ordering
  of (count desc, name) is done in Python by code point, so a database collation cannot reorder ties;
* each genre capped at M tracks in the order ``(track_id * 2654435761 + offset) % 4294967296``, ties
  by id, where ``offset = seed * 2654435761 % 4294967296`` (computed in Python): the order key is the
  multiplicative hash of ``track_id + seed``. (A bare ``+ seed`` only rotates the hash circle by
  ``seed``, so small seeds 0, 1, 2 … would give nearly the same sample.) Python's integers are exact,
  so no overflow or wrap-around differs between databases.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text

from music_classifier.db.feature_columns import FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST
from music_classifier.db.planner_stats import (
    LIBRARY_TABLES,
    extraction_tables,
    refresh_if_grown,
    refresh_planner_stats,
)
from music_classifier.db.tables import (
    TRACK_SOURCES,
    dataset_member_decisions,
    dataset_members,
    datasets,
    genres,
    label_decisions,
    models,
    tracks,
)
from music_classifier.db.views import (
    DATASET_NAME,
    DATASET_VIEW_PREFIX,
    FEATURE_SET_ALIASES,
    FEATURE_SET_VIEWS,
    MAX_IDENTIFIER_BYTES,
    SEGMENT_SET_VIEWS,
    dataset_view_name,
    dataset_view_sql,
    feature_sets,
    source_views,
)
from music_classifier.errors import InputError

#: Feature sets a dataset can combine (comma list), plus the old name "both" (= librosa,spotify).
FEATURE_CHOICES = (*FEATURE_SET_VIEWS, *FEATURE_SET_ALIASES)
MAX_SEED = 2**32 - 1
HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash constant
HASH_MODULUS = 4294967296


@dataclass(frozen=True)
class DatasetDefinition:
    features: str
    top: int
    min_per_genre: int
    max_per_genre: int | None = None
    segments: bool = False
    sources: list[str] = field(default_factory=lambda: list(TRACK_SOURCES))
    seed: int = 0

    def validate(self) -> None:
        try:
            feature_sets(self.features)
        except ValueError as exc:
            raise InputError(f"--features {self.features!r}: {exc}; choose one or a comma list of "
                             f"{', '.join(FEATURE_SET_VIEWS)} (or both = librosa,spotify)") from None
        if self.segments:
            lacking = [s for s in feature_sets(self.features) if s not in SEGMENT_SET_VIEWS]
            if lacking:
                raise InputError(f"--segments: {', '.join(lacking)} features have no segments (segments exist for "
                                 f"{', '.join(SEGMENT_SET_VIEWS)})")
        if self.top < 1:
            raise InputError(f"--top {self.top}: must be at least 1")
        if self.min_per_genre < 1:
            raise InputError(f"--min-per-genre {self.min_per_genre}: must be at least 1")
        if self.max_per_genre is not None and self.max_per_genre < 1:
            raise InputError(f"--max-per-genre {self.max_per_genre}: must be at least 1")
        bad = [s for s in self.sources if s not in TRACK_SOURCES]
        if bad or not self.sources:
            raise InputError(f"--source {','.join(self.sources)!r}: sources are {', '.join(TRACK_SOURCES)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"--seed {self.seed}: must be between 0 and {MAX_SEED}")


@dataclass(frozen=True)
class DecidedMember:
    """A member whose genre came from a label decision (not the sheet) when the dataset was created."""

    track_id: int
    song: str  # "artist - title"
    sheet_genre: str | None  # the sheet's coarse genre when the decision was made
    genre: str  # the member's genre in the dataset
    action: str  # set | keep
    decision_id: int


@dataclass
class DatasetSummary:
    id: int
    name: str
    view: str
    definition: dict[str, Any]
    genre_counts: dict[str, int]  # display name -> members, largest first
    created_at: Any = None
    live_counts: dict[str, int] = field(default_factory=dict)  # display name -> members still in the view
    left_out: list[tuple[str, int, str]] = field(default_factory=list)  # at creation: (genre, tracks, why)
    decided: list[DecidedMember] = field(default_factory=list)  # members that took a decided genre
    # With get_dataset(check_stale=True): what `dataset refresh` would change (a dataset_refresh.DatasetRefresh),
    # None when the members have their effective genres.
    pending: Any = None

    @property
    def n_tracks(self) -> int:
        return sum(self.genre_counts.values())

    @property
    def n_live(self) -> int:
        return sum(self.live_counts.values())


@dataclass
class DatasetDrift:
    """Members stored at creation vs members still live (a live track with the features, in the view)."""

    name: str
    stored: int
    live: int
    min_per_genre: int
    by_genre: dict[str, tuple[int, int]]  # display name -> (stored, live)
    below_min: dict[str, int]  # genres whose live count fell below the definition's minimum
    # What `dataset refresh` would change (a dataset_refresh.DatasetRefresh): members whose effective genre
    # (a label decision) differs from the genre stored at creation; None when there are none or not checked.
    pending: Any = None

    @property
    def lost(self) -> int:
        return self.stored - self.live

    def by_genre_text(self) -> str:
        return ", ".join(f"{g} {s} -> {n}" for g, (s, n) in self.by_genre.items() if s != n)


def seed_offset(seed: int) -> int:
    return (seed * HASH_MULTIPLIER) % HASH_MODULUS


def validate_name(name: str) -> str:
    """``name``, or InputError (one line) unless it matches the pattern and its view name
    (``dataset_<name>``) fits PostgreSQL's identifier limit."""
    if not DATASET_NAME.match(name or ""):
        raise InputError(f"dataset name {name!r}: must match [a-z][a-z0-9_]{{0,40}} "
                         "(lower-case letter, then letters, digits, underscores)")
    view = f"{DATASET_VIEW_PREFIX}{name}"
    if len(view.encode()) > MAX_IDENTIFIER_BYTES:
        raise InputError(f"dataset name {name!r}: its view {view!r} would be longer than the database's "
                         f"{MAX_IDENTIFIER_BYTES}-byte limit for a name")
    return name


def feature_view_names(definition: DatasetDefinition | dict[str, Any]) -> list[str]:
    d = asdict(definition) if isinstance(definition, DatasetDefinition) else definition
    return source_views(d["features"], bool(d.get("segments")))


def view_columns() -> dict[str, list[str]]:
    """Feature view -> its frozen columns (what dataset_view_sql exposes)."""
    return {v: list(cols) for v, (_, cols) in {**FEATURE_VIEWS_LATEST, **SEGMENT_VIEWS_LATEST}.items()}


def _candidates_sql(views: list[str]) -> str:
    # View names come from the fixed FEATURE_SET_VIEWS / SEGMENT_SET_VIEWS tables, never from user input.
    has_features = " ".join(f"AND t.id IN (SELECT track_id FROM {v})" for v in views)
    return (f"SELECT t.id AS track_id, eg.genre_id AS genre_id FROM tracks t "
            f"JOIN track_effective_genres eg ON eg.track_id = t.id "
            f"WHERE t.removed_at IS NULL AND t.source IN :sources {has_features}")


Candidates = list[tuple[int, int]]  # (track_id, genre_id) of every candidate, what candidate_tracks returns


def candidate_tracks(conn: Connection, definition: DatasetDefinition) -> Candidates:
    """(track_id, genre_id) of every candidate, ordered by track id: the one pass over the feature views
    (reading them is most of a dataset's creation: a segment view pivots every segment row). Counting,
    choosing and capping work on this list, so the views are never scanned twice."""
    stmt = text(_candidates_sql(feature_view_names(definition)) + " ORDER BY t.id").bindparams(
        bindparam("sources", expanding=True))
    return [(int(t), int(g)) for t, g in conn.execute(stmt, {"sources": list(definition.sources)})]


def rank_genres(conn: Connection, definition: DatasetDefinition,
                candidates: Candidates | None = None) -> list[tuple[int, str, str, int]]:
    """(genre_id, name, display name, candidates) of every genre with a candidate, most first, ties by name.
    ``candidates``: :func:`candidate_tracks` already run by the caller."""
    candidates = candidate_tracks(conn, definition) if candidates is None else candidates
    counts = Counter(g for _, g in candidates)
    if not counts:
        return []
    names = conn.execute(select(genres.c.id, genres.c.name, genres.c.display_name)
                         .where(genres.c.id.in_(sorted(counts)))).all()
    return sorted(((int(gid), str(name), str(display), counts[int(gid)]) for gid, name, display in names),
                  key=lambda r: (-r[3], r[1]))


Ranked = list[tuple[int, str, str, int]]  # what rank_genres returns


def choose_genres(conn: Connection, definition: DatasetDefinition,
                  ranked: Ranked | None = None) -> list[tuple[int, str, int]]:
    """(genre_id, name, candidates) of the chosen genres, most candidates first, ties by name.
    ``ranked``: :func:`rank_genres` already run by the caller (it counts over the feature views)."""
    ranked = rank_genres(conn, definition) if ranked is None else ranked
    qualified = [(gid, name, n) for gid, name, _, n in ranked if n >= definition.min_per_genre]
    return qualified[:definition.top]


def left_out_genres(conn: Connection, definition: DatasetDefinition,
                    ranked: Ranked | None = None) -> list[tuple[str, int, str]]:
    """(display name, candidates, why) of each genre with candidates that the definition leaves out."""
    out = []
    qualified = 0
    for _, _, display, n in rank_genres(conn, definition) if ranked is None else ranked:
        if n < definition.min_per_genre:
            out.append((display, n, f"below --min-per-genre {definition.min_per_genre}"))
        else:
            qualified += 1
            if qualified > definition.top:
                out.append((display, n, f"beyond --top {definition.top}"))
    return out


def select_members(conn: Connection, definition: DatasetDefinition, ranked: Ranked | None = None,
                   candidates: Candidates | None = None) -> list[tuple[int, int]]:
    """(track_id, genre_id) of the members, ordered by genre id then track id.

    Each chosen genre keeps its first ``max_per_genre`` candidates in the seeded hash order (exact
    integer arithmetic in Python: the same on every database)."""
    candidates = candidate_tracks(conn, definition) if candidates is None else candidates
    chosen = choose_genres(conn, definition, rank_genres(conn, definition, candidates) if ranked is None else ranked)
    by_genre: dict[int, list[int]] = {gid: [] for gid, _, _ in chosen}
    for t, g in candidates:
        if g in by_genre:
            by_genre[g].append(t)
    offset = seed_offset(definition.seed)
    members = []
    for gid in sorted(by_genre):
        tracks_of = by_genre[gid]
        if definition.max_per_genre is not None and len(tracks_of) > definition.max_per_genre:
            tracks_of = sorted(tracks_of, key=lambda t: ((t * HASH_MULTIPLIER + offset) % HASH_MODULUS, t))
            tracks_of = sorted(tracks_of[:definition.max_per_genre])
        members += [(t, gid) for t in sorted(tracks_of)]
    return members


def create_dataset(conn: Connection, name: str, definition: DatasetDefinition, *,
                   allow_fewer: bool = False) -> DatasetSummary:
    """Store the definition and membership and create the view, in the caller's transaction.

    Fewer than ``top`` qualifying genres is an error naming the genres left out and why, unless
    ``allow_fewer``; the summary's ``left_out`` lists every genre left out (too few tracks, or beyond top).
    """
    validate_name(name)
    definition.validate()
    if definition.features not in FEATURE_SET_ALIASES:  # "librosa, musicnn" is stored as "librosa,musicnn"
        definition = replace(definition, features=",".join(feature_sets(definition.features)))
    if conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first():
        raise InputError(f"dataset {name!r} already exists (drop it first: music-classifier dataset drop {name})")
    refresh_if_grown(conn, [*LIBRARY_TABLES, *extraction_tables()])  # values written since the last ANALYZE
    candidates = candidate_tracks(conn, definition)  # once: counts, members and left-out genres come from it
    ranked = rank_genres(conn, definition, candidates)
    members = select_members(conn, definition, ranked, candidates)
    if not members:
        raise InputError(f"dataset {name!r}: no coarse genre has at least {definition.min_per_genre} live "
                         f"{definition.features}{' segment' if definition.segments else ''} tracks from sources "
                         f"{','.join(definition.sources)}; nothing created")
    left_out = left_out_genres(conn, definition, ranked)
    n_genres = len({g for _, g in members})
    if n_genres < definition.top and not allow_fewer:
        raise InputError(f"dataset {name!r}: only {n_genres} genre(s) have at least {definition.min_per_genre} "
                         f"tracks, fewer than --top {definition.top} (left out: {left_out_text(left_out)}); "
                         "nothing created (--allow-fewer to create it anyway)")
    stored = asdict(definition)
    dataset_id = conn.execute(insert(datasets).values(name=name, definition=stored)
                              .returning(datasets.c.id)).scalar_one()
    conn.execute(insert(dataset_members), [{"dataset_id": dataset_id, "track_id": t, "genre_id": g}
                                           for t, g in members])
    refresh_planner_stats(conn, ["dataset_members", "dataset_member_decisions"])  # before it is joined below
    conn.execute(text("INSERT INTO dataset_member_decisions (dataset_id, track_id, decision_id) "
                      "SELECT m.dataset_id, m.track_id, eg.decision_id FROM dataset_members m "
                      "JOIN track_effective_genres eg ON eg.track_id = m.track_id "
                      "WHERE m.dataset_id = :ds AND eg.decision_id IS NOT NULL"), {"ds": dataset_id})
    conn.execute(text(dataset_view_sql(name, dataset_id, definition.features, definition.segments, view_columns())))
    summary = get_dataset(conn, name, count_live=False)
    summary.live_counts = dict(summary.genre_counts)  # just selected from the views: every member is live
    summary.left_out = left_out
    return summary


def left_out_text(left_out: list[tuple[str, int, str]]) -> str:
    return "; ".join(f"{g} ({n} tracks): {why}" for g, n, why in left_out) or "none"


def _definition(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else json.loads(raw)


def _genre_counts(conn: Connection, dataset_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(genres.c.display_name, func.count())
        .select_from(dataset_members.join(genres, genres.c.id == dataset_members.c.genre_id))
        .where(dataset_members.c.dataset_id == dataset_id)
        .group_by(genres.c.display_name)).all()
    return dict(sorted(((str(g), int(n)) for g, n in rows), key=lambda r: (-r[1], r[0])))


def _live_counts(conn: Connection, name: str) -> dict[str, int]:
    """Distinct tracks per genre still in the view (the feature views drop removed tracks)."""
    rows = conn.execute(text(f'SELECT genre, COUNT(DISTINCT track_id) FROM "{dataset_view_name(name)}" '
                             "GROUP BY genre")).all()
    return {str(g): int(n) for g, n in rows}


def get_dataset(conn: Connection, name: str, *, count_live: bool = True, check_stale: bool = False) -> DatasetSummary:
    """The dataset's definition and stored members per genre; with ``count_live`` also the members still in
    its view (a query over the feature view: readers that load the view anyway skip it); with ``check_stale``
    also what a refresh to the label decisions would change (``pending``; a read of track_effective_genres)."""
    row = conn.execute(select(datasets).where(datasets.c.name == name)).mappings().first()
    if row is None:
        raise InputError(f"dataset {name!r} not found (see: music-classifier dataset list)")
    counts = _genre_counts(conn, row["id"])
    live = _live_counts(conn, row["name"]) if count_live else {}
    summary = DatasetSummary(id=row["id"], name=row["name"], view=dataset_view_name(row["name"]),
                             definition=_definition(row["definition"]), genre_counts=counts,
                             created_at=row["created_at"], live_counts={g: live.get(g, 0) for g in counts},
                             decided=decided_members(conn, row["id"]))
    if check_stale:
        from music_classifier.models.dataset_refresh import pending_refresh

        summary.pending = pending_refresh(conn, summary.name)
    return summary


def decided_members(conn: Connection, dataset_id: int) -> list[DecidedMember]:
    """The dataset's members that took a decided genre at creation, by track id."""
    before = genres.alias("gb")
    rows = conn.execute(
        select(dataset_member_decisions.c.track_id, tracks.c.artist, tracks.c.title,
               before.c.display_name, genres.c.display_name, label_decisions.c.action, label_decisions.c.id)
        .join(dataset_members, (dataset_members.c.dataset_id == dataset_member_decisions.c.dataset_id)
              & (dataset_members.c.track_id == dataset_member_decisions.c.track_id))
        .join(tracks, tracks.c.id == dataset_member_decisions.c.track_id)
        .join(genres, genres.c.id == dataset_members.c.genre_id)
        .join(label_decisions, label_decisions.c.id == dataset_member_decisions.c.decision_id)
        .outerjoin(before, before.c.id == label_decisions.c.genre_before_id)
        .where(dataset_member_decisions.c.dataset_id == dataset_id)
        .order_by(dataset_member_decisions.c.track_id)).all()
    return [DecidedMember(track_id=int(t), song=f"{a} - {ti}", sheet_genre=b, genre=str(g), action=str(act),
                          decision_id=int(d)) for t, a, ti, b, g, act, d in rows]


def summary_drift(d: DatasetSummary, live_counts: dict[str, int] | None = None) -> DatasetDrift:
    """``d``'s members lost since creation, by genre, from its own live counts or from ``live_counts``."""
    live = d.live_counts if live_counts is None else {g: live_counts.get(g, 0) for g in d.genre_counts}
    k = int(d.definition.get("min_per_genre") or 1)
    return DatasetDrift(name=d.name, stored=d.n_tracks, live=sum(live.values()), min_per_genre=k,
                        by_genre={g: (n, live.get(g, 0)) for g, n in d.genre_counts.items()},
                        below_min={g: n for g, n in live.items() if n < k})


def dataset_drift(conn: Connection, name: str, *, live_counts: dict[str, int] | None = None) -> DatasetDrift:
    """How many members ``name`` lost since creation, by genre, which genres fell below the minimum, and
    what a refresh to the label decisions taken since would change (``pending``).

    ``live_counts`` (distinct tracks per genre in the dataset's view) is counted here unless the caller
    already read the view (:meth:`.load_data.DatasetFrame.live_counts`): on a large table the view is the
    expensive part, and training reads it anyway.
    """
    from music_classifier.models.dataset_refresh import pending_refresh

    drift = summary_drift(get_dataset(conn, name, count_live=live_counts is None), live_counts)
    drift.pending = pending_refresh(conn, name)
    return drift


def list_datasets(conn: Connection, *, check_stale: bool = False) -> list[DatasetSummary]:
    names = conn.execute(select(datasets.c.name).order_by(datasets.c.name)).scalars().all()
    return [get_dataset(conn, n, check_stale=check_stale) for n in names]


def member_snapshot(conn: Connection, dataset_id: int) -> list[list[Any]]:
    """[[track_id, genre display name], ...] ordered by track id: what a model records it was trained on."""
    rows = conn.execute(
        select(dataset_members.c.track_id, genres.c.display_name)
        .join(genres, genres.c.id == dataset_members.c.genre_id)
        .where(dataset_members.c.dataset_id == dataset_id).order_by(dataset_members.c.track_id)).all()
    return [[int(t), str(g)] for t, g in rows]


def drop_dataset(conn: Connection, name: str) -> DatasetSummary:
    """Drop the view and the rows; models trained on it keep their snapshot (dataset_id becomes NULL)."""
    validate_name(name)
    summary = get_dataset(conn, name)
    conn.execute(text(f'DROP VIEW IF EXISTS "{dataset_view_name(name)}"'))
    conn.execute(models.update().where(models.c.dataset_id == summary.id).values(dataset_id=None))
    conn.execute(delete(dataset_member_decisions).where(dataset_member_decisions.c.dataset_id == summary.id))
    conn.execute(delete(dataset_members).where(dataset_members.c.dataset_id == summary.id))
    conn.execute(delete(datasets).where(datasets.c.id == summary.id))
    return summary
