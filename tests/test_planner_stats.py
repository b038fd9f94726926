"""Planner statistics after bulk writes (issue 19): `features import-csv` then `dataset create` must not
plan from empty-table statistics (the planner guessed one row in `extractions` and nested loops over
the pivot view: minutes instead of a second at 10,000 rows), and workers re-analyse only grown
tables, one session at a time."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, insert, text
from waits import wait_until

from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.db.planner_stats import (
    ADVISORY_KEY,
    extraction_tables,
    refresh_after_results,
    refresh_if_grown,
    refresh_planner_stats,
    stale_tables,
)
from music_classifier.db.tables import genres, tracks
from music_classifier.ingest.csv_import import import_gtzan_csv
from music_classifier.models.datasets import DatasetDefinition, _candidates_sql, create_dataset

LABELS = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
N_ROWS = 1500
VALUES = "gtzan_csv_values"  # the table import-csv writes its values to (migration 0009)


def write_gtzan_table(path: Path, n_rows: int) -> Path:
    """A GTZAN-layout table (features_30_sec.csv's columns) of ``n_rows`` distinct files."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "length", *GTZAN_V1, "label"])
        for i in range(n_rows):
            label = LABELS[i % len(LABELS)]
            writer.writerow([f"{label}.{i:05d}.wav", 661794, *(((i * 7 + j) % 101) / 10 for j in range(len(GTZAN_V1))),
                             label])
    return path


def _analysed_rows(conn, table: str) -> float | None:  # noqa: ANN001
    """The row count the planner works from (pg_class.reltuples; -1 = never analysed)."""
    return conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}).scalar()


def _candidates_plan(conn) -> dict:  # noqa: ANN001
    """The plan (EXPLAIN, JSON) of the candidate query `dataset create` runs."""
    stmt = text("EXPLAIN (FORMAT JSON) " + _candidates_sql(["gtzan_features"])).bindparams(
        bindparam("sources", expanding=True))
    plan = conn.execute(stmt, {"sources": ["csv"]}).scalar()
    return (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]


def _nodes(node: dict):  # noqa: ANN202
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _repeated_pivots(plan: dict) -> list[str]:
    """Nested loops that re-read the feature values (before 0009 the long ``features`` table's pivot,
    now ``gtzan_csv_values``) once per outer row: the plan that did not finish in 5 minutes at 10,000
    tracks."""
    bad = []
    for node in _nodes(plan):
        if node["Node Type"] != "Nested Loop":
            continue
        inner = [c for c in node.get("Plans", []) if c.get("Parent Relationship") == "Inner"]
        if any(n.get("Relation Name") == VALUES and "Index" not in n["Node Type"] for c in inner for n in _nodes(c)):
            bad.append(f"Nested Loop (est. {node['Plan Rows']} rows) scanning {VALUES}")
    return bad


def test_import_then_dataset_create_plans_from_real_counts(engine, tmp_path):
    path = write_gtzan_table(tmp_path / "features_30_sec.csv", N_ROWS)
    with engine.begin() as conn:
        report = import_gtzan_csv(conn, path)
    assert report.tracks_added == N_ROWS
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            for table in ("tracks", "track_genres", "extractions", VALUES):
                assert _analysed_rows(conn, table) == pytest.approx(N_ROWS, rel=0.05), table
            plan = _candidates_plan(conn)
            # Unanalysed, the planner took extractions for one row and nested a loop over the pivot.
            assert _repeated_pivots(plan) == [], json.dumps(plan)
            scans = [n["Plan Rows"] for n in _nodes(plan) if n.get("Relation Name") == VALUES]
            assert scans and all(r >= N_ROWS / 3 for r in scans), scans
        else:
            analysed = set(conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars())
            assert {"tracks", "track_genres", "extractions", VALUES} <= analysed
    with engine.begin() as conn:
        summary = create_dataset(conn, "big", DatasetDefinition(features="gtzan_csv", top=10, min_per_genre=100))
        assert summary.n_tracks == N_ROWS
        if engine.dialect.name == "postgresql":
            assert _analysed_rows(conn, "dataset_members") == N_ROWS


@pytest.mark.postgres
def test_worker_refresh_only_when_grown_and_one_session_at_a_time(pg_schema_url):
    from music_classifier.db import migrate

    engine = make_engine(pg_schema_url)
    other = make_engine(pg_schema_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            gid = conn.execute(insert(genres).values(name="rock", display_name="Rock").returning(genres.c.id)).scalar()
            conn.execute(insert(tracks), [{"source": "sheet", "track_key": f"k{i}", "artist": "a", "title": f"t{i}",
                                           "song": f"a - t{i}"}
                                          for i in range(3000)])
            assert gid
        # The inserts reach pg_stat_user_tables shortly after the commit (the statistics system is asynchronous).
        wait_until(lambda: _stale(engine, ["tracks"]), "tracks reported as changed since analysis")
        with other.begin() as holder:  # another session is analysing: this one skips rather than waits
            assert holder.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            with engine.begin() as conn:
                assert refresh_if_grown(conn, ["tracks"]) == []
                assert _analysed_rows(conn, "tracks") < 0
        with engine.begin() as conn:
            assert refresh_if_grown(conn, ["tracks", "genres"]) == ["tracks"]  # genres: 1 row, below min_rows
            assert _analysed_rows(conn, "tracks") == 3000
        wait_until(lambda: not _stale(engine, ["tracks"]), "the analysis reported")
        with engine.begin() as conn:  # nothing changed since: nothing to do
            assert refresh_if_grown(conn, extraction_tables() + ["tracks"]) == []
    finally:
        engine.dispose()
        other.dispose()


def _stale(engine, tables: list[str]) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return stale_tables(conn, tables)


def test_refresh_skips_missing_tables_and_refuses_odd_names(engine):
    with engine.begin() as conn:
        refresh_planner_stats(conn, ["tracks", "no_such_table"])
        with pytest.raises(ValueError, match="not a table name"):
            refresh_planner_stats(conn, ['tracks"; DROP TABLE tracks; --'])


def test_dataset_create_reads_the_feature_views_once(engine, tmp_path):
    """Counting, choosing and capping come from one candidate query (a segment view pivots every
    segment row: reading it twice doubled a segment dataset's creation)."""
    from sqlalchemy import event

    with engine.begin() as conn:
        import_gtzan_csv(conn, write_gtzan_table(tmp_path / "features_30_sec.csv", 60))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.begin() as conn:
            summary = create_dataset(conn, "once", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=2,
                                                                     max_per_genre=4))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert summary.n_tracks == 12 and len(summary.left_out) == 7
    reads = [s for s in statements if "FROM gtzan_features" in s]
    assert len(reads) == 1, reads


def test_a_locked_sqlite_database_skips_the_refresh_quietly(sqlite_engine, caplog):
    # Another process holding the write lock (two worker processes on the default database) is routine there:
    # the refresh is skipped without a warning line, and the next batch tries again.
    holder = sqlite_engine.raw_connection()
    holder.execute("BEGIN EXCLUSIVE")
    impatient = create_engine(sqlite_engine.url, connect_args={"timeout": 0.05})
    try:
        with caplog.at_level("DEBUG", logger="music_classifier.db.planner_stats"):
            assert refresh_after_results(impatient) == []
    finally:
        holder.rollback()
        holder.close()
        impatient.dispose()
    records = [r for r in caplog.records if r.name == "music_classifier.db.planner_stats"]
    assert [r.levelname for r in records] == ["DEBUG"], records
    assert "database is locked" in records[0].getMessage()
    with caplog.at_level("DEBUG", logger="music_classifier.db.planner_stats"):
        assert refresh_after_results(sqlite_engine) == []  # unlocked: runs, nothing logged
    assert len([r for r in caplog.records if r.name == "music_classifier.db.planner_stats"]) == 1
