"""Enqueue benchmark: ``enqueue_extractions`` (database rows included) vs RQ's own ``enqueue_many``.

Run (needs Redis; uses throwaway queue names and deletes their keys afterwards):

    REDIS_URL=redis://127.0.0.1:6379/0 python benchmarks/bench_enqueue.py [--jobs 100000] [--rounds 2]

Measured in the same process and run:
- baseline: ``Queue.enqueue_many`` of N bare jobs (same JSON serializer, same task, one id each),
  RQ's own pipelined bulk path;
- ours: ``enqueue_extractions`` for N tracks on a SQLite file: selecting the tracks, inserting N
  ``queued`` extraction rows, recording job ids, building and pushing N jobs (Retry, timeout,
  deterministic ids) and committing;
- a sample of one ``Queue.enqueue`` call per job, extrapolated to N.
Target: ours <= 1.5x the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rq import Queue
from sqlalchemy import insert

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.tables import tracks
from music_classifier.jobs.enqueue import LIBROSA_TASK, enqueue_extractions, librosa_spec
from music_classifier.jobs.runtime import make_queue, redis_connection


def delete_queue_keys(redis, queue: Queue, job_ids: list[str]) -> None:
    with redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(job_ids), 10_000):
            pipe.delete(*[f"rq:job:{j}" for j in job_ids[start:start + 10_000]])
            pipe.execute()
    for key in redis.scan_iter(match=f"*{queue.name}*", count=10_000):
        redis.delete(key)
    redis.srem("rq:queues", queue.key)


def bench_baseline(redis, n: int) -> float:
    queue = make_queue(redis, f"mc-bench-{uuid.uuid4().hex[:10]}")
    datas = None
    try:
        t0 = time.perf_counter()
        datas = [Queue.prepare_data(LIBROSA_TASK, args=[i]) for i in range(1, n + 1)]
        jobs = queue.enqueue_many(datas)
        elapsed = time.perf_counter() - t0
        assert queue.count == n
        return elapsed
    finally:
        delete_queue_keys(redis, queue, [j.id for j in jobs] if datas else [])


def bench_one_by_one(redis, sample: int) -> float:
    queue = make_queue(redis, f"mc-bench-{uuid.uuid4().hex[:10]}")
    ids = []
    try:
        t0 = time.perf_counter()
        for i in range(1, sample + 1):
            ids.append(queue.enqueue(LIBROSA_TASK, i).id)
        return time.perf_counter() - t0
    finally:
        delete_queue_keys(redis, queue, ids)


def bench_ours(redis, n: int, workdir: Path) -> float:
    db = workdir / f"bench-{uuid.uuid4().hex[:6]}.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    with engine.begin() as conn:  # setup, not timed: N tracks with audio
        conn.execute(insert(tracks), [
            {"source": "file", "track_key": f"artist {i}\x1ftitle {i}", "artist": f"artist {i}",
             "title": f"title {i}", "song": f"artist {i} - title {i}", "audio_path": f"a/{i}.wav"}
            for i in range(n)])
    queue = make_queue(redis, f"mc-bench-{uuid.uuid4().hex[:10]}")
    report = None
    try:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            report = enqueue_extractions(conn, queue, extractor="librosa", selection="missing", spec=librosa_spec())
        elapsed = time.perf_counter() - t0
        assert report.jobs == n and queue.count == n
        return elapsed
    finally:
        delete_queue_keys(redis, queue, report.job_ids if report else [])
        engine.dispose()
        db.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample", type=int, default=2_000, help="jobs for the one-enqueue-per-job estimate")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    redis = redis_connection(url)
    redis.ping()
    base, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base.append(bench_baseline(redis, args.jobs))
            ours.append(bench_ours(redis, args.jobs, Path(tmp)))
            print(f"round {r + 1}: rq enqueue_many {base[-1]:.2f} s, ours {ours[-1]:.2f} s "
                  f"(ratio {ours[-1] / base[-1]:.2f})", flush=True)
    single = bench_one_by_one(redis, args.sample) * args.jobs / args.sample
    b, o = statistics.median(base), statistics.median(ours)
    print(f"\n{args.jobs:,} jobs, median of {args.rounds} rounds")
    print(f"  rq Queue.enqueue_many (bare jobs)        {b:7.2f} s")
    print(f"  ours: enqueue_extractions (+ DB rows)    {o:7.2f} s   ratio {o / b:.2f} (target <= 1.5)")
    print(f"  rq Queue.enqueue one per job (estimated) {single:7.2f} s   ({args.sample:,}-job sample x "
          f"{args.jobs / args.sample:g})")
    return 0 if o / b <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
