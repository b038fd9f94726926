"""The cost of checking a loaded model's arrays (models.fitted_checks) against loading the skops file.

Every kind with the project's default size (300 trees, 100 boosting iterations), fitted on a class-sized
problem (--tracks x --features, 10 genres), is saved with skops; the figure is the time of
``check_fitted_model`` as a ratio of ``skops.io.load`` of the same file, in the same process, best of --repeat.

Run:  python benchmarks/bench_model_checks.py --repeat 3 --write
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from timing import best  # noqa: E402

from music_classifier.models.fitted_checks import check_fitted_model  # noqa: E402
from music_classifier.models.pipelines import make_pipeline  # noqa: E402
from music_classifier.models.registry import audit_model_file  # noqa: E402

SECTION = "## Model array checks"



def main(argv: list[str] | None = None) -> None:
    import skops.io as sio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--features", type=int, default=57)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="Write the BENCHMARKS.md section.")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    y = np.arange(args.tracks) % 10
    X = rng.normal(size=(args.tracks, args.features)) + (y[:, None] == np.arange(args.features) % 10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("rf", "logreg", "svm", "hgb", "knn"):
            pipe = make_pipeline(kind, seed=0).fit(X, y.astype(str))
            path = Path(tmp) / f"{kind}.skops"
            sio.dump(pipe, path)
            trusted = audit_model_file(path)
            loaded = sio.load(path, trusted=trusted)
            load_s = best(lambda p=path, t=trusted: sio.load(p, trusted=t), args.repeat)
            check_s = best(lambda m=loaded: check_fitted_model(m), args.repeat)
            rows.append((kind, path.stat().st_size / 1e6, load_s, check_s))
            print(f"{kind}: load {load_s * 1e3:.1f} ms, check {check_s * 1e3:.1f} ms ({check_s / load_s:.2f}x)")
    lines = [
        SECTION, "",
        f"Command: `python benchmarks/bench_model_checks.py --repeat {args.repeat} --write` ({args.tracks} tracks x "
        f"{args.features} features, 10 genres, default model sizes), best of {args.repeat}, same process.", "",
        "| kind | file | skops.io.load (baseline) | check_fitted_model | ratio check / load |",
        "|---|---|---|---|---|",
        *(f"| {k} | {mb:.1f} MB | {ls * 1e3:.1f} ms | {cs * 1e3:.1f} ms | {cs / ls:.2f}x |" for k, mb, ls, cs in rows),
        "",
        f"Machine: {platform.machine()}, 2 cores shared with other jobs; Python {platform.python_version()}. "
        "The checks are vectorised numpy over each tree's node array; the booster's 1,000 predictors (100 "
        "iterations x 10 genres) cost the most.",
    ]
    print("\n".join(lines))
    if args.write:
        write_section(SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
