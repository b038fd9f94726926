"""Benchmark: `compare` on a class-sized set (issue 16 item 6) against plain scikit-learn on the same folds and grids.

The set: 40 tracks in 6 genres (7, 7, 7, 7, 6, 6) with librosa + musicnn features (83 + 450 = 533 columns),
synthetic (a genre's centre is shifted on a sixth of the columns, unit noise), inserted with the library's tables
and made a dataset with ``dataset create --features librosa,musicnn``. ``compare cls`` then runs its defaults:
five models, their default grids, 5x5 repeated stratified K-fold outside, 3-fold grid search inside: 25 outer folds
x (rf 13 + logreg 10 + svm 7 + hgb 7 + knn 7 fits).

Timed in one process, interleaved (machine load hits all alike), best of ``--repeat`` rounds:

- ours: ``compare cls --jobs -1`` through the CLI (it reads the dataset view itself);
- plain scikit-learn: for each (outer fold, model) a ``GridSearchCV`` of the same Pipeline (median imputer,
  scaler, classifier with HistGradientBoosting's default 255 bins) over the same grid (as adapted to the fold,
  e.g. hgb's min_samples_leaf, svm's calibration folds) and the same inner folds, scored on the outer test part;
  the 125 tasks spread over all cores with ``joblib.Parallel(n_jobs=-1)``. Its data is read once, before timing.
  Both give the same fold accuracies (checked).

``--profile`` adds where the time goes, per model, ``--jobs 1``, one repeat (5 outer folds), in this process:
with the bins sized to the rows (now) and with the default 255 bins (before the fix, forced by patching
``pipelines.hgb_max_bins``); plus a cProfile of ours (all models, ``--jobs 1``, one repeat), top functions.

Targets: ours <= 60 s on 2 cores; ours <= 1.5x plain scikit-learn.

Run:  python benchmarks/bench_compare_small.py --repeat 2 --profile --write
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.models.parallel import available_cores

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from models_helpers import COLUMNS, add_features, add_track  # noqa: E402 - tests/ is on sys.path

SECTION = "## compare on a class-sized set"
GENRES = {"Rock": 7, "Jazz": 7, "Pop": 7, "Metal": 7, "Blues": 6, "Disco": 6}
KINDS = ("rf", "logreg", "svm", "hgb", "knn")
SEED = 0


def build(db: str) -> None:
    """The class-sized dataset ``cls`` in a new database ``db``."""
    from music_classifier.db.engine import make_engine
    from music_classifier.models.datasets import DatasetDefinition, create_dataset

    res = CliRunner().invoke(app, ["--db", db, "db", "upgrade"])
    if res.exit_code != 0:
        raise RuntimeError(res.output)
    engine = make_engine(db)
    rng = np.random.default_rng(SEED)
    with engine.begin() as conn:
        for gi, (genre, n) in enumerate(GENRES.items()):
            for j in range(n):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file", title=f"{genre} {j}",
                                artist=f"artist {gi}-{j}")
                for extractor in ("librosa", "musicnn"):
                    cols = COLUMNS[extractor]
                    centre = np.array([0.8 if k % 6 == gi else 0.0 for k in range(len(cols))])
                    values = centre + rng.normal(0, 1.0, len(cols))
                    add_features(conn, tid, extractor, {c: float(v) for c, v in zip(cols, values, strict=True)})
        create_dataset(conn, "cls", DatasetDefinition(features="librosa,musicnn", top=6, min_per_genre=5))
    engine.dispose()


def load(db: str) -> tuple[np.ndarray, np.ndarray]:
    from music_classifier.db.engine import make_engine
    from music_classifier.models.load_data import load_dataset

    engine = make_engine(db)
    with engine.connect() as conn:
        frame = load_dataset(conn, "cls")
    engine.dispose()
    return frame.X, frame.y


def ours(db: str, *args: str) -> float:
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["--db", db, "compare", "cls", *args])
    if res.exit_code != 0:
        raise RuntimeError(f"compare failed ({res.exit_code}): {res.output}")
    return time.perf_counter() - started


def plain_pipeline(kind: str) -> object:
    """The same Pipeline as ours, written with scikit-learn alone (HistGradientBoosting: default bins)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = {"rf": lambda: RandomForestClassifier(n_estimators=300, random_state=SEED, n_jobs=1),
           "logreg": lambda: LogisticRegression(max_iter=3000, random_state=SEED),
           "svm": lambda: CalibratedClassifierCV(SVC(random_state=SEED), ensemble=False),
           "hgb": lambda: HistGradientBoostingClassifier(random_state=SEED),
           "knn": KNeighborsClassifier}[kind]()
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()), ("clf", clf)])


def plain_task(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, kind: str) -> float:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from music_classifier.models.adapt import adapt_grid
    from music_classifier.models.grids import default_grid, pipeline_grid

    inner = list(StratifiedKFold(3, shuffle=True, random_state=SEED).split(X[train], y[train]))
    grid, _ = adapt_grid(kind, default_grid(kind), [y[train][a] for a, _ in inner] + [y[train]])
    search = GridSearchCV(plain_pipeline(kind), pipeline_grid(grid), cv=inner, n_jobs=1).fit(X[train], y[train])
    return float(np.mean(search.predict(X[test]) == y[test]))


def plain(X: np.ndarray, y: np.ndarray, folds: list, out: dict[str, list[float]] | None = None) -> float:
    from joblib import Parallel, delayed

    started = time.perf_counter()
    tasks = [(fold, kind) for fold in range(len(folds)) for kind in KINDS]
    scores = Parallel(n_jobs=-1)(delayed(plain_task)(X, y, *folds[f], kind) for f, kind in tasks)
    if out is not None:
        for (_, kind), score in zip(tasks, scores, strict=True):
            out.setdefault(kind, []).append(score)
    return time.perf_counter() - started


def per_model(db: str, *, sized: bool) -> dict[str, float]:
    """Seconds per model, ``--jobs 1``, one repeat; ``sized=False`` forces hgb's default 255 bins."""
    from music_classifier.db.engine import make_engine
    from music_classifier.models import pipelines
    from music_classifier.models.compare import compare_models

    original = pipelines.hgb_max_bins
    if not sized:
        pipelines.hgb_max_bins = lambda n_rows: pipelines.HGB_MAX_BINS
    engine = make_engine(db)
    times: dict[str, float] = {}
    try:
        for kind in KINDS:
            started = time.perf_counter()
            with engine.connect() as conn:
                compare_models(conn, "cls", kinds=[kind], repeats=1, seed=SEED, n_jobs=1)
            times[kind] = time.perf_counter() - started
            print(f"per model ({'sized' if sized else '255'} bins): {kind} {times[kind]:.1f} s", flush=True)
    finally:
        pipelines.hgb_max_bins = original
        engine.dispose()
    return times


def top_functions(db: str, n: int = 8) -> str:
    from music_classifier.db.engine import make_engine
    from music_classifier.models.compare import compare_models

    engine = make_engine(db)
    prof = cProfile.Profile()
    with engine.connect() as conn:
        prof.runcall(compare_models, conn, "cls", repeats=1, seed=SEED, n_jobs=1)
    engine.dispose()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(n)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    root = str(ROOT / ".venv" / "lib")
    return "\n".join(ln.replace(root, "…") for ln in lines[start - 1:start + 1 + n])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="Add the per-model and cProfile breakdown.")
    ap.add_argument("--write", action="store_true", help="Write the BENCHMARKS.md section.")
    args = ap.parse_args(argv)
    from music_classifier.models.train import estimation_splits

    cores, load_start = available_cores(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mc_bench_compare_small_") as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        build(db)
        X, y = load(db)
        folds, protocol, _, _ = estimation_splits(y, np.arange(len(y)), cv=5, repeats=5, seed=SEED)
        # Same answers: plain scikit-learn's fold accuracies equal ours (`compare --json`).
        plain_scores: dict[str, list[float]] = {}
        runs: dict[str, list[float]] = {"ours": [], "plain": []}
        report = Path(tmp) / "cmp.json"
        for r in range(args.repeat):
            runs["plain"].append(plain(X, y, folds, plain_scores if r == 0 else None))
            print(f"round {r + 1}: plain {runs['plain'][-1]:.1f} s", flush=True)
            runs["ours"].append(ours(db, "--jobs", "-1", "--json", str(report)))
            print(f"round {r + 1}: ours {runs['ours'][-1]:.1f} s", flush=True)
        ours_scores = {s["kind"]: s["fold_accuracy"] for s in json.loads(report.read_text())["scores"]}
        same = all(np.allclose(ours_scores[k], plain_scores[k]) for k in KINDS)
        print("same fold accuracies as plain scikit-learn:", same)
        profile = ""
        if args.profile:
            after, before = per_model(db, sized=True), per_model(db, sized=False)
            profile = "\n".join([
                "Where the time goes, per model (`compare cls --models K --repeats 1 --jobs 1`, 5 outer folds, "
                "in-process, same run):", "",
                "| model | fits | before: hgb with 255 bins | now: bins sized to the rows |", "|---|---|---|---|",
                *[f"| {k} | {5 * n} | {before[k]:.1f} s | {after[k]:.1f} s |"
                  for k, n in zip(KINDS, (13, 10, 7, 7, 7), strict=True)],
                f"| all | 220 | {sum(before.values()):.1f} s | {sum(after.values()):.1f} s |", "",
                "cProfile of `compare` now (all models, `--jobs 1`, one repeat), by own time:", "", "```",
                top_functions(db), "```"])
    best = {k: min(v) for k, v in runs.items()}
    ratio = best["ours"] / best["plain"]
    print(f"ours {best['ours']:.1f} s (target <= 60 s), plain {best['plain']:.1f} s, ours/plain {ratio:.2f}x "
          "(target <= 1.5x)")
    text = "\n".join([
        SECTION, "",
        f"Command: `python benchmarks/bench_compare_small.py --repeat {args.repeat}"
        f"{' --profile' if args.profile else ''} --write`, one run, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cores} cores shared with other work "
        f"(load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}. {len(y)} tracks, 6 genres, "
        f"{X.shape[1]} features (librosa + musicnn columns, synthetic values), `compare cls` with its defaults: "
        f"five models, default grids, {protocol} outside, 3-fold grid search inside (25 x 44 = 1,100 fits + "
        "the SVM's calibration fits). Plain scikit-learn: a `GridSearchCV` per (outer fold, model) on the same "
        "folds and grids, HistGradientBoosting with its default 255 bins, the 125 tasks over `joblib.Parallel"
        "(n_jobs=-1)`. Best of the interleaved rounds. Targets: ours <= 60 s, ours <= 1.5x plain.", "",
        "| ours, `compare --jobs -1` | plain scikit-learn, n_jobs=-1 | ours / plain | same fold accuracies |",
        "|---|---|---|---|",
        f"| {best['ours']:.1f} s | {best['plain']:.1f} s | {ratio:.2f}x | {'yes' if same else 'NO'} |", "",
        profile,
    ])
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
