"""`dataset refresh` on a large PostgreSQL library: the plan (what `--dry-run` and `train`'s staleness warning
read) and the refresh written, against reading the dataset's genre counts in the same process.

Builds bench_serve's library (--tracks tracks, default 100,000; 2,000 label decisions, half of them relabelling
a track to another genre) in a fresh schema of the test PostgreSQL, stores one dataset holding every track with
its sheet genre, then times, best of --repeat runs each: the baseline ``get_dataset(count_live=False)`` (the
members' genre counts and decided members, a pass over ``dataset_members``), reading the whole view
``track_effective_genres`` (what the plan compares the members with), ``plan_refresh``, and
``refresh_dataset`` applied (each run in a transaction rolled back afterwards, so every run moves the same
members).

    python benchmarks/bench_refresh.py --tracks 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench_serve import build
from pg_schema import scratch_schema
from sqlalchemy import text
from timing import best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from music_classifier.db import migrate
    from music_classifier.db.engine import make_engine
    from music_classifier.models.dataset_refresh import plan_refresh, refresh_dataset
    from music_classifier.models.datasets import get_dataset

    with scratch_schema("bench_refresh") as schema:
        engine = make_engine(schema.url)
        try:
            migrate.upgrade(engine)
            t0 = time.perf_counter()
            build(engine, args.tracks)
            definition = {"features": "librosa", "top": 10, "min_per_genre": 5, "max_per_genre": None,
                          "segments": False, "sources": ["file"], "seed": 0}
            with engine.begin() as conn:
                ds = conn.execute(text("INSERT INTO datasets (name, definition) VALUES ('big', :d) RETURNING id"),
                                  {"d": json.dumps(definition)}).scalar_one()
                conn.execute(text("INSERT INTO dataset_members (dataset_id, track_id, genre_id) SELECT :ds, track_id, "
                                  "genre_id FROM track_genres WHERE rank = 0"), {"ds": ds})
                conn.execute(text("ANALYZE"))
            print(f"built {args.tracks:,} tracks and a dataset of all of them in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
            with engine.connect() as conn:
                _, plan = plan_refresh(conn, "big")
                print(f"the refresh: {plan.text()}", file=sys.stderr)

                # Each call in a transaction of its own; the refresh's is rolled back.
                def baseline() -> None:
                    with conn.begin():
                        get_dataset(conn, "big", count_live=False)

                def effective() -> None:
                    with conn.begin():
                        conn.execute(text("SELECT track_id, genre_id, decision_id FROM track_effective_genres")).all()

                def planned() -> None:
                    with conn.begin():
                        plan_refresh(conn, "big")

                def applied() -> None:
                    tx = conn.begin()
                    try:
                        assert refresh_dataset(conn, "big").changed == plan.changed
                    finally:
                        tx.rollback()

                conn.rollback()  # the plan above opened a transaction
                rows = [(label, best(f, args.repeat)) for label, f in (
                    ("baseline: the dataset's genre counts (get_dataset, no view)", baseline),
                    ("reference: every row of the view track_effective_genres", effective),
                    ("plan_refresh (dataset refresh --dry-run; train's staleness check)", planned),
                    (f"refresh_dataset, written ({len(plan.moved):,} moved; rolled back)", applied))]
            base = rows[0][1]
            print(f"| {args.tracks:,}-member dataset, PostgreSQL, best of {args.repeat} | time | / baseline |")
            print("|---|---|---|")
            for label, s in rows:
                print(f"| {label} | {s * 1000:.0f} ms | {s / base:.1f}x |")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
