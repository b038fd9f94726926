"""benchmarks/bench_scale.py: the library it writes is the one it describes, a SQLite-only run has its own
section of BENCHMARKS.md, and its table carries both baselines. (Its timings are measured by running it,
never here.)"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text


def _bench_scale():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"
    spec = importlib.util.spec_from_file_location("mc_benchmark_bench_scale", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _bench_scale()


def test_sizes_are_a_number_or_a_comma_list():
    assert bench.parse_sizes("10000") == [10_000]
    assert bench.parse_sizes("10000,50_000, 100000") == [10_000, 50_000, 100_000]
    for bad in ("", "ten", "10"):  # fewer tracks than genres cannot fill every genre
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_sizes(bad)


def test_a_sqlite_run_never_takes_the_section_of_a_postgresql_run(tmp_path):
    from benchmarks_md import write_section

    assert bench.section_heading([50_000], "postgresql") == "## Scale: 50,000 tracks"
    assert bench.section_heading([10_000], "both") == "## Scale: 10,000 tracks"
    sqlite = bench.section_heading([10_000, 50_000, 100_000], "sqlite")
    assert sqlite == "## Scale on SQLite: 10,000, 50,000 and 100,000 tracks"
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Scale: 50,000 tracks\n\nPostgreSQL figures\n\n## Other\n\nkept\n")
    write_section(sqlite, sqlite + "\n\nSQLite figures\n", md)
    written = md.read_text()
    assert "PostgreSQL figures" in written and "SQLite figures" in written and "kept" in written


def _result(db: str, tracks: int, sql: float) -> dict:
    run = {"seconds": 2.0, "peak_mb": 30.0, "array_mb": 20.0, "rows": tracks, "cols": 83}
    return {"db": db, "tracks": tracks, "case": "librosa", "create_s": 1.0, "load": run,
            "wide": {**run, "seconds": 1.0}, "npz": {**run, "seconds": 0.1}, "sql_view": sql, "sql_plain": sql}


def test_table_rows_carry_the_size_and_both_ratios():
    md = bench.table([_result("SQLite", 10_000, float("nan")), _result("SQLite", 50_000, float("nan"))],
                     {("SQLite", 10_000): 5.0, ("SQLite", 50_000): 29.0})
    lines = md.splitlines()
    assert "SQL read" not in lines[0]  # measured on PostgreSQL only
    assert lines[2].startswith("| SQLite | 10,000 | librosa |") and lines[3].startswith("| SQLite | 50,000 |")
    assert "| 2.0x | 20x | 30 MB (20 MB, 1.5x) |" in lines[2]  # load / wide, load / .npz, peak / array
    assert "SQLite 10,000 tracks 5 s; SQLite 50,000 tracks 29 s" in md
    both = bench.table([_result("PostgreSQL", 10_000, 1.0)], {("PostgreSQL", 10_000): 9.0})
    assert "SQL read: view / plain table" in both.splitlines()[0] and "(1.0x)" in both


def test_the_bulk_written_library_is_what_the_benchmark_describes(engine):
    n = 40
    bench.write_library(engine, n, say=lambda _: None)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                  for t in ("tracks", "librosa_values", "librosa_segment_values", "musicnn_values")}
        done = conn.execute(text("SELECT extractor, COUNT(*) FROM extractions WHERE status = 'done' "
                                 "GROUP BY extractor ORDER BY extractor")).all()
        genres_used = conn.execute(text("SELECT COUNT(DISTINCT genre_id) FROM track_genres")).scalar_one()
        segments = conn.execute(text("SELECT MIN(segment), MAX(segment), MAX(start_s) "
                                     "FROM librosa_segment_values")).one()
    assert counts == {"tracks": n, "librosa_values": n, "librosa_segment_values": n * bench.N_SEGMENTS,
                      "musicnn_values": n}
    assert [tuple(r) for r in done] == [("librosa", n), ("musicnn", n)]
    assert genres_used == bench.N_GENRES
    assert tuple(segments) == (0, bench.N_SEGMENTS - 1, (bench.N_SEGMENTS - 1) * bench.SEGMENT_S)

    from music_classifier.models.datasets import DatasetDefinition, create_dataset
    from music_classifier.models.load_data import load_dataset

    with engine.begin() as conn:
        for name, features, segmented in (("l", "librosa", False), ("lm", "librosa,musicnn", False),
                                          ("ls", "librosa", True)):
            create_dataset(conn, name, DatasetDefinition(features=features, top=bench.N_GENRES, min_per_genre=1,
                                                         segments=segmented))
    with engine.connect() as conn:
        shapes = {name: load_dataset(conn, name).X.shape for name in ("l", "lm", "ls")}
        lm = load_dataset(conn, "lm")
    assert shapes == {"l": (n, 83), "lm": (n, 533), "ls": (n * bench.N_SEGMENTS, 83)}
    assert np.isfinite(lm.X).all() and len(set(lm.y.tolist())) == bench.N_GENRES
