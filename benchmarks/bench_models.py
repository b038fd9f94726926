"""Benchmark: `train` and `compare` with `--jobs` on the Spotify songs table, against plain scikit-learn.

Everything runs in one process on one SQLite database holding ../shared/data/tables/spotify_songs.csv
(first row per track id, 6 genres), with a fixed grid:

- ``train songs --model rf --grid G --cv 3``: 2 candidates x 3 folds + the refit (7 RandomForest fits
  on 75% of the tracks), then held-out scoring, importances and the registry row;
- ``compare songs --models rf,hgb --grid G --cv 5``: one fixed candidate per model, 5 outer folds
  (10 fits).

Baselines, timed in the same process on the same rows:

- plain scikit-learn with ``n_jobs=-1``: the same Pipeline (median imputer, scaler, classifier)
  fitted by ``GridSearchCV(n_jobs=-1)`` on a stratified 75% split, then predicting the rest; and
  ``cross_validate(n_jobs=-1)`` per model on the same 5 folds. Its data is read from our database
  once, before timing (ours pays for its own reading);
- ours with ``--jobs 1``.

Each variant runs ``--repeat`` times, interleaved (so machine load hits all alike); the best time counts.
Targets: ours with all cores <= 1.15x plain scikit-learn's time; ours with all cores >= 1.7x faster
than ours with ``--jobs 1`` (on 2 cores).

Run:  python benchmarks/bench_models.py --repeat 2 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.models.parallel import available_cores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
SPOTIFY_CSV = ROOT.parent / "shared" / "data" / "tables" / "spotify_songs.csv"
SECTION = "## Training on all cores"
GRID = {"rf": {"n_estimators": [100], "min_samples_leaf": [1, 3]}}
COMPARE_GRID = {"rf": {"n_estimators": [100]}, "hgb": {"max_iter": [100], "learning_rate": [0.1]}}
SEED = 0


def cli(db: str, models: Path, *args: str) -> float:
    """Run one command in-process; its wall time in seconds."""
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["--db", db, *map(str, args)], env={"MUSIC_CLASSIFIER_MODELS_DIR": str(models)})
    if res.exit_code != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({res.exit_code}): {res.output}")
    return time.perf_counter() - started


def plain_pipeline(kind: str, params: dict) -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    clf = (RandomForestClassifier(random_state=SEED, n_jobs=1, **params) if kind == "rf"
           else HistGradientBoostingClassifier(random_state=SEED, **params))
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()), ("clf", clf)])


def plain_train(X: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

    started = time.perf_counter()
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)
    grid = {f"clf__{k}": v for k, v in GRID["rf"].items()}
    search = GridSearchCV(plain_pipeline("rf", {}), grid, cv=StratifiedKFold(3, shuffle=True, random_state=SEED),
                          n_jobs=-1)
    search.fit(X_tr, y_tr)
    search.predict(X_te)
    return time.perf_counter() - started


def plain_compare(X: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_validate

    started = time.perf_counter()
    for kind, grid in COMPARE_GRID.items():
        params = {k: v[0] for k, v in grid.items()}
        cross_validate(plain_pipeline(kind, params), X, y, cv=StratifiedKFold(5, shuffle=True, random_state=SEED),
                       n_jobs=-1)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="Write the BENCHMARKS.md section.")
    ap.add_argument("--csv", type=Path, default=SPOTIFY_CSV)
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        sys.exit(f"table not found: {args.csv}")
    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="mc_bench_models_") as tmp:
        work = Path(tmp)
        db, models = f"sqlite:///{work / 'bench.db'}", work / "models"
        grid_file, cmp_grid_file = work / "grid.json", work / "compare_grid.json"
        grid_file.write_text(json.dumps(GRID))
        cmp_grid_file.write_text(json.dumps(COMPARE_GRID))
        cli(db, models, "db", "upgrade")
        cli(db, models, "spotify", "import-csv", args.csv)
        cli(db, models, "dataset", "create", "songs", "--features", "spotify", "--top", "6", "--min-per-genre", "10")

        from music_classifier.db.engine import make_engine
        from music_classifier.models.load_data import load_dataset

        engine = make_engine(db)
        with engine.connect() as conn:
            frame = load_dataset(conn, "songs")
        engine.dispose()
        X, y = frame.X, frame.y
        runs: dict[str, list[float]] = {k: [] for k in (
            "train_plain", "train_all", "train_one", "compare_plain", "compare_all", "compare_one")}
        train = ("train", "songs", "--model", "rf", "--grid", grid_file, "--cv", "3", "--seed", str(SEED))
        compare = ("compare", "songs", "--models", "rf,hgb", "--grid", cmp_grid_file, "--cv", "5",
                   "--seed", str(SEED))
        for r in range(args.repeat):
            for name, run in (
                ("train_plain", lambda: plain_train(X, y)),
                ("train_all", lambda: cli(db, models, *train, "--jobs", "-1")),
                ("train_one", lambda: cli(db, models, *train, "--jobs", "1")),
                ("compare_plain", lambda: plain_compare(X, y)),
                ("compare_all", lambda: cli(db, models, *compare, "--jobs", "-1")),
                ("compare_one", lambda: cli(db, models, *compare, "--jobs", "1")),
            ):
                runs[name].append(run())
                print(f"round {r + 1}: {name} {runs[name][-1]:.1f} s", flush=True)
    best = {k: min(v) for k, v in runs.items()}
    rows = []
    for what in ("train", "compare"):
        plain, all_, one = best[f"{what}_plain"], best[f"{what}_all"], best[f"{what}_one"]
        rows.append(f"| `{what}` | {plain:.1f} s | {all_:.1f} s | {one:.1f} s | {all_ / plain:.2f}x "
                    f"| {one / all_:.2f}x |")
        print(f"{what}: ours/plain {all_ / plain:.2f}x (target <= 1.15x); "
              f"--jobs 1 / all {one / all_:.2f}x (target >= 1.7x)")
    load = os.getloadavg()[0]
    text = "\n".join([
        SECTION, "",
        f"Command: `python benchmarks/bench_models.py --repeat {args.repeat} --write`, one run, "
        f"../shared/data/tables/{args.csv.name} ({len(np.unique(frame.track_ids)):,} tracks, 6 genres), "
        f"{cores} cores, best of {args.repeat} interleaved rounds (load average {load:.1f} at the end). "
        f"`train --model rf --grid {json.dumps(GRID)} --cv 3` (7 fits) and "
        f"`compare --models rf,hgb --grid {json.dumps(COMPARE_GRID)} --cv 5` (10 fits). Plain scikit-learn: "
        "the same Pipeline and fits with `GridSearchCV(n_jobs=-1)` / `cross_validate(n_jobs=-1)` on the same rows. "
        "Targets: ours (all cores) <= 1.15x plain; ours all cores >= 1.7x faster than `--jobs 1`.",
        "",
        "| command | plain sklearn, n_jobs=-1 | ours, --jobs -1 | ours, --jobs 1 | ours / plain "
        "| speed-up of all cores |",
        "|---|---|---|---|---|---|",
        *rows, "",
        f"Python {platform.python_version()}; the progress bar is fed from the worker processes "
        "(`models/parallel.py`), so it moves while the fits run.",
    ])
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
