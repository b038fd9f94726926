"""Server time of the `serve` page's tracks list and audit queue on a large PostgreSQL library.

Builds a class of --tracks tracks (default 100,000) in a fresh schema of the test PostgreSQL (COPY),
with genres, students, proposals, extractions (done / failed / none), two datasets, one stored audit
over every track and label decisions settling the first 2,000 suspects, then ANALYZE (fresh planner
statistics, as after any bulk load), then times requests through the ASGI app in this process
(Starlette's TestClient: routing, guard, database, template; no network), p50 and p95 over --requests
runs each. The baseline, in the same process: a static file through the same app (the fixed cost of a
request). Beside each request, the database's own time for the statements it ran (EXPLAIN ANALYZE's
execution time, summed, median of 5), which the machine's load inflates far less than the wall clock;
and the load average before and after. --explain prints each request's plans.

    python benchmarks/bench_serve.py --tracks 100000 --requests 40 [--write] [--explain] [--only search]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import warnings

from sqlalchemy import event, text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from pg_schema import scratch_schema  # noqa: E402

N_GENRES, N_STUDENTS = 10, 30
N_SETTLED = 2_000
TARGET_MS = 100
ZZ_EVERY = 500  # 1 track in 1,000 (this one modulo 1,000) is by "Zz band ...": a short search few tracks match
SMALL_DATASET = 500  # members of the dataset "small"; "class" holds every track with audio not divisible by 3
SECTION = "## serve: the tracks page and the audit queue on 100,000 tracks (PostgreSQL)"


def build(engine, n: int) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy("COPY genres (name, display_name) FROM STDIN") as cp:  # beside the genres migrations seed
            for g in range(N_GENRES):
                cp.write_row((f"genre{g}", f"Genre {g}"))
        cur.execute("SELECT name, id FROM genres WHERE name LIKE 'genre%%'")
        gid = dict(cur.fetchall())
        with cur.copy("COPY students (id, name) FROM STDIN") as cp:
            for s in range(N_STUDENTS):
                cp.write_row((s + 1, f"student {s}"))
        with cur.copy("COPY tracks (id, source, track_key, artist, title, song, audio_path) FROM STDIN") as cp:
            for i in range(1, n + 1):
                artist = f"Zz band {i}" if i % 1000 == ZZ_EVERY else f"artist {i % 5000}"
                cp.write_row((i, "file", f"k{i}", artist, f"title {i}", f"{artist} - title {i}",
                              None if i % 10 == 0 else f"g/{i}.wav"))
        with cur.copy("COPY track_genres (track_id, rank, genre_id) FROM STDIN") as cp:
            for i in range(1, n + 1):
                cp.write_row((i, 0, gid[f"genre{i % N_GENRES}"]))
        with cur.copy("COPY proposals (student_id, track_id, sheet_row) FROM STDIN") as cp:
            for i in range(1, n + 1):
                cp.write_row((i % N_STUDENTS + 1, i, i + 1))
        with cur.copy("COPY extractions (track_id, extractor, version, params_hash, status) FROM STDIN") as cp:
            for i in range(1, n + 1):
                if i % 10 == 0:
                    continue  # no audio: no extraction
                cp.write_row((i, "librosa", "1", "p", "failed" if i % 97 == 0 else "done" if i % 5 else "queued"))
        cur.execute("INSERT INTO datasets (id, name, definition) VALUES (1, 'class', '{}'), (2, 'small', '{}')")
        with cur.copy("COPY dataset_members (dataset_id, track_id, genre_id) FROM STDIN") as cp:
            for i in range(1, n + 1):
                if i % 10 and i % 3:
                    cp.write_row((1, i, gid[f"genre{i % N_GENRES}"]))
            for i in range(7, min(n, 200 * SMALL_DATASET) + 1, 200):
                cp.write_row((2, i, gid[f"genre{i % N_GENRES}"]))
        cur.execute("INSERT INTO label_audits (id, dataset_name, model_kind, params, n_tracks, n_flagged) "
                    "VALUES (1, 'class', 'rf', '{}', %s, %s)", (n, n // 50))
        with cur.copy("COPY label_issues (audit_id, track_id, rank, sheet_genre, heard_genre, sheet_probability, "
                      "heard_probability, dispute_score, flagged) FROM STDIN") as cp:
            for rank, i in enumerate(range(1, n + 1), start=1):
                disputed = i % 10 == 3
                p = 0.05 if disputed else 0.9
                cp.write_row((1, i, rank, f"Genre {i % N_GENRES}", f"Genre {(i + 1) % N_GENRES}" if disputed
                              else f"Genre {i % N_GENRES}", p, 1 - p, 1 - p, i % 50 == 3))
        # The first N_SETTLED suspects are settled (label decisions, half kept, half relabelled): the audit
        # queue leaves them out, and the effective-genre filter reads them.
        with cur.copy("COPY label_decisions (track_id, action, genre_before_id, genre_id, decided_by, audit_id) "
                      "FROM STDIN") as cp:
            for k, i in enumerate(range(3, min(n, 10 * N_SETTLED) + 1, 10)):
                before = gid[f"genre{i % N_GENRES}"]
                cp.write_row((i, "keep", before, before, "bench", 1) if k % 2 else
                             (i, "set", before, gid[f"genre{(i + 1) % N_GENRES}"], "bench", 1))
        for table in ("genres", "students", "tracks", "extractions", "datasets", "label_audits"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
        # Fresh planner statistics: without them PostgreSQL plans the COPYed tables as near empty.
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def timed(client, path: str, runs: int) -> list[float]:
    client.get(path)  # warm: templates compiled, plans cached
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = client.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


CASES = [
    ("baseline: a static file through the same app", "/static/style.css"),
    ("tracks, first page", "/tracks"),
    ("tracks, a deep page (keyset after ~n-50)", "/tracks?after={deep_after}"),
    ("tracks, back from that page (keyset before it)", "/tracks?before={deep_after}"),
    ("tracks, genre filter (10% of tracks)", "/tracks?genre=genre3"),
    ("tracks, effective genre filter", "/tracks?effective=genre3"),
    ("tracks, student filter", "/tracks?student=student+7"),
    ("tracks, dataset filter (60% of tracks)", "/tracks?dataset=class"),
    (f"tracks, dataset filter ({SMALL_DATASET} tracks)", "/tracks?dataset=small"),
    ("tracks, state = failed", "/tracks?state=failed"),
    ("tracks, state = waiting", "/tracks?state=waiting"),
    ("tracks, genre and state = failed", "/tracks?genre=genre3&state=failed"),
    ("tracks, search, rare text (11 tracks)", "/tracks?q=title+9999"),
    ("tracks, search, common text", "/tracks?q=artist+12"),
    ("tracks, search, 2 letters no artist or title starts with (prefix indexes)", "/tracks?q=zq"),
    ("tracks, search, 2 letters 0.1% of artists start with", "/tracks?q=zz"),
    ("tracks, search, 2 letters every title starts with", "/tracks?q=ti"),
    ("tracks, search, 1 letter every artist starts with", "/tracks?q=a"),
    ("tracks, search, 1 non-letter no artist or title starts with (no trigram even as a prefix)", "/tracks?q=%26"),
    ("tracks, genre filter and rare search", "/tracks?genre=genre9&q=title+9999"),
    (f"audit queue (first 100 unsettled suspects; {N_SETTLED:,} settled)", "/audit"),
]


def sql_time(conn, statements: list[tuple[str, object]], *, runs: int = 5, plans: bool = False) -> float:
    """The database's execution time of ``statements`` (EXPLAIN ANALYZE, summed), median of ``runs``."""
    totals = []
    for run in range(runs):
        total = 0.0
        for statement, params in statements:
            lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)]
            total += float(re.search(r"Execution Time: ([\d.]+)", lines[-1]).group(1))
            if plans and run == 0:
                print(statement, params, *lines, sep="\n", file=sys.stderr)
        totals.append(total)
    return statistics.median(totals)


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    parser.add_argument("--explain", action="store_true", help="print each request's query plans (stderr)")
    parser.add_argument("--only", metavar="WORD", help="time only the requests whose label holds WORD (e.g. "
                        "'search'; the baseline always), print them and skip the other measurements")
    args = parser.parse_args()
    if args.only and args.write:
        parser.error("--only prints a part of the table; --write needs all of it")
    with scratch_schema("bench_serve") as (schema, url):
        run(args, schema, url)


def run(args: argparse.Namespace, schema: str, url: str) -> None:
    """Build the library in the fresh ``schema`` (``url`` reaches it), then measure and print (or write)."""
    from music_classifier.db import migrate
    from music_classifier.db.browse import TrackFilter, list_tracks
    from music_classifier.db.engine import make_engine
    from music_classifier.web.app import ServeConfig, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    engine = make_engine(url)
    captured: list[tuple[str, object]] | None = None

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if captured is not None and statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = :s"),
                                       {"s": schema}).scalars())
        trigram = {"ix_tracks_artist_trgm", "ix_tracks_title_trgm"} <= indexes
        t0 = time.perf_counter()
        build(engine, args.tracks)
        print(f"built {args.tracks:,} tracks in {time.perf_counter() - t0:.1f} s; trigram indexes: "
              f"{'yes' if trigram else 'NO (pg_trgm unavailable)'}", file=sys.stderr)
        client = TestClient(create_app(ServeConfig(database_url=url), engine=engine), base_url="http://127.0.0.1")
        with engine.connect() as conn:
            deep_after = list_tracks(conn, TrackFilter(), after=args.tracks - 60, limit=1).rows[0].id - 1
        load_before = load()
        rows = []
        statements_of: dict[str, list[tuple[str, object]]] = {}

        def measure(label: str, path: str) -> None:
            nonlocal captured
            ms = timed(client, path, args.requests)
            captured = []
            client.get(path)
            statements, captured = captured, None
            statements_of[path] = statements
            with engine.connect() as conn:
                if args.explain:
                    print(f"\n=== {label}: {path}", file=sys.stderr)
                db_ms = sql_time(conn, statements, plans=args.explain) if statements else None
            rows.append((label, statistics.median(ms), p95(ms), db_ms, len(statements)))

        cases = [c for i, c in enumerate(CASES) if i == 0 or not args.only or args.only in c[0]]
        for label, path in cases:
            measure(label, path.format(deep_after=deep_after))
        # Rows COPYed after the trigram indexes were made wait in GIN's pending list (up to 4 MB), which
        # every search reads in full until a VACUUM (autovacuum, after enough inserts) merges it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM tracks")
        vacuumed = "tracks, search, rare text, after VACUUM tracks (GIN's pending list merged)"
        if not args.only or args.only in vacuumed:
            measure(vacuumed, "/tracks?q=title+9999")
        # What the indexes of migration 0008 save: the same statements with the indexes dropped inside a
        # transaction that is rolled back (DDL is transactional on PostgreSQL), database time only.
        savings = []
        for label, path, dropped in (
                ("tracks, search, rare text", "/tracks?q=title+9999", "ix_tracks_artist_trgm, ix_tracks_title_trgm"),
                ("tracks, genre filter and rare search", "/tracks?genre=genre9&q=title+9999",
                 "ix_tracks_artist_trgm, ix_tracks_title_trgm"),
                # Without the prefix indexes PostgreSQL can still serve a prefix of letters by the trigram
                # indexes (pg_trgm pads a word's start: 'zq%' holds "  z" and " zq"), not a non-letter.
                ("tracks, search, 2 letters no artist or title starts with", "/tracks?q=zq",
                 "ix_tracks_artist_prefix, ix_tracks_title_prefix"),
                ("tracks, search, 2 letters no artist or title starts with", "/tracks?q=zq",
                 "ix_tracks_artist_prefix, ix_tracks_title_prefix, ix_tracks_artist_trgm, ix_tracks_title_trgm"),
                ("tracks, search, 2 letters 0.1% of artists start with", "/tracks?q=zz",
                 "ix_tracks_artist_prefix, ix_tracks_title_prefix"),
                ("tracks, search, 2 letters 0.1% of artists start with", "/tracks?q=zz",
                 "ix_tracks_artist_prefix, ix_tracks_title_prefix, ix_tracks_artist_trgm, ix_tracks_title_trgm"),
                ("tracks, search, 1 non-letter no artist or title starts with", "/tracks?q=%26",
                 "ix_tracks_artist_prefix, ix_tracks_title_prefix"),
                ("audit queue", "/audit", "ix_label_issues_suspects")):
            if path not in statements_of:
                continue
            with engine.connect() as conn:
                with_index = sql_time(conn, statements_of[path])
                conn.exec_driver_sql(f"DROP INDEX {dropped}")
                without = sql_time(conn, statements_of[path])
                conn.rollback()
            savings.append(f"| {label} | {with_index:.1f} ms | {without:.1f} ms (without {dropped}) | "
                           f"{without / with_index:.0f}x |")
        write_cost = insert_cost(engine, schema) if trigram and not args.only else ""
        load_after = load()
        base = rows[0][1]
        lines = [f"| request ({args.tracks:,} tracks, PostgreSQL, {args.requests} runs) | p50 | p95 | p50 / baseline "
                 "| database time (statements) |", "|---|---:|---:|---:|---:|"]
        for label, med, high, db_ms, n in rows:
            db = "" if db_ms is None else f"{db_ms:.1f} ms ({n})"
            lines.append(f"| {label} | {med:.1f} ms | {high:.1f} ms | {med / base:.1f}x | {db} |")
        table = "\n".join(lines)
        saved = "\n".join(["| request | database time | the same statements without the index | ratio |",
                            "|---|---:|---:|---:|", *savings])
        loads = f"Load average (1, 5, 15 min) before: {load_before}; after: {load_after} ({os.cpu_count()} cores)"
        if args.only:
            print(table, "", verdict_of(rows), "", saved, "", loads, sep="\n")
            return

        # The first view's transfer: a page and every file it loads (no compression, no cache).
        views = []
        for page in ("/tracks", "/audit"):
            html = client.get(page).text
            parts = {page: len(html.encode())}
            for src in dict.fromkeys(re.findall(r'(?:src|href)="(/static/[^"]+)"', html)):
                parts[src] = len(client.get(src).content)
            views.append(f"first view of {page}: {sum(parts.values()) / 1024:.1f} KiB in {len(parts)} requests ("
                         + ", ".join(f"{p} {n / 1024:.1f} KiB" for p, n in parts.items()) + ")")

        # What the keyset saves: the same deep page by OFFSET (the plain SQL, no app around it).
        with engine.connect() as conn:
            def offset_page() -> None:
                conn.execute(text("SELECT id FROM tracks WHERE removed_at IS NULL ORDER BY id LIMIT 51 OFFSET :o"),
                             {"o": args.tracks - 60}).all()

            def keyset_page() -> None:
                list_tracks(conn, TrackFilter(), after=deep_after, limit=50)

            for f in (offset_page, keyset_page):
                f()
            off = [_ms(offset_page) for _ in range(args.requests)]
            key = [_ms(keyset_page) for _ in range(args.requests)]
        with engine.connect() as conn:
            from music_classifier.db.browse import audit_queue, genre_names

            def audit_data() -> None:
                audit_queue(conn)
                genre_names(conn)

            audit_data()
            library = statistics.median(_ms(audit_data) for _ in range(args.requests))
        audit_ms = next(med for label, med, *_ in rows if label.startswith("audit queue"))
        audit_split = (f"The audit queue's data (the library calls `audit_queue` and `genre_names`, one connection "
                       f"reused) took {library:.1f} ms p50 of the page's {audit_ms:.1f} ms; the rest is the template "
                       f"(100 rows, each with a \"relabel to\" menu of every genre) and the app around it.")
        verdict = verdict_of(rows)
        keyset = (f"deep page, library call only: keyset {statistics.median(key):.1f} ms (whole page, with genres and "
                  f"states) vs LIMIT/OFFSET {statistics.median(off):.1f} ms (ids only)")
        print(table, "", verdict, "", saved, "", write_cost, "", loads, "", *views, "", keyset, "", audit_split,
              sep="\n")
        if args.write:
            write_section(SECTION, section(args, table, verdict, saved, write_cost, loads, views, keyset, audit_split,
                                           trigram))
    finally:
        engine.dispose()


def verdict_of(rows: list[tuple]) -> str:
    over = [f"{label} ({high:.0f} ms)" for label, _, high, *_ in rows if high > TARGET_MS]
    return (f"Over the target in this run (p95 > {TARGET_MS} ms): " + "; ".join(over) + "."
            if over else f"Every request met the target (p95 <= {TARGET_MS} ms) in this run.")


def insert_cost(engine, schema: str) -> str:  # noqa: ANN001
    """What the trigram indexes cost a bulk insert: every track copied into an empty table like `tracks`
    (its indexes included), with and then without the two trigram indexes; rolled back."""
    times = {}
    for kind in ("with", "without"):
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_tracks_copy (LIKE tracks INCLUDING INDEXES)")
            if kind == "without":
                for name in conn.execute(text(
                        "SELECT indexname FROM pg_indexes WHERE schemaname = :s AND tablename = 'bench_tracks_copy' "
                        "AND indexdef LIKE '%gin_trgm_ops%'"), {"s": schema}).scalars():
                    conn.exec_driver_sql(f'DROP INDEX "{name}"')
            t0 = time.perf_counter()
            conn.exec_driver_sql("INSERT INTO bench_tracks_copy SELECT * FROM tracks")
            times[kind] = time.perf_counter() - t0
            conn.rollback()
    return (f"What the trigram indexes cost a bulk write: inserting every track into an empty copy of `tracks` took "
            f"{times['with']:.2f} s with them and {times['without']:.2f} s without "
            f"({times['with'] / times['without']:.1f}x), in one statement.")


def section(args: argparse.Namespace, table: str, verdict: str, saved: str, write_cost: str, loads: str,
            views: list[str], keyset: str, audit_split: str, trigram: bool) -> str:
    import platform

    import sqlalchemy

    return f"""{SECTION}

Command: `nice python benchmarks/bench_serve.py --tracks {args.tracks} --requests {args.requests} --write`. A fresh
schema of the test PostgreSQL, migrated to head (trigram indexes present: {'yes' if trigram else 'no'}), filled by
COPY: {args.tracks:,} tracks in 10 genres (artists "artist N", 1 in 1,000 "Zz band N"; titles "title N"),
30 students, extractions done / queued / failed / none, datasets "class"
(60% of the tracks) and "small" ({SMALL_DATASET}), one stored audit of every track with 10,000 suspects, the first
2,000 of them settled by label decisions, half kept, half relabelled; then `ANALYZE` (fresh planner statistics, as
after any bulk load). Server time through the ASGI app in the same process (routing, guard, database, template;
Starlette's TestClient, no network), {args.requests} requests each after one warm-up; the baseline is a static file
through the same app. The last column is the database's own execution time of the statements the request ran
(EXPLAIN ANALYZE, summed, median of 5), which the machine's load inflates far less than the wall clock. Target:
p95 <= 100 ms.

{table}

{verdict}

{loads}. The machine has 2 cores shared with other engineers' jobs: with a load average far above 2 every
request waits for a core, so the wall-clock columns measure the machine as much as the page; the database column and
the table below are the figures to compare between runs.

What the indexes of migrations 0008 and 0010 save, database time of the same statements, the indexes dropped inside a
transaction that is then rolled back (after the `VACUUM` above):

{saved}

Without the prefix indexes PostgreSQL still serves a prefix of letters by the trigram indexes (pg_trgm pads a
word's start: `'zq%'` holds the trigrams "  z" and " zq"); the prefix indexes are what serves a prefix without a
letter or digit (`&`, `(`, `'`) and a database without `pg_trgm`, and their statistics give the planner the share
of tracks a prefix matches (a common one walks the primary key instead).

{write_cost}

{chr(10).join(views)}.
Uncompressed; htmx is most of it and is cached after the first view.

{keyset}, so the last page costs what the first does. {audit_split}

How the page stays fast: paging is by keyset on `tracks.id`, and every filter is an EXISTS on an indexed key.
The search is `lower(artist) LIKE lower('%text%')` (or the title; `%`, `_` and `\\` match as themselves), exactly the
expressions of the trigram indexes `ix_tracks_artist_trgm` / `ix_tracks_title_trgm` (GIN, `pg_trgm`, migration
0008): a rare text reads a few index pages; a common one walks the primary key and stops at the page's 51st match.
A text of 1-2 characters holds no trigram; it matches the start of the artist or the title (`lower(artist) LIKE
'ab%'`), which the B-tree indexes `ix_tracks_artist_prefix` / `ix_tracks_title_prefix` (`text_pattern_ops`,
migration 0010) serve as a range scan, the "letters" rows. Each search is planned for its own text
(`SET LOCAL plan_cache_mode = force_custom_plan`): psycopg prepares a
statement run 5 times, and a plan PostgreSQL then makes once for any text walks the primary key testing every
track, which for a rare text is the full scan again. Limits, measured above: rows added in bulk wait in GIN's
pending list (up to 4 MB), which every search reads until a
`VACUUM` (autovacuum, after enough inserts) merges it (the rows before and after `VACUUM tracks`). Without
`pg_trgm` (a role that may not create it: docs/sql.md) the search answers by the scan. The effective-genre filter
is written per track (the standing decision in one correlated EXISTS on `ix_label_decisions_track_id`, else the
sheet's rank-0 genre): through the view `track_effective_genres` the same page took 173 ms p50 / 240 ms p95 in an
earlier run. The audit queue walks the partial index `ix_label_issues_suspects` (each audit's suspects by rank) for
its first 100 unsettled suspects and for their count, which stops at 1,001 ("more than 1,000 still to settle"):
PostgreSQL misjudges the share of suspects (a comparison of two columns) and, unordered and uncapped, counted them
by reading the whole audit on every view.

Machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, SQLAlchemy
{sqlalchemy.__version__}, PostgreSQL on 127.0.0.1.
"""


def _ms(f) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    main()
