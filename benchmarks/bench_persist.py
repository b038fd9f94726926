"""Persist-path benchmark: extractions stored per second by 1, 2 and 4 concurrent worker processes, one PostgreSQL.

Run (needs PostgreSQL; works in a throwaway schema it drops afterwards):

    python benchmarks/bench_persist.py --extractions 2000 [--workers 1,2,4] [--segments 10]

Each worker process runs, per extraction, exactly the database part of an audio task
(``jobs.tasks.audio_track``): one transaction claims the row (``mark_running``) and reads the job
(``load_audio_job``), a stub extractor returns fixed arrays (librosa's 83 values and ``--segments``
3 s segments of 83 values), a second transaction stores them (``save_result``: one row in
``librosa_values``, one multi-row INSERT into ``librosa_segment_values``, the row ``done``). Workers take
disjoint slices of the queued rows, start together and the wall time of the slowest counts. The
baseline is the same run with one worker, in the same process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

from pg_schema import POSTGRES_URL, scratch_schema  # the script's folder is on sys.path
from sqlalchemy import insert, text

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import LIBROSA_V1
from music_classifier.db.tables import extractions, tracks
from music_classifier.jobs.persist import load_audio_job, mark_running, save_result

FEATURES = {name: float(i) / 7.0 for i, name in enumerate(LIBROSA_V1)}


def stub_extract(n_segments: int) -> tuple[dict[str, float], list[tuple[int, float, dict[str, float]]]]:
    """A stub extractor: fixed values (the write path's cost does not depend on them)."""
    return FEATURES, [(s, 3.0 * s, FEATURES) for s in range(n_segments)]


def worker(url: str, ids: list[int], n_segments: int, start: mp.Event, out: mp.Queue) -> None:
    engine = make_engine(url)
    label = f"bench:{os.getpid()}"
    with engine.connect() as conn:  # connect before the clock starts, as a running worker has
        conn.execute(text("SELECT 1"))
    start.wait()
    t0 = time.perf_counter()
    for eid in ids:
        with engine.begin() as conn:
            claim = mark_running(conn, eid, label, extractor="librosa")
            load_audio_job(conn, eid, "librosa")
        values, segments = stub_extract(n_segments)
        with engine.begin() as conn:
            assert save_result(conn, eid, values, segments, seconds=0.0, claim=claim)
    out.put(time.perf_counter() - t0)
    engine.dispose()


def run(url: str, n: int, n_workers: int, n_segments: int) -> float:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE extractions, tracks CASCADE"))
        conn.execute(insert(tracks), [{"id": i, "source": "file", "track_key": f"k{i}", "artist": "a",
                                       "title": f"t{i}", "song": f"a - t{i}", "audio_path": f"a/{i}.wav"}
                                      for i in range(1, n + 1)])
        conn.execute(insert(extractions), [{"id": i, "track_id": i, "extractor": "librosa", "version": "1",
                                            "params_hash": "p", "status": "queued"} for i in range(1, n + 1)])
        conn.execute(text("ANALYZE"))
    engine.dispose()
    ids = list(range(1, n + 1))
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, ids[w::n_workers], n_segments, start, out))
             for w in range(n_workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    times = [out.get() for _ in procs]
    for p in procs:
        p.join()
    engine = make_engine(url)
    with engine.connect() as conn:
        done = conn.execute(text("SELECT COUNT(*) FROM extractions WHERE status = 'done'")).scalar_one()
        seg_rows = conn.execute(text("SELECT COUNT(*) FROM librosa_segment_values")).scalar_one()
    engine.dispose()
    assert done == n and seg_rows == n * n_segments, (done, seg_rows)
    return max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extractions", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--url", default=POSTGRES_URL)
    args = parser.parse_args()
    with scratch_schema("bench_persist", args.url) as schema:
        migrate.upgrade(make_engine(schema.url))
        results = {w: run(schema.url, args.extractions, w, args.segments)
                   for w in map(int, args.workers.split(","))}
    n, rows_per = args.extractions, 1 + args.segments
    base = n / results[min(results)]
    print(f"{n:,} extractions, each 1 + {args.segments} value rows of 83 features, PostgreSQL, {os.cpu_count()} cores")
    print("| workers | seconds | extractions/s | value rows/s | vs 1 worker |")
    print("|---|---|---|---|---|")
    for w, secs in results.items():
        print(f"| {w} | {secs:.2f} | {n / secs:,.0f} | {n * rows_per / secs:,.0f} | {n / secs / base:.2f}x |")


if __name__ == "__main__":
    main()
