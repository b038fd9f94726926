"""SQL views: feature pivots and dataset views, created and recreated in one place.

SQLite's batch mode fails on a table a view reads ("error in view …: no such table"), and
PostgreSQL refuses to alter a column a view uses. So every migration that touches a table a view
depends on wraps its work in :func:`views_dropped`, which drops every project view and recreates
them afterwards: the feature views from the frozen column lists it is given, the dataset views from
the rows of ``datasets``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, inspect, text

#: PostgreSQL's limit on an identifier (NAMEDATALEN - 1 bytes); it silently truncates a longer one.
#: Our names are ASCII, so characters are bytes.
MAX_IDENTIFIER_BYTES = 63
VIEW_NAME = re.compile(rf"^[a-z][a-z0-9_]{{0,{MAX_IDENTIFIER_BYTES - 1}}}$")
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
DATASET_VIEW_PREFIX = "dataset_"


def _q(name: str) -> str:
    if not VIEW_NAME.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}")
    return f'"{name}"'


def _lit(value: str) -> str:
    # Only ever called with names from the frozen column lists / extractor constants, never user input.
    if not re.match(r"^[a-z0-9_]+$", value):
        raise ValueError(f"invalid literal {value!r}")
    return f"'{value}'"


def _pivot(columns: list[str]) -> str:
    return ",\n  ".join(f"MAX(CASE WHEN f.name = {_lit(c)} THEN f.value END) AS {_q(c)}" for c in columns)


def _newest_extraction_pivot_sql(view: str, extractor: str, columns: list[str], *, table: str,
                                 row_columns: tuple[str, ...] = ()) -> str:
    """A view of each live track's newest `done` extraction of `extractor`, its `table` rows pivoted.

    ``row_columns``: columns of ``table`` that identify one output row besides the track (a segment).
    """
    selected = "".join(f", f.{c} AS {c}" for c in row_columns)
    grouped = "".join(f", f.{c}" for c in row_columns)
    return f"""CREATE VIEW {_q(view)} AS
SELECT t.id AS track_id, t.artist AS artist, t.title AS title, g.display_name AS coarse_genre,
  t.source AS source, newest.extraction_id AS extraction_id{selected},
  {_pivot(columns)}
FROM tracks t
JOIN (SELECT track_id, MAX(id) AS extraction_id FROM extractions
      WHERE extractor = {_lit(extractor)} AND status = 'done' GROUP BY track_id) newest ON newest.track_id = t.id
JOIN {table} f ON f.extraction_id = newest.extraction_id
LEFT JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0
LEFT JOIN genres g ON g.id = tg.genre_id
WHERE t.removed_at IS NULL
GROUP BY t.id, t.artist, t.title, g.display_name, t.source, newest.extraction_id{grouped}"""


def feature_view_sql(view: str, extractor: str, columns: list[str], *, wide_table: str | None = None) -> str:
    """One row per live track with a `done` extraction of `extractor`: the newest one, pivoted
    from ``features`` (or read from its ``wide_table``, one column per feature)."""
    if wide_table:
        return _newest_extraction_wide_sql(view, extractor, columns, table=wide_table)
    return _newest_extraction_pivot_sql(view, extractor, columns, table="features")


def segment_view_sql(view: str, extractor: str, columns: list[str], *, wide_table: str | None = None) -> str:
    """One row per (live track, segment) of the track's newest `done` extraction, pivoted."""
    if wide_table:
        return _newest_extraction_wide_sql(view, extractor, columns, table=wide_table,
                                           row_columns=("segment", "start_s"))
    return _newest_extraction_pivot_sql(view, extractor, columns, table="segment_features",
                                        row_columns=("segment", "start_s"))


def _newest_extraction_wide_sql(view: str, extractor: str, columns: list[str], *, table: str,
                                row_columns: tuple[str, ...] = ()) -> str:
    """Like :func:`_newest_extraction_pivot_sql`, over a table with one column per feature (a plain join)."""
    selected = "".join(f", w.{c} AS {c}" for c in row_columns)
    values = ",\n  ".join(f"w.{_q(c)} AS {_q(c)}" for c in columns)
    return f"""CREATE VIEW {_q(view)} AS
SELECT t.id AS track_id, t.artist AS artist, t.title AS title, g.display_name AS coarse_genre,
  t.source AS source, newest.extraction_id AS extraction_id{selected},
  {values}
FROM tracks t
JOIN (SELECT track_id, MAX(id) AS extraction_id FROM extractions
      WHERE extractor = {_lit(extractor)} AND status = 'done' GROUP BY track_id) newest ON newest.track_id = t.id
JOIN {_q(table)} w ON w.extraction_id = newest.extraction_id
LEFT JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0
LEFT JOIN genres g ON g.id = tg.genre_id
WHERE t.removed_at IS NULL"""


# Feature set (as named in `dataset create --features`) -> its per-track view and, when it has
# segments, its segment view. A dataset may combine several sets: "librosa,musicnn".
FEATURE_SET_VIEWS = {
    "librosa": "librosa_features",
    "spotify": "spotify_features",
    "gtzan_csv": "gtzan_features",
    "musicnn": "musicnn_features",
}
SEGMENT_SET_VIEWS = {
    "librosa": "librosa_segment_features",
    "musicnn": "musicnn_segment_features",
}
# Names kept for datasets created before sets could be combined.
FEATURE_SET_ALIASES = {"both": ("librosa", "spotify")}


def feature_sets(features: str) -> list[str]:
    """The feature sets of a dataset's ``features`` value, in the order given: ``"librosa,musicnn"``
    -> ``["librosa", "musicnn"]``; ``"both"`` -> ``["librosa", "spotify"]``. ValueError names a bad one."""
    if features in FEATURE_SET_ALIASES:
        return list(FEATURE_SET_ALIASES[features])
    names = [n.strip() for n in str(features).split(",") if n.strip()]
    unknown = [n for n in names if n not in FEATURE_SET_VIEWS]
    if unknown or not names:
        raise ValueError(f"unknown feature set {','.join(unknown) or features!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"feature set named twice in {features!r}")
    return names


def source_views(features: str, segments: bool) -> list[str]:
    """The feature views a dataset reads (segment views for a segment dataset). ValueError when a
    set has no segments."""
    sets = feature_sets(features)
    if not segments:
        return [FEATURE_SET_VIEWS[s] for s in sets]
    lacking = [s for s in sets if s not in SEGMENT_SET_VIEWS]
    if lacking:
        raise ValueError(f"{', '.join(lacking)} features have no segments")
    return [SEGMENT_SET_VIEWS[s] for s in sets]


def column_prefix(view: str, n_sources: int) -> str:
    """Prefix of a feature view's columns in a dataset view: the set's name when several are joined."""
    return f"{view.split('_')[0]}_" if n_sources > 1 else ""


def dataset_view_name(name: str) -> str:
    """``dataset_<name>``; ValueError unless ``name`` matches :data:`DATASET_NAME` and the view name
    fits the identifier limit (every name the pattern allows does: 8 + 41 bytes)."""
    view = f"{DATASET_VIEW_PREFIX}{name}"
    if not DATASET_NAME.match(name) or len(view.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"dataset name {name!r} must match [a-z][a-z0-9_]{{0,40}}")
    return view


def dataset_view_sql(name: str, dataset_id: int, features: str, segments: bool,
                     columns: dict[str, list[str]]) -> str:
    """The view ``dataset_<name>``: members joined with their features.

    ``dataset_id`` (an int) is the only value rendered into the DDL; ``columns`` maps each feature
    view to the columns to expose (prefixed with the view's extractor when several are joined;
    segment views are joined on the segment index too).
    """
    dataset_id = int(dataset_id)
    view = dataset_view_name(name)
    sources = source_views(features, segments)
    select_cols = ["m.track_id AS track_id", "g.display_name AS genre", "t.artist AS artist", "t.title AS title",
                   "t.source AS source"]
    if segments:
        select_cols += ["f0.segment AS segment", "f0.start_s AS start_s"]
    joins = []
    for i, src in enumerate(sources):
        alias = f"f{i}"
        same_segment = f" AND {alias}.segment = f0.segment" if segments and i else ""
        joins.append(f"JOIN {_q(src)} {alias} ON {alias}.track_id = m.track_id{same_segment}")
        prefix = column_prefix(src, len(sources))
        select_cols += [f"{alias}.{_q(c)} AS {_q(prefix + c)}" for c in columns[src]]
    return (f"CREATE VIEW {_q(view)} AS\nSELECT " + ",\n  ".join(select_cols)
            + "\nFROM dataset_members m\nJOIN tracks t ON t.id = m.track_id\n"
            + "JOIN genres g ON g.id = m.genre_id\n" + "\n".join(joins)
            + f"\nWHERE m.dataset_id = {dataset_id}")


# The label audit's per-student views (migration 0006). They read the newest audit (highest
# label_audits.id) and the sheet's students/proposals; agreement and confidence are plain AVGs so the
# same SQL runs on SQLite and PostgreSQL (round with CAST(... AS NUMERIC) when querying).
_STUDENT_TRACKS = """FROM students s
JOIN proposals p ON p.student_id = s.id
JOIN tracks t ON t.id = p.track_id AND t.removed_at IS NULL
LEFT JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0
LEFT JOIN genres g ON g.id = tg.genre_id
LEFT JOIN label_issues li ON li.track_id = t.id AND li.audit_id = (SELECT MAX(id) FROM label_audits)"""
_AGREEMENT = """COUNT(li.track_id) AS audited,
  SUM(CASE WHEN li.heard_genre = li.sheet_genre THEN 1 ELSE 0 END) AS agreed,
  AVG(CASE WHEN li.track_id IS NULL THEN NULL WHEN li.heard_genre = li.sheet_genre THEN 1.0 ELSE 0.0 END)
    AS agreement,
  AVG(li.heard_probability) AS mean_confidence,
  SUM(CASE WHEN li.flagged THEN 1 ELSE 0 END) AS flagged"""
AUDIT_VIEWS = {
    "student_summary": f"""CREATE VIEW student_summary AS
SELECT s.id AS student_id, s.name AS student, COUNT(*) AS proposals, COUNT(DISTINCT tg.genre_id) AS genres,
  {_AGREEMENT}
{_STUDENT_TRACKS}
GROUP BY s.id, s.name""",
    "student_genres": f"""CREATE VIEW student_genres AS
SELECT s.id AS student_id, s.name AS student, g.display_name AS genre, COUNT(*) AS proposals,
  {_AGREEMENT}
{_STUDENT_TRACKS}
GROUP BY s.id, s.name, g.display_name""",
}


# The effective genre of each live track (migration 0007): its latest standing label decision (a 'set' or
# 'keep' row no 'undo' row cancels), else the sheet's coarse genre (track_genres rank 0). dataset create,
# genres and the audit read it; decided_genre_id is NULL for a track nobody decided on.
# The standing decision is found per track by a correlated MAX over the track's own rows (index
# ix_label_decisions_track_id; most tracks have none). A join to a grouped subquery instead lets
# PostgreSQL, before ANALYZE has seen a freshly synced library, re-run the grouping for every track
# (34 s instead of 0.5 s on 100,000 tracks).
_STANDING = """(SELECT MAX(x.id) FROM label_decisions x WHERE x.track_id = t.id AND x.action <> 'undo'
    AND NOT EXISTS (SELECT 1 FROM label_decisions u WHERE u.undoes_id = x.id))"""
DECISION_VIEWS = {
    "track_effective_genres": f"""CREATE VIEW track_effective_genres AS
SELECT t.id AS track_id, COALESCE(d.genre_id, tg.genre_id) AS genre_id, g.display_name AS genre,
  tg.genre_id AS sheet_genre_id, sg.display_name AS sheet_genre,
  d.genre_id AS decided_genre_id, d.id AS decision_id, d.action AS decision
FROM tracks t
LEFT JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0
LEFT JOIN genres sg ON sg.id = tg.genre_id
LEFT JOIN label_decisions d ON d.id = {_STANDING}
JOIN genres g ON g.id = COALESCE(d.genre_id, tg.genre_id)
WHERE t.removed_at IS NULL""",
}


# The long shape of the feature values (migration 0009): one row per (extraction, feature name) with a value,
# over every extractor's wide tables, for SQL users who want one feature without the views. Each branch
# is one (table, column): a query naming a feature (``WHERE name = 'tempo'``) reads one column of one
# table on PostgreSQL (the other branches' constant filters fold away).
LONG_VIEWS = ("features", "segment_features")


def long_view_sql(view: str, wide_stores: Mapping[str, Any]) -> str | None:
    """``features`` (extraction_id, name, value) or ``segment_features`` (extraction_id, segment, start_s,
    name, value) over the stores' tables; None when no store has such a table."""
    segments = view == "segment_features"
    branches = []
    for store in wide_stores.values():
        table = store.segment_table if segments else store.table
        if table is None:
            continue
        keys = "w.extraction_id AS extraction_id" + (", w.segment AS segment, w.start_s AS start_s" if segments else "")
        branches += [f"SELECT {keys}, {_lit(c)} AS name, w.{_q(c)} AS value FROM {_q(table)} w "
                     f"WHERE w.{_q(c)} IS NOT NULL" for c in store.columns]
    if not branches:
        return None
    # SQLite allows 500 terms in one compound SELECT (SQLITE_MAX_COMPOUND_SELECT): chains of at most 250,
    # each a subquery of an outer chain.
    chains = ["SELECT * FROM (" + "\nUNION ALL ".join(branches[i:i + 250]) + ") AS part"
              for i in range(0, len(branches), 250)]
    return f"CREATE VIEW {_q(view)} AS\n" + "\nUNION ALL ".join(chains)


def create_long_views(conn: Connection, wide_stores: Mapping[str, Any]) -> None:
    for view in LONG_VIEWS:
        sql = long_view_sql(view, wide_stores)
        if sql:
            conn.execute(text(sql))


def project_view_names(conn: Connection) -> list[str]:
    names = inspect(conn).get_view_names()
    return [n for n in names if n.startswith("dataset_") or n.endswith("_features") or n in AUDIT_VIEWS
            or n in DECISION_VIEWS or n in LONG_VIEWS]


def drop_views(conn: Connection, names: list[str]) -> None:
    # Dataset views read feature views: drop them first.
    for name in sorted(names, key=lambda n: not n.startswith("dataset_")):
        conn.execute(text(f"DROP VIEW IF EXISTS {_q(name)}"))


def _wide_table(wide_stores: Mapping[str, Any] | None, extractor: str, segment: bool) -> str | None:
    """The store's table for a view (None: the view pivots the long table, before 0009)."""
    store = (wide_stores or {}).get(extractor)
    if store is None:
        return None
    return store.segment_table if segment else store.table


def create_feature_views(conn: Connection, feature_views: dict[str, tuple[str, list[str]]],
                         segment_views: dict[str, tuple[str, list[str]]],
                         wide_stores: Mapping[str, Any] | None = None) -> None:
    """``wide_stores``: extractor -> :class:`~.feature_columns.WideStore` for extractors whose values
    have tables of their own; every other extractor's view pivots the long ``features`` table."""
    for view, (extractor, cols) in feature_views.items():
        conn.execute(text(feature_view_sql(view, extractor, cols,
                                           wide_table=_wide_table(wide_stores, extractor, False))))
    for view, (extractor, cols) in segment_views.items():
        conn.execute(text(segment_view_sql(view, extractor, cols,
                                           wide_table=_wide_table(wide_stores, extractor, True))))


_READ_FROM = re.compile(r'\b(?:FROM|JOIN)\s+"?([A-Za-z_][A-Za-z0-9_]*)"?', re.IGNORECASE)


def view_definitions(conn: Connection, names: list[str]) -> dict[str, str]:
    """``CREATE VIEW`` statements that recreate the named views as they are now."""
    out: dict[str, str] = {}
    inspector = inspect(conn)
    for name in names:
        definition = inspector.get_view_definition(name)
        if not definition:
            continue
        definition = definition.strip().rstrip(";")
        if not definition.upper().startswith("CREATE"):
            definition = f"CREATE VIEW {_q(name)} AS {definition}"
        out[name] = definition
    return out


def create_dataset_views(conn: Connection, columns: dict[str, list[str]],
                         saved: Mapping[str, str] | None = None) -> None:
    """Recreate ``dataset_<name>`` for every stored dataset (no-op before the datasets table exists).

    A dataset reading a view ``columns`` does not describe (made by a later migration than the one
    running) is recreated from its ``saved`` definition when the views it reads exist.
    """
    inspector = inspect(conn)
    if not inspector.has_table("datasets"):
        return
    existing = set(inspector.get_view_names())
    for ds_id, name, definition in conn.execute(text("SELECT id, name, definition FROM datasets")).all():
        d = definition if isinstance(definition, dict) else json.loads(definition)
        segments = bool(d.get("segments"))
        try:
            sources = source_views(d["features"], segments)
        except ValueError:
            sources = []
        if sources and all(v in columns for v in sources):
            conn.execute(text(dataset_view_sql(name, ds_id, d["features"], segments, columns)))
        elif saved and dataset_view_name(name) in saved and sources and set(sources) <= existing:
            conn.execute(text(saved[dataset_view_name(name)]))
        # else: a view it reads was removed (a downgrade): the dataset keeps its rows, loses its view


@contextmanager
def views_dropped(conn: Connection, feature_views: dict[str, tuple[str, list[str]]],
                  segment_views: dict[str, tuple[str, list[str]]], *,
                  wide_stores: Mapping[str, Any] | None = None, long_views: bool = False) -> Iterator[None]:
    """Drop every project view, run the body (a migration), recreate the views.

    ``feature_views``/``segment_views`` (and ``wide_stores``) are the frozen column lists valid
    *after* the body. A feature view they do not name (added by a later migration than the lists,
    e.g. a migration written before it that still passes older lists) is recreated as it was when
    every table it reads still exists (a downgrade that drops its table drops it too). ``long_views``:
    the values live only in the wide tables (since 0009), so the long ``features``/``segment_features``
    views are created over them.
    """
    names = project_view_names(conn)
    saved = view_definitions(conn, names)
    drop_views(conn, names)
    yield
    # Since 0009 there is no long table to pivot: a view the lists would pivot (a migration written before
    # 0009 passing its own, older lists) is recreated as it was instead, like a view the lists do not name.
    pivotable = inspect(conn).has_table("features")
    columns = {v: cols for v, (_, cols) in {**feature_views, **segment_views}.items()}
    feature_views = {v: spec for v, spec in feature_views.items()
                     if pivotable or _wide_table(wide_stores, spec[0], False)}
    segment_views = {v: spec for v, spec in segment_views.items()
                     if pivotable or _wide_table(wide_stores, spec[0], True)}
    create_feature_views(conn, feature_views, segment_views, wide_stores)
    if long_views and wide_stores:
        create_long_views(conn, wide_stores)
    inspector = inspect(conn)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    for name in names:
        if (name.startswith("dataset_") or name in feature_views or name in segment_views or name in AUDIT_VIEWS
                or name in DECISION_VIEWS or name not in saved or (long_views and name in LONG_VIEWS)):
            continue
        if set(_READ_FROM.findall(saved[name])) <= present:
            conn.execute(text(saved[name]))
    create_dataset_views(conn, columns, saved={n: sql for n, sql in saved.items() if n.startswith("dataset_")})
    for name in [n for n in AUDIT_VIEWS if n in names]:  # only where migration 0006 had made them
        conn.execute(text(AUDIT_VIEWS[name]))
    for name in [n for n in DECISION_VIEWS if n in names]:  # only where migration 0007 had made them
        conn.execute(text(DECISION_VIEWS[name]))
