"""Server time of the `serve` page's tracks list and audit queue on a large PostgreSQL library.

Builds a class of --tracks tracks (default 100,000) in a fresh schema of the test PostgreSQL (COPY),
with genres, students, proposals, extractions (done / failed / none), one stored audit over every
track and label decisions settling the first 2,000 suspects, then times requests through the ASGI
app in this process (Starlette's TestClient: routing, guard, database, template; no network), p50
and p95 over --requests runs each. The baseline, in the same process: a static file through the
same app (the fixed cost of a request), and the deep page read with LIMIT/OFFSET instead of the
keyset, to show what the keyset saves.

    python benchmarks/bench_serve.py --tracks 100000 --requests 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
import warnings

from sqlalchemy import text

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
N_GENRES, N_STUDENTS = 10, 30
N_SETTLED = 2_000


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
                cp.write_row((i, "file", f"k{i}", f"artist {i % 5000}", f"title {i}", f"artist {i % 5000} - title {i}",
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
        for table in ("genres", "students", "tracks", "extractions", "label_audits"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()

    from music_classifier.db import migrate
    from music_classifier.db.browse import TrackFilter, list_tracks
    from music_classifier.db.engine import make_engine
    from music_classifier.web.app import ServeConfig, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    schema = f"bench_serve_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        build(engine, args.tracks)
        print(f"built {args.tracks:,} tracks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        client = TestClient(create_app(ServeConfig(database_url=url), engine=engine), base_url="http://127.0.0.1")
        with engine.connect() as conn:
            deep_after = list_tracks(conn, TrackFilter(), after=args.tracks - 60, limit=1).rows[0].id - 1
        cases = [
            ("baseline: a static file through the same app", "/static/style.css"),
            ("tracks, first page", "/tracks"),
            ("tracks, a deep page (keyset after ~n-50)", f"/tracks?after={deep_after}"),
            ("tracks, genre filter", "/tracks?genre=genre3"),
            ("tracks, student filter", "/tracks?student=student+7"),
            ("tracks, state = failed", "/tracks?state=failed"),
            ("tracks, search (artist or title)", "/tracks?q=title+9999"),
            ("tracks, effective genre filter", "/tracks?effective=genre3"),
            (f"audit queue (first 100 unsettled suspects; {N_SETTLED:,} settled)", "/audit"),
        ]
        rows = []
        for label, path in cases:
            ms = timed(client, path, args.requests)
            rows.append((label, statistics.median(ms), p95(ms)))
        base = rows[0][1]
        print(f"| request ({args.tracks:,} tracks, PostgreSQL, {args.requests} runs) | p50 | p95 | p50 / baseline |")
        print("|---|---|---|---|")
        for label, med, high in rows:
            print(f"| {label} | {med:.1f} ms | {high:.1f} ms | {med / base:.1f}x |")

        # The first view's transfer: the tracks page and every file it loads (no compression, no cache).
        parts = {path: len(client.get(path).content) for path in
                 ("/tracks", "/static/htmx.min.js", "/static/app.js", "/static/style.css")}
        print(f"\nfirst view of /tracks: {sum(parts.values()) / 1024:.1f} KiB in {len(parts)} requests ("
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
        print(f"\ndeep page, library call only: keyset {statistics.median(key):.1f} ms (whole page, with genres and "
              f"states) vs LIMIT/OFFSET {statistics.median(off):.1f} ms (ids only)")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _ms(f) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    main()
