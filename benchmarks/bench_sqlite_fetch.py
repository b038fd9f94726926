"""Benchmark: where reading float columns out of SQLite goes, engine vs Python driver vs numpy.

One table of N rows x K REAL columns (random values, an INTEGER PRIMARY KEY) in a temporary SQLite file,
then, best of --repeat, all in this process:

* engine: ``SELECT sum(c1 + c2 + … + cK)``: SQLite decodes every value, nothing crosses into Python;
* fetch: the reader's query (every column ``CAST(… AS REAL)``) through ``sqlite3`` ``fetchmany`` in the
  reader's batch size (each value becomes a Python float in a tuple), nothing converted;
* convert: ``np.array(batch, dtype=float64)`` alone, the reader's numpy step, over the first 20 fetched
  batches held in memory (ns a value);
* reader: :func:`music_classifier.db.matrix_read.read_keyed_matrix`, what a dataset load uses on SQLite
  (the fetch, plus the tuples turned into one float64 array);
* npz: ``np.load`` of the same array from an ``.npz`` file.

Run: nice -n 5 python benchmarks/bench_sqlite_fetch.py --rows 100000 --cols 83,533 --repeat 3
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from music_classifier.db.engine import make_engine
from music_classifier.db.matrix_read import read_keyed_matrix


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(workdir: Path, n_rows: int, n_cols: int, repeat: int) -> dict[str, float]:
    """Seconds of each way of reading the same ``n_rows`` x ``n_cols`` values."""
    path = workdir / f"fetch_{n_rows}_{n_cols}.db"
    names = [f"c{j}" for j in range(n_cols)]
    values = np.random.default_rng(0).standard_normal((n_rows, n_cols))
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {', '.join(n + ' REAL' for n in names)})")
        for start in range(0, n_rows, 10_000):
            part = values[start:start + 10_000].tolist()
            db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (n_cols + 1))})",
                           ((start + i, *row) for i, row in enumerate(part)))
    npz = workdir / f"fetch_{n_rows}_{n_cols}.npz"
    np.savez(npz, X=values)
    db = sqlite3.connect(path)
    out: dict[str, float] = {}
    db.execute(f"SELECT sum({names[-1]}) FROM t").fetchone()  # warm: every page in the OS cache before timing
    out["engine"] = _best(lambda: db.execute(f"SELECT sum({' + '.join(names)}) FROM t").fetchone(), repeat)

    # The reader's SQL on SQLite: every column cast to REAL, fetched in the reader's batch size.
    sql = f"SELECT {', '.join(f'CAST({n} AS REAL)' for n in ['id', *names])} FROM t"
    rows_per_batch = max(16, (1 << 20) // (8 * (n_cols + 1)))

    def fetch() -> None:
        cursor = db.execute(sql)
        while cursor.fetchmany(rows_per_batch):
            pass

    out["fetch"] = _best(fetch, repeat)
    cursor = db.execute(sql)
    batches = [cursor.fetchmany(rows_per_batch) for _ in range(20)]
    batches = [b for b in batches if b]
    cursor.close()
    n_held = sum(len(b) for b in batches) * (n_cols + 1)
    out["convert_ns"] = _best(lambda: [np.array(b, dtype=np.float64) for b in batches], repeat) / n_held * 1e9
    batches.clear()
    engine = make_engine(f"sqlite:///{path}")

    def reader() -> None:
        with engine.connect() as conn:
            _, X = read_keyed_matrix(conn, "t", ["id"], names, expected_rows=n_rows)
        assert X.shape == (n_rows, n_cols)

    out["reader"] = _best(reader, repeat)

    def load_npz() -> None:
        with np.load(npz) as data:
            data["X"]

    out["npz"] = _best(load_npz, repeat)
    engine.dispose()
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", default="83,533", help="comma list of column counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| rows x columns | values | engine (sum inside SQLite) | fetch into Python tuples | reader "
          "(`read_keyed_matrix`) | .npz | fetch / engine | reader / fetch | reader / .npz | ns a value: reader / "
          "its numpy step alone |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_sqlite_fetch_") as tmp:
        for n_cols in (int(c) for c in args.cols.split(",")):
            r = measure(Path(tmp), args.rows, n_cols, args.repeat)
            n_values = args.rows * (n_cols + 1)
            print(f"| {args.rows:,} x {n_cols} | {n_values / 1e6:.1f} M | {r['engine']:.2f} s | {r['fetch']:.2f} s | "
                  f"{r['reader']:.2f} s | {r['npz']:.3f} s | {r['fetch'] / r['engine']:.1f}x | "
                  f"{r['reader'] / r['fetch']:.2f}x | {r['reader'] / r['npz']:.0f}x | "
                  f"{r['reader'] / n_values * 1e9:.0f} / {r['convert_ns']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
