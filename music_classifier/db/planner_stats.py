"""Planner statistics refreshed by the code that bulk-writes, so no plan waits on autovacuum.

PostgreSQL plans from ``pg_statistic`` and ``pg_class.reltuples``, which only ANALYZE (by hand or by
autovacuum, up to a minute later and only past its own thresholds) fills in. A table bulk-loaded in
one transaction looks empty or tiny to the planner until then: after ``features import-csv`` of
10,000 GTZAN rows the planner estimated one row in ``extractions`` and nested loops over the
pivot view, and ``dataset create`` did not finish in 5 minutes (0.5 s once analysed).

Two entry points:

* :func:`refresh_planner_stats` — ANALYZE now. For the few bulk writes (an import, an enqueue, a
  dataset's members): one ANALYZE samples at most 30,000 rows per table (the default statistics
  target), milliseconds to a second, whatever the table's size.
* :func:`refresh_if_grown` — for frequent small writes (a worker's batch, many workers at once):
  ANALYZE only the tables whose rows changed by more than a fraction since their last analysis
  (``pg_stat_user_tables.n_mod_since_analyze``), and only one session at a time (a transaction-level
  advisory try-lock: the others skip instead of queueing behind the ANALYZE lock).

SQLite plans without statistics from fixed guesses, which the project's queries are written for;
its ``ANALYZE`` is bounded by ``PRAGMA analysis_limit`` (an approximate pass reading a bounded number
of index rows), and :func:`refresh_if_grown` lets ``PRAGMA optimize`` decide (it re-analyses a table
whose size changed many times over since the last ANALYZE).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

#: ANALYZE a table once its changed rows since the last analysis reach this share of its rows …
GROWN_FRACTION = 0.2
#: … and at least this many rows (a small table's plan hardly depends on its statistics).
GROWN_MIN_ROWS = 1000
#: Index rows SQLite's ANALYZE reads per index (PRAGMA analysis_limit): approximate, bounded cost.
SQLITE_ANALYSIS_LIMIT = 1000
#: pg_try_advisory_xact_lock key of the "refresh planner statistics" section (any constant).
ADVISORY_KEY = int.from_bytes(b"mcstats", "big")

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _quoted(tables: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(tables))
    bad = [t for t in names if not _NAME.match(t)]
    if bad:  # table names come from our own metadata, never from input; refuse anything else
        raise ValueError(f"not a table name: {bad[0]!r}")
    return [f'"{t}"' for t in names]


def refresh_planner_stats(conn: Connection, tables: Iterable[str]) -> None:
    """ANALYZE ``tables`` in the caller's transaction (it sees the rows the transaction wrote).

    PostgreSQL: one ``ANALYZE a, b, …`` (sampled). SQLite: ``ANALYZE`` of each table under
    ``PRAGMA analysis_limit`` (:data:`SQLITE_ANALYSIS_LIMIT`), then the connection's previous limit.
    Tables that do not exist (an older schema) are skipped.
    """
    names = [t for t in _quoted(tables) if _exists(conn, t.strip('"'))]
    if not names:
        return
    if conn.dialect.name == "postgresql":
        # Every ANALYZE of ours runs under this lock: a worker's refresh_if_grown then skips, instead of
        # waiting on the table lock an import's ANALYZE holds until that import commits.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})
        conn.exec_driver_sql(f"ANALYZE {', '.join(names)}")
        return
    if conn.dialect.name == "sqlite":
        _sqlite_bounded(conn, [f"ANALYZE {name}" for name in names])


def _sqlite_bounded(conn: Connection, statements: list[str]) -> None:
    """Run ``statements`` under ``PRAGMA analysis_limit`` (:data:`SQLITE_ANALYSIS_LIMIT`), then restore
    the connection's previous limit (an unbounded ANALYZE reads every row of every index)."""
    previous = conn.exec_driver_sql("PRAGMA analysis_limit").scalar()
    conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
    try:
        for statement in statements:
            conn.exec_driver_sql(statement)
    finally:
        conn.exec_driver_sql(f"PRAGMA analysis_limit = {int(previous or 0)}")


def stale_tables(conn: Connection, tables: Iterable[str], *, fraction: float = GROWN_FRACTION,
                 min_rows: int = GROWN_MIN_ROWS) -> list[str]:
    """PostgreSQL: those of ``tables`` (in this schema) changed by at least ``min_rows`` rows and
    ``fraction`` of their rows since they were last analysed (by anyone: us or autovacuum).
    The counts are the statistics system's, reported at commit (a second or so late): a heuristic.
    Empty on other databases."""
    names = [t.strip('"') for t in _quoted(tables)]
    if conn.dialect.name != "postgresql" or not names:
        return []
    rows = conn.execute(text(
        "SELECT s.relname, s.n_live_tup, s.n_mod_since_analyze FROM pg_stat_user_tables s "
        "WHERE s.relid = ANY (SELECT to_regclass(quote_ident(n))::oid FROM unnest(CAST(:names AS text[])) n)"),
        {"names": names}).all()
    return [str(name) for name, live, changed in rows
            if changed >= min_rows and changed >= fraction * max(int(live), 1)]


def refresh_if_grown(conn: Connection, tables: Iterable[str], *, fraction: float = GROWN_FRACTION,
                     min_rows: int = GROWN_MIN_ROWS) -> list[str]:
    """ANALYZE those of ``tables`` that grew (see :func:`stale_tables`); returns their names.

    Cheap when nothing is stale (one catalog query). On PostgreSQL only the session holding the
    advisory try-lock analyses, so a thousand workers finishing at once cost one ANALYZE, not a
    thousand queued on the table's lock; the lock ends with the caller's transaction. On SQLite:
    ``PRAGMA optimize`` (SQLite's own heuristic), and an empty list.
    """
    if conn.dialect.name == "sqlite":
        _sqlite_bounded(conn, ["PRAGMA optimize"])
        return []
    stale = stale_tables(conn, tables, fraction=fraction, min_rows=min_rows)
    if not stale:
        return []
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY}).scalar():
        return []  # another session is analysing right now; the next batch looks again
    refresh_planner_stats(conn, stale)
    return stale


def refresh_after_results(engine: Engine) -> list[str]:
    """:func:`refresh_if_grown` of the extraction tables in a transaction of its own, after a worker's
    batch committed. Best effort: the results are stored already, so a failure is logged, not raised."""
    try:
        with engine.begin() as conn:
            return refresh_if_grown(conn, extraction_tables())
    except SQLAlchemyError as exc:
        message = str(exc).splitlines()[0]
        if engine.dialect.name == "sqlite" and "database is locked" in message:
            # Another process is writing (``features compute --processes 2`` on the default database): SQLite
            # refuses a reader's upgrade to writer at once. Nothing is lost, the next batch tries again, and a
            # warning per track would only be noise on the default path.
            log.debug("planner statistics not refreshed: %s", message)
            return []
        log.warning("planner statistics not refreshed: %s", message)
        return []


def extraction_tables() -> list[str]:
    """``extractions`` and every table whose rows belong to an extraction (the feature values,
    whatever their layout): what an enqueue or a worker's results write."""
    from music_classifier.db.tables import extractions, metadata

    keyed = sorted(t.name for t in metadata.sorted_tables
                   if any(fk.column.table is extractions for fk in t.foreign_keys))
    return ["extractions", *keyed]


#: What ``dataset create`` reads besides the feature values (the effective-genre view's tables).
LIBRARY_TABLES = ("tracks", "track_genres", "genres", "label_decisions")


def _exists(conn: Connection, table: str) -> bool:
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT to_regclass(quote_ident(:t)) IS NOT NULL"), {"t": table}).scalar() is True
    return conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).first() is not None
