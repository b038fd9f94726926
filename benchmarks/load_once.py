"""One dataset load (or the wide-table read of the same rows) in this process: seconds and peak memory, as JSON.

For A/B comparisons of ``load_dataset`` between two checkouts on one database (each checkout's own
interpreter runs this file; the measurement is what ``bench_scale.py``'s children measure: wall time,
VmHWM - VmRSS after imports and the first query). The database is a library ``bench_scale.py`` writes,
with its ``bench_wide_<dataset>`` tables kept (for instance a schema made by ``bench_scale.write_library``
and ``create_dataset`` without dropping it).

Run:  python benchmarks/load_once.py URL DATASET [load|wide]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import text

from music_classifier.db.engine import make_engine
from music_classifier.db.matrix_read import read_keyed_matrix
from music_classifier.models.load_data import META_COLUMNS, load_dataset


def _memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "load"
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    base = _memory_kb("VmRSS")
    started = time.perf_counter()
    with engine.connect() as conn:
        if mode == "wide":
            table = f"bench_wide_{name}"
            names = [c for c in conn.execute(text(f'SELECT * FROM "{table}" WHERE 1 = 0')).keys()
                     if c not in META_COLUMNS]
            rows = conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
            X = read_keyed_matrix(conn, f'"{table}"', ["track_id"], names, expected_rows=rows)[1]
        else:
            X = load_dataset(conn, name).X
    seconds = time.perf_counter() - started
    peak_mb = (_memory_kb("VmHWM") - base) / 1024
    print(json.dumps({"mode": mode, "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1),
                      "array_mb": round(X.nbytes / 2**20, 1), "peak_ratio": round(peak_mb / (X.nbytes / 2**20), 2)}))


if __name__ == "__main__":
    main()
