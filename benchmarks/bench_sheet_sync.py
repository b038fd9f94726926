"""Benchmark: `sheet sync` of a generated 100,000-row sheet export against what a user would write
instead, all in one run on the same machine (figures are ratios, so machine speed cancels out).

    python benchmarks/bench_sheet_sync.py [--rows 100000] [--repeat 3] [--write]

- SQLite: first sync vs a blind ``pandas.DataFrame.to_sql`` of the same rows (target <= 5x); a
  no-change re-sync vs the same blind insert (target <= 3x).
- PostgreSQL (psycopg 3): first sync vs a default ``to_sql`` (target <= 2x), and COPY of the raw
  rows as the floor. Runs in a fresh schema that is dropped afterwards.
- The slow habit, a commit per row, measured on 2,000 rows and extrapolated.

"Sync" is what `music-classifier sheet sync --csv FILE` does: read the CSV, parse and validate the
rows, then diff and write in one transaction. The baseline reads the same CSV with pandas and
inserts it blindly. Each figure is the best of ``--repeat`` interleaved rounds (the machine is shared).
``--write`` replaces the ``## Sheet sync`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL",
                              os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
HEADER = ["student", "song", "coarse_genre", "genre1", "genre2", "genre3"]
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from pg_schema import schema_url  # noqa: E402

SECTION = "## Sheet sync"
LOOP_ROWS = 2_000


def generate_sheet(path: Path, rows: int, seed: int = 2) -> None:
    """A class-sheet-like export: ~1 student per 50 rows, a long tail of genres (some spelled
    several ways), artists repeating, a few accents, most rows with one or two subgenres."""
    rng = random.Random(seed)
    coarse = ["Rock", "Pop", "Hip-Hop", "hip hop", "Jazz", "Classical", "Classic", "Electronic", "Indi_Rock",
              "Indie Rock", "Alt_Rock", "Metal", "Folk", "Blues", "Reggae", "Country", "R&B", "Soul", "Punk"]
    tail = [f"Style {i}" for i in range(30)]
    subs = ["Synthpop", "Trap", "Bebop", "Baroque", "House", "Techno", "Grunge", "Shoegaze", "Lo-Fi", "Drill",
            "Post-Punk", "Dream Pop", "Ambient", "Funk", "Disco"] + tail
    artists = [f"{rng.choice(['The ', '', '', 'DJ '])}Artist{'é' if i % 17 == 0 else ''} {i}" for i in range(20_000)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(rows):
            genre = rng.choice(coarse) if rng.random() < 0.9 else rng.choice(tail)
            n_sub = rng.choice((0, 1, 1, 2, 2, 3))
            sub = rng.sample(subs, n_sub) + [""] * (3 - n_sub)
            writer.writerow([f"Student {rng.randrange(rows // 50 + 1)}",
                             f"{rng.choice(artists)} - Song {i} (Remastered)" if i % 11 == 0
                             else f"{rng.choice(artists)} - Song number {i}", genre, *sub])


def interleaved(repeat: int, cases: dict[str, tuple[Callable[[], object], Callable[[object], object]]]
                ) -> dict[str, float]:
    """Best time of each case over ``repeat`` rounds; each round runs every case once, so a load
    spike from another process on this shared machine hits the baseline and ours alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (setup, run) in cases.items():
            ctx = setup()
            start = time.perf_counter()
            run(ctx)
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def sync_from_csv(engine, path: Path) -> object:
    from music_classifier.ingest.sheet_source import read_csv
    from music_classifier.ingest.sheet_sync import parse_for_sync, sync_sheet

    table = read_csv(path)
    with engine.begin() as conn:  # as `sheet sync` does it
        return sync_sheet(conn, parse_for_sync(conn, table))


def blind_to_sql(engine, path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.to_sql("sheet_blind", engine, index=False, if_exists="replace")


def read_only(path: Path) -> None:
    """The pandas.read_csv half of the baseline, timed alone to show the baseline without it."""
    import pandas as pd

    pd.read_csv(path, dtype=str, keep_default_na=False)


def sync_per_row_fk_checks(engine, path: Path) -> object:
    """The first sync with PostgreSQL's per-row foreign-key checks (no one-pass re-check)."""
    from music_classifier.ingest import sheet_sync

    saved = sheet_sync.FK_BULK_CHECK_MIN_ROWS
    sheet_sync.FK_BULK_CHECK_MIN_ROWS = 10**12
    try:
        return sync_from_csv(engine, path)
    finally:
        sheet_sync.FK_BULK_CHECK_MIN_ROWS = saved


def fresh_sqlite(tmp: Path, migrate_schema: bool):
    from music_classifier.db import migrate
    from music_classifier.db.engine import make_engine

    db = tmp / f"{uuid.uuid4().hex}.db"
    engine = make_engine(f"sqlite:///{db}")
    if migrate_schema:
        migrate.upgrade(engine)
    return engine


def per_row_commit_loop(engine, path: Path, rows: int) -> float:
    """The slow habit: one INSERT and one COMMIT per sheet row."""
    from sqlalchemy import Column, MetaData, String, Table, insert

    meta = MetaData()
    table = Table("sheet_loop", meta, *(Column(name, String) for name in HEADER))
    meta.create_all(engine)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        records = [dict(zip(HEADER, row, strict=True)) for _, row in zip(range(rows), reader, strict=False)]
    start = time.perf_counter()
    for record in records:
        with engine.begin() as conn:
            conn.execute(insert(table).values(**record))
    return time.perf_counter() - start


def postgres_available() -> str | None:
    from music_classifier.db.engine import make_engine

    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def bench_postgres(path: Path, repeat: int) -> dict[str, float]:
    from music_classifier.db import migrate
    from music_classifier.db.engine import make_engine

    admin = make_engine(POSTGRES_URL)
    schema = f"bench_sheet_{os.getpid()}"
    url = schema_url(POSTGRES_URL, schema)
    results: dict[str, float] = {}

    def reset_schema(with_tables: bool):
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine = make_engine(url)
        if with_tables:
            migrate.upgrade(engine)
        return engine

    def copy_floor(engine) -> None:
        with path.open(encoding="utf-8") as fh:
            data = fh.read()
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE sheet_copy (student text, song text, coarse_genre text, "
                                 "genre1 text, genre2 text, genre3 text)")
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy("COPY sheet_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                    copy.write(data)

    try:
        results.update(interleaved(repeat, {
            "pg_to_sql": (lambda: reset_schema(False), lambda e: blind_to_sql(e, path)),
            "pg_copy": (lambda: reset_schema(False), copy_floor),
            "pg_first_sync_row_fk": (lambda: reset_schema(True), lambda e: sync_per_row_fk_checks(e, path)),
            "pg_first_sync": (lambda: reset_schema(True), lambda e: sync_from_csv(e, path)),
        }))
        engine = make_engine(url)  # the last first-sync's database
        results.update(interleaved(repeat, {"pg_resync": (lambda: engine, lambda e: sync_from_csv(e, path))}))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
    return results


def phase_split(engine_factory: Callable[[], object], path: Path) -> dict[str, float]:
    """Where a first sync spends its time (one run)."""
    from music_classifier.ingest.sheet_source import read_csv
    from music_classifier.ingest.sheet_sync import parse_for_sync, sync_sheet

    engine = engine_factory()
    t0 = time.perf_counter()
    table = read_csv(path)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        parsed = parse_for_sync(conn, table)
        t2 = time.perf_counter()
        sync_sheet(conn, parsed)
    t3 = time.perf_counter()
    return {"read": t1 - t0, "parse": t2 - t1, "write": t3 - t2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_sheet_") as tmp_name:
        tmp = Path(tmp_name)
        sheet = tmp / "sheet.csv"
        generate_sheet(sheet, args.rows)
        print(f"sheet: {args.rows:,} rows", file=sys.stderr)
        synced = fresh_sqlite(tmp, True)
        sync_from_csv(synced, sheet)
        r = interleaved(args.repeat, {
            "sqlite_to_sql": (lambda: fresh_sqlite(tmp, False), lambda e: blind_to_sql(e, sheet)),
            "sqlite_first_sync": (lambda: fresh_sqlite(tmp, True), lambda e: sync_from_csv(e, sheet)),
            "sqlite_resync": (lambda: synced, lambda e: sync_from_csv(e, sheet)),
            "read_csv": (lambda: None, lambda _: read_only(sheet)),
        })
        split = phase_split(lambda: fresh_sqlite(tmp, True), sheet)
        loop_rows = min(LOOP_ROWS, args.rows)
        loop = per_row_commit_loop(fresh_sqlite(tmp, False), sheet, loop_rows)
        r["sqlite_loop_extrapolated"] = loop * args.rows / loop_rows
        pg_missing = postgres_available()
        if pg_missing is None:
            r.update(bench_postgres(sheet, args.repeat))
        else:
            print(f"PostgreSQL unavailable ({pg_missing}); skipping its figures", file=sys.stderr)

    report = render(r, split, args, loop, loop_rows, pg_missing)
    print(report)
    if args.write:
        write_section(SECTION, report)
    return 0


def render(r: dict[str, float], split: dict[str, float], args: argparse.Namespace, loop: float, loop_rows: int,
           pg_missing: str | None) -> str:
    def ratio(a: str, b: str) -> str:
        return f"{r[a] / r[b]:.2f}x"

    def verdict(a: str, b: str, limit: float) -> str:
        return f"<= {limit:g}x: {'met' if r[a] / r[b] <= limit else 'MISSED'}"

    targets = [("SQLite first sync", "sqlite_first_sync", "sqlite_to_sql", 5),
               ("SQLite no-change re-sync", "sqlite_resync", "sqlite_to_sql", 3)]
    if pg_missing is None:
        targets.append(("PostgreSQL first sync", "pg_first_sync", "pg_to_sql", 2))
    command = "python benchmarks/bench_sheet_sync.py" + (f" --rows {args.rows}" if args.rows != 100_000 else "") \
        + (f" --repeat {args.repeat}" if args.repeat != 3 else "") + " --write"
    lines = [
        SECTION, "",
        f"Command: `{command}` (from the repository root, venv active; PostgreSQL at `{POSTGRES_URL}` in a fresh "
        "schema that is dropped afterwards). One run, one machine; each figure is the best of "
        f"{args.repeat} rounds, each round running the baseline and ours back to back. A generated "
        f"{args.rows:,}-row sheet export (student, \"Artist - Title\", coarse genre, 0-3 subgenres; "
        "~50 genre spellings). \"Sync\" = read the CSV + parse/validate + diff + write in one "
        "transaction, as `sheet sync --csv` does; the baselines read the same CSV with pandas and insert it blindly "
        "into one table without constraints.", "",
        "Targets (issue 2, \"Done when\"): " + "; ".join(
            f"{label} {r[a] / r[b]:.2f}x, target <= {limit:g}x: **{'met' if r[a] / r[b] <= limit else 'NOT met'}**"
            for label, a, b, limit in targets) + ".", "",
        "| measurement | seconds | ratio | target |",
        "|---|---:|---:|---:|",
        f"| SQLite: blind `pandas.read_csv` + `DataFrame.to_sql` | {r['sqlite_to_sql']:.2f} | 1x (baseline) | |",
        f"| SQLite: first sync | {r['sqlite_first_sync']:.2f} | {ratio('sqlite_first_sync', 'sqlite_to_sql')} "
        f"| {verdict('sqlite_first_sync', 'sqlite_to_sql', 5)} |",
        f"| SQLite: re-sync, no change (writes nothing) | {r['sqlite_resync']:.2f} | "
        f"{ratio('sqlite_resync', 'sqlite_to_sql')} | {verdict('sqlite_resync', 'sqlite_to_sql', 3)} |",
        f"| SQLite: per-row commit loop, {loop_rows:,} rows measured ({loop:.2f} s), extrapolated to "
        f"{args.rows:,} | {r['sqlite_loop_extrapolated']:.1f} | "
        f"{ratio('sqlite_loop_extrapolated', 'sqlite_to_sql')} | |",
    ]
    if pg_missing is None:
        lines += [
            f"| PostgreSQL: default `to_sql` (psycopg 3) | {r['pg_to_sql']:.2f} | 1x (baseline) | |",
            f"| PostgreSQL: COPY of the raw CSV (the floor) | {r['pg_copy']:.2f} | {ratio('pg_copy', 'pg_to_sql')} "
            "| |",
            f"| PostgreSQL: first sync | {r['pg_first_sync']:.2f} | {ratio('pg_first_sync', 'pg_to_sql')} "
            f"({ratio('pg_first_sync', 'pg_copy')} of COPY) | {verdict('pg_first_sync', 'pg_to_sql', 2)} |",
            f"| PostgreSQL: re-sync, no change | {r['pg_resync']:.2f} | {ratio('pg_resync', 'pg_to_sql')} | |",
            f"| PostgreSQL: first sync with per-row foreign-key checks (the one-pass re-check turned off; "
            f"for comparison only) | {r['pg_first_sync_row_fk']:.2f} | {ratio('pg_first_sync_row_fk', 'pg_to_sql')} "
            "| |",
        ]
    else:
        lines += ["", f"PostgreSQL figures missing: {pg_missing}"]
    lines += [
        "",
        f"SQLite first sync by phase (one run): read CSV {split['read']:.2f} s, parse + validate + track keys "
        f"{split['parse']:.2f} s, diff + write {split['write']:.2f} s. The sync writes ~4.5 rows per sheet row "
        "(track, proposal, 1-4 track genres) into tables with unique keys and foreign keys, where the baseline "
        "writes one row into a bare table. Both sides include reading the CSV (the baseline with "
        f"`pandas.read_csv`, {r['read_csv']:.2f} s of it); against `to_sql` alone "
        f"({r['sqlite_to_sql'] - r['read_csv']:.2f} s) the SQLite first sync is "
        f"{r['sqlite_first_sync'] / (r['sqlite_to_sql'] - r['read_csv']):.2f}x and the re-sync "
        f"{r['sqlite_resync'] / (r['sqlite_to_sql'] - r['read_csv']):.2f}x. "
        "Parsing validates control characters and lengths once per column and each distinct genre spelling "
        "once; about half of the parse phase is `keys.normalise_title` (every title is new on a first sync). "
        "Most of SQLite's write phase is SQLite itself inserting ~450,000 rows into tables with unique "
        "indexes and checked foreign keys (a 64 MiB page cache for the sync helps ~10%; one "
        "`INSERT ... SELECT FROM json_each(?)` instead of executemany was slower). "
        "On PostgreSQL the inserts go through COPY, and a load of at least 20,000 new rows that at least "
        "doubles `track_genres` or `proposals` checks their foreign keys in one pass: the constraints are "
        "dropped and re-added, same names and definitions, inside the sync's transaction (ADD CONSTRAINT "
        "validates every row; ALTER TABLE holds an ACCESS EXCLUSIVE lock to the commit, so no other session "
        "sees the tables without them, but concurrent readers of those tables wait for such a sync). This is "
        "the bulk-load recipe of the PostgreSQL manual; triggers are never disabled, and a role that may not "
        "alter the tables keeps the per-row checks (the last row of the table). `SET LOCAL "
        "synchronous_commit = off` was measured and not used: the commit takes ~0.01 s. A no-change "
        "re-sync runs five SELECTs, compares in Python and issues no INSERT/UPDATE/DELETE "
        "(tests/test_sheet_sync.py checks that with a statement counter). The per-row commit loop is one "
        "INSERT + COMMIT per row into a bare table on the same SQLite file system (fsync per commit). The "
        "machine has 2 cores shared with other jobs, so single figures vary by 20-50% between runs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
