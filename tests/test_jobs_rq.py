"""RQ against the real Redis, with real `music-classifier worker --burst` processes.

Each test uses its own queue name (uuid) and deletes only its own keys; never FLUSHDB.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, insert, select, text
from waits import HANG_S, wait_until

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.tables import extractions, features, segment_features, tracks
from music_classifier.jobs.enqueue import enqueue_extractions, librosa_spec
from music_classifier.jobs.reconcile import reconcile, retry_failed
from music_classifier.jobs.runtime import make_queue, redis_connection
from music_classifier.jobs.tasks import TEST_HOLD_ENV

pytestmark = pytest.mark.redis
SR = 22050
N_FEATURES = 83


class Env:
    def __init__(self, tmp_path: Path, redis_url: str):
        self.db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
        self.engine = make_engine(self.db_url)
        migrate.upgrade(self.engine)
        self.library = tmp_path / "library"
        self.library.mkdir()
        self.redis_url = redis_url
        self.queue_name = f"mc-test-{uuid.uuid4().hex[:12]}"
        self.redis = redis_connection(redis_url)
        self.queue = make_queue(self.redis, self.queue_name)
        self.env = {**os.environ, "DATABASE_URL": self.db_url, "MUSIC_CLASSIFIER_LIBRARY": str(self.library),
                    "REDIS_URL": redis_url, "MUSIC_CLASSIFIER_QUEUE": self.queue_name}
        self.env.pop(TEST_HOLD_ENV, None)

    def add_track(self, name: str, content: bytes | np.ndarray | None) -> int:
        path = self.library / name
        if isinstance(content, np.ndarray):
            sf.write(path, content, SR)
        elif content is not None:
            path.write_bytes(content)
        with self.engine.begin() as conn:
            return conn.execute(insert(tracks).values(
                source="file", track_key=f"a\x1f{name}", artist="a", title=name, song=f"a - {name}",
                audio_path=name).returning(tracks.c.id)).scalar_one()

    def worker(self, *extra: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "music_classifier.cli", "worker", "--burst", *extra],
                                env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def run_worker(self) -> str:
        proc = self.worker()
        out, _ = proc.communicate(timeout=HANG_S)  # a ceiling for a hang: a loaded machine may take minutes
        assert proc.returncode == 0, out.decode()
        return out.decode()

    def statuses(self) -> dict[int, tuple[str, str | None]]:
        with self.engine.connect() as conn:
            return {r.track_id: (r.status, r.error) for r in conn.execute(
                select(extractions.c.track_id, extractions.c.status, extractions.c.error))}

    def feature_counts(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            return {t: n for t, n in conn.execute(select(extractions.c.track_id, func.count(features.c.name))
                                                  .join(features, features.c.extraction_id == extractions.c.id)
                                                  .group_by(extractions.c.track_id))}

    def cleanup(self) -> None:
        keys = set(self.redis.scan_iter(match=f"*{self.queue_name}*", count=1000))
        keys |= {f"rq:queue:{self.queue_name}".encode()}
        for key in keys:
            self.redis.delete(key)
        self.redis.srem("rq:queues", f"rq:queue:{self.queue_name}")
        self.engine.dispose()


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(int(freq))
    return (0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def rq_env(tmp_path, redis_url, warm_numba):
    env = Env(tmp_path, redis_url)
    yield env
    env.cleanup()


def enqueue(env: Env, selection: str = "missing"):
    with env.engine.begin() as conn:
        return enqueue_extractions(conn, env.queue, extractor="librosa", selection=selection,
                                   spec=librosa_spec(segments=True))


def test_worker_process_computes_good_files_fails_bad_ones_and_refuses_foreign_functions(rq_env, tmp_path):
    good = [rq_env.add_track(f"tone{i}.wav", tone(3.0, 220.0 * (i + 1))) for i in range(2)]
    corrupt = rq_env.add_track("corrupt.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    empty = rq_env.add_track("empty.wav", b"")
    not_audio = rq_env.add_track("notes.wav", b"this is a text file, not audio\n" * 20)
    missing = rq_env.add_track("gone.wav", None)
    report = enqueue(rq_env)
    assert (report.tracks, report.jobs) == (6, 6)
    # Payload is the extraction id only (JSON), no path or credential.
    payload = json.loads(zlib.decompress(rq_env.redis.hget(f"rq:job:{report.job_ids[0]}", "data")))
    assert payload[0] == "music_classifier.jobs.tasks.librosa_track"
    assert payload[1:] == [None, [payload[2][0]], {}] and isinstance(payload[2][0], int)

    marker = tmp_path / "pwned"
    evil = rq_env.queue.enqueue("os.system", f"touch {marker}", job_id=f"{rq_env.queue_name}-evil")

    rq_env.run_worker()

    statuses = rq_env.statuses()
    counts = rq_env.feature_counts()
    for track in good:
        assert statuses[track] == ("done", None)
        assert counts[track] == N_FEATURES
    for track, words in [(corrupt, "not a readable audio file"), (empty, "empty"),
                         (not_audio, "not a readable audio file"), (missing, "not found")]:
        status, error = statuses[track]
        assert status == "failed" and words in error, (track, error)
        assert track not in counts
    with rq_env.engine.connect() as conn:
        view = conn.execute(text("SELECT track_id, tempo, mfcc1_mean FROM librosa_features ORDER BY track_id")).all()
        assert [r.track_id for r in view] == good and all(r.tempo is not None for r in view)
        assert conn.execute(select(func.count()).select_from(segment_features)).scalar_one() == 2 * N_FEATURES

    assert not marker.exists()
    evil.refresh()
    assert evil.get_status().value == "failed"
    assert "refused" in (evil.latest_result().exc_string or "")


def _wait_for_running(env: Env) -> int:
    def running() -> int | None:  # polling the database for the job's own signal, not waiting for a guess
        with env.engine.connect() as conn:
            return conn.execute(select(extractions.c.id).where(extractions.c.status == "running")).scalar()

    return wait_until(running, "a job started")


def test_killed_worker_then_reconcile_and_new_worker_leave_every_track_done_or_failed(rq_env, tmp_path):
    ids = [rq_env.add_track(f"t{i}.wav", tone(2.0, 200.0 + 50 * i)) for i in range(3)]
    enqueue(rq_env)
    fifo = tmp_path / "hold.fifo"
    os.mkfifo(fifo)
    first = rq_env.worker(env={**rq_env.env, TEST_HOLD_ENV: str(fifo)})
    try:
        held = _wait_for_running(rq_env)
        with rq_env.engine.connect() as conn:
            label = conn.execute(select(extractions.c.worker).where(extractions.c.id == held)).scalar_one()
        horse_pid = int(label.rsplit("/", 1)[1])
        # The machine "dies": the worker's process group and the work horse (its own group) get SIGKILL.
        os.killpg(first.pid, signal.SIGKILL)
        os.killpg(horse_pid, signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()

    with rq_env.engine.begin() as conn:
        report = reconcile(conn, rq_env.queue)
    assert [eid for eid, _ in report.dead] == [held]
    rq_env.run_worker()

    statuses = rq_env.statuses()
    counts = rq_env.feature_counts()
    for track in ids:
        status, error = statuses[track]
        assert status in ("done", "failed")
        if status == "failed":
            assert "worker died" in error
            assert track not in counts
        else:
            assert counts[track] == N_FEATURES
    assert sum(s == "failed" for s, _ in statuses.values()) == 1

    # The dead job is not resurrected by RQ later, and `jobs retry --failed` finishes it.
    with rq_env.engine.begin() as conn:
        assert retry_failed(conn, rq_env.queue) == 1
    rq_env.run_worker()
    assert {s for s, _ in rq_env.statuses().values()} == {"done"}
    assert rq_env.feature_counts() == dict.fromkeys(ids, N_FEATURES)
    with rq_env.engine.connect() as conn:  # one set of rows per extraction, none duplicated
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 3 * N_FEATURES


def test_redis_losing_queued_jobs_loses_nothing_after_reconcile(rq_env):
    ids = [rq_env.add_track(f"t{i}.wav", tone(2.0, 300.0 + 10 * i)) for i in range(3)]
    report = enqueue(rq_env)
    # "Restart" Redis without persistence: the queue and every job hash are gone.
    rq_env.redis.delete(f"rq:queue:{rq_env.queue_name}", *[f"rq:job:{j}" for j in report.job_ids])
    assert rq_env.queue.count == 0
    with rq_env.engine.begin() as conn:
        fixed = reconcile(conn, rq_env.queue)
    assert fixed.requeued == 3 and fixed.dead == []
    assert rq_env.queue.count == 3
    with rq_env.engine.begin() as conn:  # a second pass finds nothing to do
        again = reconcile(conn, rq_env.queue)
    assert (again.requeued, again.dead) == (0, [])
    rq_env.run_worker()
    assert rq_env.feature_counts() == dict.fromkeys(ids, N_FEATURES)


def test_enqueue_twice_does_not_duplicate(rq_env):
    for i in range(4):
        rq_env.add_track(f"t{i}.wav", tone(2.0))
    first = enqueue(rq_env)
    second = enqueue(rq_env)
    assert (first.jobs, second.jobs) == (4, 0)
    assert rq_env.queue.count == 4
    with rq_env.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(extractions)).scalar_one() == 4


def test_enqueue_without_redis_says_use_compute(tmp_path):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    db = f"sqlite:///{tmp_path / 'x.db'}"
    env = {"REDIS_URL": "", "DATABASE_URL": db}
    result = CliRunner().invoke(app, ["features", "enqueue", "--extractor", "librosa"], env=env)
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output and "features compute" in result.output


def test_spotify_429_under_rq_is_re_enqueued_after_retry_after_and_then_completes(rq_env):
    from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, fake_id, features_for
    from rq.registry import ScheduledJobRegistry

    fake = FakeSpotify().start()
    try:
        sid = fake.add_track(fake_id(1), "Artist", "Title")
        with rq_env.engine.begin() as conn:
            track = conn.execute(insert(tracks).values(
                source="sheet", track_key="artist\x1ftitle", artist="Artist", title="Title", song="Artist - Title",
                spotify_id=sid).returning(tracks.c.id)).scalar_one()
            report = enqueue_extractions(conn, rq_env.queue, extractor="spotify", selection="missing")
        assert (report.tracks, report.jobs) == (1, 1)
        fake.fail("/v1/audio-features", 429, 1, Retry_After="1")
        env = {**rq_env.env, "SPOTIFY_CLIENT_ID": CLIENT_ID, "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
               "SPOTIFY_API_URL": fake.api_url, "SPOTIFY_AUTH_URL": fake.auth_url}

        def burst() -> None:
            proc = rq_env.worker("--no-preload", env=env)
            out, _ = proc.communicate(timeout=HANG_S)
            assert proc.returncode == 0, out.decode()

        burst()  # 429: the worker re-enqueues the batch for later and returns at once (never sleeps)
        with rq_env.engine.connect() as conn:
            row = conn.execute(select(extractions).where(extractions.c.track_id == track)).one()
        assert row.status == "queued" and row.rq_job_id == report.job_ids[0][:-1] + "2"
        registry = ScheduledJobRegistry(rq_env.queue_name, connection=rq_env.redis, serializer=rq_env.queue.serializer)
        assert row.rq_job_id in registry.get_job_ids()
        due = registry.get_scheduled_time(row.rq_job_id).timestamp()
        while time.time() < due + 0.1:  # Retry-After must pass before the scheduler releases the job
            time.sleep(0.1)

        burst()  # the worker's scheduler enqueues the due job, the worker runs it
        with rq_env.engine.connect() as conn:
            row = conn.execute(select(extractions).where(extractions.c.track_id == track)).one()
            stored = dict(conn.execute(select(features.c.name, features.c.value)
                                       .where(features.c.extraction_id == row.id)).all())
        assert row.status == "done"
        assert stored["tempo"] == features_for(sid)["tempo"] and len(stored) == 12
        assert fake.count("/v1/audio-features") == 2
    finally:
        fake.stop()


def test_a_worker_exits_at_once_when_its_pubsub_thread_read_the_unsubscribe_reply_first(rq_env):
    """At exit RQ sends UNSUBSCRIBE, then stops the pubsub thread (redis-py 8 waits for it). On a busy CPU the
    thread often reads the reply first and then waits out its whole poll for a new subscription: `worker --burst`
    lingered 60 s after "done, quitting". That order is forced here, by waiting for the reply to be read."""
    import threading

    from music_classifier.jobs.worker import TaskWorker

    worker = TaskWorker([rq_env.queue], connection=rq_env.redis, serializer=rq_env.queue.serializer)
    worker.subscribe()
    pubsub = worker.pubsub
    send_unsubscribe = pubsub.unsubscribe

    def unsubscribe_and_let_the_thread_read_the_reply(*args, **kwargs):
        send_unsubscribe(*args, **kwargs)
        wait_until(lambda: not pubsub.subscribed, "the pubsub thread handling the reply", poll_s=0.01)

    pubsub.unsubscribe = unsubscribe_and_let_the_thread_read_the_reply
    teardown = threading.Thread(target=worker.unsubscribe, daemon=True)
    teardown.start()
    teardown.join(timeout=30)  # bounded by the poll interval (1 s); before, 60 s
    assert not teardown.is_alive(), "the worker's teardown waited for the pubsub thread's poll"
    assert not worker.pubsub_thread.is_alive()


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (read from /proc)."""
    from music_classifier.jobs.runtime import process_alive

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and process_alive(int(entry)):
                found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_scheduler_process_ends_with_a_sigkilled_worker(rq_env):
    """RQ forks its scheduler from the worker; a worker killed with SIGKILL must not leave it running
    (an orphan holding the queue's scheduler lock, enqueueing for a worker that is gone)."""
    from rq.scheduler import RQScheduler

    from music_classifier.jobs.runtime import process_alive

    lock_key = RQScheduler.get_locking_key(rq_env.queue_name)
    proc = subprocess.Popen([sys.executable, "-m", "music_classifier.cli", "worker", "--no-preload"],
                            env=rq_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    children: list[int] = []
    try:
        def started() -> bool:
            children[:] = _children(proc.pid)
            return bool(children) and bool(rq_env.redis.exists(lock_key))

        wait_until(started, "the worker's scheduler", poll_s=0.2)
        assert len(children) == 1, children
        [scheduler] = children

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=HANG_S)
        wait_until(lambda: not process_alive(scheduler), "the scheduler ending with its worker", poll_s=0.1)
        assert not rq_env.redis.exists(lock_key)  # it stopped as RQ stops it: the queue's lock released
    finally:
        for pid in [proc.pid, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_worker_process_runs_musicnn_jobs(rq_env, musicnn_checkpoint):
    from music_classifier.jobs.enqueue import spec_for

    tracks_ = [rq_env.add_track(f"nn{i}.wav", tone(6.5, 330.0 * (i + 1))) for i in range(2)]
    with rq_env.engine.begin() as conn:
        report = enqueue_extractions(conn, rq_env.queue, extractor="musicnn", selection="missing",
                                     spec=spec_for("musicnn"))
    assert (report.tracks, report.jobs) == (2, 2)
    payload = json.loads(zlib.decompress(rq_env.redis.hget(f"rq:job:{report.job_ids[0]}", "data")))
    assert payload[0] == "music_classifier.jobs.tasks.musicnn_track"
    rq_env.run_worker()
    assert rq_env.statuses() == {t: ("done", None) for t in tracks_}
    with rq_env.engine.connect() as conn:
        rows = conn.execute(text("SELECT track_id, tag_rock FROM musicnn_features ORDER BY track_id")).all()
        segments = conn.execute(text("SELECT COUNT(*) FROM musicnn_segment_features")).scalar_one()
    assert [r.track_id for r in rows] == tracks_ and all(0 <= r.tag_rock <= 1 for r in rows)
    assert segments == 2 * 2  # two full 3 s windows in 6.5 s
