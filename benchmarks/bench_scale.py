"""Benchmark: `dataset create` and the dataset load `train` uses, at research scale, on SQLite and PostgreSQL.

A synthetic library is written through the project's own bulk write path (what ``features import-csv``
uses: ``jobs.persist.ensure_extractions`` for all tracks, then ``db.values.insert_rows``, a binary COPY
on PostgreSQL), or with ``--per-track`` through ``jobs.persist.save_result`` per track as a worker
stores a result (far slower: 1,083 s for 10,000 tracks on PostgreSQL): librosa values (the
``librosa_features`` columns) with 10 segments per track (``librosa_segment_features``) and musicnn
values (``musicnn_features``). Then, for librosa, librosa+musicnn and librosa segments:

* create: :func:`music_classifier.models.datasets.create_dataset` (every track, 16 genres);
* load: :func:`music_classifier.models.load_data.load_dataset` (what ``train`` reads a dataset with);
* baselines over the same values: (i) a plain wide table made from the dataset view
  (``CREATE TABLE … AS SELECT * FROM dataset_x ORDER BY track_id``) read into a float64 array by the same
  reader ``load_dataset`` uses (``db.matrix_read``: binary ``COPY … TO STDOUT`` on PostgreSQL, cursor
  batches on SQLite), one scan with the row count known; (ii) ``np.load`` of an
  ``.npz`` file with X, y and track ids.

Each load and baseline runs in a fresh child process that reports its wall time and its peak resident
memory above its own baseline after imports (VmHWM - VmRSS from /proc/self/status; ``ru_maxrss``
would count the parent's pages). Ratios are against the wide-table read of the same run.

Run:  nice -n 10 python benchmarks/bench_scale.py --tracks 10000 --write
      nice -n 5 python benchmarks/bench_scale.py --tracks 50000 --db postgresql --write
      nice -n 5 python benchmarks/bench_scale.py --tracks 10000,50000,100000 --db sqlite --write
``--tracks`` takes a comma list: one library per size, one after the other, in one table. PostgreSQL: a
throwaway schema in --pg-url (default TEST_POSTGRES_URL or 127.0.0.1:5432/test), dropped after. SQLite: a
database file in a temporary directory (TMPDIR), deleted when its size is done.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, text, update

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.planner_stats import LIBRARY_TABLES, extraction_tables, refresh_planner_stats
from music_classifier.db.tables import extractions, genres, track_genres, tracks
from music_classifier.db.values import insert_rows
from music_classifier.jobs.enqueue import spec_for
from music_classifier.jobs.persist import ensure_extractions, save_result
from music_classifier.models.datasets import DatasetDefinition, create_dataset, view_columns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from pg_schema import POSTGRES_URL, scratch_schema  # noqa: E402

N_GENRES = 16
N_SEGMENTS = 10
SEGMENT_S = 3.0
BATCH = 200  # tracks per commit while writing the library
#: (label, --features, segments)
CASES = [("librosa", "librosa", False), ("librosa+musicnn", "librosa,musicnn", False),
         ("librosa segments", "librosa", True)]


# --- the library -----------------------------------------------------------------------------------------


def _library_rows(engine: Any, n_tracks: int) -> list[int]:
    """Tracks (bulk INSERT) and their genres, 16 of them; the track ids ascending."""
    with engine.begin() as conn:
        genre_ids = [conn.execute(insert(genres).values(name=f"genre{g:02d}", display_name=f"Genre {g:02d}")
                                  .returning(genres.c.id)).scalar_one() for g in range(N_GENRES)]
        for start in range(0, n_tracks, 20_000):
            conn.execute(insert(tracks), [{"source": "file", "track_key": f"bench/{i:07d}.wav",
                                           "artist": f"artist {i % 5000}", "title": f"title {i}",
                                           "song": f"artist {i % 5000} - title {i}"}
                                          for i in range(start, min(start + 20_000, n_tracks))])
        track_ids = list(conn.execute(text("SELECT id FROM tracks ORDER BY id")).scalars())
        conn.execute(insert(track_genres), [{"track_id": t, "genre_id": genre_ids[k % N_GENRES], "rank": 0}
                                            for k, t in enumerate(track_ids)])
    return track_ids


def write_library(engine: Any, n_tracks: int, *, seed: int = 0, say: Any = print) -> float:
    """Tracks, genres and `done` extractions with values for ``n_tracks`` tracks, through the bulk write path
    ``features import-csv`` uses: ``jobs.persist.ensure_extractions`` for every track at once, the rows
    marked done, then ``db.values.insert_rows`` (binary COPY on PostgreSQL, executemany on SQLite) of the
    values, 10,000 tracks per call (segments included). Seconds taken."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cols = view_columns()
    track_ids = _library_rows(engine, n_tracks)
    say(f"  {len(track_ids):,} tracks written ({time.perf_counter() - started:.1f} s)")
    step = 10_000
    for extractor, names, with_segments in (("librosa", cols["librosa_features"], True),
                                            ("musicnn", cols["musicnn_features"], False)):
        spec = spec_for(extractor)
        with engine.begin() as conn:
            ids = ensure_extractions(conn, track_ids, extractor=extractor, version=spec.version, params=spec.params,
                                     params_hash=spec.params_hash)
            conn.execute(update(extractions).where(extractions.c.extractor == extractor)
                         .values(status="done", finished_at=func.now(), seconds=0.0))
        eids = np.array([ids[t] for t in track_ids], dtype=np.int64)
        for start in range(0, len(eids), step):
            chunk = eids[start:start + step]
            with engine.begin() as conn:
                insert_rows(conn, extractor, chunk, names, rng.standard_normal((len(chunk), len(names))))
                if with_segments:
                    insert_rows(conn, extractor, np.repeat(chunk, N_SEGMENTS), names,
                                rng.standard_normal((len(chunk) * N_SEGMENTS, len(names))),
                                segments=(np.tile(np.arange(N_SEGMENTS), len(chunk)),
                                          np.tile(np.arange(N_SEGMENTS) * SEGMENT_S, len(chunk))))
        say(f"  {extractor}: {len(eids):,} tracks written ({time.perf_counter() - started:.1f} s)")
    with engine.begin() as conn:  # what the import and the workers' refresh_if_grown do after their writes
        refresh_planner_stats(conn, [*LIBRARY_TABLES, *extraction_tables()])
    return time.perf_counter() - started


def write_library_per_track(engine: Any, n_tracks: int, *, seed: int = 0, say: Any = print) -> float:
    """The same library through ``jobs.persist`` one track at a time (``ensure_extractions`` then
    ``save_result`` per track as a worker stores a result, committed in batches of 200). Seconds taken."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cols = view_columns()
    librosa_names, musicnn_names = cols["librosa_features"], cols["musicnn_features"]
    segment_names = cols["librosa_segment_features"]
    track_ids = _library_rows(engine, n_tracks)
    for extractor, names, with_segments in (("librosa", librosa_names, True), ("musicnn", musicnn_names, False)):
        spec = spec_for(extractor)
        for start in range(0, len(track_ids), BATCH):
            chunk = track_ids[start:start + BATCH]
            with engine.begin() as conn:
                ids = ensure_extractions(conn, chunk, extractor=extractor, version=spec.version, params=spec.params,
                                         params_hash=spec.params_hash)
                for t in chunk:
                    values = rng.standard_normal(len(names))
                    segments = None
                    if with_segments:
                        seg = rng.standard_normal((N_SEGMENTS, len(segment_names)))
                        segments = [(i, i * SEGMENT_S, dict(zip(segment_names, seg[i].tolist(), strict=True)))
                                    for i in range(N_SEGMENTS)]
                    save_result(conn, ids[t], dict(zip(names, values.tolist(), strict=True)), segments, seconds=0.0,
                                extractor=extractor)
            if (start // BATCH) % 25 == 0:
                say(f"  {extractor}: {start + len(chunk):,}/{len(track_ids):,} tracks written")
    with engine.begin() as conn:  # what the workers' refresh_if_grown keeps up to date as they go
        refresh_planner_stats(conn, [*LIBRARY_TABLES, *extraction_tables()])
    return time.perf_counter() - started


# --- children: one measurement each, in a fresh process --------------------------------------------------


def _memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(kind: str, url: str, name: str, npz: str, segments: bool, features: list[str],
          rows: int) -> dict[str, Any]:
    """Run one read and report {seconds, peak_mb (above the post-import baseline), array_mb, rows}."""
    from music_classifier.models.load_data import load_dataset

    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    base = _memory_kb("VmRSS")
    started = time.perf_counter()
    if kind == "load":
        with engine.connect() as conn:
            frame = load_dataset(conn, name)
        X, y, ids = frame.X, frame.y, frame.track_ids
    elif kind == "wide":  # the same reader (binary COPY / cursor batches) over a plain table in key order
        from music_classifier.db.matrix_read import read_keyed_matrix

        table = f"bench_wide_{name}"
        keys = ["track_id", "segment"] if segments else ["track_id"]
        with engine.connect() as conn:  # one scan: the columns and the row count are known beforehand
            key_values, X = read_keyed_matrix(conn, f'"{table}"', keys, features, expected_rows=rows)
            ids = key_values[:, 0].astype(np.int64)
    else:  # npz
        with np.load(npz, allow_pickle=False) as data:
            X, y, ids = data["X"], data["y"], data["track_ids"]
    seconds = time.perf_counter() - started
    peak_kb = _memory_kb("VmHWM")  # before the .npz below is written (its zip writer buffers 16 MiB)
    if kind == "load" and npz:
        np.savez(npz, X=X, y=np.asarray(y, dtype=str), track_ids=ids)
        Path(npz + ".json").write_text(json.dumps({"features": frame.feature_names, "rows": int(X.shape[0])}))
    engine.dispose()
    return {"seconds": seconds, "peak_mb": (peak_kb - base) / 1024, "array_mb": X.nbytes / 2**20,
            "rows": int(X.shape[0]), "cols": int(X.shape[1])}


def run_child(kind: str, url: str, name: str, npz: str, segments: bool) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--url", url, "--name", name, "--npz", npz]
                         + (["--segments"] if segments else []), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- one database ----------------------------------------------------------------------------------------


def _timed_sql(engine: Any, source: str) -> float:
    """Seconds of ``SELECT count(*), sum(length(x::text)) FROM source x`` (every value, read in the server)."""
    with engine.connect() as conn:
        started = time.perf_counter()
        conn.execute(text(f"SELECT count(*), sum(length(x::text)) FROM {source} x")).one()
        return time.perf_counter() - started


def bench_database(label: str, url: str, n_tracks: int, workdir: Path, repeat: int,
                   per_track: bool = False) -> tuple[float, list[dict]]:
    """Write a library of ``n_tracks`` into the (empty) database at ``url``, then create and load each of
    :data:`CASES`; (seconds the write took, one result per case)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    how = "jobs.persist per track" if per_track else "the bulk write path (db.values.insert_rows)"
    print(f"{label}: writing {n_tracks:,} tracks through {how} …", flush=True)
    write = write_library_per_track if per_track else write_library
    write_s = write(engine, n_tracks, say=lambda m: print(m, flush=True))
    print(f"{label}: library written in {write_s:.1f} s", flush=True)
    results = []
    for case, features, segments in CASES:
        name = case.replace("+", "_").replace(" ", "_")
        creates = []
        for r in range(repeat):
            with engine.begin() as conn:
                if r:
                    conn.execute(text(f'DROP VIEW IF EXISTS "dataset_{name}"'))
                    conn.execute(text("DELETE FROM dataset_member_decisions WHERE dataset_id IN "
                                      "(SELECT id FROM datasets WHERE name = :n)"), {"n": name})
                    conn.execute(text("DELETE FROM dataset_members WHERE dataset_id IN "
                                      "(SELECT id FROM datasets WHERE name = :n)"), {"n": name})
                    conn.execute(text("DELETE FROM datasets WHERE name = :n"), {"n": name})
                started = time.perf_counter()
                create_dataset(conn, name, DatasetDefinition(features=features, top=N_GENRES, min_per_genre=1,
                                                             segments=segments))
                creates.append(time.perf_counter() - started)
        with engine.begin() as conn:  # baseline (i): the same rows as a plain table
            conn.execute(text(f'DROP TABLE IF EXISTS "bench_wide_{name}"'))
            order = "track_id, segment" if segments else "track_id"
            conn.execute(text(f'CREATE TABLE "bench_wide_{name}" AS SELECT * FROM "dataset_{name}" ORDER BY {order}'))
        sql_view = sql_plain = float("nan")
        if engine.dialect.name == "postgresql":  # every value read inside the database: the view vs the table
            sql_view = min(_timed_sql(engine, f'"dataset_{name}"') for _ in range(repeat))
            sql_plain = min(_timed_sql(engine, f'"bench_wide_{name}"') for _ in range(repeat))
        npz = str(workdir / f"{label}_{n_tracks}_{name}.npz")
        load = min((run_child("load", url, name, npz, segments) for _ in range(repeat)), key=lambda d: d["seconds"])
        wide = min((run_child("wide", url, name, npz, segments) for _ in range(repeat)), key=lambda d: d["seconds"])
        npzr = min((run_child("npz", url, name, npz, segments) for _ in range(repeat)), key=lambda d: d["seconds"])
        results.append({"db": label, "tracks": n_tracks, "case": case, "create_s": min(creates), "load": load,
                        "wide": wide, "npz": npzr, "sql_view": sql_view, "sql_plain": sql_plain})
        print(f"{label} {n_tracks:,} {case}: create {min(creates):.2f} s, load {load['seconds']:.2f} s "
              f"(peak +{load['peak_mb']:.0f} MB for a {load['array_mb']:.0f} MB array), wide table "
              f"{wide['seconds']:.2f} s (+{wide['peak_mb']:.0f} MB), npz {npzr['seconds']:.3f} s", flush=True)
    engine.dispose()
    return write_s, results


def _sql_cell(r: dict) -> str:
    if r["sql_view"] != r["sql_view"]:  # NaN: not measured (SQLite)
        return "-"
    return f"{r['sql_view']:.2f} s / {r['sql_plain']:.2f} s ({r['sql_view'] / r['sql_plain']:.1f}x)"


def table(rows: list[dict], write_times: dict[tuple[str, int], float], per_track: bool = False) -> str:
    """The results as a markdown table (the SQL-read column only when PostgreSQL was measured), then the
    write times."""
    sql = any(r["sql_view"] == r["sql_view"] for r in rows)
    head = ("| database | tracks | dataset | rows x features | create | load (`load_dataset`) | wide table read | "
            ".npz | load / wide | load / .npz | peak memory of load (array) |"
            + (" SQL read: view / plain table |" if sql else "") + "\n"
            + "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if sql else "") + "\n")
    body = "".join(
        f"| {r['db']} | {r['tracks']:,} | {r['case']} | {r['load']['rows']:,} x {r['load']['cols']} | "
        f"{r['create_s']:.2f} s | {r['load']['seconds']:.2f} s | {r['wide']['seconds']:.2f} s | "
        f"{r['npz']['seconds']:.3f} s | {r['load']['seconds'] / r['wide']['seconds']:.1f}x | "
        f"{r['load']['seconds'] / max(r['npz']['seconds'], 1e-9):.0f}x | {r['load']['peak_mb']:.0f} MB "
        f"({r['load']['array_mb']:.0f} MB, {r['load']['peak_mb'] / max(r['load']['array_mb'], 1e-9):.1f}x) |"
        + (f" {_sql_cell(r)} |" if sql else "") + "\n"
        for r in rows)
    writes = "; ".join(f"{db} {n:,} tracks {s:.0f} s" for (db, n), s in write_times.items())
    how = "`jobs.persist` per track" if per_track else "the bulk write path (`db.values.insert_rows`)"
    return head + body + f"\nLibrary written through {how}: {writes}.\n"


def parse_sizes(text_: str) -> list[int]:
    """``"10000,50000"`` -> [10000, 50000] (underscores allowed: ``100_000``)."""
    try:
        sizes = [int(part.replace("_", "")) for part in text_.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tracks {text_!r}: a number of tracks or a comma list of them") from None
    if not sizes or min(sizes) < N_GENRES:
        raise argparse.ArgumentTypeError(f"--tracks {text_!r}: at least {N_GENRES} tracks (one per genre)")
    return sizes


def section_heading(sizes: list[int], db: str) -> str:
    """This run's section of BENCHMARKS.md: a SQLite-only run has its own, so it never replaces the
    PostgreSQL (or both-databases) section of the same size."""
    listed = ", ".join(f"{n:,}" for n in sizes[:-1]) + (" and " if len(sizes) > 1 else "") + f"{sizes[-1]:,}"
    return f"## Scale on SQLite: {listed} tracks" if db == "sqlite" else f"## Scale: {listed} tracks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=parse_sizes, default=[10_000],
                        help="tracks in the library, or a comma list of sizes run one after the other")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"),
                        help="default: both up to 10,000 tracks, PostgreSQL only above")
    parser.add_argument("--per-track", action="store_true",
                        help="write the library through jobs.persist one track at a time (as workers do; slow)")
    parser.add_argument("--pg-url", default=POSTGRES_URL)
    parser.add_argument("--repeat", type=int, default=1, help="best of N (create, load and baselines)")
    parser.add_argument("--write", action="store_true",
                        help="replace this run's section of BENCHMARKS.md (a SQLite-only run has its own)")
    parser.add_argument("--child", choices=("load", "wide", "npz"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--npz", default="", help=argparse.SUPPRESS)
    parser.add_argument("--segments", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape = json.loads(Path(args.npz + ".json").read_text()) if args.child == "wide" else {}
        print(json.dumps(child(args.child, args.url, args.name, args.npz, args.segments, shape.get("features", []),
                               shape.get("rows", 0))))
        return
    sizes: list[int] = args.tracks
    args.db = args.db or ("both" if max(sizes) <= 10_000 else "postgresql")
    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())

    # A stopped run (kill PID) still drops its PostgreSQL schema and temporary files (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[dict] = []
    write_times: dict[tuple[str, int], float] = {}
    for n_tracks in sizes:
        rows += bench_size(args, n_tracks, write_times)
    md = table(rows, write_times, args.per_track)
    print(md)
    if args.write:
        heading = section_heading(sizes, args.db)
        flags = f"--db {args.db}" + (" --per-track" if args.per_track else "")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        versions = f"Python {platform.python_version()}" + (f", SQLite {sqlite3.sqlite_version}"
                                                              if args.db in ("sqlite", "both") else "")
        section = (f"{heading}\n\nCommand: `nice -n 5 python benchmarks/bench_scale.py --tracks "
                   f"{','.join(str(n) for n in sizes)} {flags} --repeat {args.repeat} --write` (best of {args.repeat}; "
                   f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, load average at the start "
                   f"{load_start}, at the end {load}; {versions}).\n\n"
                   "create = `create_dataset` (every track, 16 genres); load = `load_dataset` in a fresh process; "
                   "wide table = the same rows as a plain table (`CREATE TABLE AS SELECT * FROM dataset_x ORDER BY "
                   "track_id`) read into float64 by the same reader (`db.matrix_read`: binary `COPY … TO STDOUT` "
                   "on PostgreSQL, cursor batches on SQLite), values only, one scan with the row count known; "
                   ".npz = `np.load` of X, y, track ids. Peak memory = VmHWM - VmRSS after imports in the child.\n\n"
                   + md)
        write_section(heading, section)


def bench_size(args: argparse.Namespace, n_tracks: int, write_times: dict[tuple[str, int], float]) -> list[dict]:
    """One library size on the databases asked for; its files (the SQLite database, the .npz files) are
    deleted before the next size is written."""
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        workdir = Path(tmp)
        if args.db in ("sqlite", "both"):
            url = f"sqlite:///{workdir / 'scale.db'}"
            write_times["SQLite", n_tracks], res = bench_database("SQLite", url, n_tracks, workdir, args.repeat,
                                                                  args.per_track)
            rows += res
        if args.db in ("postgresql", "both"):
            with scratch_schema("bench_scale", args.pg_url) as schema:
                write_times["PostgreSQL", n_tracks], res = bench_database("PostgreSQL", schema.url, n_tracks, workdir,
                                                                          args.repeat, args.per_track)
                rows += res
    return rows


if __name__ == "__main__":
    main()
