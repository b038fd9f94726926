"""Storage design benchmark: one wide table per extractor (a column per feature) vs a float array per row.

Run (needs PostgreSQL; works in a throwaway schema it drops afterwards):

    python benchmarks/bench_storage.py --tracks 10000 [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Both designs hold the same N x 450 values (the musicnn set, the widest extractor) and expose them through a
view of the same name shape (track, genre facts, one column per feature, each track's newest ``done``
extraction). Measured in the same process, best of ``--repeat``:

- write: tracks/s through ``jobs.persist.save_result`` (design a, the real path) vs one ``INSERT`` of a
  ``float8[]`` per track (design b), committing every 100 tracks;
- view read: ``SELECT count(*), sum(length(x::text)) FROM view x`` against the same query over a plain
  table holding the view's rows;
- load: ``db.matrix_read.read_float_matrix`` (binary COPY into numpy) of the view's 450 columns, against the
  same read of the plain table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from sqlalchemy import insert, text

sys.path.insert(0, os.path.dirname(__file__))
from pg_schema import POSTGRES_URL, scratch_schema  # noqa: E402
from timing import best  # noqa: E402

from music_classifier.db import migrate  # noqa: E402
from music_classifier.db.engine import make_engine  # noqa: E402
from music_classifier.db.feature_columns import MUSICNN_V1  # noqa: E402
from music_classifier.db.matrix_read import read_float_matrix  # noqa: E402
from music_classifier.db.tables import extractions, tracks  # noqa: E402
from music_classifier.jobs.persist import save_result  # noqa: E402

COLUMNS = MUSICNN_V1
BATCH = 100


def setup(engine, n: int, extractor: str) -> list[int]:
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM genres WHERE id = 1")).first():
            conn.execute(text("INSERT INTO genres (id, name, display_name) VALUES (1, 'rock', 'Rock')"))
        base = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM tracks")).scalar_one()
        conn.execute(insert(tracks), [{"id": base + i + 1, "source": "file", "track_key": f"{extractor}{i}",
                                       "artist": f"a{i}", "title": f"t{i}", "song": f"a{i} - t{i}"}
                                      for i in range(n)])
        conn.execute(text("INSERT INTO track_genres (track_id, rank, genre_id) SELECT id, 0, 1 FROM tracks "
                          "WHERE id > :b"), {"b": base})
        conn.execute(insert(extractions), [{"track_id": base + i + 1, "extractor": extractor, "version": "1",
                                            "params_hash": "p", "status": "queued"} for i in range(n)])
        return list(conn.execute(text("SELECT id FROM extractions WHERE extractor = :e ORDER BY id"),
                                 {"e": extractor}).scalars())


def write_wide(engine, ids: list[int], values: np.ndarray) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        with engine.begin() as conn:
            for k in range(start, min(start + BATCH, len(ids))):
                save_result(conn, ids[k], dict(zip(COLUMNS, values[k].tolist(), strict=True)), None, seconds=0.1,
                            extractor="musicnn")
    return time.perf_counter() - t0


def write_arrays(engine, ids: list[int], values: np.ndarray) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        with engine.begin() as conn:
            for k in range(start, min(start + BATCH, len(ids))):
                conn.execute(text("DELETE FROM bench_array_values WHERE extraction_id = :e"), {"e": ids[k]})
                conn.execute(text("INSERT INTO bench_array_values (extraction_id, v) VALUES (:e, :v)"),
                             {"e": ids[k], "v": values[k].tolist()})
                conn.execute(text("UPDATE extractions SET status = 'done' WHERE id = :e"), {"e": ids[k]})
    return time.perf_counter() - t0


def array_view_sql() -> str:
    cols = ",\n  ".join(f'w.v[{i + 1}] AS "{c}"' for i, c in enumerate(COLUMNS))
    return f"""CREATE VIEW bench_array_features AS
SELECT t.id AS track_id, t.artist AS artist, t.title AS title, g.display_name AS coarse_genre,
  t.source AS source, newest.extraction_id AS extraction_id,
  {cols}
FROM tracks t
JOIN (SELECT track_id, MAX(id) AS extraction_id FROM extractions
      WHERE extractor = 'bench_array' AND status = 'done' GROUP BY track_id) newest ON newest.track_id = t.id
JOIN bench_array_values w ON w.extraction_id = newest.extraction_id
LEFT JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0
LEFT JOIN genres g ON g.id = tg.genre_id
WHERE t.removed_at IS NULL"""


def read_all(engine, source: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(f"SELECT count(*), sum(length(x::text)) FROM {source} x")).one()


def load(engine, source: str) -> np.ndarray:
    with engine.connect() as conn:
        return read_float_matrix(conn, source, COLUMNS, order_by=["track_id"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=POSTGRES_URL)
    args = parser.parse_args()
    with scratch_schema("bench_storage", args.url) as schema:
        engine = make_engine(schema.url)
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE bench_array_values (extraction_id INTEGER PRIMARY KEY "
                                  "REFERENCES extractions (id) ON DELETE CASCADE, v DOUBLE PRECISION[] NOT NULL)"))
                conn.execute(text(array_view_sql()))
            values = np.random.default_rng(0).normal(size=(args.tracks, len(COLUMNS)))
            wide_ids = setup(engine, args.tracks, "musicnn")
            array_ids = setup(engine, args.tracks, "bench_array")
            w_wide = write_wide(engine, wide_ids, values)
            w_array = write_arrays(engine, array_ids, values)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
                conn.execute(text("CREATE TABLE bench_plain AS SELECT * FROM musicnn_features"))
                conn.execute(text("ANALYZE bench_plain"))
            assert np.array_equal(load(engine, "musicnn_features"), load(engine, "bench_array_features"))
            read = {s: best(lambda s=s: read_all(engine, s), args.repeat)
                    for s in ("bench_plain", "musicnn_features", "bench_array_features")}
            loads = {s: best(lambda s=s: load(engine, s), args.repeat)
                     for s in ("bench_plain", "musicnn_features", "bench_array_features")}
            with engine.connect() as conn:
                size = {t: conn.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar_one()
                        for t in ("musicnn_values", "bench_array_values")}
        finally:
            engine.dispose()
    n = args.tracks
    print(f"{n:,} tracks x {len(COLUMNS)} values, PostgreSQL, best of {args.repeat}")
    print("| design | write tracks/s | view read (x plain) | load (x plain) | table size |")
    print("|---|---|---|---|---|")
    print(f"| plain table (baseline) | - | {read['bench_plain']:.2f} s (1.00x) | "
          f"{loads['bench_plain']:.2f} s (1.00x) | - |")
    designs = (("a: wide table, column per feature", "musicnn_features", w_wide, "musicnn_values"),
               ("b: float8[] per row", "bench_array_features", w_array, "bench_array_values"))
    for label, view, secs, table in designs:
        print(f"| {label} | {n / secs:,.0f} | {read[view]:.2f} s ({read[view] / read['bench_plain']:.2f}x) | "
              f"{loads[view]:.2f} s ({loads[view] / loads['bench_plain']:.2f}x) | {size[table] / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
