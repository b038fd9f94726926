"""Every state change a task makes is a compare-and-set on the extractor and status it expects.

A task is referenced by dotted path and takes ids, so anyone able to enqueue (or a bug) can hand it
ids of rows it must not touch: another extractor's, ``done`` ones, rows another job now runs. Such a
task changes nothing and logs why. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging

import pytest
from models_helpers import COLUMNS
from sqlalchemy import func, insert, select, text, update

from music_classifier.db.tables import extractions, features, tracks
from music_classifier.db.values import replace_values
from music_classifier.jobs import runtime, tasks
from music_classifier.jobs.persist import mark_failed, mark_queued, mark_running, save_result
from music_classifier.settings import get_settings


@pytest.fixture
def configured(engine, db_url, tmp_path):
    """The tasks read this test's database (as a pool child does after ``runtime.configure``)."""
    settings = get_settings(database_url=db_url, library=tmp_path)
    runtime.configure(settings)
    yield settings
    runtime.configure(None)
    for key in [k for k in runtime._engines if k[1] == settings.resolved_database_url]:
        runtime._engines.pop(key).dispose()


def _done_librosa_rows(conn, n: int) -> list[int]:
    """``n`` tracks with a done librosa extraction and its 83 feature values (what the probe destroyed)."""
    ids = []
    for i in range(n):
        tid = conn.execute(insert(tracks).values(source="file", track_key=f"a\x1f{i}", artist="a", title=f"t{i}",
                                                 song=f"a - t{i}", audio_path=f"gone{i}.wav")
                           .returning(tracks.c.id)).scalar_one()
        eid = conn.execute(insert(extractions).values(
            track_id=tid, extractor="librosa", version="1", params_hash="p", status="done", attempts=1,
            worker="rq:w@host/1").returning(extractions.c.id)).scalar_one()
        replace_values(conn, "librosa", eid, dict.fromkeys(COLUMNS["librosa"], 1.0), None)
        ids.append(eid)
    return ids


def _state(conn) -> dict[int, tuple[str, int]]:
    return {r.id: (r.status, r.attempts) for r in conn.execute(select(extractions.c.id, extractions.c.status,
                                                                      extractions.c.attempts))}


def test_spotify_task_given_librosa_ids_changes_nothing(engine, configured, caplog):
    with engine.begin() as conn:
        ids = _done_librosa_rows(conn, 24)
        before = _state(conn)
    with caplog.at_level(logging.WARNING, logger="music_classifier.jobs.persist"):
        tasks.spotify_batch(ids)  # the probe: an allowed task, crafted ids
    with engine.connect() as conn:
        assert _state(conn) == before  # still done, attempts untouched
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 24 * len(COLUMNS["librosa"])
        assert conn.execute(text("SELECT count(*) FROM librosa_features")).scalar_one() == 24
    assert f"extraction {ids[0]} is a librosa extraction in status done" in caplog.text
    assert "expected a spotify extraction in status queued or failed" in caplog.text


def test_librosa_task_leaves_done_and_foreign_rows_alone(engine, configured, caplog):
    with engine.begin() as conn:
        [done] = _done_librosa_rows(conn, 1)
        tid = conn.execute(select(extractions.c.track_id).where(extractions.c.id == done)).scalar_one()
        spotify = conn.execute(insert(extractions).values(
            track_id=tid, extractor="spotify", version="1", params_hash="s", status="queued", attempts=0)
            .returning(extractions.c.id)).scalar_one()
        before = _state(conn)
    with caplog.at_level(logging.WARNING, logger="music_classifier.jobs.persist"):
        tasks.librosa_track(done)  # its audio file is gone: a run would have turned it failed
        tasks.librosa_track(spotify)
    with engine.connect() as conn:
        assert _state(conn) == before
        assert conn.execute(text("SELECT count(*) FROM librosa_features")).scalar_one() == 1
    assert f"extraction {spotify} is a spotify extraction in status queued" in caplog.text
    with pytest.raises(tasks.ExtractionNotFound):  # a row not visible yet: RQ retries it
        tasks.librosa_track(999_999)


def test_results_land_only_while_the_claim_holds(engine):
    with engine.begin() as conn:
        [eid] = _done_librosa_rows(conn, 1)
        conn.execute(update(extractions).values(status="queued"))
        claim = mark_running(conn, eid, "rq:a@host/10", extractor="librosa")
        assert claim is not None
        assert mark_running(conn, eid, "rq:b@host/11", extractor="librosa") is None  # running: not claimable
        # Reconciliation declared worker a dead; a new run (worker b) took the row over.
        assert mark_failed(conn, eid, "worker died", only_if={"status": "running", "worker": claim.worker})
        other = mark_running(conn, eid, "rq:b@host/11", extractor="librosa")
        assert other is not None
        # The first run finishes late: neither its result nor its failure may land.
        assert not save_result(conn, eid, {"tempo": 1.0}, None, seconds=1.0, claim=claim)
        assert not mark_failed(conn, eid, "late", claim=claim)
        mark_queued(conn, [eid], "job-x", claims=[claim])
        row = conn.execute(select(extractions).where(extractions.c.id == eid)).one()
        assert (row.status, row.worker, row.attempts, row.rq_job_id) == ("running", "rq:b@host/11", 3, None)
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == len(COLUMNS["librosa"])
        assert save_result(conn, eid, {"tempo": 2.0}, None, seconds=1.0, claim=other)
        assert conn.execute(select(extractions.c.status).where(extractions.c.id == eid)).scalar_one() == "done"
        assert conn.execute(select(features.c.value)).scalars().all() == [2.0]
        assert mark_running(conn, eid, "rq:c@host/12", extractor="librosa") is None  # done stays done


def test_an_rq_retry_takes_back_only_its_own_running_row(engine):
    with engine.begin() as conn:
        [eid] = _done_librosa_rows(conn, 1)
        conn.execute(update(extractions).values(status="running", rq_job_id="q-librosa-1-1", worker="rq:a@h/1"))
        assert mark_running(conn, eid, "rq:b@h/2", extractor="librosa", job_id="q-librosa-1-2") is None
        assert mark_running(conn, eid, "rq:b@h/2", extractor="spotify", job_id="q-librosa-1-1") is None
        claim = mark_running(conn, eid, "rq:b@h/2", extractor="librosa", job_id="q-librosa-1-1")
        assert claim is not None and claim.worker == "rq:b@h/2"
