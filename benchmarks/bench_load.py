"""Dataset read benchmark: ``load_dataset`` (what ``train`` reads) against reading the same values from a plain table.

Run (needs PostgreSQL for ``--db postgresql``; works in a throwaway schema / temporary file it removes):

    python benchmarks/bench_load.py --tracks 20000 [--db postgresql|sqlite] [--segments 0] [--repeat 3]

Synthesizes ``--tracks`` tracks in 10 genres with librosa (83) and musicnn (450) values written through
``db.values.insert_rows`` (the bulk write path), creates the dataset ``bench`` (librosa,musicnn; with
``--segments K`` a librosa segment dataset of K segments per track instead), then measures, best of
``--repeat`` in the same process:

- ours: ``models.load_data.load_dataset`` (values by binary COPY / cursor batches, facts once per track);
- before: the previous reader, ``SELECT *`` of the dataset view through SQLAlchemy rows transposed in Python;
- baseline: ``db.matrix_read.read_float_matrix`` of a plain table holding the view's rows (written in key
  order, read without a sort);
- ``numpy.load`` of an .npz file of the same array.

Peak memory: tracemalloc's peak during ``load_dataset`` over the size of the float64 array it returns.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

sys.path.insert(0, os.path.dirname(__file__))
from pg_schema import POSTGRES_URL, scratch_schema  # noqa: E402
from timing import best  # noqa: E402

from music_classifier.db import migrate  # noqa: E402
from music_classifier.db.engine import make_engine  # noqa: E402
from music_classifier.db.feature_columns import LIBROSA_V1, MUSICNN_V1  # noqa: E402
from music_classifier.db.matrix_read import read_float_matrix  # noqa: E402
from music_classifier.db.tables import extractions, genres, track_genres, tracks  # noqa: E402
from music_classifier.db.values import insert_rows  # noqa: E402
from music_classifier.models.datasets import DatasetDefinition, create_dataset  # noqa: E402
from music_classifier.models.load_data import load_dataset  # noqa: E402


def synthesize(engine, n: int, n_segments: int) -> None:
    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM genre_aliases"))
        conn.execute(text("DELETE FROM genres"))
        conn.execute(insert(genres), [{"id": g + 1, "name": f"g{g}", "display_name": f"Genre {g}"} for g in range(10)])
        conn.execute(insert(tracks), [{"id": i, "source": "file", "track_key": f"k{i}", "artist": f"artist {i}",
                                       "title": f"title {i}", "song": f"artist {i} - title {i}"}
                                      for i in range(1, n + 1)])
        conn.execute(insert(track_genres), [{"track_id": i, "rank": 0, "genre_id": i % 10 + 1}
                                            for i in range(1, n + 1)])
        kinds = ["librosa"] if n_segments else ["librosa", "musicnn"]
        for k, extractor in enumerate(kinds):
            conn.execute(insert(extractions), [{"id": k * n + i, "track_id": i, "extractor": extractor, "version": "1",
                                                "params_hash": "p", "status": "done"} for i in range(1, n + 1)])
        ids = np.arange(1, n + 1)
        if n_segments:
            from music_classifier.db.tables import librosa_segment_values

            for start in range(0, n, 2000):  # segments: executemany of wide rows, 2,000 tracks at a time
                rows = [{"extraction_id": int(i), "segment": s, "start_s": 3.0 * s,
                         **dict(zip(LIBROSA_V1, rng.normal(size=len(LIBROSA_V1)).tolist(), strict=True))}
                        for i in ids[start:start + 2000] for s in range(n_segments)]
                conn.execute(insert(librosa_segment_values), rows)
        else:
            insert_rows(conn, "librosa", ids, LIBROSA_V1, rng.normal(size=(n, len(LIBROSA_V1))))
            insert_rows(conn, "musicnn", n + ids, MUSICNN_V1, rng.normal(size=(n, len(MUSICNN_V1))))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        create_dataset(conn, "bench", DatasetDefinition(features="librosa" if n_segments else "librosa,musicnn",
                                                        top=10, min_per_genre=1, segments=bool(n_segments)))
        order = "track_id, segment" if n_segments else "track_id"
        conn.execute(text(f"CREATE TABLE bench_plain AS SELECT * FROM dataset_bench ORDER BY {order}"))
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE bench_plain"))


def old_reader(engine, segments: bool) -> np.ndarray:
    """The reader before issue 19: rows through SQLAlchemy, transposed with zip, one column at a time."""
    meta = {"track_id", "genre", "artist", "title", "source", "segment", "start_s"}
    with engine.connect() as conn:
        order = "track_id, segment" if segments else "track_id"
        result = conn.execute(text(f"SELECT * FROM dataset_bench ORDER BY {order}"))
        names = list(result.keys())
        rows = result.all()
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    features = [c for c in names if c not in meta]
    X = np.empty((len(rows), len(features)))
    for j, c in enumerate(features):
        X[:, j] = np.array(columns[c], dtype=np.float64)
    return X


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--url", default=POSTGRES_URL)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    schema = ExitStack()  # PostgreSQL: the throwaway schema, dropped after the engine is disposed
    if args.db == "postgresql":
        url = schema.enter_context(scratch_schema("bench_load", args.url)).url
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    segments = bool(args.segments)
    try:
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        synthesize(engine, args.tracks, args.segments)
        setup_s = time.perf_counter() - t0
        with engine.connect() as conn:
            frame = load_dataset(conn, "bench")
            names = frame.feature_names
        X = frame.X
        np.savez(tmp / "bench.npz", X=X)
        keys = ["track_id", "segment"] if segments else ["track_id"]

        def plain() -> np.ndarray:  # the table was written in key order: no sort asked for
            with engine.connect() as conn:
                return read_float_matrix(conn, "bench_plain", names, expected_rows=len(X))

        def ours() -> np.ndarray:
            with engine.connect() as conn:
                return load_dataset(conn, "bench").X

        with engine.connect() as conn:
            in_order = read_float_matrix(conn, "bench_plain", names, order_by=keys)
        assert np.array_equal(in_order, X) and np.array_equal(old_reader(engine, segments), X)
        assert plain().shape == X.shape
        del frame
        tracemalloc.start()
        ours()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        times = {"baseline: plain table, same reader": best(plain, args.repeat),
                 "ours: load_dataset": best(ours, args.repeat),
                 "before: SELECT * rows transposed in Python": best(lambda: old_reader(engine, segments), args.repeat),
                 ".npz file (numpy.load)": best(lambda: np.load(tmp / "bench.npz")["X"], args.repeat)}
    finally:
        engine.dispose()
        schema.close()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    what = f"librosa {args.segments} segments" if segments else "librosa+musicnn"
    print(f"{args.db}: {args.tracks:,} tracks, {what}: X {X.shape[0]:,} x {X.shape[1]} "
          f"({X.nbytes / 2**20:.0f} MiB), setup {setup_s:.1f} s, best of {args.repeat}")
    print("| reader | seconds | vs plain table |")
    print("|---|---|---|")
    base = times["baseline: plain table, same reader"]
    for label, secs in times.items():
        print(f"| {label} | {secs:.2f} | {secs / base:.2f}x |")
    print(f"peak memory of load_dataset (tracemalloc): {peak / X.nbytes:.2f}x the array")


if __name__ == "__main__":
    main()
