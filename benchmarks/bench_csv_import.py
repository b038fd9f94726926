"""Benchmark: `spotify import-csv` of 100,000 generated tidytuesday rows vs a blind `DataFrame.to_sql`.

Both run in the same process on the same database: a fresh SQLite file, and a fresh PostgreSQL
schema (dropped afterwards). The baseline is `pandas.read_csv` + `DataFrame.to_sql` of the same
rows into one bare table (no keys, no checks); ours parses, checks, dedups, resolves genres and
writes tracks, genres, extractions and one row of 12 feature values per track in one transaction.
Each side runs `--repeat` times on a fresh database; the best time counts.

Run:  python benchmarks/bench_csv_import.py --rows 100000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import SPOTIFY_V1
from music_classifier.ingest.csv_import import import_spotify_csv

GENRES = {"pop": ["dance pop", "electropop"], "rap": ["hip hop", "trap"], "rock": ["album rock", "hard rock"],
          "latin": ["reggaeton", "tropical"], "r&b": ["neo soul", "hip pop"], "edm": ["big room", "electro house"]}
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from pg_schema import POSTGRES_URL, scratch_schema  # noqa: E402

SECTION = "## CSV import"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` tidytuesday rows, every track id distinct (the heaviest case: every row is a new track)."""
    rng = np.random.default_rng(seed)
    genre_names = list(GENRES)
    genre = rng.integers(0, len(genre_names), rows)
    ids = [f"{i:022d}" for i in range(rows)]
    df = pd.DataFrame({
        "track_id": ids, "track_name": [f"Song {i}" for i in range(rows)],
        "track_artist": [f"Artist {i % 9000}" for i in range(rows)], "track_popularity": rng.integers(0, 100, rows),
        "track_album_id": "0" * 22, "track_album_name": "Album", "track_album_release_date": "2019-06-14",
        "playlist_name": [f"Playlist {g % 400}" for g in range(rows)],
        "playlist_id": [f"pl{g % 400:020d}" for g in range(rows)],
        "playlist_genre": [genre_names[g] for g in genre],
        "playlist_subgenre": [GENRES[genre_names[g]][i % 2] for i, g in enumerate(genre)],
    })
    for name in SPOTIFY_V1:
        df[name] = np.round(rng.random(rows) * (200 if name == "tempo" else 1), 6)
    df["duration_ms"] = rng.integers(90_000, 400_000, rows)
    df.to_csv(path, index=False)


def blind_to_sql(url: str, path: Path) -> float:
    engine = create_engine(url)
    try:
        start = time.perf_counter()
        pd.read_csv(path).to_sql("bench_blind_rows", engine, index=False, if_exists="replace")
        return time.perf_counter() - start
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_blind_rows")
        engine.dispose()


def ours(url: str, path: Path) -> float:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        start = time.perf_counter()
        with engine.begin() as conn:
            report = import_spotify_csv(conn, path)
        elapsed = time.perf_counter() - start
        assert report.tracks_added == report.rows_read, report
        return elapsed
    finally:
        engine.dispose()


def sqlite_urls(tmp: Path):  # noqa: ANN201
    n = 0
    while True:
        n += 1
        yield f"sqlite:///{tmp / f'bench_{n}.db'}"


def pg_urls(admin_url: str):  # noqa: ANN201
    """A fresh schema's URL on each ``next()``; all of them dropped when the generator is closed."""
    with ExitStack() as schemas:
        while True:
            yield schemas.enter_context(scratch_schema("bench_csv", admin_url)).url


def measure(name: str, urls, path: Path, repeat: int) -> dict[str, float]:  # noqa: ANN001
    base, mine = [], []
    for _ in range(repeat):
        base.append(blind_to_sql(next(urls), path))
        mine.append(ours(next(urls), path))
        print(f"{name}: to_sql {base[-1]:.2f} s, ours {mine[-1]:.2f} s", flush=True)
    urls.close()
    return {"to_sql": min(base), "ours": min(mine)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--write", action="store_true", help="Write the figures into BENCHMARKS.md.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        path = tmp / "spotify_songs.csv"
        generate(path, args.rows)
        results = {"SQLite": measure("SQLite", sqlite_urls(tmp), path, args.repeat)}
        if not args.no_postgres:
            results["PostgreSQL"] = measure("PostgreSQL", pg_urls(args.postgres_url), path, args.repeat)

    command = f"python benchmarks/bench_csv_import.py --rows {args.rows} --repeat {args.repeat}" + (
        " --write" if args.write else "")
    lines = [
        SECTION, "",
        f"`spotify import-csv` of {args.rows:,} generated tidytuesday rows (every track id distinct, so "
        f"{args.rows:,} tracks + extractions, {2 * args.rows:,} genre rows and {args.rows:,} rows of 12 feature "
        "values) "
        "against a blind `pandas.read_csv(...).to_sql(...)` of the same rows into one bare table, same database, "
        f"same process, best of {args.repeat}; target: ours <= 5x the baseline.", "",
        "| database | blind read_csv + to_sql | ours (one transaction) | ratio ours / to_sql |",
        "|---|---|---|---|",
    ]
    for db, r in results.items():
        lines.append(f"| {db} | {r['to_sql']:.2f} s | {r['ours']:.2f} s | {r['ours'] / r['to_sql']:.2f}x |")
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs; Python "
        f"{platform.python_version()}, pandas {pd.__version__}.",
        "How: pandas parses and checks the columns vectorised; SQLite writes through executemany on the raw "
        "sqlite3 connection, PostgreSQL through psycopg 3 COPY (the feature values: one row per track in "
        "`spotify_values`, a binary COPY built by numpy); new ids are read back by key.",
        "", f"Command: `{command}`", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
