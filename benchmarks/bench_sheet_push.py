"""Benchmark: building the `sheet push` rows (one model load, batched features) vs predicting track by track.

A fresh SQLite database with --tracks tracks (10 genres, the 57 GTZAN features, a student per track) and a
final random forest. Ours: ``push_rows`` for every track (students, genres, tags, audit and the model's
prediction for all of them). Baseline, in the same process: ``predict_tracks`` one track at a time, as
`predict --track ID` does per call (a model load and a feature query per track), timed on --sample tracks
and given per track. Both figures per track; best of --repeat.

Run:  python benchmarks/bench_sheet_push.py --tracks 10000 --sample 20 --repeat 3 --write
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from timing import best  # noqa: E402

from music_classifier.db import migrate  # noqa: E402
from music_classifier.db.engine import make_engine  # noqa: E402
from music_classifier.db.feature_columns import GTZAN_V1  # noqa: E402
from music_classifier.db.tables import (  # noqa: E402
    extractions,
    genres,
    proposals,
    students,
    track_genres,
    tracks,
)
from music_classifier.db.values import insert_rows  # noqa: E402
from music_classifier.ingest.push_rows import push_rows  # noqa: E402
from music_classifier.models.datasets import DatasetDefinition, create_dataset  # noqa: E402
from music_classifier.models.predict import predict_tracks  # noqa: E402
from music_classifier.models.train import TrainOptions, train_model  # noqa: E402
from music_classifier.settings import get_settings  # noqa: E402

SECTION = "## Sheet push rows"
N_GENRES = 10


def fill(conn, n: int) -> None:
    rng = np.random.default_rng(0)
    genre_ids = [int(conn.execute(insert(genres).values(name=f"bench{g}", display_name=f"Bench {g}")
                                  .returning(genres.c.id)).scalar_one()) for g in range(N_GENRES)]
    conn.execute(insert(students), [{"id": 1, "name": "Student"}])
    conn.execute(insert(tracks), [{"id": i + 1, "source": "sheet", "track_key": f"k{i}", "artist": f"A{i}",
                                   "title": f"T{i}", "song": f"A{i} - T{i}"} for i in range(n)])
    conn.execute(insert(proposals), [{"student_id": 1, "track_id": i + 1, "sheet_row": i + 2} for i in range(n)])
    conn.execute(insert(track_genres), [{"track_id": i + 1, "rank": 0, "genre_id": genre_ids[i % N_GENRES]}
                                        for i in range(n)])
    conn.execute(insert(extractions), [{"id": i + 1, "track_id": i + 1, "extractor": "gtzan_csv", "version": "1",
                                        "params_hash": "p", "status": "done"} for i in range(n)])
    centre = np.array([[6.0 if j % N_GENRES == g else 0.0 for j in range(len(GTZAN_V1))] for g in range(N_GENRES)])
    values = centre[np.arange(n) % N_GENRES] + rng.normal(0, 1.0, (n, len(GTZAN_V1)))
    insert_rows(conn, "gtzan_csv", np.arange(1, n + 1), GTZAN_V1, values)



def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=50, help="Tracks predicted one by one for the baseline.")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="Write the BENCHMARKS.md section.")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(engine)
        grid = Path(tmp, "grid.json")
        grid.write_text(json.dumps({"rf": {"n_estimators": [100]}}))
        with engine.begin() as conn:
            fill(conn, args.tracks)
            create_dataset(conn, "all", DatasetDefinition(features="gtzan_csv", top=N_GENRES, min_per_genre=5))
            model_id = train_model(conn, "all", TrainOptions(grid=grid, cv=2, final=True),
                                   models_path=Path(tmp)).model_id

        settings = get_settings(models_dir=Path(tmp))

        def ours() -> None:
            with engine.connect() as conn:
                table = push_rows(conn, settings=settings)
                assert len(table.rows) == args.tracks and table.rows[0].predicted_genre

        def one_by_one() -> None:
            with engine.connect() as conn:  # never committed: predict_tracks stores its rows
                for t in range(1, args.sample + 1):
                    predict_tracks(conn, model_id, [t], settings=settings)
                conn.rollback()

        ours_s = best(ours, args.repeat) / args.tracks
        base_s = best(one_by_one, args.repeat) / args.sample
        engine.dispose()
    section = (
        f"{SECTION}\n\nCommand: `python benchmarks/bench_sheet_push.py --tracks {args.tracks} --sample {args.sample} "
        f"--repeat {args.repeat} --write` "
        f"(SQLite, {args.tracks:,} sheet tracks x 57 GTZAN features, {N_GENRES} genres, a final random forest of "
        f"100 trees), best of {args.repeat}, same process.\n\n"
        "| | per track | ratio |\n|---|---|---|\n"
        f"| `predict_tracks` one track at a time ({args.sample} tracks; baseline) | {base_s * 1e3:.2f} ms | 1.00x |\n"
        f"| `push_rows`, every track (one model load, batched features) | {ours_s * 1e3:.3f} ms | "
        f"{ours_s / base_s:.3f}x |\n\n"
        f"Machine: {platform.machine()}, 2 cores shared with other jobs; Python {platform.python_version()}.\n")
    print(section)
    if args.write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
