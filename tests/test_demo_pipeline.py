"""A smaller demo run is part of the suite, and every query in docs/sql.md runs against its database."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from music_classifier.demo.pipeline import TRY_NEXT, run_demo

DOCS_SQL = Path(__file__).resolve().parents[1] / "docs" / "sql.md"


def doc_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOCS_SQL.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), tracks_per_genre=4, seed=1, processes=2)


def test_demo_runs_every_step(demo_run):
    steps = [name for name, _ in demo_run.steps]
    assert steps == ["generate", "db upgrade", "sheet sync", "audio scan", "supplement", "features compute",
                     "dataset create", "train", "report"]
    con = sqlite3.connect(demo_run.database_path)
    # The bad rows were skipped, the rest synced; the thinnest genre got its extra files.
    live = con.execute("SELECT COUNT(*) FROM tracks WHERE removed_at IS NULL").fetchone()[0]
    from_files = con.execute("SELECT COUNT(*) FROM tracks WHERE source = 'file'").fetchone()[0]
    failed = con.execute("SELECT COUNT(*) FROM extractions WHERE status != 'done'").fetchone()[0]
    with_features = con.execute("SELECT COUNT(*) FROM librosa_features").fetchone()[0]
    genres = {r[0] for r in con.execute("SELECT DISTINCT coarse_genre FROM librosa_features")}
    assert from_files > 0
    assert failed == 0
    assert with_features == live
    assert genres == {"Electronic", "Metal", "Classical", "Jazz", "Hip-Hop", "Folk"}
    # Generated styles are distinct: the model does far better than chance.
    assert demo_run.accuracy is not None and demo_run.accuracy >= 2 * demo_run.chance
    assert demo_run.report_path is not None and demo_run.report_path.is_file()


def test_docs_have_a_dozen_queries():
    assert len(doc_queries()) >= 12


@pytest.mark.parametrize("index", range(len(doc_queries())))
def test_docs_sql_query_runs_on_demo_database(demo_run, index):
    from music_classifier.db.readonly import run_readonly_query

    query = doc_queries()[index]
    result = run_readonly_query(demo_run.database_url, query)
    assert result.columns
    if "status = 'failed'" in query:
        return  # the demo's audio all decodes: no failures to list
    assert result.rows, f"query {index + 1} of docs/sql.md returned no rows on the demo database"


def test_try_next_queries_run(demo_run):
    from music_classifier.db.readonly import run_readonly_query

    for query in TRY_NEXT:
        assert run_readonly_query(demo_run.database_url, query).rows
