"""Benchmark: `dataset create` right after `features import-csv` of a big GTZAN-layout table, through the CLI.

Issue 19 found `dataset create big --features gtzan_csv ...` still running after 5 minutes when it followed an
import of 10,000 rows on a fresh PostgreSQL database (no planner statistics yet: nested loops over the feature
view). This runs the documented commands as a user would, each one a `music-classifier` process on a fresh
database (a scratch PostgreSQL schema, or a SQLite file):

    music-classifier db upgrade
    music-classifier features import-csv gtzanN.csv --layout gtzan
    music-classifier dataset create big --features gtzan_csv --top 10 --min-per-genre 100

The table is GTZAN's 1,000 rows (../shared/data/tables/gtzan_features_30_sec.csv) repeated to ``--rows``, each
copy with new file names and its values scaled by a factor in [0.99, 1.01]. Baseline, in the same process on
the same database: a blind ``pandas.read_csv(...).to_sql(...)`` of the same file into one bare table. Wall
times of whole processes (start-up included), best of ``--repeat``.

Run:  python benchmarks/bench_import_create.py --rows 50000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_csv_import import blind_to_sql  # noqa: E402 - the same baseline as the Spotify import's
from benchmarks_md import write_section  # noqa: E402
from pg_schema import POSTGRES_URL, scratch_schema  # noqa: E402

SECTION = "## Dataset create right after a bulk import"
GTZAN_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables" / "gtzan_features_30_sec.csv"
CLI = [str(Path(sys.executable).with_name("music-classifier"))]  # the installed command, as a user runs it
COMMANDS = (["db", "upgrade"], ["features", "import-csv", "{csv}", "--layout", "gtzan"],
            ["dataset", "create", "big", "--features", "gtzan_csv", "--top", "10", "--min-per-genre", "100"])


def generate(source: Path, path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows: the source table repeated, each copy with new file names and values scaled by ±1 %."""
    base = pd.read_csv(source)
    numeric = [c for c in base.columns if c not in ("filename", "label", "length")]
    rng = np.random.default_rng(seed)
    copies = []
    for k in range(-(-rows // len(base))):
        copy = base.copy()
        copy["filename"] = [f"c{k}.{name}" for name in base["filename"]]
        copy[numeric] = copy[numeric] * rng.uniform(0.99, 1.01, size=(len(base), len(numeric)))
        copies.append(copy)
    pd.concat(copies).head(rows).to_csv(path, index=False)


def run_cli(args: list[str], url: str, cwd: Path) -> float:
    env = {**os.environ, "DATABASE_URL": url, "NO_COLOR": "1"}
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return elapsed


def once(url: str, csv: Path, cwd: Path) -> dict[str, float]:
    times = {"to_sql": blind_to_sql(url, csv)}
    for name, args in zip(("upgrade", "import", "create"), COMMANDS, strict=True):
        times[name] = run_cli([a.replace("{csv}", str(csv)) for a in args], url, cwd)
    return times


def measure(db: str, csv: Path, tmp: Path, repeat: int, pg_url: str) -> dict[str, float]:
    runs = []
    for n in range(repeat):
        if db == "SQLite":
            runs.append(once(f"sqlite:///{tmp / f'import_{n}.db'}", csv, tmp))
        else:
            with scratch_schema("bench_import", pg_url) as schema:
                runs.append(once(schema.url, csv, tmp))
        print(f"{db}: " + ", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), flush=True)
    return {k: min(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--source", type=Path, default=GTZAN_CSV, help="the GTZAN features table (30 s)")
    parser.add_argument("--pg-url", default=POSTGRES_URL)
    parser.add_argument("--write", action="store_true", help="replace this section of BENCHMARKS.md")
    args = parser.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"no GTZAN features table at {args.source}; pass --source")
    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp_dir:
        tmp = Path(tmp_dir)
        csv = tmp / f"gtzan{args.rows}.csv"
        generate(args.source, csv, args.rows)
        for db in (["PostgreSQL"] if args.db == "postgresql" else ["SQLite"] if args.db == "sqlite"
                   else ["PostgreSQL", "SQLite"]):
            results[db] = measure(db, csv, tmp, args.repeat, args.pg_url)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        SECTION, "",
        f"Command: `nice -n 5 python benchmarks/bench_import_create.py --rows {args.rows} --db {args.db} "
        f"--repeat {args.repeat} --write` (the GTZAN 30 s table of `../shared/data/tables` repeated to "
        f"{args.rows:,} rows, new file names, values scaled by ±1 %; best of {args.repeat}; {platform.machine()}, "
        f"{os.cpu_count()} cores, load average at the start {load_start}, at the end {load}; Python "
        f"{platform.python_version()}).", "",
        "Each step is one `music-classifier` process on a fresh database (start-up included): `db upgrade`, "
        "`features import-csv gtzanN.csv --layout gtzan`, then at once `dataset create big --features gtzan_csv "
        "--top 10 --min-per-genre 100`. Baseline: a blind `pandas.read_csv(...).to_sql(...)` of the same file into "
        "one bare table, same database, same process. Issue 19's target: the create takes seconds (before planner "
        "statistics were refreshed after an import, it was still running after 5 minutes at 10,000 rows).", "",
        "| database | rows | blind read_csv + to_sql | `features import-csv` | `dataset create` | create / to_sql |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for db, r in results.items():
        lines.append(f"| {db} | {args.rows:,} | {r['to_sql']:.2f} s | {r['import']:.2f} s | {r['create']:.2f} s | "
                     f"{r['create'] / r['to_sql']:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
