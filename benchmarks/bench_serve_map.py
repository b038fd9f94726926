"""The `serve` model page with its interactive map: what the first view transfers, and what the map costs.

A fresh SQLite database with --tracks tracks (10 genres, the 57 GTZAN features, as bench_sheet_push.py
builds it), a dataset of all of them and a final random forest. Through the ASGI app in this process
(Starlette's TestClient; no network): the bytes of every answer the first view of /models/ID loads (the page,
its scripts and stylesheets, the map's figure JSON), as sent and gzipped where the server compresses; the
time of the first map request (t-SNE and out-of-fold predictions, computed once) and of later ones (from
the cache), against a static file through the same app as the baseline; and a repeat view, where the
browser's copies are current (plotly.js is cached for good under its versioned address, the map answers 304).

    python benchmarks/bench_serve_map.py --tracks 3000
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench_sheet_push import N_GENRES, fill  # noqa: E402 - the script's folder is on sys.path

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.train import TrainOptions, train_model
from music_classifier.web.app import ServeConfig, create_app


def _ms(f) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(engine)
        grid = Path(tmp, "grid.json")
        grid.write_text(json.dumps({"rf": {"n_estimators": [100]}}))
        t0 = time.perf_counter()
        with engine.begin() as conn:
            fill(conn, args.tracks)
            create_dataset(conn, "all", DatasetDefinition(features="gtzan_csv", top=N_GENRES, min_per_genre=5))
            model_id = train_model(conn, "all", TrainOptions(grid=grid, cv=2, final=True),
                                   models_path=Path(tmp)).model_id
        print(f"built {args.tracks:,} tracks and model {model_id} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        client = TestClient(create_app(ServeConfig(database_url=str(engine.url), models_path=Path(tmp)),
                                       engine=engine), base_url="http://127.0.0.1")
        gzip_ok = {"accept-encoding": "gzip"}

        page_path = f"/models/{model_id}"
        map_path = f"/models/{model_id}/map.json"
        cold_ms = _ms(lambda: client.get(map_path))
        page = client.get(page_path).text
        loads = [*re.findall(r'<script src="([^"]+)"', page), *re.findall(r'<link rel="stylesheet"[^>]* href="([^"]+)"',
                                                                          page), map_path]
        rows, total, total_gz = [], 0, 0
        for path in [page_path, *dict.fromkeys(loads)]:
            plain = client.get(path, headers={"accept-encoding": "identity"})
            sent = client.get(path, headers=gzip_ok)
            # httpx decodes the body: the bytes on the wire are the content-length header
            wire = int(sent.headers.get("content-length", len(sent.content)))
            assert plain.status_code == 200, (path, plain.status_code)
            rows.append((path, len(plain.content), wire, sent.headers.get("content-encoding", "")))
            total += len(plain.content)
            total_gz += wire
        body = client.get(map_path).json()
        # The class's usual order (audit, then the page): with a stored audit covering the tracks the map reads
        # its out-of-fold predictions and computes only the t-SNE.
        from music_classifier.models.audit import run_audit

        with engine.begin() as conn:
            run_audit(conn, "all", kind="knn", n_splits=5, n_repeats=1, seed=0)
        audited_ms = _ms(lambda: client.get(map_path))

        def timed(path: str) -> list[float]:
            client.get(path)
            return [_ms(lambda: client.get(path)) for _ in range(args.requests)]

        static = timed("/static/style.css")
        cached_map = timed(map_path)
        html_ms = timed(page_path)
        etag = client.get(map_path).headers["etag"]
        repeat = client.get(map_path, headers={"if-none-match": etag})
        repeat_bytes = len(client.get(page_path).content) + len(repeat.content)

    print(f"| first view of the model page with its map ({body['n_tracks']:,} points of {args.tracks:,} tracks, "
          "SQLite) | sent | gzip-capable browser |")
    print("|---|---:|---:|")
    for path, plain, wire, enc in rows:
        print(f"| `{path}` | {plain / 1024:.1f} KiB | {wire / 1024:.1f} KiB{' (gzip)' if enc else ''} |")
    print(f"| **total, {len(rows)} requests** | **{total / 1024:.1f} KiB** | **{total_gz / 1024:.1f} KiB** |")
    print(f"\nrepeat view (browser cache: plotly.js immutable, the map 304): {repeat_bytes / 1024:.1f} KiB "
          f"(map answered {repeat.status_code})")
    base = statistics.median(static)
    print(f"\nserver time, {args.requests} requests each: static file (baseline) {base:.1f} ms p50; model page HTML "
          f"{statistics.median(html_ms):.1f} ms p50 ({statistics.median(html_ms) / base:.1f}x); map JSON from the "
          f"cache {statistics.median(cached_map):.1f} ms p50 ({statistics.median(cached_map) / base:.1f}x). Computing "
          f"a map (once per dataset, audit and member set): {cold_ms / 1000:.1f} s without a stored audit (t-SNE + "
          f"one 5-fold out-of-fold pass), {audited_ms / 1000:.1f} s with one (t-SNE only)")


if __name__ == "__main__":
    main()
