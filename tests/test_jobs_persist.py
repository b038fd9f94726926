"""Extraction rows and results on both databases; the in-process runner."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, insert, select, update

from music_classifier.db.tables import extractions, features, segment_features, tracks
from music_classifier.jobs.compute import compute_extractions
from music_classifier.jobs.enqueue import librosa_spec
from music_classifier.jobs.persist import (
    ensure_extractions,
    mark_failed,
    mark_running,
    save_result,
    select_track_ids,
)
from music_classifier.settings import get_settings


def _add_tracks(conn, n: int, *, audio: bool = True) -> list[int]:
    return [conn.execute(insert(tracks).values(
        source="file", track_key=f"a\x1ft{i}", artist="a", title=f"t{i}", song=f"a - t{i}",
        audio_path=f"t{i}.wav" if audio else None).returning(tracks.c.id)).scalar_one() for i in range(n)]


def test_save_result_twice_leaves_one_set_and_stale_rows_are_selected_again(engine):
    spec = librosa_spec()
    with engine.begin() as conn:
        track_ids = _add_tracks(conn, 3)
        no_audio = conn.execute(insert(tracks).values(
            source="file", track_key="x\x1fy", artist="x", title="y", song="x - y").returning(tracks.c.id))
        assert no_audio.scalar_one()
        kw = dict(extractor="librosa", version=spec.version, params_hash=spec.params_hash)
        assert select_track_ids(conn, selection="missing", **kw) == track_ids  # no audio -> not eligible
        ids = ensure_extractions(conn, track_ids, extractor="librosa", version=spec.version, params=spec.params)
        assert sorted(ids) == track_ids
        # Queued rows never handed to a queue still count as missing (an interrupted compute).
        assert select_track_ids(conn, selection="missing", **kw) == track_ids
        eid = ids[track_ids[0]]
        assert mark_running(conn, eid, "local@host/1", extractor="librosa")
        values = {"tempo": 120.0, "rms_mean": 0.1}
        segments = [(0, 0.0, {"tempo": 119.0}), (1, 3.0, {"tempo": 121.0})]
        save_result(conn, eid, values, segments, seconds=1.5)
        save_result(conn, eid, {**values, "tempo": 121.0}, segments, seconds=1.4)  # the job ran twice
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 2
        assert conn.execute(select(features.c.value).where(features.c.name == "tempo")).scalar_one() == 121.0
        assert conn.execute(select(func.count()).select_from(segment_features)).scalar_one() == 2
        row = conn.execute(select(extractions).where(extractions.c.id == eid)).one()
        assert (row.status, row.attempts, row.error) == ("done", 1, None)

        assert mark_failed(conn, ids[track_ids[1]], "boom\nsecond line")
        assert not mark_failed(conn, eid, "late", only_if={"status": "running"})  # compare-and-set
        conn.execute(update(extractions).where(extractions.c.id == eid).values(status="stale"))
        assert select_track_ids(conn, selection="stale", **kw) == [track_ids[0]]
        assert select_track_ids(conn, selection="failed", **kw) == [track_ids[1]]
        again = ensure_extractions(conn, [track_ids[0]], extractor="librosa", version=spec.version,
                                   params=spec.params)
        assert again == {track_ids[0]: eid}  # same row, back to queued: a stale track recomputes
        assert conn.execute(select(extractions.c.status).where(extractions.c.id == eid)).scalar_one() == "queued"
        assert conn.execute(select(func.count()).select_from(extractions)).scalar_one() == 3
        # Another excerpt is another extraction.
        other = librosa_spec(excerpt_s=30)
        assert other.params_hash != spec.params_hash
        assert select_track_ids(conn, selection="missing", extractor="librosa", version=other.version,
                                params_hash=other.params_hash) == track_ids


@pytest.mark.parametrize("processes", [1, 2])
def test_compute_in_process_stores_features_and_reports_bad_files(engine, db_url, tmp_path, processes):
    sr = 22050
    t = np.arange(2 * sr) / sr
    sf.write(tmp_path / "t0.wav", (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr)
    (tmp_path / "t1.wav").write_bytes(b"not audio at all" * 10)
    with engine.begin() as conn:
        track_ids = _add_tracks(conn, 2)
    settings = get_settings(database_url=db_url, library=tmp_path)
    report = compute_extractions(engine, settings, librosa_spec(segments=False), processes=processes)
    assert (report.tracks, report.done, report.failed) == (2, 1, 1)
    assert "not a readable audio file" in report.errors[0][1]
    with engine.connect() as conn:
        rows = conn.execute(select(extractions.c.track_id, extractions.c.status, extractions.c.worker)
                            .order_by(extractions.c.track_id)).all()
        assert [(r.track_id, r.status) for r in rows] == [(track_ids[0], "done"), (track_ids[1], "failed")]
        assert rows[0].worker.startswith("local@")
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 83
    again = compute_extractions(engine, settings, librosa_spec(segments=False), processes=processes)
    assert again.tracks == 0  # nothing missing any more


def test_jobs_command_shows_counts_and_recent_failures(sqlite_engine, tmp_path):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        track_ids = _add_tracks(conn, 2)
        ids = ensure_extractions(conn, track_ids, extractor="librosa", version="1", params={"excerpt_s": None})
        mark_failed(conn, ids[track_ids[1]], "t1.wav: file is empty (0 bytes)")
    db = str(sqlite_engine.url)
    result = CliRunner().invoke(app, ["--db", db, "jobs"], env={"REDIS_URL": ""})
    assert result.exit_code == 0, result.output
    assert "librosa" in result.output and "t1.wav: file is empty (0 bytes)" in result.output
    # Without Redis, reconcile still fixes rows of dead local processes.
    with sqlite_engine.begin() as conn:
        mark_running(conn, ids[track_ids[0]], f"local@{socket.gethostname()}/999999999", extractor="librosa")
    result = CliRunner().invoke(app, ["--db", db, "jobs", "reconcile"], env={"REDIS_URL": ""})
    assert result.exit_code == 0, result.output
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(extractions.c.status, extractions.c.error)
                           .where(extractions.c.id == ids[track_ids[0]])).one()
    assert row.status == "failed" and "worker died" in row.error
    result = CliRunner().invoke(app, ["--db", db, "jobs", "retry", "--failed"], env={"REDIS_URL": ""})
    assert result.exit_code == 1 and "REDIS_URL is not set" in result.output
