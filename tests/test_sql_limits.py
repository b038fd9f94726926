"""`music-classifier sql`: rows streamed within a row cap and a byte cap, peak memory bounded (both databases)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_sql_readonly import _invoke, _seed, _url, class_role, drop_role

from music_classifier.db.readonly import open_readonly_query, run_readonly_query
from music_classifier.db.result_limits import DEFAULT_MAX_BYTES, ResultLimits

MiB = 1024 * 1024


@pytest.fixture
def db(engine):
    """Three tracks, readable by the class's read-only role (PostgreSQL), on each database."""
    yield _seed(engine)
    if engine.dialect.name == "postgresql":
        drop_role(engine, class_role(engine))


def _numbers(engine, n: int) -> str:
    if engine.dialect.name == "sqlite":
        return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n"
    return f"SELECT i FROM generate_series(1, {n}) AS i"


def _text_rows(engine, n: int, chars: int) -> str:
    """``n`` rows of one ASCII text value of ``chars`` characters."""
    if engine.dialect.name == "sqlite":
        return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
                f"SELECT replace(hex(zeroblob({chars // 2})), '0', 'x') AS t FROM n")
    return f"SELECT repeat('x', {chars}) AS t FROM generate_series(1, {n})"


def test_row_cap_stops_before_the_extra_row_and_says_so(db):
    result = run_readonly_query(_url(db), _numbers(db, 50), limits=ResultLimits(max_rows=10))
    assert [r[0] for r in result.rows] == list(range(1, 11))
    assert result.cut is not None and result.cut.kind == "rows"
    assert str(result.cut) == "result cut after 10 rows: the limit is 10 rows"
    exact = run_readonly_query(_url(db), _numbers(db, 10), limits=ResultLimits(max_rows=10))
    assert len(exact.rows) == 10 and exact.cut is None  # exactly the cap is not a cut


def test_byte_cap_counts_the_values_and_stops_before_the_row_past_it(db):
    # Each row: 1,000 ASCII characters = 1,000 bytes; 4,500 bytes allow four rows.
    with open_readonly_query(_url(db), _text_rows(db, 20, 1000), limits=ResultLimits(max_bytes=4500)) as stream:
        assert stream.columns == ["t"]
        rows = list(stream)
    assert len(rows) == 4 and all(r == ("x" * 1000,) for r in rows)
    assert (stream.cut.kind, stream.rows, stream.size, stream.cut.next_row_bytes) == ("bytes", 4, 4000, 1000)
    assert "result cut after 4 rows (4,000 bytes): the next row holds 1,000 bytes" in str(stream.cut)


def test_stopping_early_closes_the_query_and_the_connection_is_reusable(db):
    with open_readonly_query(_url(db), _numbers(db, 100_000)) as stream:
        first = next(iter(stream))
    assert first == (1,)
    assert run_readonly_query(_url(db), "SELECT count(*) FROM tracks").rows == [(3,)]


def test_cli_cut_is_one_line_with_exit_3_after_the_rows(db):
    result = _invoke(db, "sql", "--csv", "--max-rows", "2", _numbers(db, 5))
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines() == ["i", "1", "2"]
    assert result.stderr.splitlines() == ["error: result cut after 2 rows: the limit is 2 rows (--max-rows to change)"]
    table = _invoke(db, "sql", "--max-bytes", "2500", _text_rows(db, 3, 1200))
    assert table.exit_code == 3, table.output
    assert "2 row(s)" in table.output and "(--max-bytes to change)" in table.output
    assert "200 more; --csv writes it whole" in table.output  # the table shows the start of a long value


def test_postgres_arrays_and_json_arrive_as_text(db):
    if db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL types")
    result = run_readonly_query(_url(db), "SELECT ARRAY[1, 2, 3] AS a, '{\"k\": [1]}'::jsonb AS j, "
                                          "int4range(1, 5) AS r, 42 AS n, 'x'::text AS t")
    assert result.rows == [("{1,2,3}", '{"k": [1]}', "[1,5)", 42, "x")]


# Runs the command in this child and, at exit, writes the child's own peak resident memory (VmHWM of
# its address space). Not ru_maxrss: Linux carries the parent's high-water mark over the fork and exec,
# so a child of a long pytest session "peaks" at the session's size (1 GiB late in the suite).
_REPORT_PEAK = """
import atexit, runpy, sys
out, how, what, *rest = sys.argv[1:]
def report():
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(str(kib))
atexit.register(report)
sys.argv = [what, *rest]
if how == "-m":
    runpy.run_module(what, run_name="__main__", alter_sys=True)
else:
    exec(compile(what, "<probe>", "exec"), {"__name__": "__main__"})
"""


def _peak_rss_mib(args: list[str]) -> tuple[int, str, int]:
    """Run ``args`` (``python -m MODULE ...`` or ``python -c CODE``) in a child process; its exit code,
    stderr and peak resident memory (MiB, the child's own)."""
    import tempfile

    env = {**os.environ, "MUSIC_CLASSIFIER_READONLY_ROLE": "", "MUSIC_CLASSIFIER_READONLY_URL": "",
           "MUSIC_CLASSIFIER_STATEMENT_TIMEOUT_MS": "60000"}
    env = {k: v for k, v in env.items() if v != ""}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "peak")
        proc = subprocess.run([args[0], "-c", _REPORT_PEAK, out, *args[1:]], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, check=False)
        with open(out) as f:
            peak_kib = int(f.read())
    return proc.returncode, proc.stderr.decode(), peak_kib // 1024


def test_huge_results_stop_with_one_line_and_bounded_memory(db):
    """The probe: 80 rows of zeroblob(30000000) (2.4 GB: today's fetchall() peaks at 2.3 GiB), and on
    PostgreSQL 12 rows of repeat('x', 100000000) (1.2 GB, twice that in libpq and Python)."""
    if db.dialect.name == "sqlite":
        query = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80) "
                 "SELECT i, zeroblob(30000000) FROM n")
        rows_given, unbounded_mib, one_row_mib = 1, 80 * 30_000_000 // MiB, 300
    else:
        query = "SELECT repeat('x', 100000000) FROM generate_series(1, 12)"
        rows_given, unbounded_mib, one_row_mib = 0, 12 * 100_000_000 // MiB, 700
    code, err, peak = _peak_rss_mib([sys.executable, "-m", "music_classifier.cli", "--db", _url(db),
                                     "sql", "--csv", query])
    assert code == 3, err
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith(f"error: result cut after {rows_given} rows")
    assert f"the limit is {DEFAULT_MAX_BYTES:,} bytes (--max-bytes to change)" in err
    # The CLI writes one row at a time (a 30 MB blob is ~120 MB of CSV text); collecting would need
    # the whole result at least once. The bound is far below that, and independent of the row count.
    assert peak < 1024 < unbounded_mib, (peak, unbounded_mib)

    library = (f"from music_classifier.db.readonly import run_readonly_query as q; "
               f"r = q({_url(db)!r}, {query!r}); print(len(r.rows), r.cut)")
    code, err, peak = _peak_rss_mib([sys.executable, "-c", library])
    assert code == 0, err
    # One row at a time: 30 MB, or on PostgreSQL 100 MB in libpq's buffer and again as a Python str.
    assert peak < one_row_mib < unbounded_mib, peak


def test_an_empty_result_keeps_its_columns(db):
    result = run_readonly_query(_url(db), "SELECT artist, title AS song FROM tracks WHERE artist = 'nobody'")
    assert (result.columns, result.rows, result.cut) == (["artist", "song"], [], None)
    out = _invoke(db, "sql", "--csv", "SELECT artist, title AS song FROM tracks WHERE artist = 'nobody'")
    assert out.exit_code == 0 and out.stdout == "artist,song\n"


def test_csv_writes_a_blob_as_bytea_hex(db):
    # Two characters a byte (Python's repr took up to four): the CSV of a 30 MB blob stays small.
    query = "SELECT x'00ff1b' AS b" if db.dialect.name == "sqlite" else "SELECT '\\x00ff1b'::bytea AS b"
    out = _invoke(db, "sql", "--csv", query)
    assert out.exit_code == 0 and out.stdout == "b\n\\x00ff1b\n", out.output
