"""Report t-SNE: the report's dominant cost, with one OpenMP thread (ours) vs the library default.

The matrix is the GTZAN 30 s feature table (1,000 tracks x 57 features, ../shared/data) when present,
else a generated one of the same shape. Rounds interleave the two settings (the machine is shared, so
its load drifts) and the best of each is kept. Also times the three model plots drawn from the stored
run, for scale.

    python benchmarks/bench_report.py --repeat 3 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path

from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.models import plots

SECTION = "## Report t-SNE"
GTZAN_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables" / "gtzan_features_30_sec.csv"


def load_matrix() -> tuple[np.ndarray, list[str], str]:
    if GTZAN_CSV.is_file():
        import pandas as pd

        df = pd.read_csv(GTZAN_CSV)
        return df[GTZAN_V1].to_numpy(float), df["label"].astype(str).tolist(), "GTZAN 30 s table"
    rng = np.random.default_rng(0)
    y = [f"g{i % 10}" for i in range(1000)]
    X = rng.normal(size=(1000, len(GTZAN_V1))) + np.repeat(np.arange(10), 100)[:, None] * 0.3
    return X, y, "generated matrix"


def timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="Write the figures into BENCHMARKS.md.")
    args = parser.parse_args()

    X, y, source = load_matrix()
    plots.tsne_embedding(X[:60], seed=0)  # imports and JIT/warm-up outside the timings
    default_s, ours_s = [], []
    for r in range(args.repeat):
        default_s.append(timed(lambda: plots.tsne_embedding(X, seed=0, threads=None)))
        ours_s.append(timed(lambda: plots.tsne_embedding(X, seed=0, threads=1)))
        print(f"round {r + 1}: default threads {default_s[-1]:.2f} s, one thread {ours_s[-1]:.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        labels = sorted(set(y))
        matrix = np.random.default_rng(0).integers(0, 25, (len(labels), len(labels)))
        other = {
            "confusion (10 genres)": timed(lambda: plots.plot_confusion(matrix, labels, out=out / "c.png")),
            "importances (top 20 of 57)": timed(lambda: plots.plot_importances(
                GTZAN_V1, np.linspace(0, 1, len(GTZAN_V1)), out=out / "i.png")),
            "plot_tsne end to end (one thread)": timed(lambda: plots.plot_tsne(X, y, out=out / "t.png")),
        }
    load = os.getloadavg()
    best_default, best_ours = min(default_s), min(ours_s)
    command = f"python benchmarks/bench_report.py --repeat {args.repeat}" + (" --write" if args.write else "")
    lines = [
        SECTION, "",
        f"t-SNE of the {source} ({X.shape[0]:,} x {X.shape[1]}, StandardScaler, perplexity 30, seed 0) as "
        "`report` and `plot tsne` draw it: one OpenMP thread (ours, `threadpoolctl.threadpool_limits(1)`) "
        f"against scikit-learn's default thread count, interleaved rounds, best of {args.repeat}.", "",
        "| setting | best | all rounds |", "|---|---|---|",
        f"| default threads | {best_default:.2f} s | {', '.join(f'{v:.2f}' for v in default_s)} |",
        f"| one thread (ours) | {best_ours:.2f} s | {', '.join(f'{v:.2f}' for v in ours_s)} |", "",
        f"Ratio ours / default: {best_ours / best_default:.2f}x (below 1 = faster). The default's Barnes-Hut "
        "gradient busy-waits in OpenMP; with other jobs on the 2 cores that costs several times the work.", "",
        "Other figures of a report, for scale (one run each): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in other.items()) + ".", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{load[0]:.1f} at the end); Python {platform.python_version()}.", "",
        f"Command: `{command}`", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
